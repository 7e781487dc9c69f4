// The write half of the node's data port: WriteOpen / WriteFrame /
// WriteClose / WriteAbort exactly as messages/data.proto describes them.
//
// Each frame is checked (CRC32C of the payload, offset = bytes so far, size,
// credit), forwarded to the next node as the same buffer (Frame::Share, no
// copy), written locally, and acknowledged upstream once it is written here
// AND the next node acknowledged it. A close finishes the local file on the
// sync worker (fdatasync, rename, folder fsync) while the next nodes do the
// same, and is answered with this node's checksum followed by theirs. Any
// failure aborts the stream here and downstream, answers every waiting
// upstream request with the reason, removes the temp files and frees the
// credit. Streams whose upstream falls silent, or whose downstream stops
// answering, are aborted the same way.
//
// Memory: a stream holds credit_frames x frame_size of the node's credit
// pool from open to close; the upstream never has more frames in flight, so
// that bounds what the node buffers.
//
// Not thread-safe: the poll thread owns it and every socket it uses.
#pragma once

#include <chrono>
#include <functional>
#include <unordered_map>

#include "bus/socket.h"
#include "common/logging.h"
#include "filenode/chunk_store.h"
#include "filenode/downstream_links.h"
#include "filenode/flow_accounting.h"
#include "filenode/sync_worker.h"
#include "filenode/write_stream.h"
#include "common/limits.h"

namespace dfs::filenode {

// A sender's frame when its open names none; clients send frames this big
// too, so a chunk larger than this moves in several.
using limits::kDefaultFrameSize;

struct PipelineOptions {
  uint64_t credit_pool = 256ull << 20;
  // Frames in flight per stream at most: 16 x 1 MiB keeps a 2.5 GiB/s link
  // (loopback on the development VM, DESIGN.md)
  // busy across a few ms of fsync jitter without hoarding the pool.
  uint32_t max_credit_frames = 16;
  std::chrono::milliseconds upstream_silence{30000};
  // A downstream that answers nothing (open, frame) for this long is dead:
  // ZMTP heartbeats drop a dead TCP peer in 3 s, but say nothing to us. A
  // healthy node acks a frame in milliseconds; 3 s (+1 s per hop, so 4 s at
  // the head of a 3-node pipeline) names the culprit by the time a client
  // gives up on the pipeline (libdfs_client's stall_timeout, 4 s).
  // Each node further up waits `hop_margin` longer per node after it, so the
  // node next to the silent one reports first and names it.
  std::chrono::milliseconds downstream_timeout{3000};
  std::chrono::milliseconds hop_margin{1000};
  // A close waits for fsyncs down the chain: more patience.
  std::chrono::milliseconds close_timeout{30000};
  uint64_t capacity = 0;  // 0: only the disk limits chunks
  // Bytes of read answers the node holds at once (read from disk, not yet
  // sent); more reads wait their turn. Readers' windows are theirs to set,
  // so without this a crowd of readers could make the node buffer anything.
  uint64_t read_buffer = 64ull << 20;
  // Bytes per second written at most (DataService paces the writes); 0: no cap.
  uint64_t max_write_rate = 0;
};

// A chunk this node stored and acknowledged upstream, for the master.
struct StoredEvent {
  ChunkMeta local;
  // The replicas after this node, as they acknowledged it: this node reports
  // them with its own (the head of a pipeline does).
  std::vector<msg::ReplicaChecksum> downstream;
  // A node before this one reports this replica: ours can wait.
  bool reported_upstream = false;
};

class WritePipeline {
 public:
  using Clock = std::chrono::steady_clock;

  // Answers upstream go to `router` (the data port; a fake in unit tests).
  WritePipeline(bus::Context& ctx, bus::Outbox& router, ChunkStore& store, std::string node_id,
                PipelineOptions options, std::function<void(StoredEvent)> on_stored);
  ~WritePipeline();

  Status Start();

  void Open(const DataMessage& m, Clock::time_point now);
  void OpenWhole(const DataMessage& m, Clock::time_point now);
  void Frame(DataMessage& m, Clock::time_point now);
  void Close(const DataMessage& m, Clock::time_point now);
  void Abort(const DataMessage& m, Clock::time_point now);

  // Downstream links and the sync worker's completions.
  void AddTo(bus::Poller& poller);
  // Reads downstream answers and finished chunks, enforces timeouts.
  void Service(Clock::time_point now);
  Clock::time_point NextWake(Clock::time_point now) const;

  size_t streams_open() const { return streams_.size(); }
  const CreditPool& credit() const { return credit_; }
  RateMeter& bytes_in() { return bytes_in_; }
  RateMeter& bytes_out() { return bytes_out_; }

 private:
  using StreamMap = std::unordered_map<uint64_t, WriteStream>;

  WriteStream* Find(uint64_t id, const std::string& route);
  // A stream for the upstream that sent `m`, writing through `writer`.
  WriteStream& NewStream(const DataMessage& m, ChunkKey key, std::unique_ptr<ChunkWriter> writer,
                         Clock::time_point now);
  // Busy, naming this node's pool.
  Status NoCredit() const;
  // The next node's endpoint; empty on the last node of the pipeline.
  static Result<std::string> NextEndpoint(const msg::WriteOpenRequest& req);
  Status Missing(uint64_t id) const;
  void Answer(const ReplyTo& to, msg::DataEnvelope env);
  void AnswerError(const ReplyTo& to, const Status& error);
  Status SendDown(WriteStream& s, msg::DataEnvelope env, std::vector<bus::Frame> payload, Clock::time_point now,
                  bool expect_answer = true);
  // Aborts the stream everywhere and forgets it. The downstream is told
  // unless it is the one that failed (its error means it already aborted).
  void Fail(uint64_t id, const Status& why, bool tell_downstream, Clock::time_point now);
  void OnDownstream(DataMessage& m, Clock::time_point now);
  void OnFinished(SyncWorker::Done& done, Clock::time_point now);
  void MaybeFinishClose(uint64_t id);
  void Sweep(Clock::time_point now);

  bus::Outbox& router_;
  ChunkStore& store_;
  std::string node_id_;
  PipelineOptions options_;
  std::function<void(StoredEvent)> on_stored_;
  DownstreamLinks links_;
  SyncWorker sync_;
  CreditPool credit_;
  RateMeter bytes_in_;
  RateMeter bytes_out_;
  StreamMap streams_;
  std::unordered_map<uint64_t, uint64_t> ds_requests_;  // request id sent downstream -> stream id
  // Why recently failed streams failed, for the requests still on their way.
  std::unordered_map<uint64_t, std::pair<Status, Clock::time_point>> tombstones_;
  uint64_t next_stream_id_;
  uint64_t next_request_id_ = 1;
  Clock::time_point next_sweep_{};
  LogRateLimiter fail_log_;
};

}  // namespace dfs::filenode
