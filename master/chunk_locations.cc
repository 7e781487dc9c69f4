#include "master/chunk_locations.h"

#include <algorithm>

namespace dfs::master {

uint32_t ChunkLocations::NodeIndex(const std::string& node_id) {
  auto [it, inserted] = node_index_.try_emplace(node_id, static_cast<uint32_t>(node_ids_.size()));
  if (inserted) node_ids_.push_back(node_id);
  return it->second;
}

void ChunkLocations::AddReplica(uint64_t chunk, uint32_t node) {
  auto& r = replicas_[chunk];
  if (std::find(r.begin(), r.end(), node) == r.end()) {
    r.push_back(node);
    ++replica_count_;
  }
}

void ChunkLocations::RemoveReplica(uint64_t chunk, uint32_t node) {
  auto it = replicas_.find(chunk);
  if (it == replicas_.end()) return;
  auto& r = it->second;
  auto pos = std::find(r.begin(), r.end(), node);
  if (pos == r.end()) return;
  r.erase(pos);
  --replica_count_;
  if (r.empty()) replicas_.erase(it);
}

void ChunkLocations::ForgetNode(uint32_t node) {
  // O(chunks): runs when a node (re)registers, which is rare.
  for (auto it = replicas_.begin(); it != replicas_.end();) {
    auto& r = it->second;
    auto pos = std::find(r.begin(), r.end(), node);
    if (pos != r.end()) {
      r.erase(pos);
      --replica_count_;
    }
    if (r.empty()) {
      replicas_.erase(it++);
    } else {
      ++it;
    }
  }
}

const absl::InlinedVector<uint32_t, 3>* ChunkLocations::Replicas(uint64_t chunk) const {
  auto it = replicas_.find(chunk);
  return it == replicas_.end() ? nullptr : &it->second;
}

absl::InlinedVector<uint32_t, 3> ChunkLocations::Drop(uint64_t chunk) {
  absl::InlinedVector<uint32_t, 3> out;
  auto it = replicas_.find(chunk);
  if (it != replicas_.end()) {
    out = std::move(it->second);
    replica_count_ -= out.size();
    replicas_.erase(it);
  }
  if (auto p = pending_.find(chunk); p != pending_.end()) {
    for (const auto& rep : p->second) {
      if (std::find(out.begin(), out.end(), rep.node) == out.end()) out.push_back(rep.node);
    }
    pending_.erase(p);
  }
  return out;
}

void ChunkLocations::AddPending(uint64_t chunk, const Report& report) {
  auto& v = pending_[chunk];
  for (auto& r : v) {
    if (r.node == report.node) {
      r = report;
      return;
    }
  }
  v.push_back(report);
}

const std::vector<ChunkLocations::Report>* ChunkLocations::Pending(uint64_t chunk) const {
  auto it = pending_.find(chunk);
  return it == pending_.end() ? nullptr : &it->second;
}

std::vector<ChunkLocations::Report> ChunkLocations::TakePending(uint64_t chunk) {
  std::vector<Report> out;
  auto it = pending_.find(chunk);
  if (it == pending_.end()) return out;
  out = std::move(it->second);
  pending_.erase(it);
  for (const auto& r : out) AddReplica(chunk, r.node);
  return out;
}

void ChunkLocations::QueueDelete(uint32_t node, const msg::StoredChunk& chunk) { deletes_[node].push_back(chunk); }

std::vector<msg::StoredChunk> ChunkLocations::TakeDeletes(uint32_t node, size_t max) {
  auto it = deletes_.find(node);
  if (it == deletes_.end()) return {};
  auto& v = it->second;
  if (v.size() <= max) {
    std::vector<msg::StoredChunk> out = std::move(v);
    deletes_.erase(it);
    return out;
  }
  std::vector<msg::StoredChunk> out(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(max));
  v.erase(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(max));
  return out;
}

}  // namespace dfs::master
