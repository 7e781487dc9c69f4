#include "filenode/master_link.h"
#include "common/limits.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace dfs::filenode {
namespace {

// A page of a full report, at most ~40 bytes a chunk (two 10-byte varints,
// two 5-byte ones, tags and length), stays far under the node port's 64 MiB
// message limit (the control socket below).
static_assert(MasterLink::kReportPageChunks * 40 < (64u << 20) / 16);

// How long to wait for hello and register replies before starting over.
constexpr std::chrono::milliseconds kReplyTimeout{1000};
constexpr std::chrono::milliseconds kMinBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{1000};
// Messages handled per socket per turn of the node's loop.
constexpr size_t kDrainLimit = 1024;

}  // namespace

MasterLink::MasterLink(bus::Context& ctx, Config config, Hooks hooks)
    : ctx_(ctx), config_(std::move(config)), hooks_(std::move(hooks)) {}

MasterLink::~MasterLink() = default;

std::vector<bus::Socket*> MasterLink::sockets() {
  std::vector<bus::Socket*> out;
  if (hello_socket_) out.push_back(hello_socket_.get());
  if (control_socket_) out.push_back(control_socket_.get());
  return out;
}

template <class E>
Status MasterLink::SendOn(bus::Socket& socket, E env) {
  env.set_request_id(next_request_id_++);
  awaited_request_id_ = env.request_id();
  bus::Message<E> m;
  m.envelope = std::move(env);
  return socket.Send(std::move(m));
}

void MasterLink::Reset(Clock::time_point now, std::string_view why) {
  if (state_ == State::kRegistered || !logged_unreachable_) {
    spdlog::warn("master {}: {}; reconnecting", HostPort(config_.master.host, config_.master.port), why);
    logged_unreachable_ = true;
  }
  hello_socket_.reset();
  control_socket_.reset();
  pending_.Clear();
  later_.clear();
  state_ = State::kNeedHello;
  next_wake_ = now + backoff_;
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
}

void MasterLink::StartHello(Clock::time_point now) {
  bus::SocketOptions o;
  auto s = bus::Socket::Create(ctx_, bus::SocketType::kDealer, o);
  if (!s) return Reset(now, s.error().message());
  hello_socket_ = std::make_unique<bus::Socket>(std::move(*s));
  if (auto c = hello_socket_->Connect(TcpEndpoint(config_.master.host, config_.master.port)); !c.ok()) {
    return Reset(now, c.message());
  }
  msg::ClientEnvelope env;
  env.mutable_hello_request()->set_peer_name("dfs-node " + config_.node_id);
  if (auto st = SendOn(*hello_socket_, std::move(env)); !st.ok()) return Reset(now, st.message());
  state_ = State::kAwaitHello;
  deadline_ = now + kReplyTimeout;
}

void MasterLink::SendRegister(Clock::time_point now) {
  msg::NodeEnvelope env;
  auto* r = env.mutable_register_node_request();
  r->set_node_id(config_.node_id);
  r->set_incarnation(config_.incarnation);
  r->set_address(config_.data_address);
  *r->mutable_stats() = hooks_.stats();
  if (auto st = SendOn(*control_socket_, std::move(env)); !st.ok()) return Reset(now, st.message());
  state_ = State::kAwaitRegister;
  deadline_ = now + kReplyTimeout;
}

void MasterLink::SendHeartbeat(Clock::time_point now) {
  msg::NodeEnvelope env;
  auto* h = env.mutable_heartbeat_request();
  h->set_node_id(config_.node_id);
  h->set_incarnation(config_.incarnation);
  *h->mutable_stats() = hooks_.stats();
  if (auto st = SendOn(*control_socket_, std::move(env)); !st.ok()) {
    // A full queue means the master is not reading; silence detection handles it.
    SPDLOG_DEBUG("heartbeat not sent: {}", st.ToString());
  }
  next_heartbeat_ = now + config_.heartbeat_interval;
  // Replicas the head of their pipeline reported go now, once per beat.
  for (auto& c : later_) *pending_.add_stored() = std::move(c);
  later_.clear();
}

void MasterLink::HandleHelloSocket(Clock::time_point now) {
  if (!hello_socket_) return;
  auto r = bus::Drain<msg::ClientEnvelope>(*hello_socket_, kDrainLimit, [&](const auto& m) {
    OnHelloReply(m, now);
    return hello_socket_ != nullptr;  // gone once answered, or reset
  });
  if (!r) Reset(now, r.error().message());
}

void MasterLink::OnHelloReply(const bus::Message<msg::ClientEnvelope>& m, Clock::time_point now) {
  if (state_ != State::kAwaitHello || m.envelope.request_id() != awaited_request_id_) return;
  if (!m.defect.ok()) return Reset(now, m.defect.message());
  if (m.envelope.has_error()) return Reset(now, bus::FromProto(m.envelope.error()).message());
  if (!m.envelope.has_hello_response()) return Reset(now, "unexpected reply to hello");
  const auto& hello = m.envelope.hello_response();
  if (master_incarnation_ != 0 && master_incarnation_ != hello.incarnation()) {
    spdlog::info("master restarted (new incarnation)");
  }
  master_incarnation_ = hello.incarnation();
  const auto node_port = static_cast<uint16_t>(hello.node_port());
  hello_socket_.reset();
  bus::SocketOptions o;
  o.max_message_size = limits::kMaxReportMessageSize;
  o.zmtp_heartbeat_ivl_ms = 5000;  // application heartbeats cover liveness
  o.zmtp_heartbeat_timeout_ms = 15000;
  auto s = bus::Socket::Create(ctx_, bus::SocketType::kDealer, o);
  if (!s) return Reset(now, s.error().message());
  control_socket_ = std::make_unique<bus::Socket>(std::move(*s));
  auto endpoint = TcpEndpoint(config_.master.host, node_port);
  if (auto c = control_socket_->Connect(endpoint); !c.ok()) return Reset(now, c.message());
  SendRegister(now);
}

void MasterLink::HandleControlSocket(Clock::time_point now) {
  if (!control_socket_) return;
  auto r = bus::Drain<msg::NodeEnvelope>(*control_socket_, kDrainLimit, [&](const auto& m) {
    OnControlMessage(m, now);
    return control_socket_ != nullptr;  // a reset drops it
  });
  if (!r) Reset(now, r.error().message());
}

void MasterLink::OnControlMessage(const bus::Message<msg::NodeEnvelope>& m, Clock::time_point now) {
  last_heard_ = now;
  if (!m.defect.ok()) {
    spdlog::warn("bad message from master: {}", m.defect.message());
    return;
  }
  if (m.envelope.has_error()) {
    Status s = bus::FromProto(m.envelope.error());
    if (m.envelope.request_id() != awaited_request_id_) {
      // Not the hello, register or heartbeat awaited: a chunk report the
      // master refused (it does from a node it does not know; the next
      // heartbeat asks this node to register again), or a late answer.
      SPDLOG_DEBUG("master refused request {}: {}", m.envelope.request_id(), s.ToString());
      return;
    }
    if (state_ == State::kAwaitRegister) return Reset(now, "register refused: " + s.message());
    spdlog::warn("master answered with an error: {}", s.message());
    return;
  }
  switch (m.envelope.body_case()) {
    case msg::NodeEnvelope::kRegisterNodeResponse: {
      if (state_ != State::kAwaitRegister) break;
      const auto& reg = m.envelope.register_node_response();
      if (reg.heartbeat_interval_ms() > 0) {
        config_.heartbeat_interval = std::chrono::milliseconds(reg.heartbeat_interval_ms());
      }
      state_ = State::kRegistered;
      backoff_ = kMinBackoff;
      logged_unreachable_ = false;
      next_heartbeat_ = now + config_.heartbeat_interval;
      need_full_report_ = true;
      spdlog::info("registered with master {} as node={}",
                   HostPort(config_.master.host, config_.master.port), config_.node_id);
      break;
    }
    case msg::NodeEnvelope::kHeartbeatResponse: {
      const auto& hb = m.envelope.heartbeat_response();
      if (state_ == State::kRegistered && hb.needs_register()) {
        spdlog::info("master asks node={} to register again", config_.node_id);
        SendRegister(now);
        break;
      }
      if (hb.needs_full_report()) need_full_report_ = true;
      HandleDeletes(hb.delete_chunks());
      break;
    }
    case msg::NodeEnvelope::kChunkReportResponse:
      HandleDeletes(m.envelope.chunk_report_response().delete_());
      break;
    case msg::NodeEnvelope::kReplicateChunkRequest:
      if (state_ == State::kRegistered && hooks_.replicate) {
        hooks_.replicate(m.envelope.request_id(), m.envelope.replicate_chunk_request());
      }
      break;
    default:
      SPDLOG_DEBUG("ignoring message type {} from master", static_cast<int>(m.envelope.body_case()));
  }
}

void MasterLink::ReportStored(const msg::StoredChunk& chunk) {
  if (state_ == State::kRegistered) *pending_.add_stored() = chunk;
}
void MasterLink::ReportRelayed(const std::string& node_id, msg::StoredChunk chunk) {
  if (state_ != State::kRegistered) return;
  auto* r = pending_.add_relayed();
  r->set_node_id(node_id);
  *r->mutable_chunk() = std::move(chunk);
}
void MasterLink::ReportStoredLater(const msg::StoredChunk& chunk) {
  if (state_ != State::kRegistered) return;
  later_.push_back(chunk);
  if (later_.size() < config_.report_page_chunks) return;
  for (auto& c : later_) *pending_.add_stored() = std::move(c);  // a page's worth: no need to wait
  later_.clear();
}
void MasterLink::ReportDeleted(const msg::StoredChunk& chunk) {
  if (state_ == State::kRegistered) *pending_.add_deleted() = chunk;
}
void MasterLink::ReportCorrupt(const msg::StoredChunk& chunk) {
  if (state_ == State::kRegistered) *pending_.add_corrupt() = chunk;
}

void MasterLink::HandleDeletes(const google::protobuf::RepeatedPtrField<msg::StoredChunk>& chunks) {
  if (chunks.empty()) return;
  spdlog::info("master asks node={} to delete {} chunks", config_.node_id, chunks.size());
  hooks_.delete_chunks(std::vector<msg::StoredChunk>(chunks.begin(), chunks.end()));
}

void MasterLink::Replicated(uint64_t request_id, msg::ReplicateChunkResponse response) {
  if (state_ != State::kRegistered || !control_socket_) return;
  // Stored replicas are in our next report too (the targets report their
  // own): the answer only makes them count sooner, and frees the slot.
  bus::Message<msg::NodeEnvelope> m;
  m.envelope.set_request_id(request_id);
  *m.envelope.mutable_replicate_chunk_response() = std::move(response);
  if (Status s = control_socket_->Send(std::move(m)); !s.ok()) {
    SPDLOG_DEBUG("copy answer not sent: {}", s.ToString());
  }
}

Status MasterLink::SendReport(msg::ChunkReportRequest report) {
  report.set_node_id(config_.node_id);
  report.set_incarnation(config_.incarnation);
  msg::NodeEnvelope env;
  env.set_request_id(next_request_id_++);
  *env.mutable_chunk_report_request() = std::move(report);
  bus::Message<msg::NodeEnvelope> m;
  m.envelope = std::move(env);
  return control_socket_->Send(std::move(m));
}

void MasterLink::SendReports() {
  if (need_full_report_) {
    // The inventory is taken now, so it covers every change reported so far.
    pending_.Clear();
    later_.clear();
    Inventory inv = hooks_.inventory();
    const size_t total = inv.stored.size() + inv.corrupt.size();
    size_t sent = 0;
    Status st;
    do {
      msg::ChunkReportRequest page;
      page.set_full(true);
      size_t room = std::max<size_t>(1, config_.report_page_chunks);
      for (; room > 0 && sent < inv.stored.size(); --room, ++sent) *page.add_stored() = inv.stored[sent];
      for (; room > 0 && sent < total; --room, ++sent) *page.add_corrupt() = inv.corrupt[sent - inv.stored.size()];
      page.set_last_page(sent == total);
      st = SendReport(std::move(page));
    } while (st.ok() && sent < total);
    if (!st.ok()) {
      SPDLOG_DEBUG("full chunk report not sent ({}); trying again", st.ToString());
      return;
    }
    need_full_report_ = false;
    SPDLOG_DEBUG("full chunk report sent: {} chunks", total);
    return;
  }
  if (pending_.stored_size() + pending_.deleted_size() + pending_.corrupt_size() + pending_.relayed_size() == 0) {
    return;
  }
  if (Status st = SendReport(pending_); !st.ok()) {
    SPDLOG_DEBUG("chunk report not sent ({}); trying again", st.ToString());
    return;
  }
  pending_.Clear();
}

void MasterLink::Service(Clock::time_point now) {
  HandleHelloSocket(now);
  HandleControlSocket(now);
  const auto silent_limit = config_.heartbeat_interval * config_.silent_intervals;
  switch (state_) {
    case State::kNeedHello:
      if (now >= next_wake_) StartHello(now);
      break;
    case State::kAwaitHello:
      if (now >= deadline_) Reset(now, "no answer to hello");
      break;
    case State::kAwaitRegister:
      if (now >= deadline_) Reset(now, "no answer to register");
      break;
    case State::kRegistered:
      if (now - last_heard_ > silent_limit) {
        Reset(now, "silent for " + std::to_string(silent_limit.count()) + " ms");
      } else if (now >= next_heartbeat_) {
        SendHeartbeat(now);
      }
      if (state_ == State::kRegistered) SendReports();
      break;
  }
  switch (state_) {
    case State::kNeedHello: break;  // next_wake_ set by Reset
    case State::kAwaitHello:
    case State::kAwaitRegister: next_wake_ = deadline_; break;
    case State::kRegistered: next_wake_ = std::min(next_heartbeat_, last_heard_ + silent_limit); break;
  }
}

}  // namespace dfs::filenode
