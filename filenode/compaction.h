// Background compaction of the node's volumes: what a node is told about it.
//
// A sealed volume whose dead bytes (records deleted or replaced since it was
// written) are more than `threshold` of its bytes, and at least `min_dead`,
// has its live records copied to the active volume and is then unlinked,
// so the space of deleted small chunks comes back (volume_store.h,
// "Compaction"; ChunkStore::Compact drives it). It runs on the sync
// worker's volume thread, the one thread that appends chunks to volumes,
// one step of at most `step` bytes at a time between client batches, and
// paced to `rate` bytes a second, so clients' writes wait for one step at
// most and the disk is never given over to it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace dfs::filenode {

// Where an injected crash stops a compaction (--unsafe-fault-kill-during-compaction):
// the node SIGKILLs itself the first time it gets there. For tests only.
enum class CompactionStep {
  kNone,
  kRead,      // a step's live records read and checked, nothing written
  kWritten,   // their copies written to the active volume, not yet synced
  kSynced,    // the copies durable, the index not switched to them yet
  kSwitched,  // the index switched to the copies
  kRepinned,  // every record moved, the tombstones for its pins durable
  kUnlinked,  // the compacted volume unlinked
};

struct CompactionOptions {
  // Dead fraction of a sealed volume's bytes past which it is compacted;
  // 0 turns compaction off. At 0.5 a volume's bytes are at most copied
  // once more than they are worth: moving its live half frees the other.
  double threshold = 0.5;
  // Dead bytes a volume needs at least (never compacted for trivial gains;
  // capped at a quarter of the volume size, so small volumes compact too).
  uint64_t min_dead = 1ull << 20;
  // Bytes of live records copied per second at most. 32 MiB/s moves the
  // live half of a full 256 MiB volume in 4 s, a few percent of what this
  // machine's disk takes (DESIGN.md, "What this machine allows").
  uint64_t rate = 32ull << 20;
  // Bytes copied per step, one read, one append and one fdatasync: what a
  // client batch waits behind at most.
  uint64_t step = 1ull << 20;
  // After the disk refused a compaction (full, failing), none for this long.
  std::chrono::milliseconds retry_after{30000};
  // UNSAFE, tests only: SIGKILL at this step; and a hook called at each
  // step on the compacting thread (unit tests act between two steps there).
  CompactionStep kill_at = CompactionStep::kNone;
  std::function<void(CompactionStep)> on_step;
};

std::optional<CompactionStep> ParseCompactionStep(std::string_view name);
std::string_view CompactionStepName(CompactionStep step);

}  // namespace dfs::filenode
