// Checkpoints of the master's state, and the protocol that keeps
// "checkpoint + journals" one consistent state across crashes.
//
// Files in the master's folder (format: master/journal_format.h):
//   checkpoint         the state as of generation G (absent: G = 0, empty)
//   journal.<g>        mutations made after checkpoint g, for g >= G
//   *.tmp              a file being created; removed at start-up
//
// The state is: checkpoint G, then journal.G, journal.G+1, ... in order.
//
// Rotation from generation N to N+1, driven by the metadata thread:
//   1. writer.Rotate(N+1) and, in the same turn (no mutation in between),
//      take the snapshot the checkpoint will hold. Records appended before
//      Rotate go to journal.N, all later ones to journal.N+1, so the snapshot
//      is exactly "everything in journals <= N".
//   2. Wait until Rotate reports journal.N+1 durable (file, header and
//      directory entry synced). Its records are acknowledged from then on.
//   3. InstallCheckpoint(dir, N+1, produce), off the metadata thread:
//      a. write checkpoint.tmp, fsync, rename over checkpoint, fsync dir;
//      b. delete journal.g for every g <= N, fsync dir.
// A crash anywhere leaves a state start-up reads correctly:
//   during 1/2  journal.N+1.tmp may exist: removed; state = ckpt + journal.N
//   after 2     checkpoint (gen <= N) + journal.N + journal.N+1: replay both
//   during 3a   checkpoint.tmp (any length): removed; as above
//   after 3a    checkpoint N+1 + journal.N (stale, removed) + journal.N+1
//   after 3b    checkpoint N+1 + journal.N+1
// If the checkpoint write fails, nothing is lost: the journals still hold
// everything; retry with a later generation (a new Rotate).
//
// Start-up (RecoverMasterState) refuses, with Corruption, anything this
// protocol cannot produce: a journal.g with g > 0 and no checkpoint <= g, a
// missing journal.G next to checkpoint G, a gap in the generations, a
// journal whose header disagrees with its name, a damaged tail on a journal
// that is not the newest (the writer synced it fully before switching).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/env.h"
#include "common/status.h"
#include "master/journal.h"

namespace dfs::master {

// Where a checkpoint's producer puts records, one Add per record.
class RecordSink {
 public:
  virtual ~RecordSink() = default;
  // Fails (InvalidArgument) for a record over kMaxRecordSize, or on I/O error.
  virtual Status Add(std::string_view record) = 0;
};

// DIR/checkpoint.
std::string CheckpointPath(const std::string& dir);

// Streams the records `produce` adds into DIR/checkpoint.tmp, appends the
// trailer, fsyncs, renames it over DIR/checkpoint and fsyncs DIR. If
// `produce` or any I/O fails, the temp file is removed, the old checkpoint
// stays, and the error is returned.
// Every function here takes the Env for its file access last; nullptr is
// Env::Default().
Status WriteCheckpoint(const std::string& dir, uint64_t generation,
                       const std::function<Status(RecordSink&)>& produce, Env* env = nullptr);

// Applies every record of DIR/checkpoint and returns its generation.
// NotFound if there is none. Any damage (bad header, record CRC or length,
// missing or wrong trailer, bytes after it) is Corruption naming the file and
// byte offset; `apply` may have seen the records before the damage, so on
// error the caller must discard what it built.
Result<uint64_t> ReadCheckpoint(const std::string& dir, const RecordApplier& apply, Env* env = nullptr);

// Step 3 of rotation. REQUIRES: journal.<generation> exists (Rotate to it
// completed), or InvalidArgument. Writes the checkpoint, then removes the
// journals it covers. Logs one line through spdlog at the end, so a caller
// running it in a forked child must fork when no other thread can be holding
// spdlog's lock (the JournalWriter thread logs only when the journal fails).
Status InstallCheckpoint(const std::string& dir, uint64_t generation,
                         const std::function<Status(RecordSink&)>& produce, Env* env = nullptr);

// Deletes journal.g for every g < generation (and fsyncs DIR if it did).
// Returns how many files went. Only once checkpoint `generation` is durable.
Result<uint64_t> RemoveJournalsBefore(const std::string& dir, uint64_t generation, Env* env = nullptr);

struct RecoveryStats {
  bool checkpoint_found = false;
  uint64_t checkpoint_generation = 0;  // 0 without a checkpoint
  uint64_t checkpoint_records = 0;
  uint64_t journals_replayed = 0;
  uint64_t journal_records = 0;
  bool torn_tail = false;  // the newest journal's torn tail was cut
  uint64_t dropped_bytes = 0;
  uint64_t files_removed = 0;  // temp files and journals older than the checkpoint
  // Open the JournalWriter on this generation: the newest journal found,
  // else the checkpoint's (the writer then creates that journal).
  uint64_t journal_generation = 0;
};

// Start-up: removes temp files, loads the checkpoint (if any) through
// `apply_checkpoint`, replays journal.G, journal.G+1, ... through
// `apply_journal` (cutting a torn tail off the newest only), then deletes
// journals older than the checkpoint. On error nothing is deleted or
// truncated beyond what was already proven a torn tail, and the caller must
// discard the state it built.
Result<RecoveryStats> RecoverMasterState(const std::string& dir, const RecordApplier& apply_checkpoint,
                                         const RecordApplier& apply_journal, Env* env = nullptr);

}  // namespace dfs::master
