// How fast each node takes new chunks, as the master sees it: the writes
// placed on a node and not yet stored there, and how long its recent writes
// took. Placement multiplies its space-and-credit weight by Factor(), so a
// node whose disk is slow or busy gets few new chunks (HDFS's "slow
// datanode" avoidance, without waiting for an operator).
//
// The speed of a node is an average of bytes / (stored - placed) over its
// recent writes; a write still under way bounds it too (it has taken that
// long and is not done: about as long again is expected), so a slow node is
// seen before its first chunk ends. The factor falls with the cube of the
// speed relative to the fastest node's, and with the cube of 1 + the writes
// waiting there (before any speed is known, only that spreads the first
// chunks of a write).
// A pipeline's replicas all end together, so fast nodes that shared a
// pipeline with a slow one look slower for a while; the slow node never
// looks faster, which is what placement needs.
//
// Not thread-safe: the master's metadata thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include <absl/container/flat_hash_map.h>
#include <absl/container/inlined_vector.h>

namespace dfs::master {

class WriteLoad {
 public:
  using Clock = std::chrono::steady_clock;

  // `bytes` of chunk `chunk` will be written to the node at location index
  // `node`.
  void Placed(uint64_t chunk, uint32_t node, uint64_t bytes, Clock::time_point now);
  // The node reported `chunk` stored: one speed sample.
  void Stored(uint64_t chunk, uint32_t node, Clock::time_point now);
  // The write of `chunk` ended (completed, abandoned): no node still owes it.
  void Dropped(uint64_t chunk);

  // In (0, 1]: 1 for the fastest nodes and the unknown, less for a node
  // slower than the fastest or with writes waiting. Cheap (no scan).
  double Factor(uint32_t node, Clock::time_point now) const;
  // Recomputes the fastest speed the factors compare with (a sample raises
  // it at once; this lets it fall): O(nodes), call it now and then
  // (placement does, with its candidate list).
  void Refresh();

  size_t in_flight(uint32_t node) const { return node < nodes_.size() ? nodes_[node].pending.size() : 0; }
  // Bytes per second; 0 when unknown.
  double speed(uint32_t node, Clock::time_point now) const;

 private:
  struct Write {
    uint64_t chunk;
    uint64_t bytes;
    Clock::time_point placed;
  };
  struct Node {
    double speed = 0;  // average of samples, bytes/s; 0: none yet
    std::vector<Write> pending;  // placed, not stored yet; oldest first
  };
  Node& At(uint32_t node);
  // Removes `chunk` from `node`'s pending writes; the write, if it was there.
  bool Take(uint32_t node, uint64_t chunk, Write* out);

  std::vector<Node> nodes_;
  // Chunk -> the nodes still owing it.
  absl::flat_hash_map<uint64_t, absl::InlinedVector<uint32_t, 3>> owed_;
  double fastest_ = 0;
};

}  // namespace dfs::master
