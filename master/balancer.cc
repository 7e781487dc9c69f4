#include "master/balancer.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace dfs::master {
namespace {
// Chunks a round considers per over-full node.
constexpr size_t kCandidatesPerNode = 256;
}  // namespace

Balancer::Balancer(Options options, const Namespace& ns, const NodeRegistry& registry, ChunkLocations& locations,
                   Repairer& repairer, std::function<bool(uint32_t)> counts)
    : options_(options),
      ns_(ns),
      registry_(registry),
      locations_(locations),
      repairer_(repairer),
      counts_(std::move(counts)) {}

void Balancer::SetDraining(uint32_t idx, bool draining) {
  if (draining_.size() <= idx) draining_.resize(idx + 1, 0);
  draining_[idx] = draining ? 1 : 0;
  retired_.erase(idx);
  // Its chunks are short now (its replicas stop counting), or whole again.
  locations_.ForEachReplica([&](uint64_t chunk, const auto& nodes) {
    if (std::find(nodes.begin(), nodes.end(), idx) != nodes.end()) repairer_.Check(chunk);
  });
}

void Balancer::CheckRetired() {
  std::vector<uint32_t> nodes;
  for (uint32_t i = 0; i < draining_.size(); ++i) {
    if (draining_[i] != 0) nodes.push_back(i);
  }
  if (nodes.empty()) return;
  absl::flat_hash_map<uint32_t, bool> whole;
  for (uint32_t n : nodes) whole[n] = true;
  locations_.ForEachReplica([&](uint64_t chunk, const auto& holders) {
    const ChunkRecord* rec = ns_.FindChunk(chunk);
    if (rec == nullptr) return;
    for (uint32_t h : holders) {
      auto w = whole.find(h);
      if (w == whole.end() || !w->second) continue;
      if (repairer_.Live(chunk) < Repairer::Wanted(*rec)) w->second = false;
    }
  });
  for (const auto& [n, done] : whole) {
    const bool was = retired_.contains(n);
    if (done && !was) {
      retired_[n] = true;
      spdlog::info("node={} is decommissioned: every chunk it holds is whole without it; it may be stopped",
                   locations_.NodeId(n));
    } else if (!done && was) {
      retired_.erase(n);
    }
  }
}

bool Balancer::Imbalanced() {
  uint64_t used = 0, capacity = 0;
  double lo = 2, hi = -1;
  registry_.ForEachPlaceable([&](const NodeRegistry::Node& n) {
    if (n.stats.capacity() == 0) return;
    used += n.stats.used();
    capacity += n.stats.capacity();
    const double u = static_cast<double>(n.stats.used()) / static_cast<double>(n.stats.capacity());
    lo = std::min(lo, u);
    hi = std::max(hi, u);
  });
  if (capacity == 0 || hi < 0) {
    spread_ = 0;
    return false;
  }
  spread_ = hi - lo;
  const double mean = static_cast<double>(used) / static_cast<double>(capacity);
  const double band = Band(mean);
  return hi - mean > band || mean - lo > band;
}

void Balancer::Round(Clock::time_point now) {
  struct Node {
    uint32_t idx;
    double capacity;
    double bytes = 0;
    std::vector<uint64_t> candidates;
  };
  std::vector<Node> nodes;
  absl::flat_hash_map<uint32_t, size_t> at;  // location index -> nodes_
  registry_.ForEachPlaceable([&](const NodeRegistry::Node& n) {
    if (n.stats.capacity() == 0) return;
    const uint32_t idx = locations_.NodeIndex(n.id);
    if (!counts_(idx)) return;
    at[idx] = nodes.size();
    nodes.push_back({idx, static_cast<double>(n.stats.capacity())});
  });
  if (nodes.size() < 2) return;
  // Bytes each node holds by the locations, and what it could give: whole
  // chunks with no copy under way.
  locations_.ForEachReplica([&](uint64_t chunk, const auto& holders) {
    const ChunkRecord* rec = ns_.FindChunk(chunk);
    if (rec == nullptr) return;
    const bool movable = !repairer_.repairing(chunk) && repairer_.Live(chunk) >= Repairer::Wanted(*rec);
    for (uint32_t h : holders) {
      auto it = at.find(h);
      if (it == at.end()) continue;
      Node& n = nodes[it->second];
      n.bytes += rec->size;
      if (movable && n.candidates.size() < kCandidatesPerNode) n.candidates.push_back(chunk);
    }
  });
  double total = 0, capacity = 0;
  for (const auto& n : nodes) {
    total += n.bytes;
    capacity += n.capacity;
  }
  const double mean = total / capacity;
  const double band = Band(mean);
  auto util = [](const Node& n) { return n.bytes / n.capacity; };
  size_t started = 0;
  while (repairer_.moving() < options_.max_moves) {
    auto [lo, hi] = std::minmax_element(nodes.begin(), nodes.end(),
                                        [&](const Node& a, const Node& b) { return util(a) < util(b); });
    Node& src = *hi;
    Node& dst = *lo;
    if (util(src) - mean <= band && mean - util(dst) <= band) break;  // within the band
    bool moved = false;
    for (auto c = src.candidates.begin(); c != src.candidates.end(); ++c) {
      const ChunkRecord* rec = ns_.FindChunk(*c);
      const auto* holders = locations_.Replicas(*c);
      if (rec == nullptr || holders == nullptr) continue;
      if (std::find(holders->begin(), holders->end(), dst.idx) != holders->end()) continue;
      // Never overshoot: the source stays at least as full as the target.
      const double size = rec->size;
      if ((src.bytes - size) / src.capacity < (dst.bytes + size) / dst.capacity) continue;
      if (!repairer_.StartMove(*c, src.idx, dst.idx, now)) break;  // a limit: next round
      src.bytes -= size;
      dst.bytes += size;
      src.candidates.erase(c);
      moved = true;
      ++started;
      break;
    }
    if (!moved) break;
  }
  if (started > 0) {
    spdlog::debug("balancer: {} moves started (mean utilisation {:.1f} %, band +-{:.1f} points)", started,
                  100 * mean, 100 * band);
  }
}

void Balancer::Tick(Clock::time_point now) {
  if (now < next_) return;
  next_ = now + options_.interval;
  CheckRetired();
  if (options_.threshold <= 0) return;
  const bool imbalanced = Imbalanced();
  // Repairs first: nothing moves while chunks are short or during the hold-off.
  if (!imbalanced || repairer_.in_holdoff(now) || repairer_.queued() > 0) return;
  Round(now);
}

std::vector<Balancer::NodeStatus> Balancer::Status() const {
  std::vector<NodeStatus> out;
  registry_.ForEachAlive([&](const NodeRegistry::Node& n) {
    const uint32_t idx = locations_.NodeIndex(n.id);  // a reference member: not const here
    NodeStatus s;
    s.id = n.id;
    s.utilisation = n.stats.capacity() ? static_cast<double>(n.stats.used()) / static_cast<double>(n.stats.capacity()) : 0;
    s.chunks = n.stats.chunks();
    s.draining = draining(idx);
    s.retired = retired(idx);
    s.copies_in = repairer_.copies_in(idx);
    s.copies_out = repairer_.copies_out(idx);
    out.push_back(std::move(s));
  });
  return out;
}

}  // namespace dfs::master
