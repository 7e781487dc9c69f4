// One attempt at storing one chunk through its
// pipeline (messages/data.proto): WriteOpen to the first node naming the
// rest, payload frames never exceeding the granted credit, WriteClose once
// every frame is acknowledged, and a check that every replica stored what
// was sent. A chunk that fits one frame may instead go to every node at
// once (StartWhole, fan_out). Driven by its owner's event loop (the client's
// put, a node copying a replica for the master's repair): it sends through a
// NodeSender (NodeLinks) and is fed the replies to its own requests.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bus/socket.h"
#include "datapath/node_links.h"
#include "datapath/placement.h"
#include "common/limits.h"

namespace dfs::datapath {


class PipelineWriter {
 public:
  using Clock = std::chrono::steady_clock;
  enum class State { kOpening, kStreaming, kClosing, kStored, kFailed };

  struct Config {
    uint32_t frame_size = limits::kDefaultFrameSize;
    // Waiting on the pipeline (open, acks, close) with nothing heard for this
    // long means a node died or stalled.
    std::chrono::milliseconds stall_timeout{5000};
  };

  PipelineWriter(NodeSender& links, ChunkPlacement placement, uint64_t expected_size, Config config);

  // Sends WriteOpen to pipeline[0].
  void Start(Clock::time_point now);
  // The whole chunk in one frame (WHOLE-CHUNK WRITE in messages/data.proto):
  // open, frame and close in one message and one round trip; the writer is
  // then closing, and stored once every replica answered with `crc`.
  // Fanned out, the same frame goes to every node of the pipeline at once,
  // each storing it alone and reporting its own copy to the master: one
  // round trip for all replicas instead of one per hop down the chain.
  void StartWhole(bus::Frame chunk, uint32_t crc, Clock::time_point now, bool fan_out = false);
  State state() const { return state_; }
  bool failed() const { return state_ == State::kFailed; }
  // Open, credit left, and not finishing: another frame may go out.
  bool CanSend() const;
  uint64_t bytes_sent() const { return bytes_sent_; }
  bool finishing() const { return finishing_; }
  // The next frame, at offset bytes_sent(); `crc` is its CRC32C.
  void SendFrame(bus::Frame frame, uint32_t crc, Clock::time_point now);
  // No more frames: closes once all are acknowledged and then checks that
  // every replica stored `size` bytes with checksum `crc`.
  void Finish(uint64_t size, uint32_t crc, Clock::time_point now);

  bool Owns(uint64_t request_id) const { return requests_.contains(request_id); }
  void OnReply(const DataMessage& reply, Clock::time_point now);
  // Fails the attempt when the pipeline has been silent past its timeout.
  void Tick(Clock::time_point now);
  // When Tick has something to decide; Clock::time_point::max() if nothing.
  Clock::time_point deadline() const;

  // Fails the attempt because `node_id`, one of its pipeline, failed
  // elsewhere (another chunk's pipeline): no point waiting for a stall.
  // Does nothing once stored, failed, or when the node is not in the pipeline.
  void FailThrough(const std::string& node_id);

  // Once failed: tells the first node to drop the stream (best effort; the
  // node also drops a stream whose client went silent).
  void Abort();

  const ChunkPlacement& placement() const { return placement_; }
  const Status& failure() const { return failure_; }
  // Nodes the failure points at (a mismatching checksum, a node named in an
  // error); empty when the pipeline as a whole went silent.
  const std::vector<std::string>& suspects() const { return suspects_; }
  // Once stored: node ids of the replicas, in pipeline order.
  const std::vector<std::string>& replicas() const { return replicas_; }

 private:
  // WriteOpen for this placement: the chunk, and the nodes after the first.
  msg::DataEnvelope OpenRequest(uint64_t expected_size, uint32_t frame_size, bool with_downstream = true) const;
  // To pipeline[node]; the answer is that node's.
  void Send(msg::DataEnvelope request, std::vector<bus::Frame> payload, Clock::time_point now, size_t node = 0);
  // A fanned-out whole write's answer from pipeline[node].
  void OnFanReply(const DataMessage& reply, size_t node);
  void Fail(Status status);
  void Blame(std::string_view node_message);
  void MaybeClose(Clock::time_point now);
  // Whether `rep` stored what was sent; if not, fails naming that node.
  bool CheckReplica(const msg::ReplicaChecksum& rep);
  void CheckReplicas(const msg::WriteCloseResponse& r);

  NodeSender& links_;
  ChunkPlacement placement_;
  uint64_t expected_size_;
  Config config_;
  State state_ = State::kOpening;
  Status failure_;
  std::vector<std::string> suspects_;
  std::vector<std::string> replicas_;

  // Request id -> the pipeline node it went to.
  std::unordered_map<uint64_t, size_t> requests_;
  // Fanned out: which nodes stored the chunk (pipeline order).
  bool fan_out_ = false;
  std::vector<bool> fan_stored_;
  uint64_t stream_id_ = 0;
  bool opened_ = false;
  uint32_t credit_ = 0;
  uint64_t bytes_sent_ = 0;
  // Sent, not yet acknowledged: (offset, size), in offset order.
  std::deque<std::pair<uint64_t, uint64_t>> unacked_;
  bool finishing_ = false;
  uint64_t final_size_ = 0;
  uint32_t final_crc_ = 0;
  Clock::time_point last_heard_;
};

}  // namespace dfs::datapath
