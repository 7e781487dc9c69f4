// Private to libdfs_client: reads one chunk's byte range from its replicas
// (messages/data.proto READ): up to `window` ReadRequests in flight to one
// replica, every answer checked (offset, length, CRC32C of the payload, the
// chunk's size), and the whole chunk's CRC checked against the master's
// record when the range is the whole chunk. A replica that errs, stalls or
// sends bad bytes is set aside (and listed for a report to the master); the
// frames still missing are asked of the next replica. Driven by Get's event
// loop, like datapath::PipelineWriter.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "bus/socket.h"
#include "client/dfs_client.h"
#include "datapath/node_links.h"
#include "common/limits.h"

namespace dfs::client {

using datapath::DataMessage;
using datapath::NodeLinks;

// One chunk of a located file and the part of it a read wants.
struct ChunkSpan {
  uint64_t id = 0;
  uint32_t version = 0;
  uint64_t chunk_size = 0;
  uint32_t checksum = 0;     // the master's record of the whole chunk
  uint64_t file_offset = 0;  // where the chunk starts in the file
  std::vector<NodeRef> replicas;  // the master's order (least loaded first)
  uint64_t begin = 0;        // the wanted range, offsets within the chunk
  uint64_t end = 0;
};

struct BadReplica {
  uint64_t chunk_id = 0;
  uint32_t version = 0;
  std::string node_id;
  std::string reason;
};

class ChunkReader {
 public:
  using Clock = std::chrono::steady_clock;
  struct Config {
    uint32_t frame_size = limits::kDefaultFrameSize;
    uint32_t window = 8;
    std::chrono::milliseconds stall_timeout{3000};
    // The sink takes the same bytes again (positioned writes): a chunk whose
    // whole CRC is wrong is read again from the next replica. Otherwise
    // (ordered output) that fails the read.
    bool may_redeliver = false;
  };
  // Verified bytes at `file_offset`; an error stops the read.
  using Deliver = std::function<Status(uint64_t file_offset, bus::Frame frame)>;
  // Asked before a frame is requested the first time: may it be (ordered
  // reads bound the bytes buffered ahead of the sink)? Re-asking a frame of
  // a failed replica is always allowed.
  using Admit = std::function<bool(uint64_t file_offset)>;

  // `avoid`: nodes this read found dead already; tried only when nothing
  // else is left. Shared with the other readers of the same Get.
  ChunkReader(NodeLinks& links, ChunkSpan span, Config config, std::set<std::string>& avoid);

  // Sends what the window and `admit` allow.
  void Pump(Clock::time_point now, const Admit& admit);
  bool Owns(uint64_t request_id) const { return inflight_.contains(request_id); }
  Status OnReply(const DataMessage& reply, Clock::time_point now, const Deliver& deliver);
  void Tick(Clock::time_point now);
  Clock::time_point deadline() const;

  bool done() const { return received_ == frames_.size() && status_.ok(); }
  // Not OK once every replica failed.
  const Status& status() const { return status_; }
  // CRC32C of the range read (valid once done()).
  uint32_t crc() const;
  const ChunkSpan& span() const { return span_; }
  // Replicas that failed since the last call, for ReportBadReplica.
  std::vector<BadReplica> TakeBadReplicas();

 private:
  struct FrameState {
    uint64_t offset = 0;  // within the chunk
    uint32_t length = 0;
    bool requested = false;  // admitted once (counts against the budget)
    bool received = false;
    uint32_t crc = 0;
  };
  void ReplicaFailed(const std::string& reason, bool dead);
  bool NextReplica();

  NodeLinks& links_;
  ChunkSpan span_;
  Config config_;
  std::set<std::string>& avoid_;
  std::vector<FrameState> frames_;
  size_t received_ = 0;
  size_t next_unrequested_ = 0;  // frames before it were requested at least once
  std::vector<size_t> retry_;    // frames to ask again after a failover
  std::set<size_t> tried_;       // replica indexes given up on
  size_t replica_ = 0;
  bool whole_chunk_ = false;
  // request id -> frame index, for the current replica only.
  std::unordered_map<uint64_t, size_t> inflight_;
  Clock::time_point last_heard_;
  Status status_;
  std::vector<BadReplica> bad_;
};

}  // namespace dfs::client
