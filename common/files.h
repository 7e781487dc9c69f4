// File helpers every durable write goes through: write a temp file, fsync
// it, rename it over the target, fsync the directory (leveldb SetCurrentFile).
// A crash leaves either the old file or the new one, never a mix.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace dfs {

Status WriteFileDurably(const std::string& path, std::string_view contents);
// write(2) / pwrite(2) until every byte is written (EINTR and short writes
// retried). Errors read "write WHAT: reason", with ENOSPC as NoSpace.
Status WriteAll(int fd, const void* data, size_t size, const std::string& what);
Status PwriteAll(int fd, const void* data, size_t size, uint64_t offset, const std::string& what);
inline Status WriteAll(int fd, std::string_view data, const std::string& what) {
  return WriteAll(fd, data.data(), data.size(), what);
}
Result<std::string> ReadFile(const std::string& path);
Status SyncDirectory(const std::string& dir);
// mkdir -p; an existing directory is fine.
Status CreateDirectories(const std::string& dir);

// An exclusive lock on DIR/LOCK held for the life of the object, so two
// daemons (node or master, in any mix) never share one data folder. The
// lock is flock(2): the kernel drops it when the process dies, so a crash
// never leaves a stale lock behind.
class DirLock {
 public:
  // `who` ("dfs-node") is written into the lock file for the next refusal.
  static Result<DirLock> Acquire(const std::string& dir, std::string_view who);
  DirLock(DirLock&& other) noexcept;
  DirLock& operator=(DirLock&&) = delete;
  DirLock(const DirLock&) = delete;
  ~DirLock();

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace dfs
