// Client::Read / Get: a byte range of a file from the nodes. The master
// locates only the chunks the range needs; one event loop keeps up to
// `parallel` chunk readers busy, each with `window` reads in flight, hands
// verified bytes to the sink (in file order for a pipe, with a bounded
// reorder buffer), reports every replica that failed, and checks the whole
// file's CRC when the whole file was read.
#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "client/chunk_reader.h"
#include "client/client_impl.h"
#include "common/crc32c_combine.h"

namespace dfs::client {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct Located {
  msg::FileInfo info;
  std::vector<ChunkSpan> spans;
  uint64_t begin = 0;
  uint64_t end = 0;
};

Result<Located> Locate(Client::Impl& impl, const std::string& path, const GetOptions& o) {
  msg::ClientEnvelope req;
  auto* l = req.mutable_locate_request();
  l->set_path(path);
  l->set_offset(o.offset);
  // 0 asks for the rest; so does any length reaching past 2^64 (the master
  // adds offset and length).
  l->set_length(o.length > UINT64_MAX - o.offset ? 0 : o.length);
  DFS_ASSIGN_OR_RETURN(MasterMessage reply, impl.Call(std::move(req)));
  if (!reply.envelope.has_locate_response()) return Status::ProtocolError("unexpected reply to locate");
  auto& r = *reply.envelope.mutable_locate_response();
  Located out;
  out.info = r.info();
  if (out.info.type() == msg::FileInfo::DIRECTORY) return Status(Code::kIsADirectory, "is a directory: " + path);
  const uint64_t size = out.info.size();
  out.begin = std::min(o.offset, size);
  out.end = (o.length == kToEnd || o.length > size - out.begin) ? size : out.begin + o.length;
  std::vector<const msg::ChunkLocation*> chunks;
  for (const auto& c : r.chunks()) chunks.push_back(&c);
  std::sort(chunks.begin(), chunks.end(), [](auto* a, auto* b) { return a->file_offset() < b->file_offset(); });
  uint64_t covered = out.begin;
  for (const auto* c : chunks) {
    const uint64_t cbeg = c->file_offset(), cend = cbeg + c->chunk().size();
    if (cend <= out.begin || cbeg >= out.end) continue;
    if (cbeg > covered) break;  // a gap: reported below
    ChunkSpan s;
    s.id = c->chunk().id();
    s.version = c->chunk().version();
    s.chunk_size = c->chunk().size();
    s.checksum = c->chunk().checksum();
    s.file_offset = cbeg;
    for (const auto& n : c->replicas()) s.replicas.push_back({n.id(), n.address()});
    s.begin = std::max(out.begin, cbeg) - cbeg;
    s.end = std::min(out.end, cend) - cbeg;
    covered = cbeg + s.end;
    out.spans.push_back(std::move(s));
  }
  if (covered < out.end) {
    return Status::Corruption(fmt::format("the master located no chunk holding byte {} of {}", covered, path));
  }
  return out;
}

class ReadJob {
 public:
  ReadJob(Client::Impl& impl, Located located, const GetOptions& o, bool in_order, const ReadSink& sink)
      : impl_(impl), loc_(std::move(located)), options_(o), in_order_(in_order), sink_(sink) {
    config_.frame_size = std::max<uint32_t>(o.frame_size, 1);
    config_.window = std::max<uint32_t>(o.window, 1);
    config_.stall_timeout = o.stall_timeout;
    config_.may_redeliver = !in_order;
    next_deliver_ = loc_.begin;
    // Ordered output: frames asked for but not yet handed to the sink stay
    // within two windows, whatever the number of chunks in flight.
    budget_ = in_order ? 2 * static_cast<size_t>(config_.window) : SIZE_MAX;
    chunk_crcs_.resize(loc_.spans.size());
  }

  Status Run();

 private:
  Status Deliver(uint64_t file_offset, bus::Frame frame);
  // Calls options_.progress when its interval has passed (once per turn of
  // the loop at most, never per frame).
  void MaybeReportProgress(Clock::time_point now);
  void Report(ChunkReader& r);

  Client::Impl& impl_;
  Located loc_;
  GetOptions options_;
  bool in_order_;
  const ReadSink& sink_;
  ChunkReader::Config config_;
  std::set<std::string> avoid_;
  std::vector<std::pair<size_t, std::unique_ptr<ChunkReader>>> active_;  // span index, reader
  size_t next_span_ = 0;
  std::vector<uint32_t> chunk_crcs_;
  // Ordered output: the next byte the sink wants, frames that came early.
  uint64_t next_deliver_ = 0;
  std::map<uint64_t, bus::Frame> early_;
  size_t budget_;
  size_t admitted_ = 0;  // asked for, not yet handed to the sink
  uint64_t delivered_ = 0;  // bytes handed to the sink
  Clock::time_point next_progress_{};
};

void ReadJob::MaybeReportProgress(Clock::time_point now) {
  if (!options_.progress || now < next_progress_) return;
  next_progress_ = now + options_.progress_interval;
  options_.progress(Progress{delivered_, loc_.end - loc_.begin, true});
}

Status ReadJob::Deliver(uint64_t file_offset, bus::Frame frame) {
  auto bytes = [](const bus::Frame& f) { return std::span<const std::byte>(f.data(), f.size()); };
  if (!in_order_) {
    delivered_ += frame.size();
    return sink_(file_offset, bytes(frame));
  }
  if (file_offset != next_deliver_) {
    early_.emplace(file_offset, std::move(frame));
    return Status::OK();
  }
  DFS_RETURN_IF_ERROR(sink_(file_offset, bytes(frame)));
  delivered_ += frame.size();
  next_deliver_ += frame.size();
  --admitted_;
  for (auto it = early_.begin(); it != early_.end() && it->first == next_deliver_; it = early_.erase(it)) {
    DFS_RETURN_IF_ERROR(sink_(it->first, bytes(it->second)));
    delivered_ += it->second.size();
    next_deliver_ += it->second.size();
    --admitted_;
  }
  return Status::OK();
}

// Best effort: the read goes on from another replica either way.
void ReadJob::Report(ChunkReader& r) {
  for (const BadReplica& b : r.TakeBadReplicas()) {
    msg::ClientEnvelope req;
    auto* rep = req.mutable_report_bad_replica_request();
    rep->set_chunk_id(b.chunk_id);
    rep->set_version(b.version);
    rep->set_node_id(b.node_id);
    rep->set_reason(b.reason);
    IgnoreError(impl_.Call(std::move(req)).status());
  }
}

Status ReadJob::Run() {
  const size_t parallel = in_order_ ? 2 : static_cast<size_t>(std::max(1, options_.parallel));
  NodeLinks& links = impl_.Links();
  auto admit = [this](uint64_t) {
    if (admitted_ >= budget_) return false;
    ++admitted_;
    return true;
  };
  auto deliver = [this](uint64_t off, bus::Frame f) { return Deliver(off, std::move(f)); };
  for (;;) {
    DFS_RETURN_IF_ERROR(impl_.CheckInterrupt());
    auto now = Clock::now();
    while (active_.size() < parallel && next_span_ < loc_.spans.size()) {
      active_.emplace_back(next_span_, std::make_unique<ChunkReader>(links, loc_.spans[next_span_], config_, avoid_));
      ++next_span_;
    }
    for (size_t i = 0; i < active_.size();) {
      ChunkReader& r = *active_[i].second;
      Report(r);
      if (!r.status().ok()) return r.status();
      if (r.done()) {
        chunk_crcs_[active_[i].first] = r.crc();
        active_.erase(active_.begin() + static_cast<std::ptrdiff_t>(i));
        continue;
      }
      r.Pump(now, admit);
      ++i;
    }
    if (active_.empty() && next_span_ == loc_.spans.size()) break;
    if (active_.size() < parallel && next_span_ < loc_.spans.size()) continue;
    auto wake = Clock::time_point::max();
    for (auto& [idx, r] : active_) wake = std::min(wake, r->deadline());
    auto wait = std::clamp(std::chrono::ceil<milliseconds>(wake - Clock::now()), milliseconds(0), milliseconds(1000));
    Status failed;
    DFS_ASSIGN_OR_RETURN(int handled, links.Poll(wait, [&](const std::string&, DataMessage& m) {
      if (!failed.ok()) return;
      for (auto& [idx, r] : active_) {
        if (!r->Owns(m.envelope.request_id())) continue;
        failed = r->OnReply(m, Clock::now(), deliver);
        return;
      }
    }));
    (void)handled;
    DFS_RETURN_IF_ERROR(failed);
    now = Clock::now();
    for (auto& [idx, r] : active_) r->Tick(now);
    MaybeReportProgress(now);
  }
  if (loc_.begin == 0 && loc_.end == loc_.info.size()) {
    uint32_t crc = 0;
    for (size_t i = 0; i < loc_.spans.size(); ++i) crc = Crc32cCombine(crc, chunk_crcs_[i], loc_.spans[i].chunk_size);
    if (crc != loc_.info.checksum()) {
      return Status::Corruption(fmt::format("file crc32c {:08x} read, the master recorded {:08x}", crc,
                                            loc_.info.checksum()));
    }
  }
  return Status::OK();
}

}  // namespace

Result<FileStatus> Client::Read(std::string_view remote, const GetOptions& options, bool in_order,
                                const ReadSink& sink) {
  DFS_ASSIGN_OR_RETURN(std::string path, impl_->Resolve(remote));
  DFS_ASSIGN_OR_RETURN(Located loc, Locate(*impl_, path, options));
  FileStatus status = FileStatusFromProto(loc.info);
  status.path = path;
  const uint64_t range = loc.end - loc.begin;
  ReadJob job(*impl_, std::move(loc), options, in_order, sink);
  Status s = job.Run();
  if (s.ok()) {
    if (options.progress) {
      options.progress(Progress{range, range, true});
    }
    return status;
  }
  if (s.message().find(path) != std::string::npos) return s;
  return Status(s.code(), fmt::format("read {}: {}", path, s.message()));
}

}  // namespace dfs::client
