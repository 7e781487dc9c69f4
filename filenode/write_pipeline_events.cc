// What happens to write streams between upstream requests: answers from the
// next node, chunks the sync worker finished, failures and timeouts.
#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "filenode/write_pipeline.h"

namespace dfs::filenode {
namespace {

// How long the reason of a failed stream is kept for requests still arriving.
constexpr std::chrono::seconds kTombstoneLife{60};
// Links to nodes no stream used for this long are closed.
constexpr std::chrono::minutes kIdleLink{5};
constexpr std::chrono::milliseconds kSweepEvery{100};

}  // namespace

void WritePipeline::Fail(uint64_t id, const Status& why, bool tell_downstream, Clock::time_point now) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  WriteStream& s = it->second;
  if (auto n = fail_log_.Allow()) {
    spdlog::info("stream={} {} aborted: {} ({} similar)", id, ChunkName(s.key), why.ToString(), n - 1);
  }
  for (const auto& [offset, to] : s.unacked) AnswerError(to, why);
  if (s.state == WriteStream::State::kOpening) AnswerError(s.open_reply, why);
  if (s.state == WriteStream::State::kClosing) AnswerError(s.close_reply, why);
  if (tell_downstream && !s.ds_endpoint.empty() && s.ds_stream != 0) {
    msg::DataEnvelope abort;
    abort.mutable_write_abort_request()->set_stream_id(s.ds_stream);
    // Best effort: a downstream that misses it times the stream out itself.
    IgnoreError(SendDown(s, std::move(abort), {}, now, /*expect_answer=*/false));
  }
  if (s.writer) s.writer->Abort();
  // A copy finished here is no replica of a failed write: remove it. (A
  // finish still on the sync worker is removed when it completes.)
  if (s.local) {
    if (Status d = store_.Delete(s.key); !d.ok()) spdlog::warn("cannot remove {}: {}", ChunkName(s.key), d.ToString());
  }
  for (uint64_t rid : s.ds_sent) ds_requests_.erase(rid);
  credit_.Release(s.credit_bytes);
  tombstones_[id] = {why, now + kTombstoneLife};
  streams_.erase(it);
}

void WritePipeline::OnDownstream(DataMessage& m, Clock::time_point now) {
  auto rit = ds_requests_.find(m.envelope.request_id());
  if (rit == ds_requests_.end()) return;  // an abort's answer, or a stream failed meanwhile
  const uint64_t id = rit->second;
  ds_requests_.erase(rit);
  auto sit = streams_.find(id);
  if (sit == streams_.end()) return;
  WriteStream& s = sit->second;
  std::erase(s.ds_sent, m.envelope.request_id());
  s.ds_waiting_since = now;
  const std::string who = fmt::format("node {}", s.ds_node);
  if (!m.defect.ok()) return Fail(id, m.defect.Prepend(who), true, now);
  // An error answer means the next node aborted the stream on its side.
  if (m.envelope.has_error()) return Fail(id, bus::FromProto(m.envelope.error()).Prepend(who), false, now);
  switch (m.envelope.body_case()) {
    case msg::DataEnvelope::kWriteOpenResponse: {
      if (s.state != WriteStream::State::kOpening) break;
      const auto& r = m.envelope.write_open_response();
      // Never promise upstream more than the next node promised us: frames
      // wait here for nobody.
      uint32_t frames = std::clamp<uint32_t>(r.credit_frames(), 1, s.credit_frames);
      // A buffered chunk keeps what its buffer may grow to (at most what it holds).
      const uint64_t keep = std::max(uint64_t{frames} * s.frame_size,
                                     s.writer && s.writer->buffered() ? std::min(s.expected_size, s.credit_bytes) : 0);
      credit_.Release(s.credit_bytes - keep);
      s.credit_frames = frames;
      s.credit_bytes = keep;
      s.ds_stream = r.stream_id();
      s.state = WriteStream::State::kOpen;
      msg::DataEnvelope env;
      env.mutable_write_open_response()->set_stream_id(s.id);
      env.mutable_write_open_response()->set_credit_frames(frames);
      return Answer(s.open_reply, std::move(env));
    }
    case msg::DataEnvelope::kWriteFrameResponse: {
      const uint64_t offset = m.envelope.write_frame_response().offset();
      if (s.unacked.empty() || s.unacked.front().first != offset) break;
      ReplyTo to = std::move(s.unacked.front().second);
      s.unacked.pop_front();
      msg::DataEnvelope ack;
      ack.mutable_write_frame_response()->set_stream_id(s.id);
      ack.mutable_write_frame_response()->set_offset(offset);
      return Answer(to, std::move(ack));
    }
    case msg::DataEnvelope::kWriteCloseResponse: {
      if (s.state != WriteStream::State::kClosing) break;
      const auto& r = m.envelope.write_close_response();
      s.ds_replicas.assign(r.replicas().begin(), r.replicas().end());
      s.ds_closed = true;
      return MaybeFinishClose(id);
    }
    default: break;
  }
  Fail(id, Status::ProtocolError(fmt::format("{} sent an unexpected answer (type {})", who,
                                             static_cast<int>(m.envelope.body_case()))),
       true, now);
}

void WritePipeline::OnFinished(SyncWorker::Done& done, Clock::time_point now) {
  auto it = streams_.find(done.token);
  if (it == streams_.end()) {
    // The stream failed while its file was being finished.
    if (done.result) {
      spdlog::info("{} finished after its write failed; removing it", ChunkName(done.result->key));
      IgnoreError(store_.Delete(done.result->key));  // logged by the store's scan if it lingers
    }
    return;
  }
  if (!done.result) return Fail(done.token, done.result.error().Prepend(fmt::format("node {}", node_id_)), true, now);
  it->second.local = *done.result;
  MaybeFinishClose(done.token);
}

void WritePipeline::MaybeFinishClose(uint64_t id) {
  auto it = streams_.find(id);
  WriteStream& s = it->second;
  if (!s.local || (!s.ds_endpoint.empty() && !s.ds_closed)) return;
  msg::DataEnvelope env;
  auto* r = env.mutable_write_close_response();
  auto* mine = r->add_replicas();
  mine->set_node_id(node_id_);
  mine->set_crc32c(s.local->crc32c);
  mine->set_size(s.local->size);
  for (const auto& replica : s.ds_replicas) *r->add_replicas() = replica;
  Answer(s.close_reply, std::move(env));
  SPDLOG_DEBUG("stream={} {} stored: {} bytes crc {:08x}", id, ChunkName(s.key), s.local->size, s.local->crc32c);
  on_stored_(StoredEvent{*s.local, std::move(s.ds_replicas), s.reported_upstream});
  for (uint64_t rid : s.ds_sent) ds_requests_.erase(rid);
  credit_.Release(s.credit_bytes);
  streams_.erase(it);
}

void WritePipeline::Sweep(Clock::time_point now) {
  std::vector<std::pair<uint64_t, Status>> silent;
  std::vector<std::pair<std::string, std::string>> dead;  // endpoint, node id
  for (const auto& [id, s] : streams_) {
    if (s.state != WriteStream::State::kClosing && now - s.last_upstream > options_.upstream_silence) {
      silent.emplace_back(id, Status::TimedOut(fmt::format("no word from upstream for {} s",
                                                           options_.upstream_silence.count() / 1000)));
    }
    auto limit = (s.state == WriteStream::State::kClosing ? options_.close_timeout : options_.downstream_timeout) +
                 options_.hop_margin * std::max(0, s.ds_depth - 1);
    if (!s.ds_sent.empty() && now - s.ds_waiting_since > limit) dead.emplace_back(s.ds_endpoint, s.ds_node);
  }
  for (const auto& [id, why] : silent) Fail(id, why, true, now);
  for (const auto& [endpoint, node] : dead) {
    // Every stream through a silent node fails, and its link is closed so
    // the next stream dials afresh.
    Status why = Status::Unavailable(fmt::format("node {} ({}) stopped answering", node, endpoint));
    std::vector<uint64_t> ids;
    for (const auto& [id, s] : streams_) {
      if (s.ds_endpoint == endpoint) ids.push_back(id);
    }
    for (uint64_t id : ids) Fail(id, why, true, now);
    links_.Drop(endpoint);
  }
  std::erase_if(tombstones_, [&](const auto& kv) { return kv.second.second < now; });
  links_.DropIdle(now, kIdleLink);
}

void WritePipeline::AddTo(bus::Poller& poller) {
  poller.AddFd(sync_.fd());
  for (auto& link : links_.links()) poller.Add(*link.socket);
}

void WritePipeline::Service(Clock::time_point now) {
  for (auto& done : sync_.Drain()) OnFinished(done, now);
  // Answers are read link by link before any is handled: handling never
  // closes a link, but reading all first keeps that true by construction.
  std::vector<DataMessage> answers;
  for (auto& link : links_.links()) {
    auto r = bus::Drain<msg::DataEnvelope>(*link.socket, 1024, [&](DataMessage& m) {
      answers.push_back(std::move(m));
      return true;
    });
    if (!r) spdlog::warn("receive from {} failed: {}", link.endpoint, r.error().ToString());
  }
  for (auto& m : answers) OnDownstream(m, now);
  if (now >= next_sweep_) {
    Sweep(now);
    next_sweep_ = now + kSweepEvery;
  }
}

WritePipeline::Clock::time_point WritePipeline::NextWake(Clock::time_point now) const {
  return streams_.empty() ? now + std::chrono::seconds(1) : std::max(now, next_sweep_);
}

}  // namespace dfs::filenode
