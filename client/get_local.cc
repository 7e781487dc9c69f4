// Client::Get: Read into a local file or descriptor. A named file is written
// to a temporary beside it and renamed into place only when complete.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <vector>

#include <fmt/format.h>

#include "client/client_impl.h"
#include "common/files.h"

namespace dfs::client {
Result<FileStatus> Client::Get(std::string_view remote, int fd, const GetOptions& options) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Status::FromErrno(errno, "output");
  const int flags = ::fcntl(fd, F_GETFL);
  const off_t base = ::lseek(fd, 0, SEEK_CUR);
  // Positioned writes (chunks in parallel, in any order) into a regular
  // file, from where its position stands; O_APPEND ignores positions, and
  // pipes and terminals have none, so those get the bytes in order.
  const bool positioned = S_ISREG(st.st_mode) && flags >= 0 && (flags & O_APPEND) == 0 && base >= 0;
  const std::string name = fd == STDOUT_FILENO ? "standard output" : fmt::format("fd {}", fd);
  uint64_t written = 0;
  ReadSink sink;
  if (positioned) {
    sink = [&](uint64_t off, std::span<const std::byte> bytes) {
      written += bytes.size();
      return PwriteAll(fd, bytes.data(), bytes.size(), static_cast<uint64_t>(base) + (off - options.offset), name);
    };
  } else {
    sink = [&](uint64_t, std::span<const std::byte> bytes) {
      written += bytes.size();
      return WriteAll(fd, bytes.data(), bytes.size(), name);
    };
  }
  DFS_ASSIGN_OR_RETURN(FileStatus status, Read(remote, options, !positioned, sink));
  if (positioned && ::lseek(fd, base + static_cast<off_t>(written), SEEK_SET) < 0) {
    return Status::FromErrno(errno, name);
  }
  return status;
}

Result<FileStatus> Client::Get(std::string_view remote, const std::string& local, const GetOptions& options) {
  // Unique, so two gets of one target never share a temporary; beside the
  // target, so the rename stays in one file system.
  std::string tmp = local + ".tmp.XXXXXX";
  std::vector<char> name(tmp.begin(), tmp.end());
  name.push_back('\0');
  int fd = ::mkstemp(name.data());
  if (fd < 0) return Status::FromErrno(errno, local);
  tmp.assign(name.data());
  // mkstemp makes 0600; a downloaded file gets the usual 0666 less umask.
  mode_t mask = ::umask(0);
  ::umask(mask);
  IgnoreError(::fchmod(fd, 0666 & ~mask) == 0 ? Status::OK() : Status::FromErrno(errno, tmp));  // cosmetic
  auto r = Get(remote, fd, options);
  Status closed = ::close(fd) == 0 ? Status::OK() : Status::FromErrno(errno, tmp);
  if (r && closed.ok() && ::rename(tmp.c_str(), local.c_str()) != 0) closed = Status::FromErrno(errno, local);
  if (!r || !closed.ok()) {
    ::unlink(tmp.c_str());
    if (!r) return r.error();
    return closed;
  }
  return r;
}

}  // namespace dfs::client
