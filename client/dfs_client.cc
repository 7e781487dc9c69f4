#include "client/dfs_client.h"

#include <malloc.h>

#include <cstdlib>

#include <fmt/format.h>

#include "client/client_impl.h"

namespace dfs::client {

std::string DefaultMaster(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("DFS_MASTER"); env != nullptr && *env != '\0') return env;
  return "127.0.0.1:5550";
}

void KeepDataBuffersInHeap() {
  // Above glibc's mmap threshold (128 KiB, adapting up to 32 MiB only after
  // frees) every 1 MiB frame is a fresh mmap; below it, a freed frame is
  // reused. The trim threshold keeps a burst's worth of them around.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

Result<MasterMessage> Client::Impl::Call(msg::ClientEnvelope request) {
  request.set_user(user);
  auto r = rpc->Call(std::move(request));
  if (!r && r.error().code() == Code::kTimedOut) {
    return Status::Unavailable(fmt::format("cannot reach the master at {}: {}", options.master,
                                           r.error().message()));
  }
  return r;
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->user = options.user.empty() ? LocalUserName() : options.user;
  DFS_ASSIGN_OR_RETURN(impl->master, ParseHostPort(options.master, 5550));
  impl->context = std::make_unique<bus::Context>();
  bus::SocketOptions so;
  so.linger_ms = 0;  // a CLI that gives up must exit at once, not wait on a dead master
  impl->rpc = std::make_unique<bus::RequestClient<msg::ClientEnvelope>>(*impl->context,
                                                   TcpEndpoint(impl->master.host, impl->master.port), so,
                                                   bus::RetryPolicy{options.timeout, options.attempts});
  msg::ClientEnvelope hello;
  hello.mutable_hello_request()->set_peer_name(options.name);
  DFS_ASSIGN_OR_RETURN(MasterMessage reply, impl->Call(std::move(hello)));
  if (!reply.envelope.has_hello_response()) {
    return Status::ProtocolError(fmt::format("{} answered hello with something else; is it a dfs master?",
                                             options.master));
  }
  impl->cluster.chunk_size = reply.envelope.hello_response().chunk_size();
  impl->cluster.replication = reply.envelope.hello_response().replication();
  impl->event_port = reply.envelope.hello_response().event_port();
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

const ClusterInfo& Client::cluster() const { return impl_->cluster; }

void Client::set_interrupt(const std::atomic<bool>* flag) { impl_->interrupt = flag; }

Result<std::vector<NodeStatus>> Client::ListNodes() {
  msg::ClientEnvelope req;
  req.mutable_list_nodes_request();
  DFS_ASSIGN_OR_RETURN(MasterMessage reply, impl_->Call(std::move(req)));
  if (!reply.envelope.has_list_nodes_response()) return Status::ProtocolError("unexpected reply to list nodes");
  std::vector<NodeStatus> out;
  for (const auto& n : reply.envelope.list_nodes_response().nodes()) {
    NodeStatus s;
    s.id = n.id();
    s.address = n.address();
    s.alive = n.state() == msg::NodeInfo::ALIVE;
    s.capacity = n.stats().capacity();
    s.used = n.stats().used();
    s.available = n.stats().available();
    s.chunks = n.stats().chunks();
    s.streams_open = n.stats().streams_open();
    s.disk_failed = n.stats().disk_failed();
    s.disk_error = n.stats().disk_error();
    s.credit_in_use = n.stats().credit_in_use();
    s.credit_pool = n.stats().credit_pool();
    s.last_heartbeat_ms_ago = n.last_heartbeat_ms_ago();
    s.decommissioning = n.decommissioning();
    s.retired = n.retired();
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace dfs::client
