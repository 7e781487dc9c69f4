#include "master/node_registry.h"

#include <spdlog/spdlog.h>

namespace dfs::master {

NodeRegistry::Change NodeRegistry::Register(const msg::RegisterNodeRequest& req, const std::string& route,
                                            Clock::time_point now) {
  auto [it, inserted] = nodes_.try_emplace(req.node_id());
  Node& n = it->second;
  Change change = Change::kNone;
  if (inserted || !n.alive) {
    change = Change::kUp;
  } else if (n.incarnation != req.incarnation()) {
    change = Change::kRestarted;
  }
  for (const auto& [id, other] : nodes_) {
    if (id != req.node_id() && other.alive && other.address == req.address()) {
      spdlog::warn("node={} registers address {} already used by live node={} (copied data folder?)",
                   req.node_id(), req.address(), id);
    }
  }
  n.id = req.node_id();
  n.incarnation = req.incarnation();
  n.address = req.address();
  n.route = route;
  n.stats = req.stats();
  n.alive = true;
  n.last_heartbeat = now;
  if (change != Change::kNone) ++membership_version_;
  return change;
}

bool NodeRegistry::Heartbeat(const msg::HeartbeatRequest& req, const std::string& route,
                             Clock::time_point now) {
  auto it = nodes_.find(req.node_id());
  if (it == nodes_.end() || !it->second.alive || it->second.incarnation != req.incarnation()) {
    return false;
  }
  Node& n = it->second;
  n.route = route;  // a reconnect changes the routing id
  if (req.stats().disk_failed() && !n.stats.disk_failed()) {
    spdlog::warn("node={} disk failed ({}); no new chunks go there", n.id, req.stats().disk_error());
  }
  n.stats = req.stats();
  n.last_heartbeat = now;
  return true;
}

std::vector<std::string> NodeRegistry::Sweep(Clock::time_point now) {
  std::vector<std::string> died;
  for (auto& [id, n] : nodes_) {
    if (n.alive && now - n.last_heartbeat >= dead_after_) {
      n.alive = false;
      died.push_back(id);
      ++membership_version_;
    }
  }
  return died;
}

bool NodeRegistry::MarkDead(const std::string& id) {
  auto it = nodes_.find(id);
  if (it == nodes_.end() || !it->second.alive) return false;
  it->second.alive = false;
  ++membership_version_;
  return true;
}

std::optional<NodeRegistry::Clock::time_point> NodeRegistry::NextDeadline() const {
  std::optional<Clock::time_point> next;
  for (const auto& [id, n] : nodes_) {
    if (!n.alive) continue;
    auto d = n.last_heartbeat + dead_after_;
    if (!next || d < *next) next = d;
  }
  return next;
}

bool NodeRegistry::SetDraining(const std::string& id, bool draining) {
  auto it = nodes_.find(id);
  if (it == nodes_.end()) return false;
  if (it->second.draining != draining) ++membership_version_;  // placement's candidates change
  it->second.draining = draining;
  return true;
}

const NodeRegistry::Node* NodeRegistry::Find(const std::string& id) const {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : &it->second;
}

msg::NodeInfo NodeRegistry::Info(const Node& n, Clock::time_point now) const {
  msg::NodeInfo info;
  info.set_id(n.id);
  info.set_address(n.address);
  info.set_state(n.alive ? msg::NodeInfo::ALIVE : msg::NodeInfo::DEAD);
  *info.mutable_stats() = n.stats;
  auto ago = std::chrono::duration_cast<std::chrono::milliseconds>(now - n.last_heartbeat);
  info.set_last_heartbeat_ms_ago(static_cast<uint64_t>(std::max<int64_t>(0, ago.count())));
  info.set_incarnation(n.incarnation);
  info.set_decommissioning(n.draining);
  return info;
}

std::vector<msg::NodeInfo> NodeRegistry::List(Clock::time_point now) const {
  std::vector<msg::NodeInfo> out;
  out.reserve(nodes_.size());
  for (const auto& [id, n] : nodes_) out.push_back(Info(n, now));
  return out;
}

size_t NodeRegistry::alive_count() const {
  size_t c = 0;
  for (const auto& [id, n] : nodes_) c += n.alive ? 1 : 0;
  return c;
}

}  // namespace dfs::master
