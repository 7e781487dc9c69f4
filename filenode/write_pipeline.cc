// Upstream requests of the write pipeline (open, frame, close, abort); the
// downstream answers, finished chunks and timeouts are in
// write_pipeline_events.cc.
#include "filenode/write_pipeline.h"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/checksum.h"
#include "common/random_id.h"
#include "common/units.h"
#include "common/limits.h"

namespace dfs::filenode {
namespace {

using limits::kMaxChunkSize;
using limits::kMaxDownstream;
using limits::kMaxFrameSize;

}  // namespace

WritePipeline::WritePipeline(bus::Context& ctx, bus::Outbox& router, ChunkStore& store, std::string node_id,
                             PipelineOptions options, std::function<void(StoredEvent)> on_stored)
    : router_(router),
      store_(store),
      node_id_(std::move(node_id)),
      options_(options),
      on_stored_(std::move(on_stored)),
      links_(ctx),
      credit_(options.credit_pool),
      next_stream_id_(RandomU64() >> 20 | 1) {}

WritePipeline::~WritePipeline() = default;

Status WritePipeline::Start() {
  // Compaction appends to volumes: on the volume lane, between batches.
  sync_.SetIdleWork([this] { return store_.Compact(); });
  return sync_.Start();
}

WriteStream* WritePipeline::Find(uint64_t id, const std::string& route) {
  auto it = streams_.find(id);
  if (it == streams_.end() || it->second.route != route) return nullptr;
  return &it->second;
}

Status WritePipeline::Missing(uint64_t id) const {
  if (auto it = tombstones_.find(id); it != tombstones_.end()) {
    return it->second.first.Prepend(fmt::format("write stream {} was aborted", id));
  }
  return Status::NotFound(fmt::format("no write stream {} on node {}", id, node_id_));
}

void WritePipeline::Answer(const ReplyTo& to, msg::DataEnvelope env) {
  env.set_request_id(to.request_id);
  env.set_client_id(to.client_id);
  DataMessage m;
  m.route = to.route;
  m.envelope = std::move(env);
  if (Status s = router_.Send(std::move(m)); !s.ok()) {
    // The upstream hung up; its stream times out or was failed already.
    SPDLOG_DEBUG("answer to request {} not sent: {}", to.request_id, s.ToString());
  }
}

void WritePipeline::AnswerError(const ReplyTo& to, const Status& error) {
  msg::DataEnvelope env;
  *env.mutable_error() = bus::ToProto(error);
  Answer(to, std::move(env));
}

Status WritePipeline::SendDown(WriteStream& s, msg::DataEnvelope env, std::vector<bus::Frame> payload,
                               Clock::time_point now, bool expect_answer) {
  DFS_ASSIGN_OR_RETURN(bus::Socket * socket, links_.Get(s.ds_endpoint, now));
  const uint64_t rid = next_request_id_++;
  env.set_request_id(rid);
  DataMessage m;
  m.envelope = std::move(env);
  m.payload = std::move(payload);
  if (Status st = socket->Send(std::move(m)); !st.ok()) {
    return st.Prepend(fmt::format("forward to node {} ({})", s.ds_node, s.ds_endpoint));
  }
  if (expect_answer) {
    if (s.ds_sent.empty()) s.ds_waiting_since = now;
    s.ds_sent.push_back(rid);
    ds_requests_[rid] = s.id;
  }
  return Status::OK();
}

Status WritePipeline::NoCredit() const {
  return Status::Busy(fmt::format("node {} has no credit left ({} of {} in use)", node_id_,
                                  FormatSize(credit_.in_use()), FormatSize(credit_.size())));
}

Result<std::string> WritePipeline::NextEndpoint(const msg::WriteOpenRequest& req) {
  if (req.downstream_size() == 0) return std::string();
  return DownstreamLinks::Endpoint(req.downstream(0).address());
}

WriteStream& WritePipeline::NewStream(const DataMessage& m, ChunkKey key, std::unique_ptr<ChunkWriter> writer,
                                      Clock::time_point now) {
  const uint64_t id = next_stream_id_++;
  WriteStream& s = streams_[id];
  s.id = id;
  s.route = m.route;
  s.key = key;
  s.writer = std::move(writer);
  s.last_upstream = now;
  s.reported_upstream = m.envelope.write_open_request().reported_upstream();
  return s;
}

void WritePipeline::Open(const DataMessage& m, Clock::time_point now) {
  const auto& req = m.envelope.write_open_request();
  const ReplyTo from = ReplyTo::Of(m);
  const ChunkKey key{req.chunk_id(), req.version()};
  const uint64_t frame_size = req.frame_size() ? req.frame_size() : kDefaultFrameSize;
  if (frame_size > kMaxFrameSize) {
    return AnswerError(from, Status::InvalidArgument(fmt::format("frame size {} is over the node's limit of {}",
                                                                 frame_size, FormatSize(kMaxFrameSize))));
  }
  if (static_cast<uint32_t>(req.downstream_size()) > kMaxDownstream || req.expected_size() > kMaxChunkSize) {
    return AnswerError(from, Status::InvalidArgument(fmt::format(
                                 "{}: {} downstream nodes and {} bytes are beyond this node's limits ({} and {})",
                                 ChunkName(key), req.downstream_size(), req.expected_size(), kMaxDownstream,
                                 kMaxChunkSize)));
  }
  if (options_.capacity > 0 && store_.used_bytes() + req.expected_size() > options_.capacity) {
    return AnswerError(from, Status(Code::kNoSpace, fmt::format("node {} is full ({} of {} used)", node_id_,
                                                                FormatSize(store_.used_bytes()),
                                                                FormatSize(options_.capacity))));
  }
  if (req.whole()) return OpenWhole(m, now);
  // Credit: up to 16 frames, never more than the pool has left. A node that
  // cannot take one frame says Busy; the sender waits and tries again.
  const uint64_t frames = std::min<uint64_t>(options_.max_credit_frames, credit_.left() / frame_size);
  if (frames == 0) {
    return AnswerError(from, NoCredit());
  }
  auto endpoint = NextEndpoint(req);
  if (!endpoint) return AnswerError(from, endpoint.error());
  // A small chunk may be held in memory until its volume's group commit:
  // never more than the credit this stream holds from the pool.
  auto writer = store_.Create(key, req.expected_size(), frames * frame_size);
  if (!writer) return AnswerError(from, writer.error().Prepend(fmt::format("node {}", node_id_)));

  WriteStream& s = NewStream(m, key, std::move(*writer), now);
  const uint64_t id = s.id;
  s.frame_size = static_cast<uint32_t>(frame_size);
  s.expected_size = req.expected_size();
  s.credit_frames = static_cast<uint32_t>(frames);
  s.credit_bytes = frames * frame_size;
  s.open_reply = from;
  (void)credit_.Reserve(s.credit_bytes);  // fits: frames <= left / frame_size
  SPDLOG_DEBUG("stream={} {} opened from upstream, {} downstream, credit {}x{}", id, ChunkName(key),
               req.downstream_size(), frames, frame_size);
  if (endpoint->empty()) {
    s.state = WriteStream::State::kOpen;
    msg::DataEnvelope env;
    env.mutable_write_open_response()->set_stream_id(id);
    env.mutable_write_open_response()->set_credit_frames(s.credit_frames);
    return Answer(from, std::move(env));
  }
  // Answer only once everything after this node opened (WritePipeline::OnDownstream).
  s.ds_endpoint = *endpoint;
  s.ds_node = req.downstream(0).id();
  s.ds_depth = req.downstream_size();
  msg::DataEnvelope fwd;
  *fwd.mutable_write_open_request() = req;
  fwd.mutable_write_open_request()->mutable_downstream()->DeleteSubrange(0, 1);
  fwd.mutable_write_open_request()->set_frame_size(static_cast<uint32_t>(frame_size));
  fwd.mutable_write_open_request()->set_reported_upstream(true);
  if (Status st = SendDown(s, std::move(fwd), {}, now); !st.ok()) Fail(id, st, false, now);
}

// A whole chunk in the open (data.proto, WHOLE-CHUNK WRITE): the checks of
// a frame and of a close at once, then forward, store and sync as a close does.
void WritePipeline::OpenWhole(const DataMessage& m, Clock::time_point now) {
  const auto& req = m.envelope.write_open_request();
  const ReplyTo from = ReplyTo::Of(m);
  const ChunkKey key{req.chunk_id(), req.version()};
  const std::string where = fmt::format("node {}: {} (whole)", node_id_, ChunkName(key));
  if (m.payload.size() != 1) {
    return AnswerError(from, Status::ProtocolError(
                                 fmt::format("{}: {} payload frames, expected 1", where, m.payload.size())));
  }
  const bus::Frame& payload = m.payload[0];
  const uint64_t size = payload.size();
  if (size != req.expected_size() || size > kMaxFrameSize) {
    return AnswerError(from, Status::InvalidArgument(fmt::format(
                                 "{}: {} bytes sent, {} announced (at most {} in one message)", where, size,
                                 req.expected_size(), FormatSize(kMaxFrameSize))));
  }
  if (Crc32c(std::span<const std::byte>(payload.data(), size)) != req.crc32c()) {
    return AnswerError(from, Status::Corruption(where + ": payload fails its CRC32C"));
  }
  // The bytes are here already: they hold their size of the pool until stored.
  if (credit_.left() < size) {
    return AnswerError(from, NoCredit());
  }
  auto endpoint = NextEndpoint(req);
  if (!endpoint) return AnswerError(from, endpoint.error());
  auto writer = store_.Create(key, size, /*buffer_limit=*/size);  // the credit it holds
  if (!writer) return AnswerError(from, writer.error().Prepend(fmt::format("node {}", node_id_)));

  WriteStream& s = NewStream(m, key, std::move(*writer), now);
  const uint64_t id = s.id;
  s.frame_size = static_cast<uint32_t>(size);
  s.expected_size = size;
  s.credit_bytes = size;
  s.state = WriteStream::State::kClosing;
  s.close_reply = from;
  (void)credit_.Reserve(size);
  // Forward first so the next node works while this one writes.
  if (!endpoint->empty()) {
    s.ds_endpoint = *endpoint;
    s.ds_node = req.downstream(0).id();
    s.ds_depth = req.downstream_size();
    msg::DataEnvelope fwd;
    *fwd.mutable_write_open_request() = req;
    fwd.mutable_write_open_request()->mutable_downstream()->DeleteSubrange(0, 1);
    fwd.mutable_write_open_request()->set_reported_upstream(true);
    std::vector<bus::Frame> out;
    out.push_back(payload.Share());
    if (Status st = SendDown(s, std::move(fwd), std::move(out), now); !st.ok()) return Fail(id, st, false, now);
    bytes_out_.Add(size, now);
  }
  if (Status st = s.writer->Append(0, std::span<const std::byte>(payload.data(), size)); !st.ok()) {
    return Fail(id, st.Prepend(fmt::format("node {}", node_id_)), true, now);
  }
  s.received = size;
  bytes_in_.Add(size, now);
  SPDLOG_DEBUG("stream={} {} whole, {} bytes, {} downstream", id, ChunkName(key), size, req.downstream_size());
  sync_.Submit(id, std::move(s.writer));
}

void WritePipeline::Frame(DataMessage& m, Clock::time_point now) {
  const auto& req = m.envelope.write_frame_request();
  const ReplyTo from = ReplyTo::Of(m);
  WriteStream* s = Find(req.stream_id(), m.route);
  if (s == nullptr) return AnswerError(from, Missing(req.stream_id()));
  s->last_upstream = now;
  const std::string where = fmt::format("{} frame at offset {}", ChunkName(s->key), req.offset());
  Status bad;
  if (s->state != WriteStream::State::kOpen) {
    bad = Status::ProtocolError(where + ": the stream is not open for frames");
  } else if (m.payload.size() != 1) {
    bad = Status::ProtocolError(fmt::format("{}: {} payload frames, expected 1", where, m.payload.size()));
  } else if (req.offset() != s->received) {
    bad = Status::InvalidArgument(fmt::format("{}: expected offset {} (frames must follow each other)", where,
                                              s->received));
  } else if (m.payload[0].size() > s->frame_size) {
    bad = Status::ProtocolError(
        fmt::format("{}: {} bytes is over the stream's frame size {}", where, m.payload[0].size(), s->frame_size));
  } else if (Crc32c(std::span<const std::byte>(m.payload[0].data(), m.payload[0].size())) != req.crc32c()) {
    bad = Status::Corruption(where + ": payload fails its CRC32C");
  } else if (!s->ds_endpoint.empty() && s->unacked.size() >= s->credit_frames) {
    bad = Status::ProtocolError(fmt::format("{}: more than {} frames in flight (the credit)", where,
                                            s->credit_frames));
  }
  if (!bad.ok()) {
    AnswerError(from, bad.Prepend(fmt::format("node {}", node_id_)));
    return Fail(s->id, bad, true, now);
  }
  const bus::Frame& payload = m.payload[0];
  const uint64_t size = payload.size();
  // Forward first so the next node works while this one writes.
  if (!s->ds_endpoint.empty()) {
    msg::DataEnvelope fwd;
    auto* f = fwd.mutable_write_frame_request();
    f->set_stream_id(s->ds_stream);
    f->set_offset(req.offset());
    f->set_crc32c(req.crc32c());
    std::vector<bus::Frame> out;
    out.push_back(payload.Share());
    if (Status st = SendDown(*s, std::move(fwd), std::move(out), now); !st.ok()) {
      AnswerError(from, st);
      return Fail(s->id, st, true, now);
    }
    bytes_out_.Add(size, now);
  }
  if (Status st = s->writer->Append(req.offset(), std::span<const std::byte>(payload.data(), size)); !st.ok()) {
    st = st.Prepend(fmt::format("node {}", node_id_));
    AnswerError(from, st);
    return Fail(s->id, st, true, now);
  }
  s->received += size;
  bytes_in_.Add(size, now);
  if (!s->ds_endpoint.empty()) {
    s->unacked.emplace_back(req.offset(), from);
    return;
  }
  msg::DataEnvelope ack;
  ack.mutable_write_frame_response()->set_stream_id(s->id);
  ack.mutable_write_frame_response()->set_offset(req.offset());
  Answer(from, std::move(ack));
}

void WritePipeline::Close(const DataMessage& m, Clock::time_point now) {
  const auto& req = m.envelope.write_close_request();
  const ReplyTo from = ReplyTo::Of(m);
  WriteStream* s = Find(req.stream_id(), m.route);
  if (s == nullptr) return AnswerError(from, Missing(req.stream_id()));
  s->last_upstream = now;
  Status bad;
  if (s->state != WriteStream::State::kOpen) {
    bad = Status::ProtocolError(ChunkName(s->key) + ": close of a stream that is not open");
  } else if (req.size() != s->received) {
    bad = Status::InvalidArgument(fmt::format("{}: close says {} bytes but {} arrived", ChunkName(s->key),
                                              req.size(), s->received));
  } else if (req.crc32c() != s->writer->crc32c()) {
    bad = Status::Corruption(fmt::format("{}: the sender's checksum {:08x} is not the {:08x} stored here",
                                         ChunkName(s->key), req.crc32c(), s->writer->crc32c()));
  }
  if (!bad.ok()) {
    AnswerError(from, bad.Prepend(fmt::format("node {}", node_id_)));
    return Fail(s->id, bad, true, now);
  }
  s->state = WriteStream::State::kClosing;
  s->close_reply = from;
  sync_.Submit(s->id, std::move(s->writer));
  if (!s->ds_endpoint.empty()) {
    msg::DataEnvelope fwd;
    auto* c = fwd.mutable_write_close_request();
    c->set_stream_id(s->ds_stream);
    c->set_size(req.size());
    c->set_crc32c(req.crc32c());
    if (Status st = SendDown(*s, std::move(fwd), {}, now); !st.ok()) Fail(s->id, st, true, now);
  }
}

void WritePipeline::Abort(const DataMessage& m, Clock::time_point now) {
  const auto& req = m.envelope.write_abort_request();
  if (WriteStream* s = Find(req.stream_id(), m.route)) {
    Fail(s->id, Status::Unavailable("aborted by the sender"), true, now);
  }
  // Aborting what is already gone is fine: the sender only wants it gone.
  msg::DataEnvelope env;
  env.mutable_write_abort_response();
  Answer(ReplyTo::Of(m), std::move(env));
}

}  // namespace dfs::filenode
