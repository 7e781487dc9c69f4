#include "filenode/replicator.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/checksum.h"

namespace dfs::filenode {

struct Replicator::Job {
  uint64_t request_id = 0;
  ChunkMeta meta;
  std::unique_ptr<datapath::PipelineWriter> writer;
  Status failure;  // set when the copy failed before or outside the writer
  bool done = false;
};

Replicator::Replicator(bus::Context& context, ChunkStore& store, std::string node_id, Config config,
                       std::function<void(const ChunkMeta&)> corrupt)
    : links_(context, "dfs-node " + node_id),
      store_(store),
      node_id_(std::move(node_id)),
      config_(config),
      corrupt_(std::move(corrupt)) {}

Replicator::~Replicator() = default;

void Replicator::Start(uint64_t request_id, const msg::ReplicateChunkRequest& req, Clock::time_point now) {
  auto job = std::make_unique<Job>();
  job->request_id = request_id;
  const auto& want = req.chunk();
  const ChunkKey key{want.chunk_id(), want.version()};
  job->meta.key = key;
  auto fail = [&](Status s) {
    job->failure = s.Prepend(fmt::format("node {}", node_id_));
    job->done = true;
    Finish(*job);
  };
  // The master keeps each node to a few copies at once; this bounds what a
  // master gone wrong could pile up.
  if (jobs_.size() >= kMaxCopies) return fail(Status::Busy(fmt::format("{} copies under way", jobs_.size())));
  if (req.targets().empty()) return fail(Status::InvalidArgument("a copy with no target"));
  if (req.targets_size() > static_cast<int>(limits::kMaxReplication)) {
    return fail(Status::InvalidArgument(fmt::format("a copy to {} targets", req.targets_size())));
  }
  auto meta = store_.Lookup(key);
  if (!meta) return fail(meta.error());
  if (meta->size != want.size() || meta->crc32c != want.crc32c()) {
    return fail(Status::Corruption(
        fmt::format("{} here has {} bytes with crc {:08x}; the master expects {} with {:08x}", ChunkName(key),
                    meta->size, meta->crc32c, want.size(), want.crc32c())));
  }
  job->meta = *meta;
  datapath::ChunkPlacement placement;
  placement.chunk_id = key.id;
  placement.version = key.version;
  for (const auto& t : req.targets()) placement.pipeline.push_back({t.id(), t.address()});
  job->writer = std::make_unique<datapath::PipelineWriter>(
      links_, std::move(placement), meta->size,
      datapath::PipelineWriter::Config{.frame_size = config_.frame_size, .stall_timeout = config_.stall_timeout});
  SPDLOG_DEBUG("node={} copying {} ({} bytes) to {}", node_id_, ChunkName(key), meta->size,
               req.targets(0).id());
  if (meta->size <= config_.frame_size) {
    // One frame: open, write and close in one message (WHOLE-CHUNK WRITE).
    bus::Frame frame = bus::Frame::Allocate(meta->size);
    uint32_t crc = 0;
    Status s = store_.Read(key, 0, std::span<std::byte>(frame.data(), meta->size), &crc);
    if (!s.ok()) {
      if (s.code() == Code::kCorruption && store_.MarkCorrupt(key)) corrupt_(*meta);
      return fail(s);
    }
    job->writer->StartWhole(std::move(frame), crc, now);
  } else {
    job->writer->Start(now);
  }
  jobs_.push_back(std::move(job));
}

void Replicator::Pump(Job& job, Clock::time_point now) {
  auto& w = *job.writer;
  while (w.CanSend() && w.bytes_sent() < job.meta.size) {
    const uint64_t offset = w.bytes_sent();
    const uint64_t length = std::min<uint64_t>(config_.frame_size, job.meta.size - offset);
    bus::Frame frame = bus::Frame::Allocate(length);
    uint32_t crc = 0;
    Status s = store_.Read(job.meta.key, offset, std::span<std::byte>(frame.data(), length), &crc);
    if (!s.ok()) {
      if (s.code() == Code::kCorruption && store_.MarkCorrupt(job.meta.key)) corrupt_(job.meta);
      job.failure = s.Prepend(fmt::format("node {}", node_id_));
      w.Abort();
      job.done = true;
      return;
    }
    w.SendFrame(std::move(frame), crc, now);
  }
  if (w.state() == datapath::PipelineWriter::State::kStreaming && !w.finishing() &&
      w.bytes_sent() == job.meta.size) {
    w.Finish(job.meta.size, job.meta.crc32c, now);
  }
}

void Replicator::Service(Clock::time_point now) {
  if (jobs_.empty()) return;
  auto handled = links_.Poll(std::chrono::milliseconds(0), [&](const std::string&, datapath::DataMessage& m) {
    for (auto& job : jobs_) {
      if (job->writer && job->writer->Owns(m.envelope.request_id())) {
        job->writer->OnReply(m, now);
        return;
      }
    }
  });
  if (!handled) spdlog::warn("node={} copy links: {}", node_id_, handled.error().ToString());
  for (auto& job : jobs_) {
    auto& w = *job->writer;
    if (!job->done && w.state() == datapath::PipelineWriter::State::kStreaming) Pump(*job, now);
    if (!job->done) w.Tick(now);
    if (w.state() == datapath::PipelineWriter::State::kStored || w.failed()) job->done = true;
    if (job->done) Finish(*job);
  }
  std::erase_if(jobs_, [](const auto& job) { return job->done; });
}

void Replicator::Finish(Job& job) {
  Finished f;
  f.request_id = job.request_id;
  auto& r = f.response;
  r.set_chunk_id(job.meta.key.id);
  Status failure = job.failure;
  if (failure.ok() && job.writer && job.writer->failed()) {
    failure = job.writer->failure();
    for (const auto& s : job.writer->suspects()) r.add_suspects(s);
    job.writer->Abort();
    // A target that stalled must not get this stream's late frames if it
    // wakes: the next copy to it dials afresh (other copies to it have
    // stalled too).
    if (failure.code() == Code::kTimedOut) links_.Drop(job.writer->placement().pipeline.front().address);
  }
  if (!failure.ok()) {
    *r.mutable_failure() = bus::ToProto(failure);
    spdlog::warn("node={} copy of chunk={} failed: {}", node_id_, job.meta.key.id, failure.ToString());
  } else if (job.writer) {
    for (const auto& id : job.writer->replicas()) {
      auto* s = r.add_stored();
      s->set_node_id(id);
      auto* c = s->mutable_chunk();
      c->set_chunk_id(job.meta.key.id);
      c->set_version(job.meta.key.version);
      c->set_size(job.meta.size);
      c->set_crc32c(job.meta.crc32c);
    }
  }
  finished_.push_back(std::move(f));
}

void Replicator::AddTo(bus::Poller& poller) {
  if (jobs_.empty()) return;
  for (bus::Socket* s : links_.sockets()) poller.Add(*s);
}

Replicator::Clock::time_point Replicator::NextWake(Clock::time_point now) const {
  auto wake = Clock::time_point::max();
  for (const auto& job : jobs_) {
    if (job->writer->CanSend() && job->writer->bytes_sent() < job->meta.size) return now;
    wake = std::min(wake, job->writer->deadline());
  }
  return wake;
}

std::vector<Replicator::Finished> Replicator::Take() { return std::exchange(finished_, {}); }

}  // namespace dfs::filenode
