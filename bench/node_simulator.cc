#include "bench/node_simulator.h"

#include <fmt/format.h>

#include "bus/request_client.h"
#include "client_master.pb.h"
#include "node_master.pb.h"
#include "common/net.h"
#include "common/units.h"

namespace dfs::bench {

NodeSimulator::NodeSimulator(std::string master, int nodes) : master_(std::move(master)), nodes_(nodes) {}

NodeSimulator::~NodeSimulator() { Stop(); }

Status NodeSimulator::Start() {
  DFS_ASSIGN_OR_RETURN(HostAndPort m, ParseHostPort(master_, 5550));
  bus::Context ctx;
  bus::RequestClient<msg::ClientEnvelope> hello(ctx, TcpEndpoint(m.host, m.port));
  msg::ClientEnvelope h;
  h.mutable_hello_request()->set_peer_name("dfs-bench node simulator");
  DFS_ASSIGN_OR_RETURN(auto reply, hello.Call(h));
  node_port_ = static_cast<uint16_t>(reply.envelope.hello_response().node_port());
  thread_ = std::thread([this] { Run(); });
  return Status::OK();
}

void NodeSimulator::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void NodeSimulator::Run() {
  using Clock = std::chrono::steady_clock;
  auto m = ParseHostPort(master_, 5550);
  bus::Context ctx;
  std::vector<std::unique_ptr<bus::Socket>> socks;
  bus::SocketOptions o;
  o.linger_ms = 0;
  o.zmtp_heartbeat_ivl_ms = 5000;  // as real nodes' control sockets
  o.zmtp_heartbeat_timeout_ms = 15000;
  auto stats = [] {
    msg::NodeStats s;
    s.set_capacity(kTiB);
    s.set_available(kTiB);
    s.set_credit_pool(256 * kMiB);
    return s;
  };
  for (int i = 0; i < nodes_; ++i) {
    auto s = bus::Socket::Create(ctx, bus::SocketType::kDealer, o);
    if (!s || !s->Connect(TcpEndpoint(m->host, node_port_)).ok()) return;
    msg::NodeEnvelope reg;
    auto* r = reg.mutable_register_node_request();
    r->set_node_id(fmt::format("sim-{:05}", i));
    r->set_incarnation(1);
    r->set_address(fmt::format("127.0.0.1:{}", 20000 + i));
    *r->mutable_stats() = stats();
    bus::Message<msg::NodeEnvelope> msg;
    msg.envelope = std::move(reg);
    (void)s->Send(std::move(msg));
    socks.push_back(std::make_unique<bus::Socket>(std::move(*s)));
  }
  // Heartbeats spread evenly over each second, as independent nodes would be.
  const auto start = Clock::now();
  auto next_drain = start;
  uint64_t beat = 0;
  while (!stop_) {
    auto due = start + std::chrono::microseconds(beat * 1'000'000 / static_cast<uint64_t>(nodes_));
    auto now = Clock::now();
    if (now >= due) {
      size_t i = beat % socks.size();
      msg::NodeEnvelope hb;
      auto* h = hb.mutable_heartbeat_request();
      h->set_node_id(fmt::format("sim-{:05}", i));
      h->set_incarnation(1);
      *h->mutable_stats() = stats();
      bus::Message<msg::NodeEnvelope> msg;
      msg.envelope = std::move(hb);
      if (socks[i]->Send(std::move(msg)).ok()) ++heartbeats_;
      ++beat;
      continue;
    }
    if (now >= next_drain) {  // replies only prove the master keeps up; read them in bulk
      for (auto& s : socks) {
        auto r = bus::Drain<msg::NodeEnvelope>(*s, SIZE_MAX, [](const auto&) { return true; });
        if (r) replies_ += *r;
      }
      next_drain = now + std::chrono::milliseconds(50);
    }
    std::this_thread::sleep_until(std::min(due, next_drain));
  }
}

}  // namespace dfs::bench
