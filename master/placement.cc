#include "master/placement.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/units.h"

namespace dfs::master {

double PlacementWeight(const PlacementCandidate& c) {
  double space = c.capacity ? static_cast<double>(c.available) / static_cast<double>(c.capacity) : 0.0;
  double credit =
      c.credit_pool ? 1.0 - static_cast<double>(c.credit_in_use) / static_cast<double>(c.credit_pool) : 1.0;
  // Never zero: a full-credit node is still chosen when it is all there is.
  return std::clamp(space, 0.01, 1.0) * std::clamp(credit, 0.05, 1.0);
}

Result<std::vector<PlacementCandidate>> ChoosePipeline(const std::vector<PlacementCandidate>& candidates,
                                                       uint32_t count, uint64_t chunk_size,
                                                       const std::vector<std::string>& exclude,
                                                       std::mt19937_64& rng, const LoadFactor& load) {
  auto weight = [&](const PlacementCandidate& c) { return PlacementWeight(c) * (load ? load(c) : 1.0); };
  auto eligible = [&](const PlacementCandidate& c) {
    return c.available >= chunk_size && std::find(exclude.begin(), exclude.end(), c.id) == exclude.end();
  };
  std::vector<size_t> chosen;
  if (!candidates.empty() && count > 0) {
    // Rejection sampling: uniform pick, kept with probability weight/1.
    std::uniform_int_distribution<size_t> pick(0, candidates.size() - 1);
    std::uniform_real_distribution<double> coin(0.0, 1.0);
    const size_t budget = 200 * static_cast<size_t>(count) + candidates.size();
    for (size_t tries = 0; tries < budget && chosen.size() < count; ++tries) {
      size_t i = pick(rng);
      if (std::find(chosen.begin(), chosen.end(), i) != chosen.end()) continue;
      const auto& c = candidates[i];
      if (!eligible(c) || coin(rng) > weight(c)) continue;
      chosen.push_back(i);
    }
    // Very skewed weights can exhaust the budget: finish with a weighted draw
    // over every eligible node.
    while (chosen.size() < count) {
      std::vector<double> w(candidates.size(), 0.0);
      for (size_t i = 0; i < candidates.size(); ++i) {
        bool taken = std::find(chosen.begin(), chosen.end(), i) != chosen.end();
        if (!taken && eligible(candidates[i])) w[i] = weight(candidates[i]);
      }
      if (std::all_of(w.begin(), w.end(), [](double x) { return x == 0.0; })) break;
      std::discrete_distribution<size_t> d(w.begin(), w.end());
      chosen.push_back(d(rng));
    }
  }
  if (chosen.size() < count) {
    size_t alive = candidates.size();
    size_t roomy = static_cast<size_t>(std::count_if(candidates.begin(), candidates.end(), eligible));
    if (alive < count) {
      return Status::Unavailable(
          fmt::format("replication {} needs {} live nodes, {} alive", count, count, alive));
    }
    if (!exclude.empty()) {
      return Status::Unavailable(fmt::format(
          "replication {} needs {} nodes; {} alive, {} of them failed this write", count, count,
          alive, exclude.size()));
    }
    return Status(Code::kNoSpace, fmt::format("replication {} needs {} nodes with {} free, {} have it", count,
                                              count, FormatSize(chunk_size), roomy));
  }
  std::vector<PlacementCandidate> out;
  for (size_t i : chosen) out.push_back(candidates[i]);
  return out;
}

}  // namespace dfs::master
