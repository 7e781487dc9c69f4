// dfs-node's server: locks its folder, scans its chunk store, binds the data
// ROUTER, keeps the link to the master, and serves until told to stop. One
// thread owns every socket (the data ROUTER, the DEALERs to downstream nodes
// and to the master); only chunk finishing (fsync) runs on a worker thread.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "bus/socket.h"
#include "common/files.h"
#include "common/logging.h"
#include "filenode/chunk_store.h"
#include "daemon/cpu_affinity.h"
#include "filenode/data_service.h"
#include "filenode/scrubber.h"
#include "filenode/master_link.h"
#include "filenode/replicator.h"
#include "filenode/options.h"

namespace dfs::filenode {

class NodeServer {
 public:
  explicit NodeServer(NodeOptions options);
  ~NodeServer();

  // Locks the folder, loads the id, binds the data port, writes DIR/node.addr.
  Status Start();
  Status Run(int stop_fd);

  const std::string& node_id() const { return node_id_; }
  const std::string& data_address() const { return data_address_; }

 private:
  void HandleData(DataMessage& m);
  msg::NodeStats Stats();
  MasterLink::Inventory Inventory() const;
  void DeleteChunks(const std::vector<msg::StoredChunk>& chunks);

  NodeOptions options_;
  std::optional<DirLock> lock_;
  std::unique_ptr<Env> fault_env_;  // --unsafe-fault-*; outlives the store
  std::string node_id_;
  uint64_t incarnation_ = 0;
  std::unique_ptr<ChunkStore> store_;
  std::unique_ptr<bus::Context> context_;
  std::unique_ptr<bus::Socket> data_socket_;
  std::unique_ptr<MasterLink> link_;
  // After the socket and store it uses: destroyed first.
  std::unique_ptr<DataService> data_;
  std::unique_ptr<Replicator> replicator_;  // copies the master asks for
  std::unique_ptr<Scrubber> scrubber_;
  std::string data_address_;
  LogRateLimiter defect_log_;
  // --cpu adaptive: on one CPU while only small messages flow, spread while
  // large streams do (they need the loop and libzmq's I/O thread at once).
  std::optional<AdaptivePin> pin_;
};

}  // namespace dfs::filenode
