// An external mini cluster (Kudu's ExternalMiniCluster, in small): a real
// dfs-master and real dfs-nodes on loopback, free ports chosen at run time,
// each daemon's state and log in a folder of its own under a fresh temp dir.
// Every wait is on a condition (an address file, a node's state as dfs-cli
// reports it), never a bare sleep. Destruction stops everything.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/process.h"

namespace dfs::test {

struct ClusterOptions {
  int nodes = 3;
  std::string dead_after = "2s";
  std::vector<std::string> master_args;
  std::vector<std::string> node_args;
  // dfs-cli's file cache for the commands this test starts (in the test's
  // folder). Off unless a test is about it, so a read checks the nodes,
  // not a copy the put left on the local disk.
  bool client_cache = false;
};

class MiniCluster {
 public:
  explicit MiniCluster(ClusterOptions options = {});
  ~MiniCluster();

  // Master and every node; returns when all nodes are alive. Fails the test
  // (gtest ADD_FAILURE) and returns false otherwise.
  bool Start();

  // The master on free ports the first time, on the same ports after.
  bool StartMaster();
  int StopMaster();  // SIGTERM; the exit status
  void KillMaster();  // SIGKILL
  Process& master() { return master_; }
  // The master's flags from its next start on (ClusterOptions::master_args).
  void SetMasterArgs(std::vector<std::string> args) { options_.master_args = std::move(args); }

  // Adds a node folder and starts it, with `args` after ClusterOptions'
  // node_args on this and every later start; returns its index.
  int AddNode(std::vector<std::string> args = {});
  bool StartNode(int i);
  // Node `i`'s own flags (after ClusterOptions' node_args) from its next
  // start on.
  void SetNodeArgs(int i, std::vector<std::string> args) { nodes_.at(static_cast<size_t>(i)).args = std::move(args); }
  int StopNode(int i);
  void KillNode(int i);
  Process& node(int i) { return nodes_.at(static_cast<size_t>(i)).process; }
  std::string node_dir(int i) const { return nodes_.at(static_cast<size_t>(i)).dir; }
  // From DIR/node.id; empty before the node's first start.
  std::string node_id(int i) const;
  int node_count() const { return static_cast<int>(nodes_.size()); }

  const std::string& root() const { return root_; }
  const std::string& master_dir() const { return master_dir_; }
  const std::string& master_address() const { return master_address_; }
  uint16_t master_port() const { return client_port_; }
  uint16_t event_port() const { return event_port_; }
  uint16_t node_port() const { return node_port_; }

  // dfs-cli --master ADDR args...
  CommandResult Cli(const std::vector<std::string>& args,
                    std::chrono::milliseconds timeout = std::chrono::seconds(60),
                    const std::string& stdin_data = "") const;
  // State of node `id` per `dfs-cli --json nodes`: "alive", "dead" or "" (unknown / error).
  std::string NodeState(const std::string& id) const;
  int AliveNodes() const;
  bool WaitForNodeState(const std::string& id, const std::string& state, std::chrono::milliseconds timeout) const;
  bool WaitForAliveNodes(int n, std::chrono::milliseconds timeout) const;

  static std::string ReadText(const std::string& path);

 private:
  struct Node {
    std::string dir;
    std::vector<std::string> args;
    Process process;
  };

  ClusterOptions options_;
  std::string root_;
  std::string master_dir_;
  std::string master_address_;
  uint16_t client_port_ = 0;
  uint16_t event_port_ = 0;
  uint16_t node_port_ = 0;
  Process master_;
  std::vector<Node> nodes_;
  int master_starts_ = 0;
};

}  // namespace dfs::test
