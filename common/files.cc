#include "common/files.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

namespace dfs {

Status WriteAll(int fd, const void* data, size_t size, const std::string& what) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write " + what);
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return Status::OK();
}

Status PwriteAll(int fd, const void* data, size_t size, uint64_t offset, const std::string& what) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::pwrite(fd, p, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write " + what);
    }
    p += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return Status::OK();
}

Result<DirLock> DirLock::Acquire(const std::string& dir, std::string_view who) {
  DFS_RETURN_IF_ERROR(Env::Default()->CreateDirs(dir));
  std::string path = dir + "/LOCK";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) return Status::FromErrno(errno, path);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    std::string holder;
    char buf[256];
    ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
    if (n > 0) holder.assign(buf, static_cast<size_t>(n));
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == '\0')) holder.pop_back();
    if (err == EWOULDBLOCK) {
      return Status::Busy(fmt::format("{} is in use by another process ({}); refusing to start", dir,
                                      holder.empty() ? "unknown" : holder));
    }
    return Status::FromErrno(err, "lock " + path);
  }
  std::string me = fmt::format("{} pid {}\n", who, ::getpid());
  if (::ftruncate(fd.get(), 0) != 0 || ::pwrite(fd.get(), me.data(), me.size(), 0) < 0) {
    // The lock itself is what matters; the text only improves the next refusal.
  }
  return DirLock(std::move(fd));
}

}  // namespace dfs
