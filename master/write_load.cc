#include "master/write_load.h"

#include <algorithm>

namespace dfs::master {

namespace {
// A new sample's weight in a node's average speed.
constexpr double kAlpha = 0.3;
// A write younger than this says nothing yet about how slow its node is.
constexpr auto kMinAge = std::chrono::milliseconds(5);
// However slow, a node keeps some chance: it may be all there is.
constexpr double kFloor = 0.02;

double Seconds(WriteLoad::Clock::duration d) { return std::chrono::duration<double>(d).count(); }
}  // namespace

WriteLoad::Node& WriteLoad::At(uint32_t node) {
  if (node >= nodes_.size()) nodes_.resize(node + 1);
  return nodes_[node];
}

void WriteLoad::Placed(uint64_t chunk, uint32_t node, uint64_t bytes, Clock::time_point now) {
  At(node).pending.push_back({chunk, bytes, now});
  owed_[chunk].push_back(node);
}

bool WriteLoad::Take(uint32_t node, uint64_t chunk, Write* out) {
  if (node >= nodes_.size()) return false;
  auto& p = nodes_[node].pending;
  auto it = std::find_if(p.begin(), p.end(), [&](const Write& w) { return w.chunk == chunk; });
  if (it == p.end()) return false;
  if (out != nullptr) *out = *it;
  p.erase(it);
  return true;
}

void WriteLoad::Stored(uint64_t chunk, uint32_t node, Clock::time_point now) {
  auto owed = owed_.find(chunk);
  if (owed == owed_.end()) return;
  auto& nodes = owed->second;
  auto n = std::find(nodes.begin(), nodes.end(), node);
  if (n == nodes.end()) return;
  nodes.erase(n);
  if (nodes.empty()) owed_.erase(owed);
  Write w;
  if (!Take(node, chunk, &w)) return;
  const double took = std::max(Seconds(now - w.placed), 1e-3);
  const double sample = static_cast<double>(w.bytes) / took;
  Node& nd = nodes_[node];
  nd.speed = nd.speed == 0 ? sample : (1 - kAlpha) * nd.speed + kAlpha * sample;
  fastest_ = std::max(fastest_, nd.speed);  // at once; Refresh lets it fall
}

void WriteLoad::Dropped(uint64_t chunk) {
  auto owed = owed_.find(chunk);
  if (owed == owed_.end()) return;
  for (uint32_t node : owed->second) Take(node, chunk, nullptr);
  owed_.erase(owed);
}

double WriteLoad::speed(uint32_t node, Clock::time_point now) const {
  if (node >= nodes_.size()) return 0;
  const Node& nd = nodes_[node];
  double s = nd.speed;
  if (!nd.pending.empty()) {
    // Its oldest write has taken this long and is not done: a write still
    // going at age a is expected to take about 2a in all (the Lindy rule: no
    // better guess without its progress), which bounds the node's speed.
    const Write& oldest = nd.pending.front();
    const auto age = now - oldest.placed;
    if (age >= kMinAge) {
      const double bound = static_cast<double>(oldest.bytes) / (2 * Seconds(age));
      if (s == 0 || bound < s) s = bound;
    }
  }
  return s;
}

double WriteLoad::Factor(uint32_t node, Clock::time_point now) const {
  if (node >= nodes_.size()) return 1.0;
  const double s = speed(node, now);
  // Cubed: a chunk on a node k times slower takes k times longer, and a
  // file is written when its slowest chunk is, so one chunk there costs
  // the whole write; a node at half the speed still gets an eighth.
  const double relative = (s > 0 && fastest_ > 0) ? std::min(1.0, s / fastest_) : 1.0;
  // Writes already waiting there share its disk with the next one.
  const double waiting = 1.0 + static_cast<double>(nodes_[node].pending.size());
  return std::max(kFloor, relative * relative * relative / (waiting * waiting * waiting));
}

void WriteLoad::Refresh() {
  fastest_ = 0;
  for (const Node& nd : nodes_) fastest_ = std::max(fastest_, nd.speed);
}

}  // namespace dfs::master
