// The master's registry of file nodes: who is registered, where their data
// port is, their last reported load, and whether they are alive. Pure logic,
// driven by the caller's clock; the server feeds it messages and publishes
// what it returns.
//
// A node that misses heartbeats for dead_after is dead. Its session is then
// over: a heartbeat from it is answered "register again", and the new
// registration (a full chunk report, from issue 4 on) makes it alive. This is
// how HDFS and GFS treat a returning datanode: the master may have repaired
// around it, so it must say again what it holds.
//
// Not thread-safe: owned by the master's metadata thread.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "node_master.pb.h"

namespace dfs::master {

class NodeRegistry {
 public:
  using Clock = std::chrono::steady_clock;

  struct Node {
    std::string id;
    uint64_t incarnation = 0;
    std::string address;
    std::string route;  // bus routing id of its control connection
    msg::NodeStats stats;
    bool alive = false;
    bool draining = false;  // decommissioning: no new chunks
    Clock::time_point last_heartbeat;
  };

  enum class Change {
    kNone,       // a known, live node registered again (same process)
    kUp,         // new, or back from dead
    kRestarted,  // alive, but a new process (incarnation changed)
  };

  explicit NodeRegistry(Clock::duration dead_after) : dead_after_(dead_after) {}

  Change Register(const msg::RegisterNodeRequest& req, const std::string& route, Clock::time_point now);
  // False when the node must register again (unknown, dead, or another incarnation).
  bool Heartbeat(const msg::HeartbeatRequest& req, const std::string& route, Clock::time_point now);
  // Decommissioning on or off; false for an unknown node.
  bool SetDraining(const std::string& id, bool draining);
  // Marks `id` dead now (its connection closed: the process is gone).
  // False when it was not alive.
  bool MarkDead(const std::string& id);
  // Marks silent nodes dead; returns the ids that just died.
  std::vector<std::string> Sweep(Clock::time_point now);
  // When the next live node would die if it stays silent.
  std::optional<Clock::time_point> NextDeadline() const;

  const Node* Find(const std::string& id) const;
  msg::NodeInfo Info(const Node& node, Clock::time_point now) const;
  // Every node, alive and dead, sorted by id.
  std::vector<msg::NodeInfo> List(Clock::time_point now) const;
  size_t alive_count() const;
  // Every node registered since the master started, alive or dead.
  size_t size() const { return nodes_.size(); }
  // Changes whenever a node joins, returns, restarts or dies.
  uint64_t membership_version() const { return membership_version_; }
  // Live nodes, for placement.
  template <typename F>
  void ForEachAlive(F&& f) const {
    for (const auto& [id, n] : nodes_) {
      if (n.alive) f(n);
    }
  }
  // Live nodes that take new chunks (their disk has not failed, not
  // decommissioning), for placement.
  template <typename F>
  void ForEachPlaceable(F&& f) const {
    for (const auto& [id, n] : nodes_) {
      if (n.alive && !n.draining && !n.stats.disk_failed()) f(n);
    }
  }
  Clock::duration dead_after() const { return dead_after_; }

 private:
  Clock::duration dead_after_;
  std::map<std::string, Node> nodes_;
  uint64_t membership_version_ = 0;
};

}  // namespace dfs::master
