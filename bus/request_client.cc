#include "bus/request_client.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/random_id.h"

namespace dfs::bus {

RequestClient::RequestClient(Context& ctx, std::string endpoint, SocketOptions options, RetryPolicy policy)
    : ctx_(ctx),
      endpoint_(std::move(endpoint)),
      options_(std::move(options)),
      policy_(policy),
      client_id_(RandomU64()),
      next_request_id_(RandomU64() >> 16 | 1) {
  connect_status_ = Reconnect();
}

RequestClient::~RequestClient() = default;

Status RequestClient::Reconnect() {
  socket_.reset();
  auto s = Socket::Create(ctx_, SocketType::kDealer, options_);
  if (!s) return s.error();
  socket_ = std::make_unique<Socket>(std::move(*s));
  return socket_->Connect(endpoint_);
}

Result<uint64_t> RequestClient::Send(msg::Envelope request, std::vector<Frame> payload) {
  if (!socket_) {
    DFS_RETURN_IF_ERROR(connect_status_);
    return Status::Unavailable("not connected to " + endpoint_);
  }
  if (request.request_id() == 0) request.set_request_id(next_request_id_++);
  request.set_client_id(client_id_);
  uint64_t id = request.request_id();
  Message m;
  m.envelope = std::move(request);
  m.payload = std::move(payload);
  DFS_RETURN_IF_ERROR(socket_->Send(std::move(m)));
  return id;
}

Result<std::optional<Message>> RequestClient::Receive(std::chrono::milliseconds timeout) {
  if (!socket_) return Status::Unavailable("not connected to " + endpoint_);
  return socket_->Receive(timeout);
}

Result<Message> RequestClient::Call(msg::Envelope request, std::vector<Frame> payload) {
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
      DFS_ASSIGN_OR_RETURN(std::optional<Message> reply, socket_->Receive(left));
      if (!reply) break;
      if (!reply->defect.ok()) {
        return reply->defect.Prepend("bad reply from " + endpoint_);
      }
      if (reply->envelope.request_id() != id) {
        SPDLOG_DEBUG("dropping stale reply req={} (waiting for {})", reply->envelope.request_id(), id);
        continue;
      }
      if (reply->envelope.has_error()) return FromProto(reply->envelope.error());
      return std::move(*reply);
    }
    if (attempt < policy_.attempts) {
      spdlog::debug("no reply from {} req={} attempt {}/{}; reconnecting", endpoint_, id, attempt,
                    policy_.attempts);
      DFS_RETURN_IF_ERROR(Reconnect());
    }
  }
  auto total = policy_.attempt_timeout * policy_.attempts;
  // TimedOut, not Unavailable: callers must tell "nobody answered" from a
  // server that answered Unavailable (too few nodes, say).
  return Status::TimedOut(fmt::format("no answer from {} after {} attempts ({:.1f} s)", endpoint_,
                                         policy_.attempts, total.count() / 1000.0));
}

}  // namespace dfs::bus
