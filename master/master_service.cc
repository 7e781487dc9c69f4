#include "master/master_service.h"

#include <spdlog/spdlog.h>

namespace dfs::master {
namespace {

Catalog::Options CatalogOptions(const MasterOptions& o, Env* env) {
  Catalog::Options c;
  c.dir = o.dir;
  c.checkpoint_every_records = o.checkpoint_every_records;
  c.retry_cache_bytes = o.retry_cache_bytes;
  c.env = env;
  c.fault_crash_during_checkpoint = o.fault_crash_during_checkpoint;
  c.fault_crash_after_journal_append = o.fault_crash_after_journal_append;
  return c;
}

WriteCoordinator::Options WriteOptions(const MasterOptions& o) {
  WriteCoordinator::Options w;
  w.replication = o.replication;
  w.chunk_size = o.chunk_size;
  w.lease_time = o.lease_time;
  w.verify_replicas = !o.unverified_writes;
  w.min_replicas = o.min_replicas;
  return w;
}

Repairer::Options RepairOptions(const MasterOptions& o) {
  Repairer::Options r;
  r.writes_per_node = o.repair_writes_per_node;
  r.writes_per_busy_node = o.repair_writes_per_busy_node;
  r.reads_per_node = o.repair_reads_per_node;
  r.max_copies = o.repair_max_copies;
  r.holdoff = o.repair_holdoff;
  return r;
}

}  // namespace

MasterService::MasterService(const MasterOptions& options, const NodeRegistry& registry, bus::Outbox& clients,
                             Env* env)
    : options_(options),
      registry_(registry),
      catalog_(CatalogOptions(options, env), clients),
      chunks_(catalog_.ns(), registry, RepairOptions(options)),
      dispatcher_(catalog_) {
  chunks_.set_free_grace(options.free_grace);
  chunks_.set_balance_threshold(options.balance_threshold);
}

MasterService::~MasterService() = default;

Status MasterService::Open() {
  DFS_RETURN_IF_ERROR(catalog_.Open());
  if (options_.unverified_writes) spdlog::warn("--unsafe-unverified-writes: writes complete without replica checks");
  writes_ = std::make_unique<WriteCoordinator>(WriteOptions(options_), catalog_, chunks_, registry_);
  namespace_ = std::make_unique<NamespaceRequests>(catalog_, chunks_, *writes_, registry_);
  AddHandlers();
  return Status::OK();
}

void MasterService::Tick(Clock::time_point now) {
  catalog_.Tick(now);
  if (writes_) writes_->Tick(now);
  chunks_.Tick(now);
}

void MasterService::AddHandlers() {
  using E = msg::ClientEnvelope;
  using K = Dispatcher::Kind;
  auto& d = dispatcher_;
  auto& ns = *namespace_;
  auto& w = *writes_;
  auto& c = chunks_;
  // Client port: the namespace.
  d.Add(E::kMkdirRequest, K::kMutation, [&ns](auto& m, auto&, auto) { ns.Mkdir(m); });
  d.Add(E::kDeleteRequest, K::kMutation, [&ns](auto& m, auto&, auto) { ns.Delete(m); });
  d.Add(E::kRenameRequest, K::kMutation, [&ns](auto& m, auto&, auto) { ns.Rename(m); });
  d.Add(E::kCopyRequest, K::kMutation, [&ns](auto& m, auto&, auto) { ns.Copy(m); });
  d.Add(E::kSetReplicationRequest, K::kMutation, [&ns](auto& m, auto&, auto) { ns.SetReplication(m); });
  d.Add(E::kStatRequest, K::kQuery, [&ns](auto& m, auto& out, auto) { ns.Stat(m, out); });
  d.Add(E::kListRequest, K::kQuery, [&ns](auto& m, auto& out, auto) { ns.List(m, out); });
  d.Add(E::kDiskUsageRequest, K::kQuery, [&ns](auto& m, auto& out, auto) { ns.DiskUsage(m, out); });
  d.Add(E::kStatFsRequest, K::kQuery, [&ns](auto& m, auto& out, auto) { ns.StatFs(m, out); });
  // Client port: writes.
  d.Add(E::kCreateFileRequest, K::kMutation, [&w](auto& m, auto&, auto now) { w.CreateFile(m, now); });
  d.Add(E::kAllocateChunkRequest, K::kMutation,
        [&w](auto& m, auto&, auto now) { w.AllocateChunk(m, now); });
  d.Add(E::kCompleteFileRequest, K::kMutation,
        [&w](auto& m, auto&, auto now) { w.CompleteFile(m, now); });
  d.Add(E::kAbandonFileRequest, K::kMutation, [&w](auto& m, auto&, auto) { w.AbandonFile(m); });
  d.Add(E::kRenewLeaseRequest, K::kQuery,
        [&w](auto& m, auto& out, auto now) { w.RenewLease(m, out, now); });
  // Client port: reads.
  d.Add(E::kLocateRequest, K::kQuery, [&c](auto& m, auto& out, auto) { c.Locate(m, out); });
  d.Add(E::kReportBadReplicaRequest, K::kQuery,
        [&c](auto& m, auto& out, auto) { c.ReportBadReplica(m, out); });
  d.Add(E::kFsckRequest, K::kQuery, [&c](auto& m, auto& out, auto now) { c.Fsck(m, out, now); });
  d.Add(E::kBalancerRequest, K::kQuery, [&c](auto& m, auto& out, auto now) { c.BalancerStatus(m, out, now); });
  // Node port: what the nodes hold.
  d.Add(msg::NodeEnvelope::kChunkReportRequest, [&c, &w](auto& m, auto& out, auto now) {
    c.HandleReport(m, out);
    w.OnReport(now);
  });
  d.Add(msg::NodeEnvelope::kReplicateChunkResponse, [&c](auto& m, auto&, auto) { c.HandleReplicated(m); });
}

}  // namespace dfs::master
