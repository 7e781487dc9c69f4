#include "master/write_coordinator.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "common/limits.h"
#include "common/random_id.h"

namespace dfs::master {
namespace {

// Chunk ids are reserved in blocks: one journal record per million chunks.
constexpr uint64_t kChunkIdBlock = 1 << 20;

Catalog::Key KeyOf(const ClientMessage& m) { return {m.envelope.client_id(), m.envelope.request_id()}; }

Status LeaseUnknown() { return Status::NotFound("write lease expired or unknown; write the file again"); }

bool Uses(const msg::CompleteFileRequest& req, uint64_t chunk) {
  return std::any_of(req.chunks().begin(), req.chunks().end(), [&](const auto& c) { return c.id() == chunk; });
}

}  // namespace

WriteCoordinator::WriteCoordinator(Options options, Catalog& catalog, ChunkManager& chunks,
                                   const NodeRegistry& registry)
    : options_(std::move(options)),
      catalog_(catalog),
      chunks_(chunks),
      registry_(registry),
      // Ids below the reserved limit may have been handed out before a crash.
      next_chunk_id_(catalog.ns().chunk_id_limit()),
      rng_(RandomU64()) {}

void WriteCoordinator::CreateFile(const ClientMessage& m, Clock::time_point now) {
  const Key key = KeyOf(m);
  const auto& req = m.envelope.create_file_request();
  if (Status s = catalog_.ns().CheckCreate(req.path(), req.overwrite()); !s.ok()) {
    return catalog_.AnswerError(key, s);
  }
  if (Writing(req.path())) {
    return catalog_.AnswerError(
        key, Status::Busy(fmt::format("busy: {} is being written by another client", req.path())));
  }
  const uint32_t replication = req.replication() ? req.replication() : options_.replication;
  if (Status s = limits::CheckReplication(replication); !s.ok()) return catalog_.AnswerError(key, s);
  const uint64_t chunk_size = req.chunk_size() ? req.chunk_size() : options_.chunk_size;
  if (Status s = limits::CheckChunkSize(chunk_size); !s.ok()) return catalog_.AnswerError(key, s);
  Lease l;
  l.id = RandomU64() | 1;
  l.path = req.path();
  l.client_id = m.envelope.client_id();
  l.user = m.envelope.user();
  l.overwrite = req.overwrite();
  l.replication = replication;
  l.chunk_size = chunk_size;
  l.mode = req.mode() & 07777;
  l.expires = now + options_.lease_time;
  Lease& added = leases_.Add(std::move(l));
  msg::ClientEnvelope reply;
  auto* r = reply.mutable_create_file_response();
  r->set_lease_id(added.id);
  r->set_lease_ms(static_cast<uint64_t>(options_.lease_time.count()));
  r->set_replication(replication);
  r->set_chunk_size(chunk_size);
  if (req.allocate_first()) {
    if (Status s = PlaceChunk(added, {}, req.size_hint(), now, r->mutable_first_chunk()); !s.ok()) {
      leases_.Remove(added.id);  // no chunk was taken: nothing to release
      return catalog_.AnswerError(key, s);
    }
  }
  AnswerAllocation(m, std::move(reply));
}

Status WriteCoordinator::PlaceChunk(Lease& l, const std::vector<std::string>& exclude, uint64_t size_hint,
                                    Clock::time_point now, msg::AllocateChunkResponse* out) {
  const auto& candidates = Candidates(now);
  const uint64_t need = size_hint == 0 ? l.chunk_size : std::min(size_hint, l.chunk_size);
  const WriteLoad& load = chunks_.write_load();
  const LoadFactor factor = [&](const PlacementCandidate& c) { return load.Factor(c.node_index, now); };
  auto pipeline = ChoosePipeline(candidates, l.replication, need, exclude, rng_, factor);
  // Too few nodes for every replica (one died, stalled or is full): as many
  // as can take it, if enough. Not when the cluster never had enough nodes:
  // that replication is a mistake to be told of, not a repair to wait for.
  if (!pipeline && l.replication > options_.min_replicas && registry_.size() >= l.replication) {
    const auto eligible = static_cast<uint32_t>(std::count_if(candidates.begin(), candidates.end(), [&](const auto& c) {
      return c.available >= need && std::find(exclude.begin(), exclude.end(), c.id) == exclude.end();
    }));
    if (eligible >= options_.min_replicas) {
      pipeline = ChoosePipeline(candidates, eligible, need, exclude, rng_, factor);
      if (pipeline) {
        SPDLOG_DEBUG("lease={} chunk placed on {} of {} replicas: no more nodes can take it", l.id, eligible,
                     l.replication);
      }
    }
  }
  if (!pipeline) return pipeline.error();
  const uint64_t chunk_id = next_chunk_id_++;
  l.chunks.push_back(chunk_id);
  if (spdlog::should_log(spdlog::level::debug)) {
    std::string f;
    for (const auto& c : candidates) f += fmt::format(" {}={:.3f}", c.id, load.Factor(c.node_index, now));
    spdlog::debug("chunk={} placed on {} first (load:{})", chunk_id, (*pipeline)[0].id, f);
  }
  std::vector<std::string> ids;
  ids.reserve(pipeline->size());
  for (const auto& p : *pipeline) ids.push_back(p.id);
  chunks_.TrackWrite(chunk_id, l.id, ids, need, now);
  out->set_chunk_id(chunk_id);
  out->set_version(kChunkVersion);
  for (const auto& p : *pipeline) {
    auto* na = out->add_pipeline();
    na->set_id(p.id);
    na->set_address(p.address);
  }
  return Status::OK();
}

void WriteCoordinator::AnswerAllocation(const ClientMessage& m, msg::ClientEnvelope reply) {
  const Key key = KeyOf(m);
  if (next_chunk_id_ < catalog_.ns().chunk_id_limit()) return catalog_.Answer(key, reply);
  // Out of reserved ids: reserve the next block durably before anyone uses it.
  auto rec = catalog_.NewRecord(m);
  // Not a request of its own: replay must not answer the allocation's retries.
  rec.set_client_id(0);
  rec.set_request_id(0);
  rec.mutable_reserve_ids()->set_chunk_id_limit(next_chunk_id_ + kChunkIdBlock);
  catalog_.Commit(key, std::move(rec), std::move(reply));
}

void WriteCoordinator::AllocateChunk(const ClientMessage& m, Clock::time_point now) {
  const auto& req = m.envelope.allocate_chunk_request();
  Lease* l = leases_.Find(req.lease_id());
  if (l == nullptr || l->client_id != m.envelope.client_id()) return catalog_.AnswerError(KeyOf(m), LeaseUnknown());
  l->expires = now + options_.lease_time;
  std::vector<std::string> exclude(req.exclude_nodes().begin(), req.exclude_nodes().end());
  msg::ClientEnvelope reply;
  if (Status s = PlaceChunk(*l, exclude, req.size_hint(), now, reply.mutable_allocate_chunk_response()); !s.ok()) {
    return catalog_.AnswerError(KeyOf(m), s);
  }
  AnswerAllocation(m, std::move(reply));
}

const std::vector<PlacementCandidate>& WriteCoordinator::Candidates(Clock::time_point now) {
  if (registry_.membership_version() != candidates_version_ || now - candidates_at_ > std::chrono::milliseconds(100)) {
    candidates_.clear();
    registry_.ForEachPlaceable([&](const NodeRegistry::Node& n) {
      candidates_.push_back({n.id, n.address, n.stats.capacity(), n.stats.available(), n.stats.credit_in_use(),
                             n.stats.credit_pool(), chunks_.NodeIndex(n.id)});
    });
    chunks_.write_load().Refresh();
    candidates_at_ = now;
    candidates_version_ = registry_.membership_version();
  }
  return candidates_;
}

Status WriteCoordinator::CheckCompletion(const ClientMessage& m, Lease& l) {
  const auto& req = m.envelope.complete_file_request();
  if (l.spare()) {
    // The file is named only now: the checks CreateFile makes, then the
    // spare becomes the lease on that path (a parked retry finds it so).
    Status s = req.path().empty() ? Status::InvalidArgument("a spare lease needs the file's path to complete")
                                  : catalog_.ns().CheckCreate(req.path(), req.overwrite());
    if (s.ok() && Writing(req.path())) {
      s = Status::Busy(fmt::format("busy: {} is being written by another client", req.path()));
    }
    if (!s.ok()) {
      DropLease(l.id);
      return s;
    }
    l.overwrite = req.overwrite();
    l.user = m.envelope.user();
    leases_.Claim(l, req.path());
  } else if (!req.path().empty() && req.path() != l.path) {
    return Status::InvalidArgument(fmt::format("the write lease is on {}, not on {}", l.path, req.path()));
  }
  uint64_t total = 0;
  for (const auto& c : req.chunks()) {
    if (c.size() > l.chunk_size) {
      return Status::InvalidArgument(
          fmt::format("chunk {} has {} bytes, more than the chunk size {}", c.id(), c.size(), l.chunk_size));
    }
    if (std::find(l.chunks.begin(), l.chunks.end(), c.id()) == l.chunks.end()) {
      return Status::InvalidArgument(fmt::format("chunk {} was not allocated to this write", c.id()));
    }
    total += c.size();
  }
  if (total != req.size()) {
    return Status::InvalidArgument(fmt::format("chunk sizes add up to {}, not {}", total, req.size()));
  }
  return Status::OK();
}

void WriteCoordinator::CompleteFile(const ClientMessage& m, Clock::time_point now) {
  const Key key = KeyOf(m);
  const auto& req = m.envelope.complete_file_request();
  Lease* l = leases_.Find(req.lease_id());
  if (l == nullptr || l->client_id != m.envelope.client_id()) return catalog_.AnswerError(key, LeaseUnknown());
  if (Status s = CheckCompletion(m, *l); !s.ok()) return catalog_.AnswerError(key, s);
  if (options_.verify_replicas) {
    Status v = chunks_.VerifyReplicas(req);
    if (v.code() == Code::kUnavailable) {
      // A replica's report is still on its way: answer once it arrives.
      bool already = std::any_of(parked_.begin(), parked_.end(), [&](const Parked& p) {
        return p.request.envelope.client_id() == key.client_id && p.request.envelope.request_id() == key.request_id;
      });
      if (!already) {
        ClientMessage copy;
        copy.route = m.route;
        copy.envelope = m.envelope;
        parked_.push_back({std::move(copy), now + options_.report_wait});
      }
      return;
    }
    if (!v.ok()) {
      // Never commit a chunk the replicas disagree on: the write fails and
      // its chunks go (the client writes it again).
      DropLease(l->id);
      return catalog_.AnswerError(key, v);
    }
  }
  Install(m, leases_.Remove(l->id), now);
}

void WriteCoordinator::Install(const ClientMessage& m, Lease lease, Clock::time_point now) {
  const auto& req = m.envelope.complete_file_request();
  for (const auto& c : req.chunks()) chunks_.CommitWrite(c.id());
  auto r = catalog_.NewRecord(m);
  r.set_user(lease.user.empty() ? r.user() : lease.user);
  auto* op = r.mutable_install_file();
  op->set_path(lease.path);
  op->set_inode(catalog_.ns().next_inode());
  op->set_mode(lease.mode);
  op->set_replication(lease.replication);
  op->set_size(req.size());
  op->set_checksum(req.checksum());
  op->set_overwrite(lease.overwrite);
  for (const auto& c : req.chunks()) {
    auto* ci = op->add_chunks();
    ci->set_id(c.id());
    ci->set_version(c.version());
    ci->set_size(c.size());
    ci->set_checksum(c.checksum());
  }
  // Chunks allocated but not part of the final version (failed pipelines).
  std::vector<uint64_t> unused;
  for (uint64_t id : lease.chunks) {
    if (!Uses(req, id)) unused.push_back(id);
  }
  chunks_.Release(unused);
  std::optional<msg::CreateFileResponse> spare;
  if (req.want_spare()) spare = NewSpare(lease, now);
  const Namespace& ns = catalog_.ns();
  chunks_.Release(catalog_.Mutate(KeyOf(m), std::move(r),
                                  [&ns, &spare](const ApplyResult& a, msg::ClientEnvelope& out) {
                                    auto* done = out.mutable_complete_file_response();
                                    ns.Describe(a.inode, false, true, done->mutable_info());
                                    if (spare) *done->mutable_spare() = std::move(*spare);
                                  }));
  // A replica that died during the write left its chunk short: repair's work.
  for (const auto& c : req.chunks()) chunks_.CheckReplication(c.id());
}

std::optional<msg::CreateFileResponse> WriteCoordinator::NewSpare(const Lease& like, Clock::time_point now) {
  // Only from ids reserved already: reserving more takes a journal write,
  // which a spare is not worth (the next CreateFile makes it).
  if (next_chunk_id_ >= catalog_.ns().chunk_id_limit()) return std::nullopt;
  Lease l;
  l.id = RandomU64() | 1;
  l.client_id = like.client_id;
  l.user = like.user;
  l.replication = like.replication;
  l.chunk_size = like.chunk_size;
  l.expires = now + options_.lease_time;
  Lease& added = leases_.Add(std::move(l));
  msg::CreateFileResponse r;
  // A spare is for a file of one frame at most.
  if (Status s = PlaceChunk(added, {}, limits::kMaxFrameSize, now, r.mutable_first_chunk()); !s.ok()) {
    leases_.Remove(added.id);  // no chunk was taken
    return std::nullopt;
  }
  r.set_lease_id(added.id);
  r.set_lease_ms(static_cast<uint64_t>(options_.lease_time.count()));
  r.set_replication(added.replication);
  r.set_chunk_size(added.chunk_size);
  return r;
}

void WriteCoordinator::AbandonFile(const ClientMessage& m) {
  Lease* l = leases_.Find(m.envelope.abandon_file_request().lease_id());
  if (l != nullptr && l->client_id == m.envelope.client_id()) DropLease(l->id);
  msg::ClientEnvelope reply;
  reply.mutable_abandon_file_response();
  catalog_.Answer(KeyOf(m), reply);
}

void WriteCoordinator::RenewLease(const ClientMessage& m, bus::Outbox& out, Clock::time_point now) {
  msg::ClientEnvelope reply;
  auto* r = reply.mutable_renew_lease_response();
  for (uint64_t id : m.envelope.renew_lease_request().lease_ids()) {
    Lease* l = leases_.Find(id);
    if (l == nullptr || l->client_id != m.envelope.client_id()) {
      r->add_expired(id);
    } else {
      l->expires = now + options_.lease_time;
    }
  }
  IgnoreError(bus::Reply(out, m, std::move(reply)));  // the requester retries a lost answer
}

void WriteCoordinator::DropLease(uint64_t id) {
  Lease gone = leases_.Remove(id);
  chunks_.Release(gone.chunks);
}

void WriteCoordinator::Tick(Clock::time_point now) {
  RetryParked(now);
  for (uint64_t id : leases_.Expired(now)) {
    const Lease* l = leases_.Find(id);
    if (l->spare()) {
      SPDLOG_DEBUG("spare lease {} lapsed unused; chunk(s) {} released", l->id, fmt::join(l->chunks, ","));
    } else {
      spdlog::info("lease on {} expired (client stopped renewing); {} chunk(s) released", l->path,
                   l->chunks.size());
    }
    DropLease(id);
  }
}

void WriteCoordinator::RetryParked(Clock::time_point now) {
  if (parked_.empty()) return;
  std::vector<Parked> waiting = std::exchange(parked_, {});
  for (auto& p : waiting) {
    const auto& req = p.request.envelope.complete_file_request();
    Status v = chunks_.VerifyReplicas(req);
    if (v.code() == Code::kUnavailable && now >= p.deadline) {
      if (leases_.Find(req.lease_id()) != nullptr) DropLease(req.lease_id());
      catalog_.AnswerError(KeyOf(p.request), Status::Unavailable(v.message() + " in time; write the file again"));
      continue;
    }
    if (v.code() == Code::kUnavailable) {
      parked_.push_back(std::move(p));
      continue;
    }
    CompleteFile(p.request, now);
  }
}

}  // namespace dfs::master
