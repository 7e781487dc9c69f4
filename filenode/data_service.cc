#include "filenode/data_service.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/checksum.h"

namespace dfs::filenode {

DataService::DataService(bus::Context& ctx, bus::Socket& router, ChunkStore& store, std::string node_id,
                         PipelineOptions options, Events events)
    : router_(router),
      store_(store),
      node_id_(node_id),
      events_(std::move(events)),
      read_buffer_(options.read_buffer),
      read_held_(std::make_shared<std::atomic<uint64_t>>(0)),
      max_write_rate_(options.max_write_rate),
      pipeline_(ctx, router, store, std::move(node_id), options, events_.stored) {}

Status DataService::Start() { return pipeline_.Start(); }

bool DataService::Handle(DataMessage& m, Clock::time_point now) {
  switch (m.envelope.body_case()) {
    case msg::DataEnvelope::kWriteOpenRequest:
    case msg::DataEnvelope::kWriteFrameRequest:
    case msg::DataEnvelope::kWriteCloseRequest:
    case msg::DataEnvelope::kWriteAbortRequest:
      if (max_write_rate_ == 0 || PaceWrite(m, now)) HandleWrite(m, now);
      return true;
    case msg::DataEnvelope::kReadRequest: Read(m, now); return true;
    default: return false;
  }
}

bool DataService::PaceWrite(DataMessage& m, Clock::time_point now) {
  if (!waiting_writes_.empty() || now < write_free_at_) {
    waiting_writes_.push_back(std::move(m));
    return false;
  }
  Charge(m, now);
  return true;
}

void DataService::Charge(const DataMessage& m, Clock::time_point now) {
  uint64_t bytes = 0;
  for (const auto& f : m.payload) bytes += f.size();
  if (bytes == 0) return;
  write_free_at_ = std::max(write_free_at_, now) +
                   std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                       static_cast<double>(bytes) / static_cast<double>(max_write_rate_)));
}

void DataService::HandleWrite(DataMessage& m, Clock::time_point now) {
  switch (m.envelope.body_case()) {
    case msg::DataEnvelope::kWriteOpenRequest:
      if (!m.envelope.write_open_request().whole()) last_large_ = now;  // a chunk streamed in frames
      pipeline_.Open(m, now);
      return;
    case msg::DataEnvelope::kWriteFrameRequest:
      last_large_ = now;
      pipeline_.Frame(m, now);
      return;
    case msg::DataEnvelope::kWriteCloseRequest: pipeline_.Close(m, now); return;
    case msg::DataEnvelope::kWriteAbortRequest: pipeline_.Abort(m, now); return;
    default: return;
  }
}

// Past the read buffer, a read waits (one is always let through when none
// is held, however large). Waiting readers are not failed: a reader that
// sees an error moves to another replica and reports this one bad.
void DataService::Read(DataMessage& m, Clock::time_point now) {
  const uint64_t want = std::min<uint64_t>(m.envelope.read_request().length(), kMaxReadLength);
  const uint64_t held = read_held_->load(std::memory_order_relaxed);
  if (!waiting_reads_.empty() || (held > 0 && held + want > read_buffer_)) {
    waiting_reads_.push_back(std::move(m));
    return;
  }
  Serve(m, now);
}

void DataService::Service(Clock::time_point now) {
  while (!waiting_writes_.empty() && now >= write_free_at_) {
    DataMessage m = std::move(waiting_writes_.front());
    waiting_writes_.pop_front();
    Charge(m, now);
    HandleWrite(m, now);
  }
  pipeline_.Service(now);
  while (!waiting_reads_.empty()) {
    const uint64_t want = std::min<uint64_t>(waiting_reads_.front().envelope.read_request().length(), kMaxReadLength);
    const uint64_t held = read_held_->load(std::memory_order_relaxed);
    if (held > 0 && held + want > read_buffer_) break;
    DataMessage m = std::move(waiting_reads_.front());
    waiting_reads_.pop_front();
    Serve(m, now);
  }
}

DataService::Clock::time_point DataService::NextWake(Clock::time_point now) const {
  // Sends finishing raise no event here: look again shortly.
  if (!waiting_reads_.empty()) return now + std::chrono::milliseconds(1);
  if (!waiting_writes_.empty()) return std::min(std::max(now, write_free_at_), pipeline_.NextWake(now));
  return pipeline_.NextWake(now);
}

void DataService::Serve(const DataMessage& m, Clock::time_point now) {
  const auto& req = m.envelope.read_request();
  const ChunkKey key{req.chunk_id(), req.version()};
  auto fail = [&](const Status& s) {
    IgnoreError(bus::ReplyError(router_, m, s.Prepend(fmt::format("node {}", node_id_))));  // reader may be gone
  };
  auto meta = store_.Lookup(key);
  if (!meta) return fail(meta.error());
  if (req.offset() > meta->size) {
    return fail(Status::InvalidArgument(
        fmt::format("{}: read at {} is past its end ({} bytes)", ChunkName(key), req.offset(), meta->size)));
  }
  if (meta->size > kDefaultFrameSize) last_large_ = now;  // read in several frames
  const uint64_t length = std::min<uint64_t>({req.length(), kMaxReadLength, meta->size - req.offset()});
  bus::Frame frame = bus::Frame::AllocateCounted(length, read_held_);
  uint32_t crc = 0;
  Status s = store_.Read(key, req.offset(), std::span<std::byte>(frame.data(), length), &crc);
  if (!s.ok()) {
    if (s.code() == Code::kCorruption) {
      spdlog::error("node={} {}", node_id_, s.message());
      if (store_.MarkCorrupt(key)) events_.corrupt(*meta);
    }
    return fail(s);
  }
  msg::DataEnvelope reply;
  auto* r = reply.mutable_read_response();
  r->set_offset(req.offset());
  r->set_crc32c(crc);
  r->set_chunk_size(meta->size);
  std::vector<bus::Frame> payload;
  payload.push_back(std::move(frame));
  if (Status st = bus::Reply(router_, m, std::move(reply), std::move(payload)); !st.ok()) {
    SPDLOG_DEBUG("read answer not sent: {}", st.ToString());
    return;
  }
  pipeline_.bytes_out().Add(length, now);
}

void DataService::FillStats(msg::NodeStats& stats, Clock::time_point now) {
  stats.set_streams_open(static_cast<uint32_t>(pipeline_.streams_open()));
  stats.set_credit_in_use(pipeline_.credit().in_use());
  stats.set_credit_pool(pipeline_.credit().size());
  stats.set_bytes_in_per_s(pipeline_.bytes_in().PerSecond(now));
  stats.set_bytes_out_per_s(pipeline_.bytes_out().PerSecond(now));
}

}  // namespace dfs::filenode
