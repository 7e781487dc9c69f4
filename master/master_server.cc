#include "master/master_server.h"

#include <chrono>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/logging.h"
#include "events.pb.h"
#include "common/net.h"
#include "common/limits.h"
#include "common/random_id.h"

namespace dfs::master {
MasterServer::MasterServer(MasterOptions options)
    : options_(std::move(options)), incarnation_(RandomU64()), registry_(options_.dead_after) {}

MasterServer::~MasterServer() = default;

Status MasterServer::Start() {
  DFS_ASSIGN_OR_RETURN(DirLock lock, DirLock::Acquire(options_.dir, "dfs-master"));
  lock_.emplace(std::move(lock));
  context_ = std::make_unique<bus::Context>();
  bus::SocketOptions router;
  DFS_ASSIGN_OR_RETURN(bus::Socket clients, bus::Socket::Create(*context_, bus::SocketType::kRouter, router));
  client_socket_ = std::make_unique<bus::Socket>(std::move(clients));
  bus::SocketOptions pub;
  // A subscriber that stops reading loses events rather than growing our memory.
  pub.send_hwm = 100000;
  DFS_ASSIGN_OR_RETURN(bus::Socket events, bus::Socket::Create(*context_, bus::SocketType::kPub, pub));
  event_socket_ = std::make_unique<bus::Socket>(std::move(events));
  bus::SocketOptions node_router;
  node_router.max_message_size = limits::kMaxReportMessageSize;
  // Nodes heartbeat every second at the application level; ZMTP pings only
  // need to clear dead TCP connections, so they go 5x slower here (a 1,000
  // node cluster would otherwise add 2,000 pings a second).
  node_router.zmtp_heartbeat_ivl_ms = 5000;
  node_router.zmtp_heartbeat_timeout_ms = 15000;
  DFS_ASSIGN_OR_RETURN(bus::Socket nodes, bus::Socket::Create(*context_, bus::SocketType::kRouter, node_router));
  node_socket_ = std::make_unique<bus::Socket>(std::move(nodes));
  DFS_ASSIGN_OR_RETURN(peers_, bus::PeerWatch::Create(*context_));

  // State before any port is bound: no client is served before the
  // namespace is recovered.
  fault_env_ = MakeFaultEnv(options_.disk_faults, Env::Default());
  if (fault_env_) spdlog::warn("--unsafe-fault-*: disk faults will be injected into {}", options_.dir);
  service_ = std::make_unique<MasterService>(options_, registry_, *client_socket_,
                                             fault_env_ ? fault_env_.get() : Env::Default());
  DFS_RETURN_IF_ERROR(service_->Open());
  service_->chunks().Connect(
      [this](const std::string& topic, const msg::ChunkEvent& e) {
        msg::EventEnvelope env;
        *env.mutable_event()->mutable_chunk() = e;
        Publish(topic, std::move(env));
      },
      node_socket_.get());
  service_->set_on_change([this](const std::string& path) {
    msg::EventEnvelope env;
    env.mutable_event()->mutable_file()->set_path(path);
    Publish("file.changed", std::move(env));
  });
  AddHandlers();

  auto bind = [&](bus::Socket& socket, uint16_t port) -> Result<uint16_t> {
    DFS_RETURN_IF_ERROR(bus::BindRetrying(socket, TcpEndpoint(options_.bind, port)));
    return PortOfEndpoint(socket.endpoint());
  };
  DFS_ASSIGN_OR_RETURN(uint16_t client_port, bind(*client_socket_, options_.port));
  auto derived = [&](uint16_t explicit_port, int offset) -> uint16_t {
    if (explicit_port != 0) return explicit_port;
    if (options_.port == 0) return 0;
    return static_cast<uint16_t>(client_port + offset);
  };
  DFS_ASSIGN_OR_RETURN(event_port_, bind(*event_socket_, derived(options_.event_port, 1)));
  DFS_ASSIGN_OR_RETURN(node_port_, bind(*node_socket_, derived(options_.node_port, 2)));

  client_address_ = HostPort(options_.bind, client_port);
  DFS_RETURN_IF_ERROR(WriteFileDurably(Env::Default(),
      options_.dir + "/master.ports",
      fmt::format("client={}\nevents={}\nnodes={}\n", client_port, event_port_, node_port_)));
  // Written last: its presence means every port is bound.
  DFS_RETURN_IF_ERROR(WriteFileDurably(Env::Default(), options_.dir + "/master.addr", client_address_ + "\n"));
  spdlog::info("master up: clients={} events={} nodes={} dir={} replication={} chunk_size={} dead_after={}ms",
               client_address_, event_port_, node_port_, options_.dir, options_.replication,
               FormatSize(options_.chunk_size), options_.dead_after.count());
  return Status::OK();
}

Status MasterServer::Run(int stop_fd) {
  bus::Poller poller;
  const size_t client_idx = poller.Add(*client_socket_);
  const size_t node_idx = poller.Add(*node_socket_);
  const size_t stop_idx = poller.AddFd(stop_fd);
  const size_t journal_idx = poller.AddFd(service_->completion_fd());
  const size_t peers_idx = poller.AddFd(peers_->fd());

  // Housekeeping (dead nodes, expired leases, retry cache, checkpoints) runs
  // on a 100 ms tick, not per message: with thousands of nodes a sweep per
  // wake-up cost more than the requests themselves. Death is then noticed
  // within dead_after + 100 ms.
  constexpr auto kTick = std::chrono::milliseconds(100);
  auto next_tick = Clock::now() + kTick;

  for (;;) {
    auto now = Clock::now();
    auto timeout = std::chrono::ceil<std::chrono::milliseconds>(next_tick - now);
    timeout = std::clamp(timeout, std::chrono::milliseconds(0), kTick);
    DFS_ASSIGN_OR_RETURN(int ready, poller.Wait(timeout));
    (void)ready;
    if (poller.Readable(stop_idx)) {
      spdlog::info("master stopping on signal");
      return service_->Close();
    }
    if (poller.Readable(journal_idx)) {
      if (Status s = service_->OnCompletions(); !s.ok()) {
        // fsyncgate: a journal that failed cannot be trusted; recover from disk.
        IgnoreError(service_->Close());  // already failed: the journal error is the one to report
        return s.Prepend("journal");
      }
    }
    if (poller.Readable(peers_idx)) ReapClosed();
    if (poller.Readable(node_idx)) Serve<msg::NodeEnvelope>(*node_socket_, "node");
    if (poller.Readable(client_idx)) Serve<msg::ClientEnvelope>(*client_socket_, "client");
    now = Clock::now();
    if (now >= next_tick) {
      ReapClosed();  // its descriptor signals edges only: look on every tick too
      SweepNodes(now);
      service_->Tick(now);
      next_tick = now + kTick;
    }
  }
}

// A bounded batch per socket per turn, so neither port starves the other.
constexpr size_t kBatch = 256;

template <class E>
void MasterServer::Serve(bus::Socket& socket, std::string_view port) {
  auto served = bus::Drain<E>(socket, kBatch, [&](const bus::Message<E>& m) {
    service_->dispatcher().Dispatch(m, socket, Clock::now());
    return true;
  });
  if (!served) spdlog::error("{} port receive failed: {}", port, served.error().ToString());
}

template <class E>
void MasterServer::ReplyOrLog(bus::Outbox& out, const bus::Message<E>& request, E reply) {
  Status s = bus::Reply(out, request, std::move(reply));
  if (!s.ok()) {
    // The requester went away (router_mandatory makes this visible); it will retry.
    if (auto n = send_fail_log_.Allow()) {
      spdlog::warn("reply req={} not sent: {} ({} similar)", request.envelope.request_id(), s.ToString(), n - 1);
    }
  }
}

void MasterServer::AddHandlers() {
  using E = msg::ClientEnvelope;
  using K = Dispatcher::Kind;
  auto& d = service_->dispatcher();
  d.Add(E::kHelloRequest, K::kQuery, [this](auto& m, auto& out, auto) { Hello(m, out); });
  d.Add(E::kListNodesRequest, K::kQuery, [this](auto& m, auto& out, auto now) {
    msg::ClientEnvelope reply;
    auto* r = reply.mutable_list_nodes_response();
    for (auto& info : registry_.List(now)) {
      info.set_retired(info.decommissioning() && service_->chunks().Retired(info.id()));
      *r->add_nodes() = std::move(info);
    }
    ReplyOrLog(out, m, std::move(reply));
  });
  d.Add(E::kDecommissionRequest, K::kQuery, [this](auto& m, auto& out, auto) { Decommission(m, out); });
  using N = msg::NodeEnvelope;
  d.Add(N::kRegisterNodeRequest, [this](auto& m, auto& out, auto now) { RegisterNode(m, out, now); });
  d.Add(N::kHeartbeatRequest, [this](auto& m, auto& out, auto now) {
    const auto& req = m.envelope.heartbeat_request();
    const bool known = registry_.Heartbeat(req, m.route, now);
    if (!known) SPDLOG_DEBUG("heartbeat from unregistered node={}", req.node_id());
    msg::NodeEnvelope reply;
    reply.mutable_heartbeat_response()->set_needs_register(!known);
    if (known) service_->chunks().DecorateHeartbeat(req.node_id(), reply.mutable_heartbeat_response());
    ReplyOrLog(out, m, std::move(reply));
  });
}

void MasterServer::Decommission(const ClientMessage& m, bus::Outbox& out) {
  const auto& req = m.envelope.decommission_request();
  const NodeRegistry::Node* node = registry_.Find(req.node());
  if (node == nullptr) {
    // By address: with or without tcp://.
    for (const auto& info : registry_.List(Clock::now())) {
      if (info.address() == req.node() || info.address() == "tcp://" + req.node()) node = registry_.Find(info.id());
    }
  }
  if (node == nullptr) {
    IgnoreError(bus::ReplyError(out, m, Status::NotFound(fmt::format("no node {} (dfs-cli nodes lists them)", req.node()))));
    return;
  }
  const std::string id = node->id;
  registry_.SetDraining(id, !req.cancel());
  service_->chunks().SetDraining(id, !req.cancel());
  spdlog::info("node={} {}", id, req.cancel() ? "decommission cancelled" : "decommissioning: its chunks are copied away");
  msg::ClientEnvelope reply;
  auto* r = reply.mutable_decommission_response();
  r->set_node_id(id);
  r->set_chunks(node->stats.chunks());
  ReplyOrLog(out, m, std::move(reply));
}

void MasterServer::Hello(const ClientMessage& m, bus::Outbox& out) {
  msg::ClientEnvelope reply;
  auto* r = reply.mutable_hello_response();
  r->set_event_port(event_port_);
  r->set_node_port(node_port_);
  r->set_incarnation(incarnation_);
  r->set_chunk_size(options_.chunk_size);
  r->set_replication(options_.replication);
  SPDLOG_DEBUG("hello from {}", m.envelope.hello_request().peer_name());
  ReplyOrLog(out, m, std::move(reply));
}

void MasterServer::RegisterNode(const NodeMessage& m, bus::Outbox& out, Clock::time_point now) {
  const auto& req = m.envelope.register_node_request();
  msg::NodeEnvelope reply;
  if (req.node_id().empty() || req.node_id().size() > 64 || req.address().empty() || req.address().size() > 256) {
    *reply.mutable_error() = bus::ToProto(Status::InvalidArgument("node id or address missing or too long"));
    return ReplyOrLog(out, m, std::move(reply));
  }
  auto change = registry_.Register(req, m.route, now);
  const auto* node = registry_.Find(req.node_id());
  if (change != NodeRegistry::Change::kNone) {
    service_->chunks().NodeUp(req.node_id());
    // Watch its data port: when the process dies, the connection closes.
    if (auto hp = ParseHostPort(req.address(), 0); hp && hp->port != 0) {
      const std::string endpoint = TcpEndpoint(hp->host, hp->port);
      if (Status s = peers_->Watch(endpoint); s.ok()) {
        watched_[endpoint] = req.node_id();
      } else {
        spdlog::warn("node={}: cannot watch its connection ({}); its death is seen by heartbeats only",
                     req.node_id(), s.ToString());
      }
    }
  }
  if (change == NodeRegistry::Change::kUp) {
    spdlog::info("node={} up address={} capacity={}", req.node_id(), req.address(),
                 FormatSize(req.stats().capacity()));
    PublishNodeEvent("node.up", *node);
  } else if (change == NodeRegistry::Change::kRestarted) {
    spdlog::info("node={} restarted address={}", req.node_id(), req.address());
    PublishNodeEvent("node.restarted", *node);
  }
  reply.mutable_register_node_response()->set_heartbeat_interval_ms(
      static_cast<uint32_t>(options_.heartbeat_interval.count()));
  ReplyOrLog(out, m, std::move(reply));
}

void MasterServer::SweepNodes(Clock::time_point now) {
  for (const auto& id : registry_.Sweep(now)) {
    NodeDied(id, fmt::format("no heartbeat for {} ms", options_.dead_after.count()));
  }
}

void MasterServer::ReapClosed() {
  for (const auto& endpoint : peers_->Closed()) {
    auto it = watched_.find(endpoint);
    if (it == watched_.end()) continue;
    const std::string id = it->second;
    watched_.erase(it);
    // A node that is in fact alive (a passing network fault) is told to
    // register again by its next heartbeat, and comes back up.
    if (registry_.MarkDead(id)) NodeDied(id, "its connection closed (the process is gone, or its link is: heartbeats went unanswered)");
  }
}

void MasterServer::NodeDied(const std::string& id, const std::string& why) {
  const auto* node = registry_.Find(id);
  spdlog::warn("node={} dead: {} (address={})", id, why, node->address);
  PublishNodeEvent("node.down", *node);
  service_->chunks().NodeDown(id);
}

void MasterServer::PublishNodeEvent(const std::string& topic, const NodeRegistry::Node& node) {
  msg::EventEnvelope env;
  *env.mutable_event()->mutable_node() = registry_.Info(node, Clock::now());
  Publish(topic, std::move(env));
}

void MasterServer::Publish(const std::string& topic, msg::EventEnvelope env) {
  auto* e = env.mutable_event();
  e->set_topic(topic);
  e->set_sequence(++event_sequence_);
  e->set_unix_ms(UnixMillis());
  Status s = event_socket_->Publish(topic, std::move(env));
  if (!s.ok()) spdlog::warn("event {} not published: {}", topic, s.ToString());
}

}  // namespace dfs::master
