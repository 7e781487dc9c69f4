// Which nodes get a new chunk: pure code, tested on its own (Kudu's
// placement_policy). Nodes are drawn without replacement with a weight that
// favours free space and free credit, so the same signal that protects a
// busy node balances load, and equal nodes share new chunks evenly.
//
// Cost is O(count) expected per pipeline whatever the cluster size
// (rejection sampling against the largest weight), so allocation stays
// cheap with thousands of nodes; a full scan runs only to explain a failure.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "common/status.h"

namespace dfs::master {

struct PlacementCandidate {
  std::string id;
  std::string address;
  uint64_t capacity = 0;
  uint64_t available = 0;
  uint64_t credit_in_use = 0;
  uint64_t credit_pool = 0;
  // For WriteLoad: the node's location index.
  uint32_t node_index = 0;
};

// Selection weight in (0, 1] from space and credit.
double PlacementWeight(const PlacementCandidate& c);

// How fast a candidate has been taking writes lately, in (0, 1]
// (WriteLoad::Factor); multiplies PlacementWeight. Empty: 1 for all.
using LoadFactor = std::function<double(const PlacementCandidate&)>;

// Picks `count` distinct nodes with at least `chunk_size` available, none of
// them in `exclude`. Unavailable, naming how many are needed and how many
// can take it, when there are too few.
Result<std::vector<PlacementCandidate>> ChoosePipeline(const std::vector<PlacementCandidate>& candidates,
                                                       uint32_t count, uint64_t chunk_size,
                                                       const std::vector<std::string>& exclude,
                                                       std::mt19937_64& rng, const LoadFactor& load = {});

}  // namespace dfs::master
