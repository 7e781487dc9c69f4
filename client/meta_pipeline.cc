#include "client/meta_pipeline.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <unordered_map>

#include "bus/request_client.h"
#include "client/client_impl.h"
#include "common/net.h"

namespace dfs::client {
namespace {

std::string UserName() {
  if (const passwd* pw = ::getpwuid(::geteuid()); pw != nullptr) return pw->pw_name;
  if (const char* u = std::getenv("USER"); u != nullptr) return u;
  return "nobody";
}

}  // namespace

struct MetaPipeline::Impl {
  struct Inflight {
    MetaRequest request;
    uint64_t lease_id = 0;  // create steps: the lease of the write in progress
  };
  std::unique_ptr<bus::Context> context;
  std::unique_ptr<bus::RequestClient<msg::ClientEnvelope>> rpc;
  std::string user;
  std::unordered_map<uint64_t, Inflight> inflight;

  Status Send(msg::ClientEnvelope env, Inflight state) {
    env.set_user(user);
    DFS_ASSIGN_OR_RETURN(uint64_t id, rpc->Send(std::move(env)));
    inflight.emplace(id, std::move(state));
    return Status::OK();
  }
};

MetaPipeline::MetaPipeline(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MetaPipeline::~MetaPipeline() = default;

Result<std::unique_ptr<MetaPipeline>> MetaPipeline::Connect(const ClientOptions& options) {
  auto impl = std::make_unique<Impl>();
  DFS_ASSIGN_OR_RETURN(HostAndPort master, ParseHostPort(options.master, 5550));
  impl->context = std::make_unique<bus::Context>();
  bus::SocketOptions so;
  so.linger_ms = 0;
  impl->rpc = std::make_unique<bus::RequestClient<msg::ClientEnvelope>>(*impl->context, TcpEndpoint(master.host, master.port), so,
                                                   bus::RetryPolicy{options.timeout, options.attempts});
  impl->user = UserName();
  msg::ClientEnvelope hello;
  hello.mutable_hello_request()->set_peer_name(options.name);
  auto r = impl->rpc->Call(std::move(hello));
  if (!r) return r.error().Prepend("cannot reach the master at " + options.master);
  return std::unique_ptr<MetaPipeline>(new MetaPipeline(std::move(impl)));
}

size_t MetaPipeline::in_flight() const { return impl_->inflight.size(); }

Status MetaPipeline::Submit(const MetaRequest& req) {
  msg::ClientEnvelope env;
  switch (req.op) {
    case MetaOp::kMkdir: env.mutable_mkdir_request()->set_path(req.path); break;
    case MetaOp::kStat: env.mutable_stat_request()->set_path(req.path); break;
    case MetaOp::kList: env.mutable_list_request()->set_path(req.path); break;
    case MetaOp::kRename:
      env.mutable_rename_request()->set_source(req.path);
      env.mutable_rename_request()->set_destination(req.path2);
      break;
    case MetaOp::kRmdir:
      env.mutable_delete_request()->set_path(req.path);
      env.mutable_delete_request()->set_directory(true);
      break;
    case MetaOp::kRemove: env.mutable_delete_request()->set_path(req.path); break;
    case MetaOp::kCreateEmpty:
    case MetaOp::kCreateOneChunk:
      env.mutable_create_file_request()->set_path(req.path);
      env.mutable_create_file_request()->set_replication(req.replication);
      break;
  }
  return impl_->Send(std::move(env), Impl::Inflight{req, 0});
}

Result<std::vector<MetaCompletion>> MetaPipeline::Wait(std::chrono::milliseconds timeout) {
  std::vector<MetaCompletion> done;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    // Wait for the first completion (a multi-step create may take several
    // replies), then drain only what is already queued.
    auto wait = std::chrono::milliseconds(0);
    if (done.empty()) {
      wait = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (wait.count() < 0) wait = std::chrono::milliseconds(0);
    }
    DFS_ASSIGN_OR_RETURN(std::optional<MasterMessage> reply, impl_->rpc->Receive(wait));
    if (!reply) break;
    auto it = impl_->inflight.find(reply->envelope.request_id());
    if (it == impl_->inflight.end()) continue;
    Impl::Inflight state = std::move(it->second);
    impl_->inflight.erase(it);
    const uint64_t tag = state.request.tag;
    Status s = reply->defect;
    if (s.ok() && reply->envelope.has_error()) s = bus::FromProto(reply->envelope.error());
    if (s.ok() && (state.request.op == MetaOp::kCreateEmpty || state.request.op == MetaOp::kCreateOneChunk)) {
      if (reply->envelope.has_create_file_response()) {
        state.lease_id = reply->envelope.create_file_response().lease_id();
        msg::ClientEnvelope next;
        if (state.request.op == MetaOp::kCreateEmpty) {
          next.mutable_complete_file_request()->set_lease_id(state.lease_id);
        } else {
          next.mutable_allocate_chunk_request()->set_lease_id(state.lease_id);
        }
        s = impl_->Send(std::move(next), std::move(state));
        if (s.ok()) continue;
      } else if (reply->envelope.has_allocate_chunk_response()) {
        // The bytes would stream to the pipeline here; the metadata is what is measured.
        const auto& a = reply->envelope.allocate_chunk_response();
        msg::ClientEnvelope next;
        auto* c = next.mutable_complete_file_request();
        c->set_lease_id(state.lease_id);
        auto* ci = c->add_chunks();
        ci->set_id(a.chunk_id());
        ci->set_version(a.version());
        ci->set_size(state.request.size);
        c->set_size(state.request.size);
        s = impl_->Send(std::move(next), std::move(state));
        if (s.ok()) continue;
      }
    }
    done.push_back({tag, std::move(s)});
  }
  return done;
}

}  // namespace dfs::client
