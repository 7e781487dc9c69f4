// Where chunk replicas live, as nodes report them (GFS: never persisted; a
// restarted master learns them again from full reports). Also the reports
// for chunks still being written (their write has not completed), which the
// three-way check at completion reads, and deletions waiting to ride on each
// node's next heartbeat answer.
//
// Not thread-safe: owned by the metadata thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <absl/container/flat_hash_map.h>
#include <absl/container/inlined_vector.h>

#include "data.pb.h"

namespace dfs::master {

class ChunkLocations {
 public:
  struct Report {
    uint32_t node = 0;
    uint32_t version = 0;
    uint32_t crc = 0;
    uint64_t size = 0;
  };

  uint32_t NodeIndex(const std::string& node_id);
  const std::string& NodeId(uint32_t index) const { return node_ids_[index]; }

  void AddReplica(uint64_t chunk, uint32_t node);
  void RemoveReplica(uint64_t chunk, uint32_t node);
  // Forgets every replica on `node` (before its full report replaces them).
  void ForgetNode(uint32_t node);
  const absl::InlinedVector<uint32_t, 3>* Replicas(uint64_t chunk) const;
  // Every chunk with a replica: f(chunk, nodes). O(chunks).
  template <typename F>
  void ForEachReplica(F&& f) const {
    for (const auto& [chunk, nodes] : replicas_) f(chunk, nodes);
  }
  // Drops the chunk: returns the nodes that held it (they must delete it).
  absl::InlinedVector<uint32_t, 3> Drop(uint64_t chunk);

  // Reports of chunks whose write has not completed.
  void AddPending(uint64_t chunk, const Report& report);
  const std::vector<Report>* Pending(uint64_t chunk) const;
  // Completion: the pending reports become replicas. Returns them.
  std::vector<Report> TakePending(uint64_t chunk);

  // Deletions for a node, sent on its next heartbeat answer.
  void QueueDelete(uint32_t node, const msg::StoredChunk& chunk);
  std::vector<msg::StoredChunk> TakeDeletes(uint32_t node, size_t max);
  size_t replica_count() const { return replica_count_; }

 private:
  std::vector<std::string> node_ids_;
  absl::flat_hash_map<std::string, uint32_t> node_index_;
  absl::flat_hash_map<uint64_t, absl::InlinedVector<uint32_t, 3>> replicas_;
  absl::flat_hash_map<uint64_t, std::vector<Report>> pending_;
  absl::flat_hash_map<uint32_t, std::vector<msg::StoredChunk>> deletes_;
  size_t replica_count_ = 0;
};

}  // namespace dfs::master
