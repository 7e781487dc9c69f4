#include "master/catalog.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/units.h"
#include "master/checkpoint.h"

namespace dfs::master {
namespace {

// What the retry cache keeps of an answer: the body type and the path; a
// retry gets the entry described afresh (Redescribe), which keeps the cache
// small and the answer true to the namespace as it is now.
msg::ClientEnvelope CompactAnswer(const msg::ClientEnvelope& full) {
  msg::ClientEnvelope e = full;
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
msg::ClientEnvelope ReplayedAnswer(const msg::JournalRecord& r, const ApplyResult& a) {
  msg::ClientEnvelope e;
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
    case msg::JournalRecord::kSetReplication: {
      auto* s = e.mutable_set_replication_response();
      s->set_files(a.files);
      s->set_chunks(a.changed_chunks.size());
      break;
    }
    case msg::JournalRecord::kCopy: info(e.mutable_copy_response()->mutable_info(), a.path, false); break;
    case msg::JournalRecord::kInstallFile:
      info(e.mutable_complete_file_response()->mutable_info(), r.install_file().path(), false);
      break;
    default: break;
  }
  return e;
}

}  // namespace

Catalog::Catalog(Options options, bus::Outbox& clients) : options_(std::move(options)), clients_(clients) {}

Catalog::~Catalog() {
  if (checkpoint_pid_ > 0) {
    ::kill(checkpoint_pid_, SIGKILL);
    ::waitpid(checkpoint_pid_, nullptr, 0);
  }
  if (journal_) IgnoreError(journal_->Stop());  // Close() reported any error already
}

Status Catalog::Open() {
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
  JournalWriter::Options jo;
  jo.dir = options_.dir;
  jo.generation = rs.journal_generation;
  jo.env = options_.env;
  jo.fault_crash_after_records = options_.fault_crash_after_journal_append;
  DFS_ASSIGN_OR_RETURN(journal_, JournalWriter::Open(jo));
  checkpoint_generation_ = rs.journal_generation;
  return Status::OK();
}

JournalStats Catalog::journal_stats() const { return journal_ ? journal_->stats() : JournalStats{}; }

msg::JournalRecord Catalog::NewRecord(const ClientMessage& m) const {
  msg::JournalRecord r;
  r.set_client_id(m.envelope.client_id());
  r.set_request_id(m.envelope.request_id());
  r.set_unix_ms(UnixMillis());
  r.set_user(m.envelope.user().empty() ? "nobody" : m.envelope.user());
  return r;
}

void Catalog::Redescribe(msg::ClientEnvelope& reply) const {
  msg::FileInfo* info = nullptr;
  if (reply.has_mkdir_response()) info = reply.mutable_mkdir_response()->mutable_info();
  if (reply.has_copy_response()) info = reply.mutable_copy_response()->mutable_info();
  if (reply.has_complete_file_response()) info = reply.mutable_complete_file_response()->mutable_info();
  if (info == nullptr || info->path().empty()) return;
  if (auto n = ns_.Lookup(info->path())) ns_.Describe(*n, false, reply.has_complete_file_response(), info);
}

void Catalog::Answer(const Key& key, const msg::ClientEnvelope& reply) {
  for (const std::string& route : retry_cache_.Finish(key, CompactAnswer(reply))) {
    ClientMessage out;
    out.route = route;
    out.envelope = reply;
    out.envelope.set_request_id(key.request_id);
    out.envelope.set_client_id(key.client_id);
    Status s = clients_.Send(std::move(out));
    if (!s.ok()) SPDLOG_DEBUG("answer req={} not sent: {}", key.request_id, s.ToString());
  }
}

void Catalog::AnswerError(const Key& key, const Status& error) {
  msg::ClientEnvelope reply;
  *reply.mutable_error() = bus::ToProto(error);
  Answer(key, reply);
}

void Catalog::Journal(const msg::JournalRecord& record, Pending pending) {
  uint64_t token = next_token_++;
  pending_.emplace(token, std::move(pending));
  journal_->Append(record.SerializeAsString(), [this, token](Status s) { completions_.Push(token, std::move(s)); });
}

Status Catalog::OnCompletions() {
  for (auto& [token, status] : completions_.Drain()) {
    auto it = pending_.find(token);
    if (it == pending_.end()) continue;
    Pending p = std::move(it->second);
    pending_.erase(it);
    if (status.ok()) {
      Answer(p.key, p.reply);
    } else {
      if (journal_failed_.ok()) {
        journal_failed_ = status;
        spdlog::critical("journal failed: {}; refusing further mutations", status.ToString());
      }
      AnswerError(p.key, Status::IOError("the master's journal failed: " + status.message()));
    }
  }
  return journal_failed_;
}

bool Catalog::Admit(const ClientMessage& m, Clock::time_point now) {
  const Key key{m.envelope.client_id(), m.envelope.request_id()};
  msg::ClientEnvelope cached;
  switch (retry_cache_.Begin(key, m.route, now, &cached)) {
    case RetryCache::Lookup::kDone:
      Redescribe(cached);
      IgnoreError(bus::Reply(clients_, m, std::move(cached)));  // a lost answer is retried again
      return false;
    case RetryCache::Lookup::kPending: return false;  // answered with the original
    case RetryCache::Lookup::kNew: break;
  }
  if (!journal_failed_.ok()) {
    AnswerError(key, Status::IOError("the master's journal failed; restart the master"));
    return false;
  }
  return true;
}

std::vector<uint64_t> Catalog::Mutate(const Key& key, msg::JournalRecord record, const Fill& fill) {
  ApplyResult result;
  if (Status s = ns_.Apply(record, &result); !s.ok()) {
    AnswerError(key, s);
    return {};
  }
  if (on_change_ && result.changed) TellChanged(record, result);
  msg::ClientEnvelope reply;
  fill(result, reply);
  if (!result.changed) {
    Answer(key, reply);
  } else {
    Journal(record, Pending{key, std::move(reply)});
  }
  return std::move(result.freed_chunks);
}

void Catalog::TellChanged(const msg::JournalRecord& record, const ApplyResult& result) const {
  switch (record.op_case()) {
    case msg::JournalRecord::kDelete: return on_change_(record.delete_().path());
    case msg::JournalRecord::kRename:
      on_change_(record.rename().source());
      return on_change_(result.path);
    case msg::JournalRecord::kInstallFile:
      // A new file at a free path changes nothing a cache could hold.
      if (record.install_file().overwrite()) on_change_(record.install_file().path());
      return;
    default: return;
  }
}

void Catalog::Commit(const Key& key, msg::JournalRecord record, msg::ClientEnvelope reply) {
  if (Status s = ns_.Apply(record, nullptr); !s.ok()) return AnswerError(key, s);
  Journal(record, Pending{key, std::move(reply)});
}

void Catalog::Tick(Clock::time_point now) {
  retry_cache_.Expire(now);
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
void Catalog::StartCheckpoint() {
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

void Catalog::ReapCheckpoint() {
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

Status Catalog::Close() {
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
