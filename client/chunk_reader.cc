#include "client/chunk_reader.h"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/crc32c_combine.h"
#include "common/checksum.h"

namespace dfs::client {

ChunkReader::ChunkReader(NodeLinks& links, ChunkSpan span, Config config, std::set<std::string>& avoid)
    : links_(links), span_(std::move(span)), config_(config), avoid_(avoid) {
  config_.frame_size = std::max<uint32_t>(config_.frame_size, 1);
  config_.window = std::max<uint32_t>(config_.window, 1);
  // Frames aligned to frame_size from the chunk's start, so the node reads
  // whole blocks of its stored checksums.
  for (uint64_t off = span_.begin; off < span_.end;) {
    uint64_t next = std::min(span_.end, (off / config_.frame_size + 1) * config_.frame_size);
    frames_.push_back(FrameState{off, static_cast<uint32_t>(next - off)});
    off = next;
  }
  whole_chunk_ = span_.begin == 0 && span_.end == span_.chunk_size;
  if (!NextReplica()) status_ = Status::Unavailable(fmt::format("chunk {} has no replica", span_.id));
}

bool ChunkReader::NextReplica() {
  // Untried replicas in the master's order, those on nodes already found
  // dead during this read last.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < span_.replicas.size(); ++i) {
      if (tried_.contains(i)) continue;
      if (pass == 0 && avoid_.contains(span_.replicas[i].id)) continue;
      replica_ = i;
      return true;
    }
  }
  return false;
}

void ChunkReader::ReplicaFailed(const std::string& reason, bool dead) {
  const NodeRef& node = span_.replicas[replica_];
  spdlog::warn("chunk {}: replica on node {} ({}) failed: {}", span_.id, node.id, node.address, reason);
  bad_.push_back({span_.id, span_.version, node.id, reason});
  if (dead) {
    avoid_.insert(node.id);
    links_.Drop(node.address);  // its queue holds only requests nobody waits for now
  }
  tried_.insert(replica_);
  for (const auto& [id, frame] : inflight_) retry_.push_back(frame);
  inflight_.clear();
  std::sort(retry_.rbegin(), retry_.rend());  // asked again lowest offset first
  if (!NextReplica()) {
    status_ = Status(dead ? Code::kUnavailable : Code::kCorruption,
                     fmt::format("chunk {}: no replica could be read ({} tried; last, node {}: {})", span_.id,
                                 tried_.size(), node.id, reason));
  }
}

void ChunkReader::Pump(Clock::time_point now, const Admit& admit) {
  // Another chunk of this read found our replica's node dead: move on now
  // rather than at our own stall timeout, if a live-looking one is left.
  if (status_.ok() && avoid_.contains(span_.replicas[replica_].id)) {
    for (size_t i = 0; i < span_.replicas.size(); ++i) {
      if (i != replica_ && !tried_.contains(i) && !avoid_.contains(span_.replicas[i].id)) {
        ReplicaFailed("its node stopped answering another read of this file", true);
        break;
      }
    }
  }
  while (status_.ok() && inflight_.size() < config_.window) {
    size_t f;
    if (!retry_.empty()) {
      f = retry_.back();
      retry_.pop_back();
    } else if (next_unrequested_ < frames_.size() &&
               admit(span_.file_offset + frames_[next_unrequested_].offset)) {
      f = next_unrequested_++;
      frames_[f].requested = true;
    } else {
      return;
    }
    msg::DataEnvelope req;
    auto* r = req.mutable_read_request();
    r->set_chunk_id(span_.id);
    r->set_version(span_.version);
    r->set_offset(frames_[f].offset);
    r->set_length(frames_[f].length);
    const NodeRef& node = span_.replicas[replica_];
    auto id = links_.Send(node.address, std::move(req));
    if (!id) {
      retry_.push_back(f);
      ReplicaFailed(id.error().message(), true);
      continue;
    }
    if (inflight_.empty()) last_heard_ = now;
    inflight_.emplace(*id, f);
  }
}

Status ChunkReader::OnReply(const DataMessage& reply, Clock::time_point now, const Deliver& deliver) {
  auto it = inflight_.find(reply.envelope.request_id());
  if (it == inflight_.end()) return Status::OK();
  const size_t f = it->second;
  inflight_.erase(it);
  last_heard_ = now;
  FrameState& frame = frames_[f];
  const auto& env = reply.envelope;
  std::string bad;
  if (!reply.defect.ok()) {
    bad = reply.defect.message();
  } else if (env.has_error()) {
    bad = env.error().message();
  } else if (!env.has_read_response()) {
    bad = fmt::format("answered a read with message type {}", static_cast<int>(env.body_case()));
  } else if (reply.payload.size() != 1 || reply.payload[0].size() != frame.length ||
             env.read_response().offset() != frame.offset) {
    bad = fmt::format("asked for {} bytes at {}, got {} frame(s) for offset {}", frame.length, frame.offset,
                      reply.payload.size(), env.read_response().offset());
  } else if (env.read_response().chunk_size() != 0 && env.read_response().chunk_size() != span_.chunk_size) {
    bad = fmt::format("holds {} bytes, the master recorded {}", env.read_response().chunk_size(), span_.chunk_size);
  }
  uint32_t frame_crc = 0;
  if (bad.empty()) {
    const bus::Frame& p = reply.payload[0];
    frame_crc = Crc32c(std::span<const std::byte>(p.data(), p.size()));
    if (frame_crc != env.read_response().crc32c()) {
      bad = fmt::format("crc32c mismatch at offset {}: payload {:08x}, node said {:08x}", frame.offset, frame_crc,
                        env.read_response().crc32c());
    }
  }
  if (!bad.empty()) {
    retry_.push_back(f);
    ReplicaFailed(bad, false);
    return Status::OK();
  }
  frame.received = true;
  frame.crc = frame_crc;
  ++received_;
  // The payload is moved out of a const message through Share (no copy).
  DFS_RETURN_IF_ERROR(deliver(span_.file_offset + frame.offset, reply.payload[0].Share()));
  if (received_ == frames_.size() && whole_chunk_ && crc() != span_.checksum) {
    // Every frame matched what the node sent, yet the chunk is not what was
    // committed (a stale or wrong copy).
    const std::string reason =
        fmt::format("chunk crc32c {:08x}, the master recorded {:08x}", crc(), span_.checksum);
    if (!config_.may_redeliver) {
      bad_.push_back({span_.id, span_.version, span_.replicas[replica_].id, reason});
      status_ = Status::Corruption(fmt::format("chunk {} on node {}: {}", span_.id, span_.replicas[replica_].id,
                                               reason));
      return Status::OK();
    }
    for (size_t i = 0; i < frames_.size(); ++i) {
      frames_[i].received = false;
      retry_.push_back(i);
    }
    received_ = 0;
    ReplicaFailed(reason, false);
  }
  return Status::OK();
}

ChunkReader::Clock::time_point ChunkReader::deadline() const {
  if (inflight_.empty() || !status_.ok()) return Clock::time_point::max();
  return last_heard_ + config_.stall_timeout;
}

void ChunkReader::Tick(Clock::time_point now) {
  if (now < deadline()) return;
  auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - last_heard_);
  ReplicaFailed(fmt::format("no answer for {:.1f} s", waited.count() / 1000.0), true);
}

uint32_t ChunkReader::crc() const {
  uint32_t c = 0;
  for (const auto& f : frames_) c = Crc32cCombine(c, f.crc, f.length);
  return c;
}

std::vector<BadReplica> ChunkReader::TakeBadReplicas() {
  std::vector<BadReplica> out;
  out.swap(bad_);
  return out;
}

}  // namespace dfs::client
