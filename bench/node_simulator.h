// M simulated file nodes for master-scale: each registers with the master
// and heartbeats once a second from one thread (its own DEALER per node, as
// real nodes have), so the master carries the load of a big cluster.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "common/status.h"

namespace dfs::bench {

class NodeSimulator {
 public:
  // `master` is HOST:PORT of the client port.
  NodeSimulator(std::string master, int nodes);
  ~NodeSimulator();
  Status Start();
  void Stop();
  uint64_t heartbeats_sent() const { return heartbeats_.load(); }
  uint64_t replies() const { return replies_.load(); }

 private:
  void Run();

  std::string master_;
  int nodes_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> heartbeats_{0};
  std::atomic<uint64_t> replies_{0};
  uint16_t node_port_ = 0;
};

}  // namespace dfs::bench
