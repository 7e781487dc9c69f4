// The node's scrubber: re-reads every chunk it stores, in the background,
// and checks each 64 KiB block against its stored CRC32C (ChunkStore::Read
// does), so that a replica rotting on disk is found before a reader or a
// repair needs it (HDFS's block scanner, MooseFS's chunk tester). A bad
// replica is marked corrupt in the store (kept, never served past its bad
// block, listed as corrupt in every full report) and reported to the master,
// which stops offering it, copies the chunk from a good replica, and has the
// bad one deleted once the chunk is whole again.
//
// Paced by `rate` bytes per second, in steps of at most `step` bytes on the
// node's poll thread (a step is one read of a page-cached or on-disk range:
// about a millisecond for the default 256 KiB). A pass lists the store,
// walks it and logs what it found; the next one starts `interval` after it
// began, or at once if it took longer. The first starts a minute after the
// node (or `interval` after, if shorter).
//
// Not thread-safe: the node's poll thread owns it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include "filenode/chunk_store.h"

namespace dfs::filenode {

class Scrubber {
 public:
  using Clock = std::chrono::steady_clock;

  struct Config {
    uint64_t rate = 0;  // bytes per second; 0: off
    uint64_t step = 256 << 10;
    // A pass starts no sooner than this after the one before began.
    std::chrono::milliseconds interval{std::chrono::hours(1)};
  };
  struct Stats {
    uint64_t passes = 0;  // passes completed
    uint64_t chunks = 0;  // chunks verified whole, all passes
    uint64_t bytes = 0;   // bytes read, all passes
    uint64_t corrupt = 0; // bad replicas found
  };

  Scrubber(ChunkStore& store, std::string node_id, Config config, std::function<void(const ChunkMeta&)> corrupt);

  // Reads what the pace allows by `now`.
  void Service(Clock::time_point now);
  // When the next step is due; far off when scrubbing is off.
  Clock::time_point NextWake(Clock::time_point now) const;
  const Stats& stats() const { return stats_; }

 private:
  void StartPass(Clock::time_point now);
  // Verifies the next step of the current chunk; the bytes read.
  uint64_t Step();

  ChunkStore& store_;
  std::string node_id_;
  Config config_;
  std::function<void(const ChunkMeta&)> corrupt_;
  std::vector<ChunkMeta> todo_;  // this pass's chunks
  size_t next_ = 0;              // index into todo_
  uint64_t offset_ = 0;          // into todo_[next_]
  std::vector<std::byte> buffer_;
  Clock::time_point free_at_{};  // the next step's time under the pace
  Clock::time_point pass_started_{};
  uint64_t pass_bytes_ = 0;
  uint64_t pass_corrupt_ = 0;
  Stats stats_;
};

}  // namespace dfs::filenode
