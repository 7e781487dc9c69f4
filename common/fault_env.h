// FaultEnv: an Env that wraps another and makes its disk misbehave on
// purpose, for tests and for the daemons' --unsafe-fault-* flags (STYLE.md
// habit 14; leveldb's FaultInjectionTestEnv and Kudu's --env_inject_eio are
// the models). Off until armed; armed, each file operation costs one path
// check and a counter.
//
// Faults, each aimed at the paths matching a glob (fnmatch, on the whole
// path as the caller spelt it; empty: every path) and counted over those
// paths only:
//   FailWritesAfter(n, err)  writes after the first n fail with err (EIO, or
//                            ENOSPC for a full disk); from then on creating,
//                            renaming and writing any matching file fails too
//                            (a dead disk stays dead)
//   FailSyncsAfter(n)        fdatasync / folder fsync after the first n fail
//                            with EIO, and every later one (fsyncgate)
//   TearWriteAfter(n)        write n+1 lands only its first half and reports
//                            EIO (a torn write); later writes are whole
//   DropUnsyncedData()       truncates every file written through this env to
//                            its size at its last successful sync (0 if never
//                            synced): what a power cut leaves of appends.
//                            Overwrites inside the synced size are kept.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/env.h"

namespace dfs {

class FaultEnv final : public Env {
 public:
  // `base` must outlive this env.
  explicit FaultEnv(Env* base);

  void SetPathGlob(std::string glob);
  void FailWritesAfter(uint64_t n, int err = EIO);
  void FailSyncsAfter(uint64_t n);
  void TearWriteAfter(uint64_t n);
  // Disarms every fault (counters and unsynced tracking go on).
  void Disarm();
  Status DropUnsyncedData();

  // Matching operations seen so far, and faults injected.
  uint64_t writes() const { return writes_.load(); }
  uint64_t syncs() const { return syncs_.load(); }
  uint64_t faults() const { return faults_.load(); }

  Result<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status Remove(const std::string& path) override;
  Status SyncDir(const std::string& dir) override;
  Status CreateDirs(const std::string& dir) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Result<FileStat> Stat(const std::string& path) override;
  Result<DiskSpace> Space(const std::string& path) override;

 private:
  friend class FaultFile;
  static constexpr uint64_t kOff = UINT64_MAX;

  bool Matches(const std::string& path) const;
  // The fault for the next matching write, if any: 0 none, -1 torn, else errno.
  int NextWrite();
  // errno for the next matching sync, or 0.
  int NextSync();
  // The write fault's errno once it has fired (sticky), else 0.
  int DiskDead() const { return dead_err_.load(); }
  // What DropUnsyncedData needs of one file written through this env,
  // under its current name (renames follow it).
  struct Tracked {
    std::string path;
    uint64_t synced_size = 0;
    bool dirty = false;
  };
  void Written(Tracked& t);
  void Synced(Tracked& t, uint64_t size);

  Env* const base_;
  mutable std::mutex mu_;
  std::string glob_;  // guarded by mu_
  std::atomic<uint64_t> fail_writes_after_{kOff};
  std::atomic<int> write_err_{EIO};
  std::atomic<uint64_t> fail_syncs_after_{kOff};
  std::atomic<uint64_t> tear_after_{kOff};
  std::atomic<int> dead_err_{0};
  std::atomic<uint64_t> writes_{0};
  std::atomic<uint64_t> syncs_{0};
  std::atomic<uint64_t> faults_{0};
  std::map<std::string, std::shared_ptr<Tracked>> files_;  // by current path; guarded by mu_
};

// What the daemons' --unsafe-fault-* flags ask of their disk (unset: no fault).
struct DiskFaults {
  std::optional<uint64_t> eio_after_writes;     // --unsafe-fault-eio-after-writes N
  std::optional<uint64_t> enospc_after_writes;  // --unsafe-fault-enospc-after-writes N
  std::optional<uint64_t> fsync_fail_after;     // --unsafe-fault-fsync-fail-after N
  std::optional<uint64_t> torn_write_after;     // --unsafe-fault-torn-write-after N
  std::string path_glob;                        // --unsafe-fault-path GLOB
  bool any() const { return eio_after_writes || enospc_after_writes || fsync_fail_after || torn_write_after; }
};

// A FaultEnv over `base` armed as `faults` asks; nullptr when it asks nothing.
std::unique_ptr<FaultEnv> MakeFaultEnv(const DiskFaults& faults, Env* base);

}  // namespace dfs
