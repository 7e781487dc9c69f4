// Small file helpers outside the Env: the client's writes to a local file
// descriptor, and the data-folder lock. Files the master and nodes keep go
// through common/env.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/env.h"
#include "common/status.h"

namespace dfs {

// write(2) until every byte is written (EINTR and short writes retried).
// Errors read "write WHAT: reason", with ENOSPC as NoSpace.
Status WriteAll(int fd, const void* data, size_t size, const std::string& what);
inline Status WriteAll(int fd, std::string_view data, const std::string& what) {
  return WriteAll(fd, data.data(), data.size(), what);
}
// pwrite(2) until every byte is written at `offset`.
Status PwriteAll(int fd, const void* data, size_t size, uint64_t offset, const std::string& what);

// An exclusive lock on DIR/LOCK held for the life of the object, so two
// daemons (node or master, in any mix) never share one data folder. The
// lock is flock(2): the kernel drops it when the process dies, so a crash
// never leaves a stale lock behind.
class DirLock {
 public:
  // `who` ("dfs-node") is written into the lock file for the next refusal.
  static Result<DirLock> Acquire(const std::string& dir, std::string_view who);
  DirLock(DirLock&& other) noexcept = default;
  DirLock& operator=(DirLock&&) = delete;
  DirLock(const DirLock&) = delete;

 private:
  explicit DirLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;  // closing the last descriptor releases the flock
};

}  // namespace dfs
