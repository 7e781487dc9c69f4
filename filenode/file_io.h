// Positional I/O that finishes the job (short transfers and EINTR retried)
// and an owned file descriptor, for the chunk store.
#pragma once

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "common/status.h"

namespace dfs::filenode {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Reads up to `size` bytes; returns how many (fewer only at end of file).
inline Result<size_t> PreadAll(int fd, void* data, size_t size, uint64_t offset, const std::string& what) {
  char* p = static_cast<char*>(data);
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd, p + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "read " + what);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

// Writes every byte `iov` describes at `offset` with as few pwritev calls as
// IOV_MAX allows (short writes and EINTR retried). `iov` is consumed: its
// entries are advanced past what was written. Errors name the file and the
// offset; ENOSPC is NoSpace.
inline Status PwritevAll(int fd, std::span<iovec> iov, uint64_t offset, const std::string& what) {
  while (!iov.empty()) {
    const int count = static_cast<int>(std::min<size_t>(iov.size(), IOV_MAX));
    ssize_t n = ::pwritev(fd, iov.data(), count, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, fmt::format("write {} at offset {}", what, offset));
    }
    offset += static_cast<uint64_t>(n);
    auto left = static_cast<size_t>(n);
    while (!iov.empty() && left >= iov.front().iov_len) {
      left -= iov.front().iov_len;
      iov = iov.subspan(1);
    }
    if (n == 0 && !iov.empty()) {
      return Status::IOError(fmt::format("write {} at offset {}: the kernel wrote nothing", what, offset));
    }
    if (left > 0) {
      iov.front().iov_base = static_cast<char*>(iov.front().iov_base) + left;
      iov.front().iov_len -= left;
    }
  }
  return Status::OK();
}

}  // namespace dfs::filenode
