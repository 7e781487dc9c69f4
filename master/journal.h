// The master's journal: an append-only file of opaque records (serialized
// protobufs the namespace owns), written with group commit, and its replay.
// The format is in master/journal_format.h; checkpoints and the rotation
// protocol that ties the two together are in master/checkpoint.h.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/env.h"
#include "common/status.h"

namespace dfs::master {

// Called once per record, in file order. A non-OK Status stops the replay
// or read and is returned, prefixed with the file name.
using RecordApplier = std::function<Status(std::string_view record)>;

// DIR/journal.<generation>.
std::string JournalPath(const std::string& dir, uint64_t generation);

// Exit status of a process stopped by an injected crash (Kudu's value).
inline constexpr int kFaultCrashExitCode = 85;

struct JournalStats {
  uint64_t records = 0;  // records made durable
  uint64_t bytes = 0;    // bytes written, framing included
  uint64_t syncs = 0;    // fdatasync calls on journal files (records / syncs = batching)
  uint64_t max_batch_records = 0;
  uint64_t prepared = 0;  // bytes of zeros written ahead of the records
};

// Appends records to DIR/journal.<generation> from one dedicated thread that
// does group commit: it takes everything queued, writes it with one write(2),
// makes it durable with one fdatasync, then runs each record's `done` in
// append order. Many mutations share one sync (DESIGN.md "Master").
//
// Callbacks run on the writer thread, so they must be short and must not
// block on the journal: no AppendAndSync or Stop from inside one. Append
// from inside one is fine. The master's metadata thread uses them only to
// post the completion back to itself (inproc socket or queue) and answers
// the client there, so the namespace is still touched by one thread only.
//
// Failure is final (fsyncgate: after a failed fsync the kernel may have
// dropped the dirty pages and marked them clean, so a retry "succeeds"
// without the data). After a write, fsync or file-creation error, the
// records in that batch, everything queued and every later Append get
// IOError; the writer never touches the file again. Records in the failed
// batch may or may not be on disk: the master must stop serving mutations,
// exit and recover from disk (where those records may reappear, the
// ambiguity every timed-out request has; the retry cache resolves it).
//
// Thread-safe: any thread may Append, AppendAndSync, Rotate or read stats.
class JournalWriter {
 public:
  struct Options {
    std::string dir;
    uint64_t generation = 0;
    // One write + sync covers at most this many bytes (plus one record);
    // a larger backlog is split. Bounds the write buffer and a torn tail.
    size_t max_batch_bytes = 8u << 20;
    // Zeros written and synced ahead of the last record while the writer is
    // idle, so a batch's fdatasync writes its data alone: appending, it also
    // writes the inode (its size). For a 300-byte record bench/journal_bench
    // measured on the development VM (issue 3): 270 us and 57 us of CPU
    // appended, 88 us and 28 us over zeros. The zeros
    // are cut at rotation and at Stop; after a crash, replay cuts them as it
    // cuts any tail that holds no record. 0: plain appends.
    uint64_t prepare_bytes = 1u << 20;

    // Every file access; nullptr: Env::Default(). Disk faults (a failing
    // fsync, EIO) come from a FaultEnv here (common/fault_env.h).
    Env* env = nullptr;

    // Fault injection (STYLE.md habit 14), off when 0
    // (dfs-master --unsafe-fault-crash-after-journal-append N):
    // _exit(kFaultCrashExitCode) right after the sync that made the N-th
    // record durable, before its `done` runs (durable but never
    // acknowledged: recovery must keep it).
    uint64_t fault_crash_after_records = 0;
  };

  // Creates journal.<generation> durably (temp file, header, fsync, rename,
  // directory fsync) or opens the existing one for append. An existing file
  // must have been replayed (ReplayJournal / RecoverMasterState) since the
  // last crash, so a torn tail is already cut: appending after one would
  // turn it into mid-file corruption.
  static Result<std::unique_ptr<JournalWriter>> Open(Options options);
  ~JournalWriter();  // Stop()
  JournalWriter(const JournalWriter&) = delete;
  JournalWriter& operator=(const JournalWriter&) = delete;

  // Queues `record`; `done` (may be empty) runs on the writer thread once the
  // record is durable (OK) or cannot be (IOError; InvalidArgument for a
  // record over kMaxRecordSize, which fails alone). After Stop, `done` runs
  // at once on the calling thread with Unavailable.
  void Append(std::string record, std::function<void(Status)> done);

  // Append and wait for the outcome. For tests and tools; the master's
  // metadata thread must not block, it uses Append.
  Status AppendAndSync(std::string record);

  // Step 1 of the rotation protocol (checkpoint.h): after everything already
  // queued is durable in the current file, durably creates
  // journal.<new_generation> and switches to it. Records appended after this
  // call go to the new file. `done` says when the new file is in place.
  // REQUIRES: new_generation > generation().
  void Rotate(uint64_t new_generation, std::function<void(Status)> done);
  Status RotateAndWait(uint64_t new_generation);

  // Drains the queue (every pending `done` runs), joins the writer thread and
  // closes the file. Returns the error that failed the journal, if any.
  // Idempotent.
  Status Stop();

  JournalStats stats() const;
  // The generation the newest Rotate (or Open) asked for.
  uint64_t generation() const;
  const std::string& dir() const { return options_.dir; }

 private:
  struct Entry {
    std::string record;
    std::function<void(Status)> done;
    uint64_t rotate_to = 0;  // non-zero: a rotation, not a record
  };

  explicit JournalWriter(Options options);
  Status OpenFile();
  void Run();
  void ProcessBatch(std::vector<Entry>& entries);
  Status WriteAndSync(std::vector<Entry>& entries, size_t begin, size_t end);
  Status SwitchTo(uint64_t generation);
  // Writer thread, when idle: tops up the zeros ahead of end_.
  void PrepareAhead();
  // Gives back the zeros past end_ (rotation, Stop).
  Status CutPrepared();
  void Fail(Status s);

  Options options_;
  uint64_t crash_after_records_ = UINT64_MAX;  // one comparison when off

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Entry> queue_;       // guarded by mu_
  bool stopping_ = false;          // guarded by mu_
  uint64_t requested_generation_;  // guarded by mu_

  // Writer thread only (and Open/Stop, before start and after join).
  std::unique_ptr<File> file_;
  std::string path_;
  uint64_t end_ = 0;       // where the next record goes
  uint64_t prepared_ = 0;  // [0, prepared_) is allocated and durable: records, then zeros
  bool prepare_off_ = false;  // no room for zeros on this file
  Status failed_;
  std::string buffer_;

  std::atomic<uint64_t> records_{0};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> syncs_{0};
  std::atomic<uint64_t> max_batch_records_{0};
  std::atomic<uint64_t> prepared_bytes_{0};

  std::thread thread_;
  std::mutex stop_mu_;
  Status stop_status_;
  bool stopped_ = false;  // guarded by stop_mu_
};

struct ReplayOptions {
  // Cut a torn tail (see ReplayJournal). Off for a journal that a newer one
  // follows: the writer synced it completely before switching, so damage at
  // its end is corruption, not a crash mid-append.
  bool allow_torn_tail = true;
  // If set, a header with another generation is Corruption (checked before
  // any record is applied or anything is cut).
  std::optional<uint64_t> expected_generation;
  // nullptr: Env::Default().
  Env* env = nullptr;
};

struct ReplayStats {
  bool has_header = false;  // false: the file was empty (or a torn header, cut)
  uint64_t generation = 0;  // from the header
  uint64_t records = 0;     // records applied
  uint64_t valid_bytes = 0; // the file's size after replay
  bool torn_tail = false;   // a torn tail was cut off
  uint64_t dropped_bytes = 0;
};

// Applies every record of the journal at `path` in order.
//
// Torn tail vs. corruption. Only the batch being written when the process or
// machine died can be damaged by the crash, and it is the last thing in the
// file; everything before it was synced. So at the first record that does
// not check out (header cut short, length over kMaxRecordSize, extent past
// the end of the file, or CRC mismatch) at offset P:
//   - if no valid record (sane length, whole extent in the file, CRC match)
//     starts at any byte offset after P, the damage is a torn tail: the file
//     is truncated to P and fsynced, a warning names the file, offset and
//     bytes dropped, and the stats say so;
//   - otherwise data that was written after the damaged record survives, so
//     the record was once complete and synced: Corruption naming the file,
//     offset P and where the next valid record starts. Nothing is truncated.
// The search for a later valid record is a byte-by-byte scan of the rest of
// the file (only on this failure path; a hashing budget bounds it, and
// running out of budget is reported as Corruption, the safe answer). A file
// shorter than a header whose bytes are a prefix of the journal magic is a
// torn creation and is emptied; a wrong magic or header CRC is Corruption.
//
// `apply` sees only records whose CRC checked out. On any error the caller
// must discard what `apply` built: start-up fails.
Result<ReplayStats> ReplayJournal(const std::string& path, const RecordApplier& apply,
                                  const ReplayOptions& options = {});

}  // namespace dfs::master
