// Data connections to file nodes, for a client or a node copying a replica.
// One DEALER per node address, opened on first use and shared by every
// stream its owner runs to that node (a small file costs no TCP handshake after the
// first); replies are told apart by request id, which is unique per client.
//
// Not thread-safe: belongs to the Client's thread, as its sockets do.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bus/socket.h"
#include "data.pb.h"

namespace dfs::datapath {

// What nodes' data ports carry (messages/data.proto).
using DataMessage = bus::Message<msg::DataEnvelope>;

// Where a chunk writer's requests go: the client's node links, or a fake
// that records them in unit tests (tests/unit/pipeline_writer_test.cc), so the
// writer's protocol is tested without sockets or nodes.
class NodeSender {
 public:
  virtual ~NodeSender() = default;
  // Sends `request` (stamped with a fresh request id and this client's id) to
  // the node whose data endpoint is `address` ("HOST:PORT" or "tcp://...").
  // Returns the request id, which its answer carries.
  virtual Result<uint64_t> Send(const std::string& address, msg::DataEnvelope request,
                                std::vector<bus::Frame> payload = {}) = 0;
};

class NodeLinks final : public NodeSender {
 public:
  NodeLinks(bus::Context& context, std::string user);

  Result<uint64_t> Send(const std::string& address, msg::DataEnvelope request,
                        std::vector<bus::Frame> payload = {}) override;

  // Waits up to `timeout` for the first reply from any node (or for
  // `also_fd`, when given, to turn readable), then hands `on_reply` every
  // reply already queued. Returns how many were handled.
  using ReplyHandler = std::function<void(const std::string& address, DataMessage& reply)>;
  Result<int> Poll(std::chrono::milliseconds timeout, const ReplyHandler& on_reply, int also_fd = -1);

  // Every open link, for an owner that polls them in its own loop (then
  // Poll(0ms, ...) hands over what arrived).
  std::vector<bus::Socket*> sockets();

  // Closes the connection to `address`, discarding what is queued for it: a
  // node found dead or stalled must not receive stale frames when it wakes.
  void Drop(const std::string& address);

 private:
  Result<bus::Socket*> Link(const std::string& address);

  bus::Context& context_;
  std::string user_;
  uint64_t client_id_;
  uint64_t next_request_id_;
  std::map<std::string, std::unique_ptr<bus::Socket>> links_;
};

// "HOST:PORT" or "tcp://HOST:PORT" as a bus endpoint.
Result<std::string> NodeEndpoint(const std::string& address);

}  // namespace dfs::datapath
