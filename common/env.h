// The disk I/O environment: every file the master and the nodes keep goes
// through an Env (leveldb's Env is the model), so one place finishes short
// transfers, maps errno to Status, and can be swapped for a fault-injecting
// one in tests and with the daemons' --unsafe-fault-* flags (fault_env.h).
//
// Parts:
//   UniqueFd        the project's one owner of a raw file descriptor
//   File            an open file: appends, positional reads and writes that
//                   finish the job, fdatasync, truncate, allocate, hints
//   Env             opens files, renames, removes, lists and syncs folders
//   PendingReplace  write temp -> sync -> rename -> sync folder: the one
//                   durable-replace sequence, step by step for callers that
//                   interleave two files (the chunk writer), whole for the rest
//                   (ReplaceDurably, WriteFileDurably)
//
// Errors are Status: "VERB PATH: reason", ENOSPC as NoSpace, ENOENT as
// NotFound. Nothing here throws.
//
// Thread-safety: Env::Default() and its files are thread-safe as the kernel
// is (positional reads and writes from several threads are fine; Append and
// Read keep a position and belong to one thread at a time).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace dfs {

// Owns a file descriptor; closes it on destruction. Move-only.
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
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void Reset();
  // close(2) with its error, for files whose close must be checked.
  Status Close(const std::string& what);

 private:
  int fd_ = -1;
};

// An open file. Destroying it closes it (errors ignored: what matters was
// reported by Sync).
class File {
 public:
  virtual ~File() = default;
  const std::string& path() const { return path_; }
  // The descriptor, for what the interface does not cover (mmap, fstatvfs).
  // Bytes written through it bypass fault injection.
  virtual int fd() const = 0;

  // Writes every byte at the handle's position (the file's end when opened
  // for append or created), short writes and EINTR retried.
  virtual Status Append(std::string_view data) = 0;
  // Writes every byte at `offset`.
  virtual Status PwriteAll(const void* data, size_t size, uint64_t offset) = 0;
  // Writes every byte `iov` describes at `offset`, IOV_MAX entries a call.
  // `iov` is consumed: its entries are advanced past what was written.
  virtual Status PwritevAll(std::span<iovec> iov, uint64_t offset) = 0;
  // Reads up to `size` bytes at `offset`; fewer only at end of file.
  virtual Result<size_t> PreadAll(void* data, size_t size, uint64_t offset) = 0;
  // Reads up to `size` bytes at the handle's position; 0 at end of file.
  virtual Result<size_t> Read(void* data, size_t size) = 0;
  // fdatasync: the data and the size durable. After a failure the file's
  // unsynced pages may be lost whatever a later sync says (fsyncgate).
  virtual Status Sync() = 0;
  virtual Status Truncate(uint64_t size) = 0;
  // fallocate(2): reserves [offset, offset+len). false when the file
  // system cannot (callers go on without the reservation).
  virtual Result<bool> Allocate(uint64_t offset, uint64_t len) = 0;
  virtual Result<uint64_t> Size() = 0;
  // sync_file_range(WAIT_BEFORE|WRITE|WAIT_AFTER): [offset, offset+len) on
  // disk, not the metadata. A bounded flush, not a durability point.
  virtual Status WriteOut(uint64_t offset, uint64_t len) = 0;

  // Hints; their errors are ignored (a real error comes back from Sync).
  // Starts writeback of [offset, offset+len) (sync_file_range WRITE).
  virtual void StartWriteback(uint64_t offset, uint64_t len) = 0;
  // Drops [offset, offset+len) from the page cache; len 0: to the end.
  virtual void DropCache(uint64_t offset, uint64_t len) = 0;

 protected:
  explicit File(std::string path) : path_(std::move(path)) {}

 private:
  std::string path_;
};

enum class OpenMode {
  kRead,           // must exist; read-only
  kReadWrite,      // must exist
  kWriteExisting,  // must exist; write-only
  kCreate,         // created or truncated; read-write
  kCreateNew,      // created; AlreadyExists if it exists; read-write
};

struct FileStat {
  uint64_t size = 0;
  bool is_directory = false;
};

struct DiskSpace {
  uint64_t total = 0;
  uint64_t available = 0;  // to an unprivileged user
};

class Env {
 public:
  virtual ~Env() = default;
  // The real file system. Never destroyed.
  static Env* Default();

  virtual Result<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) = 0;
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // NotFound when there is no such file.
  virtual Status Remove(const std::string& path) = 0;
  // fsync of a folder: the names created, renamed or removed in it durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  // mkdir -p; an existing folder is fine.
  virtual Status CreateDirs(const std::string& dir) = 0;
  // Names in `dir` (no "." or ".."), in no particular order. An unreadable
  // folder, or one that fails mid-listing, is an error, never an exception.
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // NotFound when absent.
  virtual Result<FileStat> Stat(const std::string& path) = 0;
  virtual Result<DiskSpace> Space(const std::string& path) = 0;
};

// The folder part of `path` ("." for a bare name).
std::string DirName(const std::string& path);

// Write temp, sync, rename over the target, sync the folder; on failure
// before the rename the temp is removed and the target keeps its old
// contents. Steps are separate for callers that commit two files under one
// folder sync; Commit() does them all.
class PendingReplace {
 public:
  // Creates (truncating) `path` + `suffix`, read-write.
  static Result<PendingReplace> Create(Env* env, std::string path, std::string_view suffix = ".tmp");
  PendingReplace(PendingReplace&&) noexcept;
  PendingReplace& operator=(PendingReplace&&) noexcept;  // abandons what it held
  ~PendingReplace();  // Abandon() unless renamed or forgotten

  File& file() { return *file_; }
  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_; }

  // fdatasync of the temp file; call it after the last write (a second
  // call does nothing).
  Status Sync();
  // Sync() if needed, then renames the temp over the path. The folder is
  // not synced: call SyncDir or Commit.
  Status Rename();
  // Sync + Rename + fsync of the folder.
  Status Commit();
  // The handle, open on `path` once renamed (the journal keeps appending).
  std::unique_ptr<File> TakeFile() { return std::move(file_); }
  // Closes and removes the temp unless renamed; idempotent.
  void Abandon();
  // Closes the temp and leaves it where it is (the caller disposes of it).
  void Forget();

 private:
  PendingReplace(Env* env, std::string path, std::string temp, std::unique_ptr<File> file)
      : env_(env), path_(std::move(path)), temp_(std::move(temp)), file_(std::move(file)) {}
  Env* env_;
  std::string path_;
  std::string temp_;
  std::unique_ptr<File> file_;
  bool synced_ = false;
  bool renamed_ = false;
  bool done_ = false;  // abandoned, forgotten or renamed: the temp is not ours
};

// The whole sequence with `fill` writing the temp file's contents.
Status ReplaceDurably(Env* env, const std::string& path, const std::function<Status(File&)>& fill);
// ReplaceDurably of a string.
Status WriteFileDurably(Env* env, const std::string& path, std::string_view contents);
// The whole file.
Result<std::string> ReadWholeFile(Env* env, const std::string& path);

}  // namespace dfs
