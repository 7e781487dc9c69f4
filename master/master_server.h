// dfs-master's server: binds the client ROUTER, the event PUB and the node
// ROUTER, and runs one thread that owns every piece of metadata, driven by a
// poll loop whose timeout is the next deadline (zguide mdbroker).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "bus/peer_watch.h"
#include "bus/socket.h"
#include "events.pb.h"
#include "common/files.h"
#include "common/logging.h"
#include "master/master_service.h"
#include "master/node_registry.h"
#include "master/options.h"

namespace dfs::master {

class MasterServer {
 public:
  explicit MasterServer(MasterOptions options);
  ~MasterServer();

  // Locks the folder, binds every socket, writes DIR/master.addr.
  Status Start();
  // Serves until `stop_fd` is readable (a signalfd). Returns why it stopped.
  Status Run(int stop_fd);

  // "HOST:PORT" of the client port, once started.
  const std::string& client_address() const { return client_address_; }

 private:
  using Clock = std::chrono::steady_clock;

  // The handlers this server keeps: hello and node membership.
  void AddHandlers();
  // decommission NODE (by id or address), or its cancel.
  void Decommission(const ClientMessage& m, bus::Outbox& out);
  void Hello(const ClientMessage& m, bus::Outbox& out);
  void RegisterNode(const NodeMessage& m, bus::Outbox& out, Clock::time_point now);
  void SweepNodes(Clock::time_point now);
  // Nodes whose data connection closed (bus::PeerWatch) are dead at once.
  void ReapClosed();
  void NodeDied(const std::string& id, const std::string& why);
  void PublishNodeEvent(const std::string& topic, const NodeRegistry::Node& node);
  // Stamps topic, sequence and time, and publishes on the event socket.
  void Publish(const std::string& topic, msg::EventEnvelope env);
  // Hands what waits on a port (a bounded batch) to the dispatcher.
  template <class E>
  void Serve(bus::Socket& socket, std::string_view port);
  template <class E>
  void ReplyOrLog(bus::Outbox& out, const bus::Message<E>& request, E reply);

  MasterOptions options_;
  std::unique_ptr<Env> fault_env_;  // --unsafe-fault-*: the journal's disk misbehaves
  std::optional<DirLock> lock_;
  std::unique_ptr<bus::Context> context_;
  std::unique_ptr<bus::Socket> client_socket_;
  std::unique_ptr<bus::Socket> event_socket_;
  std::unique_ptr<bus::Socket> node_socket_;
  uint16_t event_port_ = 0;
  uint16_t node_port_ = 0;
  std::string client_address_;
  uint64_t incarnation_ = 0;
  uint64_t event_sequence_ = 0;
  NodeRegistry registry_;
  std::unique_ptr<bus::PeerWatch> peers_;
  std::map<std::string, std::string> watched_;  // endpoint -> node id
  std::unique_ptr<MasterService> service_;
  LogRateLimiter send_fail_log_;
};

}  // namespace dfs::master
