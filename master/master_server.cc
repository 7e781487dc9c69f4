#include "master/master_server.h"

#include <chrono>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/logging.h"
#include "common/net.h"
#include "common/random_id.h"

namespace dfs::master {
namespace {

int64_t UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

MasterServer::MasterServer(MasterOptions options)
    : options_(std::move(options)), incarnation_(RandomU64()), registry_(options_.dead_after) {}

MasterServer::~MasterServer() = default;

Status MasterServer::Start() {
  DFS_ASSIGN_OR_RETURN(DirLock lock, DirLock::Acquire(options_.dir, "dfs-master"));
  lock_.emplace(std::move(lock));
  // State first: no client is served before the namespace is recovered.
  NamespaceService::Options no;
  no.dir = options_.dir;
  no.replication = options_.replication;
  no.chunk_size = options_.chunk_size;
  no.lease_time = options_.lease_time;
  no.checkpoint_every_records = options_.checkpoint_every_records;
  no.verify_replicas = !options_.unverified_writes;
  no.retry_cache_bytes = options_.retry_cache_bytes;
  if (options_.unverified_writes) spdlog::warn("--unsafe-unverified-writes: writes complete without replica checks");
  namespace_ = std::make_unique<NamespaceService>(no, registry_);
  DFS_RETURN_IF_ERROR(namespace_->Open());
  context_ = std::make_unique<bus::Context>();

  auto bind = [&](bus::SocketType type, uint16_t port, bus::SocketOptions so,
                  std::unique_ptr<bus::Socket>& out) -> Result<uint16_t> {
    DFS_ASSIGN_OR_RETURN(bus::Socket s, bus::Socket::Create(*context_, type, so));
    DFS_RETURN_IF_ERROR(s.Bind(TcpEndpoint(options_.bind, port)));
    DFS_ASSIGN_OR_RETURN(uint16_t bound, PortOfEndpoint(s.endpoint()));
    out = std::make_unique<bus::Socket>(std::move(s));
    return bound;
  };

  bus::SocketOptions router;
  DFS_ASSIGN_OR_RETURN(uint16_t client_port,
                       bind(bus::SocketType::kRouter, options_.port, router, client_socket_));
  auto derived = [&](uint16_t explicit_port, int offset) -> uint16_t {
    if (explicit_port != 0) return explicit_port;
    if (options_.port == 0) return 0;
    return static_cast<uint16_t>(client_port + offset);
  };
  bus::SocketOptions pub;
  // A subscriber that stops reading loses events rather than growing our memory.
  pub.send_hwm = 100000;
  DFS_ASSIGN_OR_RETURN(event_port_, bind(bus::SocketType::kPub, derived(options_.event_port, 1), pub,
                                         event_socket_));
  bus::SocketOptions node_router;
  // Chunk reports are sent in pages (~100k chunks, a few MiB each), so 64 MiB
  // is ample and a hostile 100 MiB frame is dropped before it is buffered.
  node_router.max_message_size = 64 << 20;
  // Nodes heartbeat every second at the application level; ZMTP pings only
  // need to clear dead TCP connections, so they go 5x slower here (a 1,000
  // node cluster would otherwise add 2,000 pings a second).
  node_router.zmtp_heartbeat_ivl_ms = 5000;
  node_router.zmtp_heartbeat_timeout_ms = 15000;
  DFS_ASSIGN_OR_RETURN(node_port_, bind(bus::SocketType::kRouter, derived(options_.node_port, 2),
                                        node_router, node_socket_));

  namespace_->set_client_socket(client_socket_.get());
  client_address_ = HostPort(options_.bind, client_port);
  DFS_RETURN_IF_ERROR(WriteFileDurably(
      options_.dir + "/master.ports",
      fmt::format("client={}\nevents={}\nnodes={}\n", client_port, event_port_, node_port_)));
  // Written last: its presence means every port is bound.
  DFS_RETURN_IF_ERROR(WriteFileDurably(options_.dir + "/master.addr", client_address_ + "\n"));
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
  const size_t journal_idx = poller.AddFd(namespace_->completion_fd());
  // Drain a bounded batch per socket per turn so neither side starves the other.
  constexpr int kBatch = 256;

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
      return namespace_->Close();
    }
    if (poller.Readable(journal_idx)) {
      if (Status s = namespace_->OnCompletions(*client_socket_); !s.ok()) {
        // fsyncgate: a journal that failed cannot be trusted; recover from disk.
        IgnoreError(namespace_->Close());  // already failed: the journal error is the one to report
        return s.Prepend("journal");
      }
    }
    if (poller.Readable(node_idx)) {
      for (int i = 0; i < kBatch; ++i) {
        auto m = node_socket_->TryReceive();
        if (!m) {
          spdlog::error("node port receive failed: {}", m.error().ToString());
          break;
        }
        if (!*m) break;
        HandleNode(**m);
      }
    }
    if (poller.Readable(client_idx)) {
      for (int i = 0; i < kBatch; ++i) {
        auto m = client_socket_->TryReceive();
        if (!m) {
          spdlog::error("client port receive failed: {}", m.error().ToString());
          break;
        }
        if (!*m) break;
        HandleClient(**m);
      }
    }
    now = Clock::now();
    if (now >= next_tick) {
      SweepNodes(now);
      namespace_->Tick(now);
      next_tick = now + kTick;
    }
  }
}

void MasterServer::ReplyOrLog(bus::Socket& socket, const bus::Message& request, msg::Envelope reply) {
  Status s = bus::Reply(socket, request, std::move(reply));
  if (!s.ok()) {
    // The requester went away (router_mandatory makes this visible); it will retry.
    if (auto n = send_fail_log_.Allow()) {
      spdlog::warn("reply req={} not sent: {} ({} similar)", request.envelope.request_id(), s.ToString(), n - 1);
    }
  }
}

void MasterServer::RefuseDefect(bus::Socket& socket, const bus::Message& m, std::string_view port_name) {
  if (auto n = defect_log_.Allow()) {
    spdlog::warn("refused message on {} port: {} ({} similar)", port_name, m.defect.message(), n - 1);
  }
  Status s = bus::ReplyError(socket, m, m.defect);
  IgnoreError(s);  // a peer that sends garbage may well be gone already
}

void MasterServer::HandleClient(bus::Message& m) {
  if (!m.defect.ok()) return RefuseDefect(*client_socket_, m, "client");
  if (namespace_->Handle(*client_socket_, m, Clock::now())) return;
  msg::Envelope reply;
  switch (m.envelope.body_case()) {
    case msg::Envelope::kHelloRequest: {
      auto* r = reply.mutable_hello_response();
      r->set_event_port(event_port_);
      r->set_node_port(node_port_);
      r->set_incarnation(incarnation_);
      r->set_chunk_size(options_.chunk_size);
      r->set_replication(options_.replication);
      SPDLOG_DEBUG("hello from {}", m.envelope.hello_request().peer_name());
      break;
    }
    case msg::Envelope::kListNodesRequest: {
      auto* r = reply.mutable_list_nodes_response();
      for (auto& info : registry_.List(Clock::now())) *r->add_nodes() = std::move(info);
      break;
    }
    default:
      *reply.mutable_error() = bus::ToProto(Status::ProtocolError(
          fmt::format("the master's client port does not serve request type {}",
                      static_cast<int>(m.envelope.body_case()))));
  }
  ReplyOrLog(*client_socket_, m, std::move(reply));
}

void MasterServer::HandleNode(bus::Message& m) {
  if (!m.defect.ok()) return RefuseDefect(*node_socket_, m, "node");
  auto now = Clock::now();
  if (namespace_->HandleNode(*node_socket_, m, now)) return;
  msg::Envelope reply;
  switch (m.envelope.body_case()) {
    case msg::Envelope::kRegisterNodeRequest: {
      const auto& req = m.envelope.register_node_request();
      if (req.node_id().empty() || req.node_id().size() > 64 || req.address().empty() ||
          req.address().size() > 256) {
        *reply.mutable_error() = bus::ToProto(Status::InvalidArgument("node id or address missing or too long"));
        break;
      }
      auto change = registry_.Register(req, m.route, now);
      const auto* node = registry_.Find(req.node_id());
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
      break;
    }
    case msg::Envelope::kHeartbeatRequest: {
      bool known = registry_.Heartbeat(m.envelope.heartbeat_request(), m.route, now);
      if (!known) SPDLOG_DEBUG("heartbeat from unregistered node={}", m.envelope.heartbeat_request().node_id());
      reply.mutable_heartbeat_response()->set_needs_register(!known);
      if (known) namespace_->DecorateHeartbeat(m.envelope.heartbeat_request().node_id(), reply.mutable_heartbeat_response());
      break;
    }
    default:
      *reply.mutable_error() = bus::ToProto(Status::ProtocolError(
          fmt::format("the master's node port does not serve request type {}",
                      static_cast<int>(m.envelope.body_case()))));
  }
  ReplyOrLog(*node_socket_, m, std::move(reply));
}

void MasterServer::SweepNodes(Clock::time_point now) {
  for (const auto& id : registry_.Sweep(now)) {
    const auto* node = registry_.Find(id);
    spdlog::warn("node={} dead: no heartbeat for {} ms (address={})", id, options_.dead_after.count(),
                 node->address);
    PublishNodeEvent("node.down", *node);
  }
}

void MasterServer::PublishNodeEvent(const std::string& topic, const NodeRegistry::Node& node) {
  msg::Envelope env;
  auto* e = env.mutable_event();
  e->set_topic(topic);
  e->set_sequence(++event_sequence_);
  e->set_unix_ms(UnixMillis());
  *e->mutable_node() = registry_.Info(node, Clock::now());
  Status s = event_socket_->Publish(topic, std::move(env));
  if (!s.ok()) spdlog::warn("event {} not published: {}", topic, s.ToString());
}

}  // namespace dfs::master
