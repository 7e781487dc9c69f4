// One chunk write passing through this node (see messages/data.proto): what
// the node remembers between the upstream's requests and the downstream's
// answers. Plain data; WritePipeline drives it.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bus/socket.h"
#include "data.pb.h"
#include "filenode/chunk_store.h"

namespace dfs::filenode {

// What the data port carries (messages/data.proto).
using DataMessage = bus::Message<msg::DataEnvelope>;

// Where an answer goes: enough of a request to reply to it later.
struct ReplyTo {
  std::string route;
  uint64_t request_id = 0;
  uint64_t client_id = 0;

  static ReplyTo Of(const DataMessage& m) {
    return ReplyTo{m.route, m.envelope.request_id(), m.envelope.client_id()};
  }
};

struct WriteStream {
  using Clock = std::chrono::steady_clock;
  // kOpening: the open went downstream, no answer yet.
  // kOpen: frames flow.
  // kClosing: the local file is being finished and the close went downstream.
  enum class State { kOpening, kOpen, kClosing };

  uint64_t id = 0;            // this node's name for the stream (WriteOpenResponse.stream_id)
  std::string route;          // the upstream's routing id: only it may use the stream
  ChunkKey key;
  uint32_t frame_size = 0;
  uint32_t credit_frames = 0; // granted upstream
  uint64_t credit_bytes = 0;  // held from the node's pool: credit_frames x frame_size, or more for a buffer
  uint64_t expected_size = 0; // announced at open
  State state = State::kOpening;
  std::unique_ptr<ChunkWriter> writer;  // moves to the sync worker at close
  uint64_t received = 0;                // bytes written here, in order
  Clock::time_point last_upstream;
  // The upstream node reports this replica to the master with its own
  // (WriteOpenRequest.reported_upstream): ours waits for a heartbeat.
  bool reported_upstream = false;

  // The next node; ds_endpoint is empty on the last node of the pipeline.
  std::string ds_endpoint;
  std::string ds_node;        // its id, for messages
  int ds_depth = 0;           // nodes after this one
  uint64_t ds_stream = 0;     // its name for the stream, once it opened
  std::deque<uint64_t> ds_sent;         // request ids sent downstream, not yet answered
  Clock::time_point ds_waiting_since;   // last answer, or the send that started the wait
  // Frames written here and forwarded, awaiting the downstream's ack; each
  // is acknowledged upstream when it comes.
  std::deque<std::pair<uint64_t, ReplyTo>> unacked;

  ReplyTo open_reply;
  ReplyTo close_reply;
  std::optional<ChunkMeta> local;       // the finished local copy
  bool ds_closed = false;
  std::vector<msg::ReplicaChecksum> ds_replicas;
};

}  // namespace dfs::filenode
