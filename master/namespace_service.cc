#include "master/namespace_service.h"

#include <signal.h>
#include <sys/prctl.h>
#include <cstdlib>
#include <cstring>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "common/random_id.h"
#include "master/checkpoint.h"

namespace dfs::master {
namespace {

// Every chunk is written once, as version 1; versions are there for in-place
// appends and repairs to come.
constexpr uint32_t kChunkVersion = 1;
// Chunk sizes fit the chunk table's 32-bit size field with room to spare.
constexpr uint64_t kMaxChunkSize = 2ull << 30;
// Chunk ids are reserved in blocks: one journal record per million chunks.
constexpr uint64_t kChunkIdBlock = 1 << 20;
// Directory listings go in pages of this many entries (about 60 KiB).
constexpr uint32_t kListPage = 1000;
constexpr uint32_t kMaxListPage = 10000;

int64_t UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool IsMutation(msg::Envelope::BodyCase c) {
  switch (c) {
    case msg::Envelope::kMkdirRequest:
    case msg::Envelope::kDeleteRequest:
    case msg::Envelope::kRenameRequest:
    case msg::Envelope::kCopyRequest:
    case msg::Envelope::kCreateFileRequest:
    case msg::Envelope::kAllocateChunkRequest:
    case msg::Envelope::kCompleteFileRequest:
    case msg::Envelope::kAbandonFileRequest:
      return true;
    default:
      return false;
  }
}

bool IsQuery(msg::Envelope::BodyCase c) {
  switch (c) {
    case msg::Envelope::kStatRequest:
    case msg::Envelope::kListRequest:
    case msg::Envelope::kDiskUsageRequest:
    case msg::Envelope::kStatFsRequest:
    case msg::Envelope::kRenewLeaseRequest:
    case msg::Envelope::kLocateRequest:
    case msg::Envelope::kReportBadReplicaRequest:
      return true;
    default:
      return false;
  }
}

// What the retry cache keeps of an answer: the body type and the path; a
// retry gets the entry described afresh (Redescribe), which keeps the cache
// small and the answer true to the namespace as it is now.
msg::Envelope CompactAnswer(const msg::Envelope& full) {
  msg::Envelope e = full;
  auto strip = [](msg::FileInfo* info) {
    msg::FileInfo slim;
    slim.set_path(info->path());
    slim.set_type(info->type());
    *info = std::move(slim);
  };
  if (e.has_mkdir_response()) strip(e.mutable_mkdir_response()->mutable_info());
  if (e.has_copy_response()) strip(e.mutable_copy_response()->mutable_info());
  if (e.has_complete_file_response()) strip(e.mutable_complete_file_response()->mutable_info());
  return e;
}

// The answer a retry gets for a mutation replayed from the journal (its
// original answer died with the previous master process).
msg::Envelope ReplayedAnswer(const msg::JournalRecord& r, const ApplyResult& a) {
  msg::Envelope e;
  auto info = [&](msg::FileInfo* fi, const std::string& path, bool dir) {
    fi->set_path(path);
    fi->set_type(dir ? msg::FileInfo::DIRECTORY : msg::FileInfo::FILE);
  };
  switch (r.op_case()) {
    case msg::JournalRecord::kMkdir: info(e.mutable_mkdir_response()->mutable_info(), r.mkdir().path(), true); break;
    case msg::JournalRecord::kDelete: {
      auto* d = e.mutable_delete_response();
      d->set_files(a.files);
      d->set_directories(a.directories);
      d->set_bytes(a.bytes);
      break;
    }
    case msg::JournalRecord::kRename: e.mutable_rename_response()->set_path(a.path); break;
    case msg::JournalRecord::kCopy: info(e.mutable_copy_response()->mutable_info(), a.path, false); break;
    case msg::JournalRecord::kInstallFile:
      info(e.mutable_complete_file_response()->mutable_info(), r.install_file().path(), false);
      break;
    default: break;
  }
  return e;
}

}  // namespace

NamespaceService::NamespaceService(Options options, const NodeRegistry& registry)
    : options_(std::move(options)), registry_(registry), rng_(RandomU64()) {}

NamespaceService::~NamespaceService() {
  if (checkpoint_pid_ > 0) {
    ::kill(checkpoint_pid_, SIGKILL);
    ::waitpid(checkpoint_pid_, nullptr, 0);
  }
  if (journal_) IgnoreError(journal_->Stop());  // Close() reported any error already
}

Status NamespaceService::Open() {
  if (!completions_.ok()) return Status::FromErrno(errno, "eventfd");
  const int64_t now_ms = UnixMillis();
  const auto now = Clock::now();
  uint64_t offset_records = 0;
  auto apply_checkpoint = [&](std::string_view bytes) -> Status {
    msg::CheckpointEntry e;
    if (!e.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return Status::Corruption("checkpoint entry does not parse");
    }
    return ns_.Import(e);
  };
  auto apply_journal = [&](std::string_view bytes) -> Status {
    ++offset_records;
    msg::JournalRecord r;
    if (!r.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return Status::Corruption(fmt::format("journal record {} does not parse", offset_records));
    }
    ApplyResult applied;
    Status s = ns_.Apply(r, &applied);
    if (!s.ok()) {
      return Status::Corruption(fmt::format("journal record {} does not apply: {}", offset_records, s.message()));
    }
    if (r.client_id() != 0 && now_ms - r.unix_ms() < 60'000) {
      retry_cache_.RecordDone({r.client_id(), r.request_id()}, ReplayedAnswer(r, applied), now);
    }
    return Status::OK();
  };
  DFS_ASSIGN_OR_RETURN(RecoveryStats rs,
                       RecoverMasterState(options_.dir, apply_checkpoint, apply_journal, options_.env));
  spdlog::info(
      "namespace recovered: {} files, {} directories; checkpoint gen={} ({} entries), {} journal records in {} "
      "file(s){}",
      ns_.file_count(), ns_.directory_count(), rs.checkpoint_generation, rs.checkpoint_records, rs.journal_records,
      rs.journals_replayed, rs.torn_tail ? fmt::format(", torn tail cut ({} bytes)", rs.dropped_bytes) : "");
  // Ids below the reserved limit may have been handed out before a crash.
  next_chunk_id_ = ns_.chunk_id_limit();
  JournalWriter::Options jo;
  jo.dir = options_.dir;
  jo.generation = rs.journal_generation;
  jo.env = options_.env;
  jo.fault_crash_after_records = options_.fault_crash_after_journal_append;
  DFS_ASSIGN_OR_RETURN(journal_, JournalWriter::Open(jo));
  checkpoint_generation_ = rs.journal_generation;
  return Status::OK();
}

JournalStats NamespaceService::journal_stats() const { return journal_ ? journal_->stats() : JournalStats{}; }

msg::JournalRecord NamespaceService::NewRecord(const bus::Message& m) const {
  msg::JournalRecord r;
  r.set_client_id(m.envelope.client_id());
  r.set_request_id(m.envelope.request_id());
  r.set_unix_ms(UnixMillis());
  r.set_user(m.envelope.user().empty() ? "nobody" : m.envelope.user());
  return r;
}

void NamespaceService::Redescribe(msg::Envelope& reply) const {
  msg::FileInfo* info = nullptr;
  if (reply.has_mkdir_response()) info = reply.mutable_mkdir_response()->mutable_info();
  if (reply.has_copy_response()) info = reply.mutable_copy_response()->mutable_info();
  if (reply.has_complete_file_response()) info = reply.mutable_complete_file_response()->mutable_info();
  if (info == nullptr || info->path().empty()) return;
  if (auto n = ns_.Lookup(info->path())) ns_.Describe(*n, false, reply.has_complete_file_response(), info);
}

void NamespaceService::Answer(bus::Socket& socket, const RetryCache::Key& key, const msg::Envelope& reply) {
  for (const std::string& route : retry_cache_.Finish(key, CompactAnswer(reply))) {
    bus::Message out;
    out.route = route;
    out.envelope = reply;
    out.envelope.set_request_id(key.request_id);
    out.envelope.set_client_id(key.client_id);
    Status s = socket.Send(std::move(out));
    if (!s.ok()) SPDLOG_DEBUG("answer req={} not sent: {}", key.request_id, s.ToString());
  }
}

void NamespaceService::AnswerError(bus::Socket& socket, const RetryCache::Key& key, const Status& error) {
  msg::Envelope reply;
  *reply.mutable_error() = bus::ToProto(error);
  Answer(socket, key, reply);
}

void NamespaceService::Journal(const msg::JournalRecord& record, Pending pending) {
  uint64_t token = next_token_++;
  pending_.emplace(token, std::move(pending));
  journal_->Append(record.SerializeAsString(), [this, token](Status s) { completions_.Push(token, std::move(s)); });
}

Status NamespaceService::OnCompletions(bus::Socket& socket) {
  for (auto& [token, status] : completions_.Drain()) {
    auto it = pending_.find(token);
    if (it == pending_.end()) continue;
    Pending p = std::move(it->second);
    pending_.erase(it);
    if (status.ok()) {
      Answer(socket, p.key, p.reply);
    } else {
      if (journal_failed_.ok()) {
        journal_failed_ = status;
        spdlog::critical("journal failed: {}; refusing further mutations", status.ToString());
      }
      AnswerError(socket, p.key, Status::IOError("the master's journal failed: " + status.message()));
    }
  }
  return journal_failed_;
}

void NamespaceService::Mutate(bus::Socket& socket, const RetryCache::Key& key, msg::JournalRecord record,
                              const std::function<void(const ApplyResult&, msg::Envelope&)>& fill) {
  ApplyResult result;
  Status s = ns_.Apply(record, &result);
  if (!s.ok()) return AnswerError(socket, key, s);
  msg::Envelope reply;
  fill(result, reply);
  ReleaseChunks(result.freed_chunks);
  if (!result.changed) return Answer(socket, key, reply);
  Journal(record, Pending{key, std::move(reply)});
}

void NamespaceService::ReleaseChunks(const std::vector<uint64_t>& chunks) {
  for (uint64_t id : chunks) {
    leased_chunks_.erase(id);
    msg::StoredChunk gone;
    gone.set_chunk_id(id);
    gone.set_version(kChunkVersion);
    for (uint32_t node : locations_.Drop(id)) locations_.QueueDelete(node, gone);
  }
}

bool NamespaceService::Handle(bus::Socket& socket, const bus::Message& m, Clock::time_point now) {
  auto body = m.envelope.body_case();
  if (IsQuery(body)) {
    HandleQuery(socket, m);
    return true;
  }
  if (!IsMutation(body)) return false;
  HandleMutation(socket, m, now);
  return true;
}

void NamespaceService::HandleMutation(bus::Socket& socket, const bus::Message& m, Clock::time_point now) {
  const RetryCache::Key key{m.envelope.client_id(), m.envelope.request_id()};
  msg::Envelope cached;
  switch (retry_cache_.Begin(key, m.route, now, &cached)) {
    case RetryCache::Lookup::kDone:
      Redescribe(cached);
      cached.set_request_id(key.request_id);
      cached.set_client_id(key.client_id);
      IgnoreError(bus::Reply(socket, m, std::move(cached)));  // a lost answer is retried again
      return;
    case RetryCache::Lookup::kPending: return;  // answered with the original
    case RetryCache::Lookup::kNew: break;
  }
  if (!journal_failed_.ok()) {
    return AnswerError(socket, key, Status::IOError("the master's journal failed; restart the master"));
  }
  const auto& env = m.envelope;
  switch (env.body_case()) {
    case msg::Envelope::kMkdirRequest: {
      auto r = NewRecord(m);
      auto* op = r.mutable_mkdir();
      op->set_path(env.mkdir_request().path());
      op->set_parents(env.mkdir_request().parents());
      op->set_mode(env.mkdir_request().mode() & 07777);
      op->set_first_inode(ns_.next_inode());
      return Mutate(socket, key, std::move(r), [this](const ApplyResult& a, msg::Envelope& out) {
        ns_.Describe(a.inode, false, false, out.mutable_mkdir_response()->mutable_info());
      });
    }
    case msg::Envelope::kDeleteRequest: {
      auto r = NewRecord(m);
      auto* op = r.mutable_delete_();
      op->set_path(env.delete_request().path());
      op->set_recursive(env.delete_request().recursive());
      op->set_directory(env.delete_request().directory());
      return Mutate(socket, key, std::move(r), [](const ApplyResult& a, msg::Envelope& out) {
        auto* d = out.mutable_delete_response();
        d->set_files(a.files);
        d->set_directories(a.directories);
        d->set_bytes(a.bytes);
      });
    }
    case msg::Envelope::kRenameRequest: {
      auto r = NewRecord(m);
      auto* op = r.mutable_rename();
      op->set_source(env.rename_request().source());
      op->set_destination(env.rename_request().destination());
      if (auto held = leases_.Holder(env.rename_request().source()); held != nullptr) {
        return AnswerError(socket, key,
                           Status::Busy(fmt::format("busy: {} is being written", env.rename_request().source())));
      }
      return Mutate(socket, key, std::move(r), [](const ApplyResult& a, msg::Envelope& out) {
        out.mutable_rename_response()->set_path(a.path);
      });
    }
    case msg::Envelope::kCopyRequest: {
      auto r = NewRecord(m);
      auto* op = r.mutable_copy();
      op->set_source(env.copy_request().source());
      op->set_destination(env.copy_request().destination());
      op->set_inode(ns_.next_inode());
      return Mutate(socket, key, std::move(r), [this](const ApplyResult& a, msg::Envelope& out) {
        ns_.Describe(a.inode, false, false, out.mutable_copy_response()->mutable_info());
      });
    }
    case msg::Envelope::kCreateFileRequest: return CreateFile(socket, m, key, now);
    case msg::Envelope::kAllocateChunkRequest: return AllocateChunk(socket, m, key, now);
    case msg::Envelope::kCompleteFileRequest: return CompleteFile(socket, m, key);
    case msg::Envelope::kAbandonFileRequest: {
      Lease* l = leases_.Find(env.abandon_file_request().lease_id());
      if (l != nullptr && l->client_id == env.client_id()) {
        Lease gone = leases_.Remove(l->id);
        ReleaseChunks(gone.chunks);
      }
      msg::Envelope reply;
      reply.mutable_abandon_file_response();
      return Answer(socket, key, reply);
    }
    default: return AnswerError(socket, key, Status::Internal("unhandled mutation"));
  }
}

void NamespaceService::CreateFile(bus::Socket& socket, const bus::Message& m, const RetryCache::Key& key,
                                  Clock::time_point now) {
  const auto& req = m.envelope.create_file_request();
  if (Status s = ns_.CheckCreate(req.path(), req.overwrite()); !s.ok()) return AnswerError(socket, key, s);
  if (const Lease* holder = leases_.Holder(req.path()); holder != nullptr) {
    return AnswerError(socket, key,
                       Status::Busy(fmt::format("busy: {} is being written by another client", req.path())));
  }
  uint32_t replication = req.replication() ? req.replication() : options_.replication;
  if (replication > 16) return AnswerError(socket, key, Status::InvalidArgument("replication must be 1 to 16"));
  uint64_t chunk_size = req.chunk_size() ? req.chunk_size() : options_.chunk_size;
  if (chunk_size < 4096 || chunk_size > kMaxChunkSize) {
    return AnswerError(socket, key, Status::InvalidArgument("chunk size must be between 4K and 2G"));
  }
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
  msg::Envelope reply;
  auto* r = reply.mutable_create_file_response();
  r->set_lease_id(added.id);
  r->set_lease_ms(static_cast<uint64_t>(options_.lease_time.count()));
  r->set_replication(replication);
  r->set_chunk_size(chunk_size);
  if (req.allocate_first()) {
    if (Status s = PlaceChunk(added, {}, now, r->mutable_first_chunk()); !s.ok()) {
      leases_.Remove(added.id);  // no chunk was taken: nothing to release
      return AnswerError(socket, key, s);
    }
  }
  AnswerAllocation(socket, m, key, std::move(reply));
}

Status NamespaceService::PlaceChunk(Lease& l, const std::vector<std::string>& exclude, Clock::time_point now,
                                    msg::AllocateChunkResponse* out) {
  auto pipeline = ChoosePipeline(Candidates(now), l.replication, l.chunk_size, exclude, rng_);
  if (!pipeline) return pipeline.error();
  const uint64_t chunk_id = next_chunk_id_++;
  l.chunks.push_back(chunk_id);
  leased_chunks_[chunk_id] = l.id;
  out->set_chunk_id(chunk_id);
  out->set_version(kChunkVersion);
  for (const auto& p : *pipeline) {
    auto* na = out->add_pipeline();
    na->set_id(p.id);
    na->set_address(p.address);
  }
  return Status::OK();
}

void NamespaceService::AnswerAllocation(bus::Socket& socket, const bus::Message& m, const RetryCache::Key& key,
                                        msg::Envelope reply) {
  if (next_chunk_id_ < ns_.chunk_id_limit()) return Answer(socket, key, reply);
  // Out of reserved ids: reserve the next block durably before anyone uses it.
  auto rec = NewRecord(m);
  // Not a request of its own: replay must not answer the allocation's retries.
  rec.set_client_id(0);
  rec.set_request_id(0);
  rec.mutable_reserve_ids()->set_chunk_id_limit(next_chunk_id_ + kChunkIdBlock);
  if (Status s = ns_.Apply(rec, nullptr); !s.ok()) return AnswerError(socket, key, s);
  Journal(rec, Pending{key, std::move(reply)});
}

void NamespaceService::AllocateChunk(bus::Socket& socket, const bus::Message& m, const RetryCache::Key& key,
                                     Clock::time_point now) {
  const auto& req = m.envelope.allocate_chunk_request();
  Lease* l = leases_.Find(req.lease_id());
  if (l == nullptr || l->client_id != m.envelope.client_id()) {
    return AnswerError(socket, key, Status::NotFound("write lease expired or unknown; write the file again"));
  }
  l->expires = now + options_.lease_time;
  std::vector<std::string> exclude(req.exclude_nodes().begin(), req.exclude_nodes().end());
  msg::Envelope reply;
  if (Status s = PlaceChunk(*l, exclude, now, reply.mutable_allocate_chunk_response()); !s.ok()) {
    return AnswerError(socket, key, s);
  }
  AnswerAllocation(socket, m, key, std::move(reply));
}

const std::vector<PlacementCandidate>& NamespaceService::Candidates(Clock::time_point now) {
  if (registry_.membership_version() != candidates_version_ || now - candidates_at_ > std::chrono::milliseconds(100)) {
    candidates_.clear();
    registry_.ForEachPlaceable([&](const NodeRegistry::Node& n) {
      candidates_.push_back({n.id, n.address, n.stats.capacity(), n.stats.available(), n.stats.credit_in_use(),
                             n.stats.credit_pool()});
    });
    candidates_at_ = now;
    candidates_version_ = registry_.membership_version();
  }
  return candidates_;
}

void NamespaceService::CompleteFile(bus::Socket& socket, const bus::Message& m, const RetryCache::Key& key) {
  const auto& req = m.envelope.complete_file_request();
  Lease* l = leases_.Find(req.lease_id());
  if (l == nullptr || l->client_id != m.envelope.client_id()) {
    return AnswerError(socket, key, Status::NotFound("write lease expired or unknown; write the file again"));
  }
  if (l->spare()) {
    // The file is named only now: the checks CreateFile makes, then the
    // spare becomes the lease on that path (a parked retry finds it so).
    Status s = req.path().empty() ? Status::InvalidArgument("a spare lease needs the file's path to complete")
                                  : ns_.CheckCreate(req.path(), req.overwrite());
    if (s.ok() && leases_.Holder(req.path()) != nullptr) {
      s = Status::Busy(fmt::format("busy: {} is being written by another client", req.path()));
    }
    if (!s.ok()) {
      Lease gone = leases_.Remove(l->id);
      ReleaseChunks(gone.chunks);
      return AnswerError(socket, key, s);
    }
    l->overwrite = req.overwrite();
    l->user = m.envelope.user();
    leases_.Claim(*l, req.path());
  } else if (!req.path().empty() && req.path() != l->path) {
    return AnswerError(socket, key, Status::InvalidArgument(fmt::format(
                                        "the write lease is on {}, not on {}", l->path, req.path())));
  }
  uint64_t total = 0;
  for (const auto& c : req.chunks()) {
    if (c.size() > l->chunk_size) {
      return AnswerError(socket, key, Status::InvalidArgument(fmt::format(
                                          "chunk {} has {} bytes, more than the chunk size {}", c.id(), c.size(),
                                          l->chunk_size)));
    }
    if (std::find(l->chunks.begin(), l->chunks.end(), c.id()) == l->chunks.end()) {
      return AnswerError(socket, key,
                         Status::InvalidArgument(fmt::format("chunk {} was not allocated to this write", c.id())));
    }
    total += c.size();
  }
  if (total != req.size()) {
    return AnswerError(socket, key,
                       Status::InvalidArgument(fmt::format("chunk sizes add up to {}, not {}", total, req.size())));
  }
  if (options_.verify_replicas) {
    Status v = VerifyReplicas(req);
    if (v.code() == Code::kUnavailable) {
      // A replica's report is still on its way: answer once it arrives.
      bool already = std::any_of(parked_.begin(), parked_.end(), [&](const Parked& p) {
        return p.request.envelope.client_id() == key.client_id && p.request.envelope.request_id() == key.request_id;
      });
      if (!already) {
        bus::Message copy;
        copy.route = m.route;
        copy.envelope = m.envelope;
        parked_.push_back({std::move(copy), Clock::now() + options_.report_wait});
      }
      return;
    }
    if (!v.ok()) {
      // Never commit a chunk the replicas disagree on: the write fails and
      // its chunks go (the client writes it again).
      Lease bad = leases_.Remove(l->id);
      ReleaseChunks(bad.chunks);
      return AnswerError(socket, key, v);
    }
  }
  Lease lease = leases_.Remove(l->id);
  for (const auto& c : req.chunks()) {
    leased_chunks_.erase(c.id());
    locations_.TakePending(c.id());
  }
  auto r = NewRecord(m);
  r.set_user(lease.user.empty() ? r.user() : lease.user);
  auto* op = r.mutable_install_file();
  op->set_path(lease.path);
  op->set_inode(ns_.next_inode());
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
    bool used = std::any_of(req.chunks().begin(), req.chunks().end(), [&](const auto& c) { return c.id() == id; });
    if (!used) unused.push_back(id);
  }
  ReleaseChunks(unused);
  std::optional<msg::CreateFileResponse> spare;
  if (req.want_spare()) spare = NewSpare(lease, Clock::now());
  Mutate(socket, key, std::move(r), [this, spare = std::move(spare)](const ApplyResult& a, msg::Envelope& out) {
    auto* done = out.mutable_complete_file_response();
    ns_.Describe(a.inode, false, true, done->mutable_info());
    if (spare) *done->mutable_spare() = *spare;
  });
}

std::optional<msg::CreateFileResponse> NamespaceService::NewSpare(const Lease& like, Clock::time_point now) {
  // Only from ids reserved already: reserving more takes a journal write,
  // which a spare is not worth (the next CreateFile makes it).
  if (next_chunk_id_ >= ns_.chunk_id_limit()) return std::nullopt;
  Lease l;
  l.id = RandomU64() | 1;
  l.client_id = like.client_id;
  l.user = like.user;
  l.replication = like.replication;
  l.chunk_size = like.chunk_size;
  l.expires = now + options_.lease_time;
  Lease& added = leases_.Add(std::move(l));
  msg::CreateFileResponse r;
  if (Status s = PlaceChunk(added, {}, now, r.mutable_first_chunk()); !s.ok()) {
    leases_.Remove(added.id);  // no chunk was taken
    return std::nullopt;
  }
  r.set_lease_id(added.id);
  r.set_lease_ms(static_cast<uint64_t>(options_.lease_time.count()));
  r.set_replication(added.replication);
  r.set_chunk_size(added.chunk_size);
  return r;
}

void NamespaceService::HandleQuery(bus::Socket& socket, const bus::Message& m) {
  const auto& env = m.envelope;
  msg::Envelope reply;
  Status error;
  switch (env.body_case()) {
    case msg::Envelope::kStatRequest: {
      auto n = ns_.Lookup(env.stat_request().path());
      if (!n) {
        error = n.error();
        break;
      }
      auto* info = reply.mutable_stat_response()->mutable_info();
      ns_.Describe(*n, false, env.stat_request().with_chunks(), info);
      for (auto& c : *info->mutable_chunks()) AddReplicas(c.id(), &c);
      break;
    }
    case msg::Envelope::kListRequest: {
      const auto& req = env.list_request();
      auto n = ns_.Lookup(req.path());
      if (!n) {
        error = n.error();
        break;
      }
      auto* r = reply.mutable_list_response();
      if (!(*n)->is_dir) {  // ls of a file lists the file, as ls does
        ns_.Describe(*n, true, false, r->add_entries());
        break;
      }
      uint32_t limit = req.limit() ? std::min(req.limit(), kMaxListPage) : kListPage;
      const auto& children = *(*n)->children;
      auto it = req.start_after().empty() ? children.begin() : children.upper_bound(req.start_after());
      for (; it != children.end() && static_cast<uint32_t>(r->entries_size()) < limit; ++it) {
        ns_.Describe(it->second.get(), true, false, r->add_entries());
      }
      r->set_more(it != children.end());
      break;
    }
    case msg::Envelope::kDiskUsageRequest: {
      auto n = ns_.Lookup(env.disk_usage_request().path());
      if (!n) {
        error = n.error();
        break;
      }
      UsageTotals t = ns_.Usage(*n);
      auto* r = reply.mutable_disk_usage_response();
      r->set_files(t.files);
      r->set_directories(t.directories);
      r->set_bytes(t.bytes);
      r->set_stored_bytes(t.stored_bytes);
      break;
    }
    case msg::Envelope::kStatFsRequest: {
      auto* r = reply.mutable_stat_fs_response();
      for (const auto& n : registry_.List(Clock::now())) {
        if (n.state() == msg::NodeInfo::ALIVE) {
          r->set_nodes_alive(r->nodes_alive() + 1);
          r->set_capacity(r->capacity() + n.stats().capacity());
          r->set_used(r->used() + n.stats().used());
          r->set_available(r->available() + n.stats().available());
        } else {
          r->set_nodes_dead(r->nodes_dead() + 1);
        }
      }
      r->set_files(ns_.file_count());
      r->set_directories(ns_.directory_count());
      r->set_chunks(ns_.chunk_count());
      break;
    }
    case msg::Envelope::kLocateRequest: return Locate(socket, m);
    case msg::Envelope::kReportBadReplicaRequest: {
      const auto& bad = env.report_bad_replica_request();
      spdlog::warn("client reports chunk={} bad on node={}: {}", bad.chunk_id(), bad.node_id(), bad.reason());
      // Stop offering it; the node's next full report brings it back if it
      // was a passing fault. Repair from a good copy is the health work's.
      locations_.RemoveReplica(bad.chunk_id(), locations_.NodeIndex(bad.node_id()));
      reply.mutable_report_bad_replica_response();
      break;
    }
    case msg::Envelope::kRenewLeaseRequest: {
      auto* r = reply.mutable_renew_lease_response();
      for (uint64_t id : env.renew_lease_request().lease_ids()) {
        Lease* l = leases_.Find(id);
        if (l == nullptr || l->client_id != env.client_id()) {
          r->add_expired(id);
        } else {
          l->expires = Clock::now() + options_.lease_time;
        }
      }
      break;
    }
    default: error = Status::Internal("unhandled query");
  }
  if (!error.ok()) {
    IgnoreError(bus::ReplyError(socket, m, error));  // the requester retries a lost answer
    return;
  }
  IgnoreError(bus::Reply(socket, m, std::move(reply)));
}

void NamespaceService::Tick(Clock::time_point now) {
  retry_cache_.Expire(now);
  if (client_socket_ != nullptr) RetryParked(*client_socket_, now);
  for (uint64_t id : leases_.Expired(now)) {
    Lease gone = leases_.Remove(id);
    if (gone.spare()) {
      SPDLOG_DEBUG("spare lease {} lapsed unused; chunk(s) {} released", gone.id, fmt::join(gone.chunks, ","));
    } else {
      spdlog::info("lease on {} expired (client stopped renewing); {} chunk(s) released", gone.path,
                   gone.chunks.size());
    }
    ReleaseChunks(gone.chunks);
  }
  ReapCheckpoint();
  if (journal_ && checkpoint_pid_ < 0 &&
      journal_->stats().records - records_at_last_checkpoint_ >= options_.checkpoint_every_records) {
    StartCheckpoint();
  }
}

namespace {

// crash_after (Options::fault_crash_during_checkpoint, off when 0): the
// checkpoint writer _exit(85)s after that many entries, leaving a partial
// checkpoint.tmp, as a crash mid-write would.
Status ProduceCheckpoint(const Namespace& ns, RecordSink& sink, uint64_t crash_after) {
  std::string buf;
  uint64_t written = 0;
  return ns.Export([&](const msg::CheckpointEntry& e) {
    if (crash_after != 0 && ++written > crash_after) ::_exit(kFaultCrashExitCode);
    buf.clear();
    e.SerializeToString(&buf);
    return sink.Add(buf);
  });
}

}  // namespace

// A forked child writes the snapshot (copy-on-write memory: the parent keeps
// serving). The journal rotates first, in this same turn, so the snapshot is
// exactly everything in the journals before the new generation.
void NamespaceService::StartCheckpoint() {
  const uint64_t gen = journal_->generation() + 1;
  journal_->Rotate(gen, [](Status s) {
    if (!s.ok()) spdlog::error("journal rotation failed: {}", s.ToString());
  });
  records_at_last_checkpoint_ = journal_->stats().records;
  const std::string dir = options_.dir;
  const std::string ready = JournalPath(dir, gen);
  const pid_t master_pid = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    spdlog::error("cannot fork a checkpoint writer: {}", std::strerror(errno));
    return;
  }
  if (pid == 0) {
    // The child shares the master's listening sockets and folder lock; it
    // must never outlive the master, or a restarted master could not bind or
    // lock until it finished.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != master_pid) ::_exit(1);  // the master died before prctl took effect
    // Child: only this thread exists. Wait for the parent's writer to put
    // journal.<gen> in place (InstallCheckpoint requires it), then write.
    struct stat st;
    for (int i = 0; i < 30000 && ::stat(ready.c_str(), &st) != 0; ++i) ::usleep(1000);
    Status s = InstallCheckpoint(
        dir, gen,
        [this](RecordSink& sink) { return ProduceCheckpoint(ns_, sink, options_.fault_crash_during_checkpoint); },
        options_.env);
    ::_exit(s.ok() ? 0 : 1);
  }
  checkpoint_pid_ = pid;
  checkpoint_generation_ = gen;
  spdlog::info("checkpoint gen={} started (pid {})", gen, pid);
}

void NamespaceService::ReapCheckpoint() {
  if (checkpoint_pid_ < 0) return;
  int ws = 0;
  pid_t r = ::waitpid(checkpoint_pid_, &ws, WNOHANG);
  if (r != checkpoint_pid_) return;
  checkpoint_pid_ = -1;
  if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0) {
    spdlog::info("checkpoint gen={} written", checkpoint_generation_);
  } else {
    spdlog::error("checkpoint gen={} failed; the journals still hold everything", checkpoint_generation_);
  }
}

Status NamespaceService::Close() {
  if (!journal_) return Status::OK();
  if (checkpoint_pid_ > 0) {
    ::waitpid(checkpoint_pid_, nullptr, 0);
    checkpoint_pid_ = -1;
  }
  if (!journal_failed_.ok()) return journal_->Stop();
  const JournalStats js = journal_->stats();
  spdlog::info("journal: {} records in {} syncs ({:.1f} per sync, largest batch {})", js.records, js.syncs,
               js.syncs ? static_cast<double>(js.records) / static_cast<double>(js.syncs) : 0.0,
               js.max_batch_records);
  const uint64_t gen = journal_->generation() + 1;
  Status s = journal_->RotateAndWait(gen);
  if (s.ok()) s = journal_->Stop();
  if (s.ok()) {
    s = InstallCheckpoint(
        options_.dir, gen, [this](RecordSink& sink) { return ProduceCheckpoint(ns_, sink, 0); }, options_.env);
  }
  if (s.ok()) spdlog::info("checkpoint gen={} written on shutdown", gen);
  return s;
}

}  // namespace dfs::master
