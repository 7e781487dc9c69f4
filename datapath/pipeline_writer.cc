#include "datapath/pipeline_writer.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace dfs::datapath {

PipelineWriter::PipelineWriter(NodeSender& links, ChunkPlacement placement, uint64_t expected_size, Config config)
    : links_(links), placement_(std::move(placement)), expected_size_(expected_size), config_(config) {}

void PipelineWriter::Send(msg::DataEnvelope request, std::vector<bus::Frame> payload, Clock::time_point now,
                       size_t node) {
  const NodeRef& to = placement_.pipeline[node];
  auto id = links_.Send(to.address, std::move(request), std::move(payload));
  if (!id) return Fail(id.error());
  requests_.emplace(*id, node);
  // Waiting starts now; a long gap since the last reply is not a stall.
  if (requests_.size() == 1) last_heard_ = now;
}

msg::DataEnvelope PipelineWriter::OpenRequest(uint64_t expected_size, uint32_t frame_size, bool with_downstream) const {
  msg::DataEnvelope req;
  auto* o = req.mutable_write_open_request();
  o->set_chunk_id(placement_.chunk_id);
  o->set_version(placement_.version);
  for (size_t i = 1; with_downstream && i < placement_.pipeline.size(); ++i) {
    auto* d = o->add_downstream();
    d->set_id(placement_.pipeline[i].id);
    d->set_address(placement_.pipeline[i].address);
  }
  o->set_expected_size(expected_size);
  o->set_frame_size(frame_size);
  return req;
}

void PipelineWriter::Start(Clock::time_point now) {
  last_heard_ = now;
  if (placement_.pipeline.empty()) return Fail(Status::Internal("the master gave an empty pipeline"));
  Send(OpenRequest(expected_size_, config_.frame_size), {}, now);
}

void PipelineWriter::StartWhole(bus::Frame chunk, uint32_t crc, Clock::time_point now, bool fan_out) {
  last_heard_ = now;
  if (placement_.pipeline.empty()) return Fail(Status::Internal("the master gave an empty pipeline"));
  const uint64_t size = chunk.size();
  fan_out_ = fan_out && placement_.pipeline.size() > 1;
  msg::DataEnvelope req = OpenRequest(size, static_cast<uint32_t>(size), /*with_downstream=*/!fan_out_);
  auto* o = req.mutable_write_open_request();
  o->set_whole(true);
  o->set_crc32c(crc);
  finishing_ = true;
  final_size_ = size;
  final_crc_ = crc;
  bytes_sent_ = size;
  state_ = State::kClosing;
  if (!fan_out_) {
    std::vector<bus::Frame> payload;
    payload.push_back(std::move(chunk));
    return Send(std::move(req), std::move(payload), now);
  }
  fan_stored_.assign(placement_.pipeline.size(), false);
  for (size_t i = 0; i < placement_.pipeline.size() && state_ != State::kFailed; ++i) {
    std::vector<bus::Frame> payload;
    payload.push_back(chunk.Share());  // the same bytes to every node, no copy
    Send(req, std::move(payload), now, i);
  }
}

void PipelineWriter::OnFanReply(const DataMessage& reply, size_t node) {
  const NodeRef& from = placement_.pipeline[node];
  const std::string who = fmt::format("node {} ({})", from.id, from.address);
  if (!reply.defect.ok()) {
    suspects_.push_back(from.id);
    return Fail(reply.defect.Prepend("bad reply from " + who));
  }
  const auto& env = reply.envelope;
  if (env.has_error()) {
    Status s = bus::FromProto(env.error());
    if (s.code() != Code::kBusy) suspects_.push_back(from.id);  // a node out of credit is healthy
    return Fail(s.Prepend(who));
  }
  if (!env.has_write_close_response()) {
    suspects_.push_back(from.id);
    return Fail(Status::ProtocolError(
        fmt::format("{} answered a whole write with message type {}", who, static_cast<int>(env.body_case()))));
  }
  const auto& replicas = env.write_close_response().replicas();
  if (replicas.size() != 1 || replicas[0].node_id() != from.id) {
    suspects_.push_back(from.id);
    return Fail(Status::ProtocolError(fmt::format("{} answered a whole write for {} replicas, not its own", who,
                                                  replicas.size())));
  }
  if (!CheckReplica(replicas[0])) return;
  fan_stored_[node] = true;
  if (std::find(fan_stored_.begin(), fan_stored_.end(), false) != fan_stored_.end()) return;
  replicas_.clear();
  for (const auto& n : placement_.pipeline) replicas_.push_back(n.id);
  state_ = State::kStored;
}

bool PipelineWriter::CanSend() const {
  return state_ == State::kStreaming && !finishing_ && unacked_.size() < credit_;
}

void PipelineWriter::SendFrame(bus::Frame frame, uint32_t crc, Clock::time_point now) {
  if (!CanSend()) return Fail(Status::Internal("frame sent without credit"));
  msg::DataEnvelope req;
  auto* f = req.mutable_write_frame_request();
  f->set_stream_id(stream_id_);
  f->set_offset(bytes_sent_);
  f->set_crc32c(crc);
  const uint64_t size = frame.size();
  std::vector<bus::Frame> payload;
  payload.push_back(std::move(frame));
  unacked_.emplace_back(bytes_sent_, size);
  bytes_sent_ += size;
  Send(std::move(req), std::move(payload), now);
}

void PipelineWriter::Finish(uint64_t size, uint32_t crc, Clock::time_point now) {
  finishing_ = true;
  final_size_ = size;
  final_crc_ = crc;
  MaybeClose(now);
}

void PipelineWriter::MaybeClose(Clock::time_point now) {
  if (state_ != State::kStreaming || !finishing_ || !unacked_.empty()) return;
  if (bytes_sent_ != final_size_) {
    return Fail(Status::Internal(fmt::format("chunk {}: sent {} bytes, closing at {}", placement_.chunk_id,
                                             bytes_sent_, final_size_)));
  }
  state_ = State::kClosing;
  msg::DataEnvelope req;
  auto* c = req.mutable_write_close_request();
  c->set_stream_id(stream_id_);
  c->set_size(final_size_);
  c->set_crc32c(final_crc_);
  Send(std::move(req), {}, now);
}

void PipelineWriter::Fail(Status status) {
  if (state_ == State::kFailed || state_ == State::kStored) return;
  state_ = State::kFailed;
  failure_ = std::move(status);
}

void PipelineWriter::Blame(std::string_view node_message) {
  // A node's own message names the node at fault ("node n2: disk full",
  // "node n3 (host:port) stopped answering"); blame the nodes it names.
  for (const auto& n : placement_.pipeline) {
    if ((!n.id.empty() && node_message.find(n.id) != std::string_view::npos) ||
        (!n.address.empty() && node_message.find(n.address) != std::string_view::npos)) {
      suspects_.push_back(n.id);
    }
  }
}

void PipelineWriter::OnReply(const DataMessage& reply, Clock::time_point now) {
  const uint64_t id = reply.envelope.request_id();
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  const size_t node = it->second;
  requests_.erase(it);
  last_heard_ = now;
  if (state_ == State::kFailed || state_ == State::kStored) return;
  if (fan_out_) return OnFanReply(reply, node);
  const std::string& first = placement_.pipeline.front().address;
  if (!reply.defect.ok()) return Fail(reply.defect.Prepend("bad reply from node " + first));
  if (reply.envelope.has_error()) {
    Status s = bus::FromProto(reply.envelope.error());
    if (s.code() != Code::kBusy) Blame(s.message());  // a node out of credit is healthy
    return Fail(s.Prepend(fmt::format("node {} ({})", placement_.pipeline.front().id, first)));
  }
  const auto& env = reply.envelope;
  switch (env.body_case()) {
    case msg::DataEnvelope::kWriteOpenResponse:
      if (state_ != State::kOpening) return Fail(Status::ProtocolError("a second WriteOpen answer from " + first));
      stream_id_ = env.write_open_response().stream_id();
      opened_ = true;
      credit_ = env.write_open_response().credit_frames();
      if (credit_ == 0) return Fail(Status::ProtocolError("node " + first + " granted no credit"));
      state_ = State::kStreaming;
      return MaybeClose(now);  // an empty chunk closes at once
    case msg::DataEnvelope::kWriteFrameResponse: {
      const auto& a = env.write_frame_response();
      if (state_ != State::kStreaming || a.stream_id() != stream_id_) {
        return Fail(Status::ProtocolError("frame acknowledgement out of place from " + first));
      }
      // Acknowledgements are cumulative: one for offset X covers every frame up to X.
      while (!unacked_.empty() && unacked_.front().first <= a.offset()) unacked_.pop_front();
      return MaybeClose(now);
    }
    case msg::DataEnvelope::kWriteCloseResponse:
      if (state_ != State::kClosing) return Fail(Status::ProtocolError("close answer out of place from " + first));
      return CheckReplicas(env.write_close_response());
    default:
      return Fail(Status::ProtocolError(
          fmt::format("node {} answered a write with message type {}", first, static_cast<int>(env.body_case()))));
  }
}

bool PipelineWriter::CheckReplica(const msg::ReplicaChecksum& rep) {
  if (rep.crc32c() == final_crc_ && rep.size() == final_size_) return true;
  suspects_.push_back(rep.node_id());
  Fail(Status::Corruption(fmt::format(
      "chunk {}: node {} stored {} bytes with crc32c {:08x}, the client sent {} bytes with crc32c {:08x}",
      placement_.chunk_id, rep.node_id(), rep.size(), rep.crc32c(), final_size_, final_crc_)));
  return false;
}

void PipelineWriter::CheckReplicas(const msg::WriteCloseResponse& r) {
  std::vector<std::string> stored;
  for (const auto& rep : r.replicas()) {
    if (!CheckReplica(rep)) return;
    stored.push_back(rep.node_id());
  }
  if (stored.size() != placement_.pipeline.size()) {
    for (const auto& n : placement_.pipeline) {
      if (std::find(stored.begin(), stored.end(), n.id) == stored.end()) suspects_.push_back(n.id);
    }
    return Fail(Status::IOError(fmt::format("chunk {}: {} of {} replicas reported stored", placement_.chunk_id,
                                            stored.size(), placement_.pipeline.size())));
  }
  replicas_ = std::move(stored);
  state_ = State::kStored;
}

PipelineWriter::Clock::time_point PipelineWriter::deadline() const {
  if (state_ == State::kFailed || state_ == State::kStored || requests_.empty()) return Clock::time_point::max();
  // Closing waits for an fdatasync on every replica, one after another: a
  // 64 MiB chunk takes a fraction of a second here, give it a lot more. A
  // fanned-out chunk (one frame) waits on each node's own fdatasync alone.
  auto limit = state_ == State::kClosing && !fan_out_ ? 2 * config_.stall_timeout : config_.stall_timeout;
  return last_heard_ + limit;
}

void PipelineWriter::Tick(Clock::time_point now) {
  if (now < deadline()) return;
  auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - last_heard_);
  if (fan_out_) {
    // Each node answers for itself: the silent ones are the suspects.
    std::vector<std::string> silent;
    for (const auto& [id, node] : requests_) silent.push_back(placement_.pipeline[node].id);
    std::sort(silent.begin(), silent.end());
    suspects_.insert(suspects_.end(), silent.begin(), silent.end());
    return Fail(Status::TimedOut(fmt::format("chunk {}: node(s) {} silent for {:.1f} s storing it",
                                             placement_.chunk_id, fmt::join(silent, ", "), waited.count() / 1000.0)));
  }
  const char* what = state_ == State::kOpening   ? "opening the pipeline"
                     : state_ == State::kClosing ? "closing the chunk"
                                                 : "acknowledging frames";
  Fail(Status::TimedOut(fmt::format("chunk {}: pipeline {} silent for {:.1f} s {}", placement_.chunk_id,
                                    placement_.pipeline.front().address, waited.count() / 1000.0, what)));
}

void PipelineWriter::FailThrough(const std::string& node_id) {
  if (state_ == State::kFailed || state_ == State::kStored) return;
  for (const auto& n : placement_.pipeline) {
    if (n.id != node_id) continue;
    suspects_.push_back(node_id);
    return Fail(Status::Unavailable(fmt::format("chunk {}: node {} failed in another pipeline of this write",
                                                placement_.chunk_id, node_id)));
  }
}

void PipelineWriter::Abort() {
  if (!opened_ || state_ == State::kStored) return;
  msg::DataEnvelope req;
  req.mutable_write_abort_request()->set_stream_id(stream_id_);
  // Best effort: the reply is not awaited, and a dead node cannot answer.
  IgnoreError(links_.Send(placement_.pipeline.front().address, std::move(req)).status());
  opened_ = false;
}

}  // namespace dfs::datapath
