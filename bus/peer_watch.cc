#include "bus/peer_watch.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bus/context_impl.h"

namespace dfs::bus {
namespace {

std::atomic<uint64_t> next_monitor{1};

}  // namespace

struct PeerWatch::Impl {
  zmq::socket_t dealer;
  zmq::socket_t monitor;
  std::vector<std::string> watched;
};

PeerWatch::PeerWatch(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PeerWatch::~PeerWatch() = default;

Result<std::unique_ptr<PeerWatch>> PeerWatch::Create(Context& context) {
  try {
    auto impl = std::make_unique<Impl>(Impl{zmq::socket_t(context.impl_->ctx, zmq::socket_type::dealer),
                                            zmq::socket_t(context.impl_->ctx, zmq::socket_type::pair), {}});
    impl->dealer.set(zmq::sockopt::linger, 0);
    impl->dealer.set(zmq::sockopt::reconnect_ivl, -1);  // a closed connection stays closed
    const std::string endpoint = fmt::format("inproc://dfs-peer-watch-{}", next_monitor++);
    if (zmq_socket_monitor(impl->dealer.handle(), endpoint.c_str(), ZMQ_EVENT_DISCONNECTED) != 0) {
      return Status::Internal(fmt::format("socket monitor: {}", zmq_strerror(zmq_errno())));
    }
    impl->monitor.set(zmq::sockopt::linger, 0);
    impl->monitor.connect(endpoint);
    return std::unique_ptr<PeerWatch>(new PeerWatch(std::move(impl)));
  } catch (const zmq::error_t& e) {
    return Status::Internal(fmt::format("peer watch: {}", e.what()));
  }
}

Status PeerWatch::Watch(const std::string& endpoint) {
  // Already watched: the connection is up (or still being made), keep it.
  // Dropping it here would report its close as the peer's death.
  if (std::find(impl_->watched.begin(), impl_->watched.end(), endpoint) != impl_->watched.end()) {
    return Status::OK();
  }
  try {
    impl_->dealer.connect(endpoint);
  } catch (const zmq::error_t& e) {
    return Status::InvalidArgument(fmt::format("watch {}: {}", endpoint, e.what()));
  }
  impl_->watched.push_back(endpoint);
  return Status::OK();
}

void PeerWatch::Unwatch(const std::string& endpoint) {
  auto it = std::find(impl_->watched.begin(), impl_->watched.end(), endpoint);
  if (it == impl_->watched.end()) return;
  impl_->watched.erase(it);
  // Fails with ENOENT when the connection is gone already: nothing to undo.
  zmq_disconnect(impl_->dealer.handle(), endpoint.c_str());
}

int PeerWatch::fd() const { return impl_->monitor.get(zmq::sockopt::fd); }

std::vector<std::string> PeerWatch::Closed() {
  std::vector<std::string> out;
  for (;;) {
    // Each event is two frames: [uint16 event][uint32 value], then the endpoint.
    zmq::message_t head, address;
    try {
      if (!impl_->monitor.recv(head, zmq::recv_flags::dontwait)) break;
      if (!head.more() || !impl_->monitor.recv(address, zmq::recv_flags::dontwait)) break;
    } catch (const zmq::error_t& e) {
      spdlog::warn("peer watch: {}", e.what());
      break;
    }
    uint16_t event = 0;
    if (head.size() >= sizeof(event)) std::memcpy(&event, head.data(), sizeof(event));
    if (event != ZMQ_EVENT_DISCONNECTED) continue;
    std::string endpoint(static_cast<const char*>(address.data()), address.size());
    auto it = std::find(impl_->watched.begin(), impl_->watched.end(), endpoint);
    if (it == impl_->watched.end()) continue;  // unwatched since
    impl_->watched.erase(it);
    out.push_back(std::move(endpoint));
  }
  return out;
}

}  // namespace dfs::bus
