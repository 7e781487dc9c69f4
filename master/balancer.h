// The balancer and decommissioning. Owned by the chunk manager, ticked by
// it, and working through the repairer's copies (so the same per-node limits
// hold for moves and repairs).
//
// Balancing: when a live node's utilisation (bytes of the replicas it holds,
// by the master's locations, over its capacity) is more than `threshold`
// (relative, 0.1 = 10 %) of the cluster's mean utilisation away from it,
// and more than one percentage point, chunks move from the
// fullest nodes to the emptiest: a copy to the target, checked there like
// any write, then the source's replica is taken out of the locations and
// deleted after a readers' grace (ChunkManager::TrimSurplus). A move never
// overshoots (the source stays at least as full as the target). Repairs go
// first: nothing moves while chunks are short, or during the hold-off.
// Whether a round is needed is decided from the heartbeats' used bytes (no
// scan); a round scans the locations once (O(replicas)).
//
// Decommissioning: a draining node takes no new chunk and its replicas stop
// counting, so repair copies each of its chunks elsewhere (it is still a
// copy's source); it is retired once every chunk it holds is whole without
// it, and may then be stopped.
//
// Not thread-safe: the master's metadata thread.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "master/chunk_locations.h"
#include "master/namespace.h"
#include "master/node_registry.h"
#include "master/repairer.h"

namespace dfs::master {

class Balancer {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    double threshold = 0.1;  // relative to the mean utilisation; 0: off
    Clock::duration interval = std::chrono::seconds(1);
    uint32_t max_moves = 64;  // moves under way in the cluster
  };
  struct NodeStatus {
    std::string id;
    double utilisation = 0;
    uint64_t chunks = 0;
    bool draining = false;
    bool retired = false;
    uint32_t copies_in = 0, copies_out = 0;
  };

  Balancer(Options options, const Namespace& ns, const NodeRegistry& registry, ChunkLocations& locations,
           Repairer& repairer, std::function<bool(uint32_t)> counts);

  void Tick(Clock::time_point now);

  // Decommissioning of the node at location index `idx` starts (or ends).
  void SetDraining(uint32_t idx, bool draining);
  bool draining(uint32_t idx) const { return idx < draining_.size() && draining_[idx] != 0; }
  // Draining, and every chunk it holds is whole without it (checked each tick).
  bool retired(uint32_t idx) const { return draining(idx) && retired_.contains(idx); }

  double threshold() const { return options_.threshold; }
  void set_threshold(double t) { options_.threshold = t; }
  // Fullest minus emptiest live node, by the last heartbeats.
  double spread() const { return spread_; }
  std::vector<NodeStatus> Status() const;

 private:
  // How far from the mean utilisation a node may be: `threshold` of the
  // mean, and at least one percentage point (a few chunks on a big disk are
  // no imbalance worth moving data for).
  double Band(double mean) const { return std::max(options_.threshold * mean, 0.01); }
  // Utilisation by heartbeats: whether a round is needed.
  bool Imbalanced();
  void Round(Clock::time_point now);
  void CheckRetired();

  Options options_;
  const Namespace& ns_;
  const NodeRegistry& registry_;
  ChunkLocations& locations_;
  Repairer& repairer_;
  std::function<bool(uint32_t)> counts_;
  Clock::time_point next_{};
  double spread_ = 0;
  std::vector<char> draining_;
  absl::flat_hash_map<uint32_t, bool> retired_;
};

}  // namespace dfs::master
