// libdfs_client: the API every dfs tool uses (dfs-cli, dfs-bench, the shell).
// It speaks to the master for metadata and straight to nodes for data.
// Nothing in here exposes ZeroMQ or protobuf.
//
// Not thread-safe: one Client per thread (each owns its sockets).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace dfs::client {

struct ClientOptions {
  // HOST:PORT of the master's client port.
  std::string master = "127.0.0.1:5550";
  // Per attempt; a request goes out `attempts` times before the master is
  // called unreachable, so a dead master is reported within about
  // timeout*attempts.
  std::chrono::milliseconds timeout{1000};
  int attempts = 2;
  std::string name = "dfs-client";
};

// The master address a tool should use: `flag` if set, else $DFS_MASTER, else
// 127.0.0.1:5550.
std::string DefaultMaster(const std::string& flag);

struct NodeStatus {
  std::string id;
  std::string address;
  bool alive = false;
  uint64_t capacity = 0;
  uint64_t used = 0;
  uint64_t available = 0;
  uint64_t chunks = 0;
  uint32_t streams_open = 0;
  uint64_t credit_in_use = 0;
  uint64_t credit_pool = 0;
  uint64_t last_heartbeat_ms_ago = 0;
};

struct ClusterInfo {
  uint64_t chunk_size = 0;
  uint32_t replication = 0;
};

class Client {
 public:
  // Says hello to the master; Unavailable (naming the address) if it does
  // not answer in time.
  static Result<std::unique_ptr<Client>> Connect(const ClientOptions& options);
  ~Client();

  const ClusterInfo& cluster() const;
  Result<std::vector<NodeStatus>> ListNodes();

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfs::client
