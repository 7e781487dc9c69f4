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
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bus/socket.h"
#include "common/random_id.h"

namespace dfs::bus {

struct RetryPolicy {
  // Wait per attempt. A healthy master answers in well under a millisecond;
  // a durable mutation waits for one fsync (0.14-0.24 ms for a 4 KiB write +
  // fdatasync on the development VM: DESIGN.md, "What this machine allows").
  std::chrono::milliseconds attempt_timeout{1000};
  int attempts = 3;
};

// Not a template of bus's own choosing: E is the envelope of the port it
// calls (msg::ClientEnvelope for a master's client port, say).
template <Envelope E>
class RequestClient {
 public:
  using Reply = Message<E>;

  RequestClient(Context& ctx, std::string endpoint, SocketOptions options = {}, RetryPolicy policy = {})
      : ctx_(ctx),
        endpoint_(std::move(endpoint)),
        options_(std::move(options)),
        policy_(policy),
        client_id_(RandomU64()),
        next_request_id_(RandomU64() >> 16 | 1) {
    connect_status_ = Reconnect();
  }

  // Sends `request` and returns the reply. A reply carrying an error status
  // comes back as that Status; silence after every attempt is TimedOut,
  // naming the endpoint.
  Result<Reply> Call(E request, std::vector<Frame> payload = {});

  // Pipelined use (many requests in flight): Send assigns and returns the
  // request id; Receive returns any reply (nullopt on timeout). No retries.
  Result<uint64_t> Send(E request, std::vector<Frame> payload = {});
  Result<std::optional<Reply>> Receive(std::chrono::milliseconds timeout) {
    if (!socket_) return Status::Unavailable("not connected to " + endpoint_);
    return socket_->template Receive<E>(timeout);
  }

  // Drops the socket and dials again (the lazy pirate's cure for a lost reply).
  Status Reconnect() {
    socket_.reset();
    auto s = Socket::Create(ctx_, SocketType::kDealer, options_);
    if (!s) return s.error();
    socket_ = std::make_unique<Socket>(std::move(*s));
    return socket_->Connect(endpoint_);
  }

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

// TimedOut, not Unavailable, when nobody answered: callers must tell "nobody
// answered" from a server that answered Unavailable (too few nodes, say).
Status NoAnswer(const std::string& endpoint, const RetryPolicy& policy);

template <Envelope E>
Result<uint64_t> RequestClient<E>::Send(E request, std::vector<Frame> payload) {
  if (!socket_) {
    DFS_RETURN_IF_ERROR(connect_status_);
    return Status::Unavailable("not connected to " + endpoint_);
  }
  if (request.request_id() == 0) request.set_request_id(next_request_id_++);
  request.set_client_id(client_id_);
  const uint64_t id = request.request_id();
  Message<E> m;
  m.envelope = std::move(request);
  m.payload = std::move(payload);
  DFS_RETURN_IF_ERROR(socket_->Send(std::move(m)));
  return id;
}

template <Envelope E>
Result<Message<E>> RequestClient<E>::Call(E request, std::vector<Frame> payload) {
  DFS_RETURN_IF_ERROR(connect_status_);
  if (request.request_id() == 0) request.set_request_id(next_request_id_++);
  const uint64_t id = request.request_id();
  using Clock = std::chrono::steady_clock;

  for (int attempt = 1; attempt <= policy_.attempts; ++attempt) {
    std::vector<Frame> copy;
    copy.reserve(payload.size());
    for (const Frame& f : payload) copy.push_back(f.Share());
    auto sent = Send(request, std::move(copy));
    if (!sent) return sent.error();

    const auto deadline = Clock::now() + policy_.attempt_timeout;
    for (;;) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) break;
      DFS_ASSIGN_OR_RETURN(std::optional<Reply> reply, socket_->template Receive<E>(left));
      if (!reply) break;
      if (!reply->defect.ok()) {
        return reply->defect.Prepend("bad reply from " + endpoint_);
      }
      if (reply->envelope.request_id() != id) continue;  // a late answer to an earlier attempt
      if (reply->envelope.has_error()) return FromProto(reply->envelope.error());
      return std::move(*reply);
    }
    if (attempt < policy_.attempts) DFS_RETURN_IF_ERROR(Reconnect());
  }
  return NoAnswer(endpoint_, policy_);
}

}  // namespace dfs::bus
