// A request client in the "lazy pirate" style (zguide ch. 4): a DEALER that
// sends a request, waits up to a timeout for the reply with the same request
// id, and on silence closes the socket, reconnects and sends the same request
// again (same id, so the server's retry cache answers a repeated mutation).
// Replies to earlier attempts that arrive late are discarded.
//
// Not thread-safe: one per thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "bus/socket.h"

namespace dfs::bus {

struct RetryPolicy {
  // Wait per attempt. A healthy master answers in well under a millisecond;
  // a durable mutation waits for one fsync (0.14-0.24 ms for a 4 KiB write +
  // fdatasync on the development VM: DESIGN.md, "What this machine allows").
  std::chrono::milliseconds attempt_timeout{1000};
  int attempts = 3;
};

class RequestClient {
 public:
  RequestClient(Context& ctx, std::string endpoint, SocketOptions options = {},
                RetryPolicy policy = {});
  ~RequestClient();

  // Sends `request` and returns the reply. A reply carrying an error status
  // comes back as that Status; silence after every attempt is TimedOut,
  // naming the endpoint.
  Result<Message> Call(msg::Envelope request, std::vector<Frame> payload = {});

  // Pipelined use (many requests in flight): Send assigns and returns the
  // request id; Receive returns any reply (nullopt on timeout). No retries.
  Result<uint64_t> Send(msg::Envelope request, std::vector<Frame> payload = {});
  Result<std::optional<Message>> Receive(std::chrono::milliseconds timeout);

  // Drops the socket and dials again (the lazy pirate's cure for a lost reply).
  Status Reconnect();

  const std::string& endpoint() const { return endpoint_; }
  uint64_t client_id() const { return client_id_; }
  void set_policy(RetryPolicy policy) { policy_ = policy; }

 private:
  Context& ctx_;
  std::string endpoint_;
  SocketOptions options_;
  RetryPolicy policy_;
  uint64_t client_id_;
  uint64_t next_request_id_ = 1;
  std::unique_ptr<Socket> socket_;
  Status connect_status_;
};

}  // namespace dfs::bus
