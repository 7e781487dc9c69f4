#include "master/placement.h"

#include <algorithm>

#include <fmt/format.h>

namespace dfs::master {

Result<std::vector<PlacementCandidate>> ChoosePipeline(std::vector<PlacementCandidate> candidates,
                                                       uint32_t count, uint64_t chunk_size,
                                                       std::mt19937_64& rng) {
  const size_t alive = candidates.size();
  std::erase_if(candidates, [&](const PlacementCandidate& c) { return c.available < chunk_size; });
  if (candidates.size() < count) {
    if (alive < count) {
      return Status::Unavailable(fmt::format(
          "replication {} needs {} live nodes, {} alive; lower it with -r", count, count, alive));
    }
    return Status(Code::kNoSpace, fmt::format("replication {} needs {} nodes with {} free, {} have it", count,
                                              count, chunk_size, candidates.size()));
  }
  std::vector<double> weight;
  weight.reserve(candidates.size());
  for (const auto& c : candidates) {
    double space = c.capacity ? static_cast<double>(c.available) / static_cast<double>(c.capacity) : 0.0;
    double credit = c.credit_pool ? 1.0 - static_cast<double>(c.credit_in_use) / static_cast<double>(c.credit_pool)
                                  : 1.0;
    // Never zero: a full-credit node is still chosen when it is all there is.
    weight.push_back(std::max(space, 0.01) * std::max(credit, 0.05));
  }
  std::vector<PlacementCandidate> out;
  for (uint32_t k = 0; k < count; ++k) {
    std::discrete_distribution<size_t> pick(weight.begin(), weight.end());
    size_t i = pick(rng);
    out.push_back(candidates[i]);
    weight[i] = 0;
  }
  return out;
}

}  // namespace dfs::master
