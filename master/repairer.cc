#include "master/repairer.h"

#include <algorithm>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "master/placement.h"
#include "node_master.pb.h"

namespace dfs::master {
namespace {

// Queue entries looked at per tick: a queue of millions (a big node died)
// is worked through a slice at a time, never in one stall of the loop.
constexpr size_t kExaminePerTick = 20000;
// chunk.lost events per node death; past it, one log line says how many.
constexpr size_t kLostEventsPerDeath = 1000;

}  // namespace

Repairer::Repairer(Options options, const Namespace& ns, const NodeRegistry& registry, ChunkLocations& locations,
                   Hooks hooks, Clock::time_point start)
    : options_(options),
      ns_(ns),
      registry_(registry),
      locations_(locations),
      hooks_(std::move(hooks)),
      holdoff_end_(start + options.holdoff) {}

uint32_t Repairer::Live(uint64_t chunk) const {
  uint32_t live = 0;
  if (const auto* reps = locations_.Replicas(chunk)) {
    for (uint32_t idx : *reps) live += hooks_.counts(idx) ? 1 : 0;
  }
  return live;
}

void Repairer::Queue(uint64_t chunk, uint32_t live) {
  auto [it, inserted] = queued_.try_emplace(chunk, live);
  if (!inserted) {
    if (it->second == live) return;
    queue_.erase({it->second, chunk});
    it->second = live;
  }
  queue_.insert({live, chunk});
}

void Repairer::Unqueue(uint64_t chunk) {
  auto it = queued_.find(chunk);
  if (it == queued_.end()) return;
  queue_.erase({it->second, chunk});
  queued_.erase(it);
}

void Repairer::Check(uint64_t chunk) {
  if (!holdoff_over_ || copies_.contains(chunk)) return;
  const ChunkRecord* rec = ns_.FindChunk(chunk);
  if (rec == nullptr) return Unqueue(chunk);
  const uint32_t live = Live(chunk);
  if (live >= Wanted(*rec)) return Unqueue(chunk);
  Queue(chunk, live);
}

void Repairer::NodeDown(uint32_t node) {
  std::vector<uint64_t> requeue;
  for (const auto& [chunk, c] : copies_) {
    if (c.source == node || std::find(c.targets.begin(), c.targets.end(), node) != c.targets.end()) {
      requeue.push_back(chunk);
    }
  }
  for (uint64_t chunk : requeue) {
    auto it = copies_.find(chunk);
    spdlog::info("repair: copy of chunk={} given up: node={} died", chunk, locations_.NodeId(node));
    Release(it->second);
    copies_.erase(it);
    Check(chunk);
  }
  if (!holdoff_over_) return;
  // O(chunks): a node's death is rare, and a per-node index of its chunks
  // would cost memory on every replica.
  size_t short_chunks = 0, lost = 0;
  locations_.ForEachReplica([&](uint64_t chunk, const auto& nodes) {
    if (std::find(nodes.begin(), nodes.end(), node) == nodes.end()) return;
    const ChunkRecord* rec = ns_.FindChunk(chunk);
    if (rec == nullptr) return;
    const uint32_t live = Live(chunk);
    if (live >= Wanted(*rec)) return;
    ++short_chunks;
    if (live == 0) {
      if (++lost <= kLostEventsPerDeath) {
        msg::ChunkEvent e;
        e.set_chunk_id(chunk);
        e.set_wanted(Wanted(*rec));
        hooks_.publish("chunk.lost", e);
      }
      return;  // nothing to copy from until a holder returns
    }
    if (!copies_.contains(chunk)) Queue(chunk, live);
  });
  spdlog::info("repair: node={} died: {} chunks short of replicas, {} of them with no live replica",
               locations_.NodeId(node), short_chunks, lost);
}

void Repairer::ScanAll() {
  size_t short_chunks = 0;
  ns_.ForEachChunk([&](uint64_t chunk, const ChunkRecord& rec) {
    const uint32_t live = Live(chunk);
    if (live >= Wanted(rec) || live == 0) return;
    ++short_chunks;
    Queue(chunk, live);
  });
  spdlog::info("repair: hold-off over; {} chunks queued", short_chunks);
}

void Repairer::Release(const Copy& c) {
  if (c.move) --moving_;
  if (auto it = reading_.find(c.source); it != reading_.end() && --it->second == 0) reading_.erase(it);
  for (uint32_t t : c.targets) {
    if (auto it = writing_.find(t); it != writing_.end() && --it->second == 0) writing_.erase(it);
  }
}

void Repairer::Tick(Clock::time_point now) {
  if (!holdoff_over_) {
    if (now < holdoff_end_) return;
    holdoff_over_ = true;
    ScanAll();
  }
  for (auto it = copies_.begin(); it != copies_.end();) {
    if (now < it->second.deadline) {
      ++it;
      continue;
    }
    const uint64_t chunk = it->first;
    spdlog::warn("repair: copy of chunk={} from node={} not answered in time; placing it again", chunk,
                 locations_.NodeId(it->second.source));
    Release(it->second);
    copies_.erase(it++);
    Check(chunk);
  }
  StartCopies(now);
}

void Repairer::StartCopies(Clock::time_point now) {
  if (nodes_ == nullptr || !holdoff_over_) return;
  // A slice of the queue, copied out first: starting a copy unqueues its
  // chunk, and a B-tree's erase invalidates every iterator.
  std::vector<uint64_t> slice;
  for (auto it = queue_.begin(); it != queue_.end() && slice.size() < kExaminePerTick; ++it) {
    slice.push_back(it->second);
  }
  for (uint64_t chunk : slice) {
    if (copies_.size() >= options_.max_copies) break;
    if (TryStart(chunk, now)) Unqueue(chunk);
  }
}

bool Repairer::TryStart(uint64_t chunk, Clock::time_point now) {
  const ChunkRecord* rec = ns_.FindChunk(chunk);
  if (rec == nullptr || copies_.contains(chunk)) return true;
  const auto* reps = locations_.Replicas(chunk);
  if (reps == nullptr) return true;
  const uint32_t wanted = Wanted(*rec);
  // The source: the live holder sending the fewest copies, within its limit.
  auto sending = [&](uint32_t idx) {
    auto r = reading_.find(idx);
    return r == reading_.end() ? 0u : r->second;
  };
  std::optional<uint32_t> source;
  uint32_t live = 0;
  for (uint32_t idx : *reps) {
    if (!hooks_.alive(idx)) continue;
    live += hooks_.counts(idx) ? 1 : 0;  // a node being decommissioned is a source, not a replica
    if (sending(idx) >= options_.reads_per_node) continue;
    if (!source || sending(idx) < sending(*source)) source = idx;
  }
  if (live >= wanted || live == 0) return true;  // whole again, or nothing to copy from
  if (!source) return false;
  // Targets: placement's choice among live nodes that hold no copy (a dead
  // holder may return with its own) and receive fewer than their limit.
  std::vector<PlacementCandidate> candidates;
  registry_.ForEachPlaceable([&](const NodeRegistry::Node& n) {
    const uint32_t idx = locations_.NodeIndex(n.id);
    if (std::find(reps->begin(), reps->end(), idx) != reps->end()) return;
    if (copies_in(idx) >= WriteLimit(idx)) return;
    if (n.stats.available() < rec->size) return;
    candidates.push_back({n.id, n.address, n.stats.capacity(), n.stats.available(), n.stats.credit_in_use(),
                          n.stats.credit_pool()});
  });
  if (candidates.empty()) return false;
  const auto count = static_cast<uint32_t>(std::min<size_t>(wanted - live, candidates.size()));
  auto chosen = ChoosePipeline(candidates, count, rec->size, {}, rng_);
  if (!chosen) return false;
  return Send(chunk, *rec, *source, *chosen, false, now);
}

uint32_t Repairer::WriteLimit(uint32_t node) const {
  return hooks_.busy && hooks_.busy(node) ? options_.writes_per_busy_node : options_.writes_per_node;
}

bool Repairer::StartMove(uint64_t chunk, uint32_t source, uint32_t target, Clock::time_point now) {
  if (copies_.contains(chunk) || copies_.size() >= options_.max_copies) return false;
  const ChunkRecord* rec = ns_.FindChunk(chunk);
  if (rec == nullptr || !hooks_.alive(source) || !hooks_.counts(target)) return false;
  if (copies_out(source) >= options_.reads_per_node || copies_in(target) >= WriteLimit(target)) return false;
  const NodeRegistry::Node* to = registry_.Find(locations_.NodeId(target));
  if (to == nullptr) return false;
  PlacementCandidate t;
  t.id = to->id;
  t.address = to->address;
  return Send(chunk, *rec, source, {t}, true, now);
}

std::optional<uint32_t> Repairer::TakeMoveSource(uint64_t chunk) {
  auto it = moved_from_.find(chunk);
  if (it == moved_from_.end()) return std::nullopt;
  const uint32_t source = it->second;
  moved_from_.erase(it);
  return source;
}

uint32_t Repairer::copies_in(uint32_t node) const {
  auto w = writing_.find(node);
  return w == writing_.end() ? 0 : w->second;
}

uint32_t Repairer::copies_out(uint32_t node) const {
  auto r = reading_.find(node);
  return r == reading_.end() ? 0 : r->second;
}

bool Repairer::Send(uint64_t chunk, const ChunkRecord& rec, uint32_t source,
                    const std::vector<PlacementCandidate>& targets, bool move, Clock::time_point now) {
  const NodeRegistry::Node* from = registry_.Find(locations_.NodeId(source));
  if (from == nullptr) return false;
  msg::NodeEnvelope env;
  const uint64_t request_id = next_request_id_++;
  env.set_request_id(request_id);
  auto* req = env.mutable_replicate_chunk_request();
  auto* c = req->mutable_chunk();
  c->set_chunk_id(chunk);
  c->set_version(rec.version);
  c->set_size(rec.size);
  c->set_crc32c(rec.checksum);
  Copy copy{request_id, source, {}, now + options_.copy_timeout, now, move};
  for (const auto& t : targets) {
    auto* a = req->add_targets();
    a->set_id(t.id);
    a->set_address(t.address);
    copy.targets.push_back(locations_.NodeIndex(t.id));
  }
  bus::Message<msg::NodeEnvelope> m;
  m.route = from->route;
  m.envelope = std::move(env);
  if (Status s = nodes_->Send(std::move(m)); !s.ok()) {
    SPDLOG_DEBUG("repair: command for chunk={} to node={} not sent: {}", chunk, from->id, s.ToString());
    return false;
  }
  SPDLOG_DEBUG("{}: chunk={} node={} -> {} targets", move ? "balancer" : "repair", chunk, from->id,
               copy.targets.size());
  ++reading_[copy.source];
  for (uint32_t t : copy.targets) ++writing_[t];
  if (move) ++moving_;
  copies_.emplace(chunk, std::move(copy));
  return true;
}

bool Repairer::Done(uint64_t request_id, uint64_t chunk, const Status& failure) {
  auto it = copies_.find(chunk);
  if (it == copies_.end() || it->second.request_id != request_id) return false;
  if (!failure.ok()) {
    spdlog::warn("repair: copy of chunk={} from node={} failed: {}", chunk, locations_.NodeId(it->second.source),
                 failure.ToString());
  } else {
    SPDLOG_DEBUG("repair: chunk={} copied from node={} to node={} in {} ms", chunk,
                 locations_.NodeId(it->second.source), locations_.NodeId(it->second.targets.front()),
                 std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - it->second.started).count());
  }
  if (failure.ok() && it->second.move) {
    ++moved_;
    moved_from_[chunk] = it->second.source;
  }
  Release(it->second);
  copies_.erase(it);
  return true;
}

void Repairer::AfterCopy(uint64_t chunk) {
  const ChunkRecord* rec = ns_.FindChunk(chunk);
  if (rec == nullptr) return;
  const uint32_t live = Live(chunk);
  if (live >= Wanted(*rec)) {
    ++repaired_;
    Unqueue(chunk);
    msg::ChunkEvent e;
    e.set_chunk_id(chunk);
    e.set_live(live);
    e.set_wanted(Wanted(*rec));
    hooks_.publish("chunk.repaired", e);
    return;
  }
  Check(chunk);
}

}  // namespace dfs::master
