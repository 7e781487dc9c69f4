// Client's write calls, metadata side: lease, chunk allocation, completion.
#include <fmt/format.h>

#include "client/client_impl.h"

namespace dfs::client {
namespace {

ChunkPlacement PlacementFromProto(const msg::AllocateChunkResponse& r) {
  ChunkPlacement out{r.chunk_id(), r.version(), {}};
  for (const auto& n : r.pipeline()) out.pipeline.push_back({n.id(), n.address()});
  return out;
}

WriteLease LeaseFromProto(const msg::CreateFileResponse& r, std::string path) {
  WriteLease lease{r.lease_id(), std::move(path), r.replication(), r.chunk_size(),
                   std::chrono::milliseconds(r.lease_ms()), {}};
  if (r.has_first_chunk()) lease.first_chunk = PlacementFromProto(r.first_chunk());
  return lease;
}

}  // namespace

Result<WriteLease> Client::BeginWrite(std::string_view path, const WriteOptions& options) {
  DFS_ASSIGN_OR_RETURN(std::string p, impl_->Resolve(path));
  impl_->small_run = options.small ? impl_->small_run + 1 : 0;
  if (options.small) impl_->small_options = {options.replication, options.chunk_size};
  if (auto s = std::exchange(impl_->spare, std::nullopt);
      s && options.small && options.allocate_first && s->replication == options.replication &&
      s->chunk_size == options.chunk_size && std::chrono::steady_clock::now() < s->use_by) {
    WriteLease lease = std::move(s->lease);
    lease.path = std::move(p);
    lease.overwrite = options.overwrite;
    lease.small = true;
    lease.spare = true;
    return lease;
  }
  msg::ClientEnvelope req;
  auto* c = req.mutable_create_file_request();
  c->set_path(p);
  c->set_overwrite(options.overwrite);
  c->set_replication(options.replication);
  c->set_chunk_size(options.chunk_size);
  c->set_allocate_first(options.allocate_first);
  c->set_size_hint(options.size_hint);
  DFS_ASSIGN_OR_RETURN(MasterMessage reply, impl_->Call(std::move(req)));
  if (!reply.envelope.has_create_file_response()) return Status::ProtocolError("unexpected reply to create");
  WriteLease lease = LeaseFromProto(reply.envelope.create_file_response(), std::move(p));
  lease.overwrite = options.overwrite;
  lease.small = options.small;
  return lease;
}

Result<ChunkPlacement> Client::AllocateChunk(const WriteLease& lease, uint32_t index,
                                             const std::vector<std::string>& exclude, uint64_t size_hint) {
  msg::ClientEnvelope req;
  auto* a = req.mutable_allocate_chunk_request();
  a->set_lease_id(lease.id);
  a->set_index(index);
  a->set_size_hint(size_hint);
  for (const auto& e : exclude) a->add_exclude_nodes(e);
  DFS_ASSIGN_OR_RETURN(MasterMessage reply, impl_->Call(std::move(req)));
  if (!reply.envelope.has_allocate_chunk_response()) return Status::ProtocolError("unexpected reply to allocate");
  return PlacementFromProto(reply.envelope.allocate_chunk_response());
}

Result<FileStatus> Client::CompleteWrite(const WriteLease& lease, const std::vector<WrittenChunk>& chunks,
                                         uint64_t size, uint32_t checksum) {
  msg::ClientEnvelope req;
  auto* c = req.mutable_complete_file_request();
  c->set_lease_id(lease.id);
  c->set_size(size);
  c->set_checksum(checksum);
  if (lease.spare) {
    c->set_path(lease.path);
    c->set_overwrite(lease.overwrite);
  }
  // The second small write in a row asks for the third's lease, and so on.
  c->set_want_spare(lease.small && impl_->small_run >= 2);
  for (const auto& w : chunks) {
    auto* ci = c->add_chunks();
    ci->set_id(w.id);
    ci->set_version(w.version);
    ci->set_size(w.size);
    ci->set_checksum(w.checksum);
    for (const auto& r : w.replicas) ci->add_replicas(r);
  }
  DFS_ASSIGN_OR_RETURN(MasterMessage reply, impl_->Call(std::move(req)));
  if (!reply.envelope.has_complete_file_response()) return Status::ProtocolError("unexpected reply to complete");
  const auto& r = reply.envelope.complete_file_response();
  if (r.has_spare() && r.spare().has_first_chunk()) {
    const auto [replication, chunk_size] = impl_->small_options;
    const auto use_by = std::chrono::steady_clock::now() + std::chrono::milliseconds(r.spare().lease_ms()) / 2;
    impl_->spare = Impl::Spare{LeaseFromProto(r.spare(), ""), replication, chunk_size, use_by};
  }
  return FileStatusFromProto(r.info());
}

Status Client::AbandonWrite(const WriteLease& lease) {
  msg::ClientEnvelope req;
  req.mutable_abandon_file_request()->set_lease_id(lease.id);
  return impl_->Call(std::move(req)).status();
}

Result<std::vector<uint64_t>> Client::RenewLeases(const std::vector<uint64_t>& lease_ids) {
  msg::ClientEnvelope req;
  for (uint64_t id : lease_ids) req.mutable_renew_lease_request()->add_lease_ids(id);
  DFS_ASSIGN_OR_RETURN(MasterMessage reply, impl_->Call(std::move(req)));
  const auto& r = reply.envelope.renew_lease_response();
  return std::vector<uint64_t>(r.expired().begin(), r.expired().end());
}

}  // namespace dfs::client
