// Client::Put: a whole file through the write pipelines. One event loop in
// the caller's thread keeps up to `parallel` chunks streaming, each to the
// pipeline the master chose for it, feeds every stream as its credit allows,
// renews the lease, and on a failed pipeline finds the culprit (named in an
// error, or silent to a ping), aborts the stream and resends the chunk to a
// pipeline without it. Nothing is visible until CompleteWrite; any final
// failure abandons the write.
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "datapath/pipeline_writer.h"
#include "client/client_impl.h"
#include "common/crc32c_combine.h"
#include "client/put_source.h"
#include "common/checksum.h"
#include "common/random_id.h"

namespace dfs::client {

using datapath::PipelineWriter;
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How long pipeline nodes get to answer a ping after a failure: a live
// node answers in well under a millisecond, but one whose writes are being
// throttled by the kernel's writeback can take a while.
constexpr milliseconds kProbeTimeout{1500};

struct ChunkTask {
  uint32_t index = 0;
  uint64_t file_offset = 0;
  uint64_t size = 0;     // sized source: the whole chunk; stream: bytes read so far
  bool sealed = false;   // every byte of the chunk is known
  // Streams only: the chunk's frames and their CRCs, kept for a resend.
  std::vector<bus::Frame> kept;
  std::vector<uint32_t> kept_crc;
  size_t next_kept = 0;  // next kept frame this attempt sends
  uint32_t crc = 0;      // of the bytes sent so far (sized) / read so far (stream)
  std::unique_ptr<PipelineWriter> writer;
  int attempts = 0;
  // A failed attempt waiting on pings: request id -> node not yet answered.
  bool probing = false;
  std::map<uint64_t, NodeRef> probes;
  Clock::time_point probe_deadline;
  // A node had no credit left (Busy): the chunk waits, then gets a new
  // placement. Not a failure, so it does not use up an attempt.
  bool backing_off = false;
  Clock::time_point retry_at;
  int busy_count = 0;
  Clock::time_point busy_since;
};

// Busy nodes (their credit pools full) are waited for this long in all.
constexpr std::chrono::seconds kBusyPatience{60};

class PutJob {
 public:
  PutJob(Client& client, Client::Impl& impl, WriteLease lease, PutSource& source, const PutOptions& options)
      : client_(client), impl_(impl), links_(impl.Links()), lease_(std::move(lease)), source_(source),
        options_(options) {
    sized_ = source_.size().has_value();
    if (sized_) {
      total_ = *source_.size();
      chunks_ = static_cast<uint32_t>((total_ + lease_.chunk_size - 1) / lease_.chunk_size);
    }
    const int p = std::max(1, options_.parallel);
    max_active_ = static_cast<size_t>(sized_ ? p : std::min(p, 2));
    writer_config_.frame_size = std::max<uint32_t>(options_.frame_size, 1);
    writer_config_.stall_timeout = options_.stall_timeout;
  }

  Result<FileStatus> Run();

 private:
  bool MoreChunks() const;
  // Starts the next chunk; false when a stream has no bytes for it yet.
  Result<bool> Launch(Clock::time_point now);
  Status Allocate(ChunkTask& t, Clock::time_point now);
  // Chunk `index`'s size when the file's is known (0: unknown), so the
  // master reserves only that on its nodes.
  uint64_t SizeHint(uint32_t index) const {
    const uint64_t start = uint64_t{index} * lease_.chunk_size;
    return sized_ && start < total_ ? std::min<uint64_t>(lease_.chunk_size, total_ - start) : 0;
  }
  Status Pump(ChunkTask& t, Clock::time_point now);
  Status Recover(ChunkTask& t, Clock::time_point now);
  Status FinishProbe(ChunkTask& t, Clock::time_point now);
  void Dispatch(const DataMessage& reply, Clock::time_point now);
  Clock::time_point NextWake() const;
  // A node failed: every stream through it fails now rather than at its
  // own stall timeout, and no later chunk is placed on it.
  void MarkBad(const std::string& node_id);
  // Calls options_.progress when its interval has passed: once per turn of
  // the loop at most, so the frames never pay for it.
  void MaybeReportProgress(Clock::time_point now);

  Client& client_;
  const Client::Impl& impl_;
  NodeLinks& links_;
  WriteLease lease_;
  PutSource& source_;
  PutOptions options_;
  PipelineWriter::Config writer_config_;
  bool sized_ = false;
  uint64_t total_ = 0;    // sized: the file's size
  uint32_t chunks_ = 0;   // sized: how many chunks
  bool eof_ = false;      // stream: exhausted
  bool waiting_for_input_ = false;  // stream: a frame is not all there yet
  size_t max_active_ = 1;
  uint32_t next_index_ = 0;
  uint64_t next_offset_ = 0;
  std::vector<std::unique_ptr<ChunkTask>> active_;
  std::vector<WrittenChunk> written_;
  std::set<std::string> bad_nodes_;  // failed during this put: never offered again
  uint64_t stored_bytes_ = 0;        // of chunks stored on every replica
  Clock::time_point next_progress_{};
};

bool PutJob::MoreChunks() const {
  if (sized_) return next_index_ < chunks_;
  return !eof_ && (active_.empty() || active_.back()->sealed);
}

Result<bool> PutJob::Launch(Clock::time_point now) {
  auto t = std::make_unique<ChunkTask>();
  t->index = next_index_;
  t->file_offset = next_offset_;
  if (sized_) {
    t->size = std::min<uint64_t>(lease_.chunk_size, total_ - next_offset_);
    t->sealed = true;
  } else {
    // Read the first frame before asking for a chunk: an exhausted stream
    // must not cost an allocation (nor leave an empty chunk behind).
    const auto n = static_cast<size_t>(std::min<uint64_t>(writer_config_.frame_size, lease_.chunk_size));
    DFS_ASSIGN_OR_RETURN(std::optional<bus::Frame> next, source_.ReadNext(n));
    if (!next) {
      waiting_for_input_ = true;
      return false;
    }
    bus::Frame f = std::move(*next);
    if (f.size() == 0) {
      eof_ = true;
      return false;
    }
    t->kept_crc.push_back(Crc32c(std::span<const std::byte>(f.data(), f.size())));
    t->crc = t->kept_crc.back();
    t->size = f.size();
    t->kept.push_back(std::move(f));
    t->sealed = t->size == lease_.chunk_size;
  }
  ++next_index_;
  next_offset_ += t->size;  // streams: advanced further as the chunk grows
  DFS_RETURN_IF_ERROR(Allocate(*t, now));
  active_.push_back(std::move(t));
  return true;
}

Status PutJob::Allocate(ChunkTask& t, Clock::time_point now) {
  ++t.attempts;
  std::vector<std::string> exclude(bad_nodes_.begin(), bad_nodes_.end());
  // Chunk 0's first attempt uses the placement that came with the lease.
  std::optional<ChunkPlacement> first = t.index == 0 ? std::exchange(lease_.first_chunk, std::nullopt) : std::nullopt;
  Result<ChunkPlacement> placed = first ? Result<ChunkPlacement>(std::move(*first))
                                        : client_.AllocateChunk(lease_, t.index, exclude, SizeHint(t.index));
  if (!placed && placed.error().code() == Code::kUnavailable && !exclude.empty()) {
    // Too few nodes once ours are excluded. Our verdicts are guesses (a
    // node slow to answer a ping under heavy writeback looks dead); the
    // master's liveness is authoritative, so place by that alone. A node
    // that really died fails this attempt again, and the master will have
    // declared it dead by the next.
    spdlog::warn("put {}: {}; placing chunk {} without excluding [{}]", lease_.path, placed.error().message(),
                 t.index, fmt::join(exclude, ","));
    placed = client_.AllocateChunk(lease_, t.index, {}, SizeHint(t.index));
  }
  if (!placed) return placed.error();
  ChunkPlacement placement = std::move(*placed);
  if (sized_) t.crc = 0;  // re-read and re-summed on every attempt
  t.next_kept = 0;
  t.writer = std::make_unique<PipelineWriter>(links_, std::move(placement), t.sealed ? t.size : 0, writer_config_);
  if (sized_ && t.size > 0 && t.size <= writer_config_.frame_size) {
    // Fits one frame: one round trip stores it, to every replica at once
    // unless the caller asked for the chain.
    DFS_ASSIGN_OR_RETURN(bus::Frame f, source_.ReadAt(t.file_offset, static_cast<size_t>(t.size)));
    t.crc = Crc32c(std::span<const std::byte>(f.data(), f.size()));
    t.writer->StartWhole(std::move(f), t.crc, now, options_.fan_out);
    return Status::OK();
  }
  t.writer->Start(now);
  return Status::OK();
}

Status PutJob::Pump(ChunkTask& t, Clock::time_point now) {
  PipelineWriter& w = *t.writer;
  for (;;) {
    if (w.failed() || w.finishing()) return Status::OK();
    if (t.sealed && w.bytes_sent() == t.size) {
      w.Finish(t.size, t.crc, now);
      return Status::OK();
    }
    if (!w.CanSend()) return Status::OK();
    if (sized_) {
      const uint64_t off = w.bytes_sent();
      const auto n = static_cast<size_t>(std::min<uint64_t>(writer_config_.frame_size, t.size - off));
      DFS_ASSIGN_OR_RETURN(bus::Frame f, source_.ReadAt(t.file_offset + off, n));
      const uint32_t crc = Crc32c(std::span<const std::byte>(f.data(), f.size()));
      t.crc = Crc32cCombine(t.crc, crc, f.size());
      w.SendFrame(std::move(f), crc, now);
      continue;
    }
    if (t.next_kept < t.kept.size()) {
      w.SendFrame(t.kept[t.next_kept].Share(), t.kept_crc[t.next_kept], now);
      ++t.next_kept;
      continue;
    }
    const auto n = static_cast<size_t>(std::min<uint64_t>(writer_config_.frame_size, lease_.chunk_size - t.size));
    DFS_ASSIGN_OR_RETURN(std::optional<bus::Frame> next, source_.ReadNext(n));
    if (!next) {
      waiting_for_input_ = true;
      return Status::OK();
    }
    bus::Frame f = std::move(*next);
    if (f.size() == 0) {
      t.sealed = true;
      eof_ = true;
      continue;
    }
    const uint32_t crc = Crc32c(std::span<const std::byte>(f.data(), f.size()));
    t.crc = Crc32cCombine(t.crc, crc, f.size());
    t.size += f.size();
    next_offset_ += f.size();
    t.sealed = t.size == lease_.chunk_size;
    t.kept.push_back(std::move(f));
    t.kept_crc.push_back(crc);
  }
}

// A failed attempt: blame the nodes the failure names; if it names none (a
// silent pipeline), ping every node of the pipeline and blame the silent.
Status PutJob::Recover(ChunkTask& t, Clock::time_point now) {
  PipelineWriter& w = *t.writer;
  w.Abort();
  if (w.failure().code() == Code::kBusy) {
    // Every pool of the pipeline is lent out to other streams: back off
    // (5 ms doubling to 0.5 s, jittered so waiters spread) and ask again.
    if (t.busy_count++ == 0) t.busy_since = now;
    if (now - t.busy_since > kBusyPatience) {
      return Status::Busy(fmt::format("chunk {}: the nodes stayed busy for {} s: {}", t.index,
                                      kBusyPatience.count(), w.failure().message()));
    }
    --t.attempts;
    const auto base = std::min(milliseconds(5 << std::min(t.busy_count, 7)), milliseconds(500));
    t.retry_at = now + base / 2 + milliseconds(RandomU64() % static_cast<uint64_t>(base.count() / 2 + 1));
    t.backing_off = true;
    SPDLOG_DEBUG("put {}: chunk {} busy ({}); again in {} ms", lease_.path, t.index, w.failure().message(),
                 std::chrono::duration_cast<milliseconds>(t.retry_at - now).count());
    return Status::OK();
  }
  spdlog::warn("put {}: chunk {} (id {}) failed on attempt {}: {}; suspects [{}]", lease_.path, t.index,
               w.placement().chunk_id, t.attempts, w.failure().message(), fmt::join(w.suspects(), ","));
  if (t.attempts >= options_.attempts_per_chunk) {
    return Status(w.failure().code(), fmt::format("chunk {} failed on {} pipelines; last: {}", t.index,
                                                  t.attempts, w.failure().message()));
  }
  if (!w.suspects().empty()) {
    const std::vector<std::string> suspects = w.suspects();  // MarkBad may touch this writer
    for (const auto& id : suspects) MarkBad(id);
    return Allocate(t, now);
  }
  for (const NodeRef& n : w.placement().pipeline) {
    msg::DataEnvelope ping;
    ping.mutable_ping_request()->set_peer_name("dfs-client probe");
    auto id = links_.Send(n.address, std::move(ping));
    if (id) t.probes.emplace(*id, n);
    else MarkBad(n.id);
  }
  t.probe_deadline = now + kProbeTimeout;
  t.probing = true;
  return Status::OK();
}

Status PutJob::FinishProbe(ChunkTask& t, Clock::time_point now) {
  for (const auto& [id, node] : t.probes) {
    spdlog::warn("put {}: node {} ({}) did not answer a ping; writing without it", lease_.path, node.id,
                 node.address);
    MarkBad(node.id);
    links_.Drop(node.address);  // stale frames must not reach it when it wakes
  }
  t.probes.clear();
  t.probing = false;
  return Allocate(t, now);
}

void PutJob::MarkBad(const std::string& node_id) {
  if (!bad_nodes_.insert(node_id).second) return;
  for (auto& t : active_) {
    if (t->writer && !t->probing && !t->backing_off) t->writer->FailThrough(node_id);
  }
}

void PutJob::Dispatch(const DataMessage& reply, Clock::time_point now) {
  const uint64_t id = reply.envelope.request_id();
  for (auto& t : active_) {
    if (t->probes.erase(id) > 0) return;  // it answered: alive
    if (t->writer && t->writer->Owns(id)) return t->writer->OnReply(reply, now);
  }
  // Late answers to aborted attempts, abort acknowledgements: nothing waits.
}

void PutJob::MaybeReportProgress(Clock::time_point now) {
  if (!options_.progress || now < next_progress_) return;
  next_progress_ = now + options_.progress_interval;
  Progress p;
  p.done = stored_bytes_;
  for (const auto& t : active_) {
    if (t->writer && !t->probing && !t->backing_off) p.done += t->writer->bytes_sent();
  }
  p.total = sized_ ? total_ : next_offset_;
  p.total_known = sized_;
  p.done = std::min(p.done, p.total);
  options_.progress(p);
}

Clock::time_point PutJob::NextWake() const {
  auto wake = Clock::time_point::max();
  for (const auto& t : active_) {
    if (t->probing) wake = std::min(wake, t->probes.empty() ? Clock::time_point::min() : t->probe_deadline);
    else if (t->backing_off) wake = std::min(wake, t->retry_at);
    else if (t->writer) wake = std::min(wake, t->writer->deadline());
  }
  return wake;
}

Result<FileStatus> PutJob::Run() {
  auto renew_every = std::max(milliseconds(100), lease_.lease_time / 3);
  auto renew_at = Clock::now() + renew_every;
  for (;;) {
    if (Status s = impl_.CheckInterrupt(); !s.ok()) {
      // The caller gave up (Ctrl-C): the nodes drop the streams now rather
      // than after their silence timeout; RunPut abandons the lease.
      for (auto& t : active_) {
        if (t->writer) t->writer->Abort();
      }
      return s;
    }
    auto now = Clock::now();
    waiting_for_input_ = false;
    while (active_.size() < max_active_ && MoreChunks()) {
      DFS_ASSIGN_OR_RETURN(bool launched, Launch(now));
      if (!launched) break;
    }
    for (size_t i = 0; i < active_.size();) {
      ChunkTask& t = *active_[i];
      if (t.probing) {
        if (t.probes.empty() || now >= t.probe_deadline) DFS_RETURN_IF_ERROR(FinishProbe(t, now));
        ++i;
        continue;
      }
      if (t.backing_off) {
        if (now >= t.retry_at) {
          t.backing_off = false;
          DFS_RETURN_IF_ERROR(Allocate(t, now));
        }
        ++i;
        continue;
      }
      if (!t.writer->failed()) DFS_RETURN_IF_ERROR(Pump(t, now));
      if (t.writer->failed()) {
        DFS_RETURN_IF_ERROR(Recover(t, now));
        ++i;
        continue;
      }
      if (t.writer->state() == PipelineWriter::State::kStored) {
        if (written_.size() <= t.index) written_.resize(t.index + 1);
        const ChunkPlacement& p = t.writer->placement();
        written_[t.index] = WrittenChunk{p.chunk_id, p.version, t.size, t.crc, t.writer->replicas()};
        stored_bytes_ += t.size;
        active_.erase(active_.begin() + static_cast<std::ptrdiff_t>(i));
        continue;
      }
      ++i;
    }
    MaybeReportProgress(now);
    if (active_.empty() && !MoreChunks()) break;
    if (now >= renew_at) {
      DFS_ASSIGN_OR_RETURN(std::vector<uint64_t> expired, client_.RenewLeases({lease_.id}));
      if (!expired.empty()) return Status::Busy("the write lease expired (the master did not hear from this client)");
      renew_at = now + renew_every;
    }
    // New chunks may start as soon as a stored one left a slot free.
    if (active_.size() < max_active_ && MoreChunks() && !waiting_for_input_) continue;
    auto wake = std::min(NextWake(), renew_at);
    auto wait = std::chrono::ceil<milliseconds>(wake - Clock::now());
    wait = std::clamp(wait, milliseconds(0), milliseconds(1000));
    const int input = waiting_for_input_ ? source_.wait_fd() : -1;
    DFS_ASSIGN_OR_RETURN(int handled, links_.Poll(
                                          wait, [&](const std::string&, DataMessage& m) { Dispatch(m, Clock::now()); },
                                          input));
    (void)handled;
    // Only after the queued answers are in: a long blocking read of the
    // input must not look like a silent pipeline.
    now = Clock::now();
    for (auto& t : active_) {
      if (!t->probing && !t->backing_off) t->writer->Tick(now);
    }
  }
  uint64_t size = 0;
  uint32_t crc = 0;
  for (const auto& c : written_) {
    crc = Crc32cCombine(crc, c.checksum, c.size);
    size += c.size;
  }
  DFS_ASSIGN_OR_RETURN(FileStatus done, client_.CompleteWrite(lease_, written_, size, crc));
  if (options_.progress) options_.progress(Progress{size, size, true});
  return done;
}

// The folder `path` (absolute, normalized) is in: "/" for "/a".
std::string ParentOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
}

// BeginWrite; with make_parents, a missing parent folder is made (mkdir -p)
// and the lease asked for again. Nothing is read from the source before
// this, so a stream loses nothing.
Result<WriteLease> BeginWriteMakingParents(Client& client, std::string_view remote, const WriteOptions& wo,
                                           const PutOptions& options) {
  Result<WriteLease> lease = client.BeginWrite(remote, wo);
  if (lease || !options.make_parents || lease.error().code() != Code::kNotFound) return lease;
  DFS_ASSIGN_OR_RETURN(std::string path, ResolvePath(remote, client.working_directory()));
  const std::string parent = ParentOf(path);
  if (parent == "/") return lease;
  DFS_RETURN_IF_ERROR(client.Mkdir(parent, /*parents=*/true).status());
  return client.BeginWrite(remote, wo);
}

}  // namespace

Result<FileStatus> RunPut(Client& client, Client::Impl& impl, PutSource& source, std::string_view remote,
                          const PutOptions& options) {
  WriteOptions wo{options.overwrite, options.replication, options.chunk_size, false};
  // A file with bytes gets its first chunk placed with the lease.
  wo.allocate_first = source.size().has_value() && *source.size() > 0;
  wo.small = wo.allocate_first && *source.size() <= options.frame_size;
  wo.size_hint = source.size().value_or(0);
  Result<FileStatus> r = Status::Internal("put: no attempt");
  WriteLease lease;
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto begun = BeginWriteMakingParents(client, remote, wo, options);
    if (!begun) {
      // Every error names the path (the first chunk is placed with the lease,
      // so "no node can take it" comes from here).
      const std::string& m = begun.error().message();
      if (m.find(remote) != std::string::npos) return begun.error();
      return Status(begun.error().code(), fmt::format("put {}: {}", remote, m));
    }
    lease = std::move(*begun);
    if (lease.chunk_size == 0) {
      IgnoreError(client.AbandonWrite(lease));  // the error below is what the user needs
      return Status::ProtocolError(fmt::format("put {}: the master granted a chunk size of 0", lease.path));
    }
    PutJob job(client, impl, lease, source, options);
    r = job.Run();
    if (r) return r;
    // Nothing partial may stay visible; an abandon that fails leaves the
    // lease to expire, which frees the path just the same.
    IgnoreError(client.AbandonWrite(lease));
    // A spare lease the master no longer knows (it restarted, say): once
    // more on a lease of its own, which BeginWrite asks for this time.
    if (!lease.spare || r.error().code() != Code::kNotFound) break;
  }
  const std::string& m = r.error().message();
  if (m.find(lease.path) != std::string::npos) return r.error();
  return Status(r.error().code(), fmt::format("put {}: {}", lease.path, m));
}

Result<FileStatus> Client::Put(int fd, std::string_view local, std::string_view remote, const PutOptions& options) {
  DFS_ASSIGN_OR_RETURN(auto source, FdSource(fd, std::string(local)));
  return RunPut(*this, *impl_, *source, remote, options);
}

Result<FileStatus> Client::Put(std::span<const std::byte> data, std::string_view remote,
                               const PutOptions& options) {
  auto source = MemorySource(data);
  return RunPut(*this, *impl_, *source, remote, options);
}

Result<FileStatus> Client::Put(std::istream& in, std::string_view remote, const PutOptions& options) {
  auto source = StreamSource(in);
  return RunPut(*this, *impl_, *source, remote, options);
}

}  // namespace dfs::client
