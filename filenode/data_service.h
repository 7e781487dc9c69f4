// The node's data port: every request that arrives on the data ROUTER goes
// through Handle. Writes go to the WritePipeline; reads are answered here,
// one ReadResponse + one payload frame each, verified against the stored
// block checksums before they leave (a mismatch is Corruption, and the chunk
// is reported corrupt to the master).
//
// Not thread-safe: the node's poll thread owns it.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>

#include "bus/socket.h"
#include "filenode/chunk_store.h"
#include "filenode/write_pipeline.h"

namespace dfs::filenode {

// A read answers at most this many bytes (the client asks again for more):
// a frame well under the bus's 16 MiB message limit.
inline constexpr uint32_t kMaxReadLength = 8 << 20;

class DataService {
 public:
  using Clock = std::chrono::steady_clock;

  struct Events {
    std::function<void(StoredEvent)> stored;        // a write closed here and downstream
    std::function<void(const ChunkMeta&)> corrupt;  // a read found a bad block (once per chunk)
  };

  DataService(bus::Context& ctx, bus::Socket& router, ChunkStore& store, std::string node_id,
              PipelineOptions options, Events events);

  Status Start();
  // Handles a data request; false when `m` is not one (the caller answers).
  bool Handle(DataMessage& m, Clock::time_point now);

  void AddTo(bus::Poller& poller) { pipeline_.AddTo(poller); }
  void Service(Clock::time_point now);
  Clock::time_point NextWake(Clock::time_point now) const;

  // streams_open, credit_in_use, credit_pool, bytes_in/out_per_s.
  void FillStats(msg::NodeStats& stats, Clock::time_point now);
  // When a large chunk (one that moves in several frames) was last written
  // or read here.
  Clock::time_point last_large() const { return last_large_; }

 private:
  void Read(DataMessage& m, Clock::time_point now);
  // With a write rate cap: a write request taken now, or queued behind the
  // ones before it (every write request, so a stream's open, frames and
  // close keep their order).
  bool PaceWrite(DataMessage& m, Clock::time_point now);
  // The rate-cap time the bytes `m` carries cost.
  void Charge(const DataMessage& m, Clock::time_point now);
  void HandleWrite(DataMessage& m, Clock::time_point now);
  void Serve(const DataMessage& m, Clock::time_point now);

  bus::Socket& router_;
  ChunkStore& store_;
  std::string node_id_;
  Events events_;
  uint64_t read_buffer_;
  // Bytes of read answers not yet sent (ZeroMQ frees them on its own thread).
  std::shared_ptr<std::atomic<uint64_t>> read_held_;
  // Reads waiting for read_held_ to fall, in arrival order.
  std::deque<DataMessage> waiting_reads_;
  Clock::time_point last_large_{};
  // --max-write-rate: the bytes a request carries buy it rate-cap time; the
  // next one waits until `write_free_at_`. The senders' credit bounds what
  // waits here, and the slower acknowledgements carry the cap upstream.
  uint64_t max_write_rate_;
  std::deque<DataMessage> waiting_writes_;
  Clock::time_point write_free_at_{};
  WritePipeline pipeline_;
};

}  // namespace dfs::filenode
