// The node's side of re-replication (messages/node_master.proto, REPAIR):
// when the master asks, this node streams a chunk it holds to the targets
// the master chose, with the same credit-paced write protocol a client's put
// uses (datapath::PipelineWriter over datapath::NodeLinks), reading it from
// the chunk store frame by frame as credit allows: every 64 KiB block is
// verified on the way out, so a bad replica is never copied. Each target
// checks every frame's CRC and stores the chunk like any write; the writer
// checks every target's checksum of the whole chunk before the copy counts.
//
// Not thread-safe: the node's poll thread owns it and its sockets.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bus/socket.h"
#include "datapath/node_links.h"
#include "datapath/pipeline_writer.h"
#include "filenode/chunk_store.h"
#include "node_master.pb.h"

namespace dfs::filenode {

class Replicator {
 public:
  using Clock = std::chrono::steady_clock;

  // Copies under way at once, at most; more are refused (Busy).
  static constexpr size_t kMaxCopies = 64;

  struct Config {
    uint32_t frame_size = limits::kDefaultFrameSize;
    std::chrono::milliseconds stall_timeout{5000};
  };
  // A copy that ended: the answer for the master, under its request id.
  struct Finished {
    uint64_t request_id = 0;
    msg::ReplicateChunkResponse response;
  };

  // `corrupt` is told of a chunk found bad while it was read for a copy.
  Replicator(bus::Context& context, ChunkStore& store, std::string node_id, Config config,
             std::function<void(const ChunkMeta&)> corrupt);
  ~Replicator();

  // Starts the copy the master asked for (answered through Take()).
  void Start(uint64_t request_id, const msg::ReplicateChunkRequest& request, Clock::time_point now);
  // Hands over replies, sends frames credit allows, closes, times out.
  void Service(Clock::time_point now);
  // Its sockets, for the node's poller.
  void AddTo(bus::Poller& poller);
  Clock::time_point NextWake(Clock::time_point now) const;
  // Copies that ended since the last call.
  std::vector<Finished> Take();
  size_t active() const { return jobs_.size(); }

 private:
  struct Job;
  void Pump(Job& job, Clock::time_point now);
  void Finish(Job& job);

  datapath::NodeLinks links_;
  ChunkStore& store_;
  std::string node_id_;
  Config config_;
  std::function<void(const ChunkMeta&)> corrupt_;
  std::vector<std::unique_ptr<Job>> jobs_;
  std::vector<Finished> finished_;
};

}  // namespace dfs::filenode
