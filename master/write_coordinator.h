// The master's write coordinator: write leases (one writer per path), chunk
// allocation and placement, and completion, where a new file version is
// installed only once every live replica's report agrees with the client's
// checksums (the three-way check). Completions whose reports are still on
// their way are parked and retried on every report and tick.
//
// Mutations reach it through the Catalog's admission (the dispatcher admits
// them first) and are answered through the Catalog, once durable.
//
// Not thread-safe: driven by the master's metadata thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "bus/outbox.h"
#include "master/ports.h"
#include "master/catalog.h"
#include "master/chunk_manager.h"
#include "master/lease_table.h"
#include "master/node_registry.h"
#include "master/placement.h"
#include "common/limits.h"

namespace dfs::master {

class WriteCoordinator {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    uint32_t replication = limits::kDefaultReplication;
    uint64_t chunk_size = limits::kDefaultChunkSize;
    std::chrono::milliseconds lease_time{30000};
    // Three-way integrity check at completion: every replica the client
    // names must have reported the chunk with the client's checksum. Off
    // only for metadata-only benchmarks and tests (--unsafe-unverified-writes).
    bool verify_replicas = true;
    // How long a completion waits for live replicas' reports: under the
    // client's patience (2 attempts of 1.5 s), so it hears why, not a timeout.
    std::chrono::milliseconds report_wait{2500};
    // When fewer nodes can take a chunk than its file's replication (one
    // died or stalled in the write, and no other is free), the chunk is
    // still placed on as many as can, if that is at least this many; the
    // write completes under-replicated and repair restores the rest (HDFS's
    // minimum replication). A replication below it is placed in full or not.
    uint32_t min_replicas = 2;
  };

  // Construct after `catalog` is open: chunk ids continue from its limit.
  WriteCoordinator(Options options, Catalog& catalog, ChunkManager& chunks, const NodeRegistry& registry);

  // Mutations (admitted by the catalog; answered through it).
  void CreateFile(const ClientMessage& m, Clock::time_point now);
  void AllocateChunk(const ClientMessage& m, Clock::time_point now);
  void CompleteFile(const ClientMessage& m, Clock::time_point now);
  void AbandonFile(const ClientMessage& m);
  // Query: answered on `out` at once.
  void RenewLease(const ClientMessage& m, bus::Outbox& out, Clock::time_point now);

  // A writer holds `path` (a rename of it is refused while it does).
  bool Writing(const std::string& path) const { return leases_.Holder(path) != nullptr; }
  // A chunk report arrived: parked completions may go on.
  void OnReport(Clock::time_point now) { RetryParked(now); }
  // Lease expiry and parked completions' deadlines.
  void Tick(Clock::time_point now);

  size_t lease_count() const { return leases_.size(); }

 private:
  using Key = Catalog::Key;

  // Places a new chunk of lease `l` into `out`.
  // `size_hint`: the chunk's size when the writer knows it (0: unknown), the
  // space its nodes must have free.
  Status PlaceChunk(Lease& l, const std::vector<std::string>& exclude, uint64_t size_hint, Clock::time_point now,
                    msg::AllocateChunkResponse* out);
  // Answers `reply`, after journaling the next block of chunk ids when the
  // allocation used up the reserved ones.
  void AnswerAllocation(const ClientMessage& m, msg::ClientEnvelope reply);
  // Checks a completion against its lease (a spare is claimed for the path
  // here); an error is the answer, the lease then dropped where it must be.
  Status CheckCompletion(const ClientMessage& m, Lease& l);
  // A spare lease like `like` (its client, replication, chunk size) with
  // chunk 0 placed; nullopt when no chunk id is at hand or no pipeline fits.
  std::optional<msg::CreateFileResponse> NewSpare(const Lease& like, Clock::time_point now);
  void Install(const ClientMessage& m, Lease lease, Clock::time_point now);
  // Drops lease `id` and releases the chunks it allocated.
  void DropLease(uint64_t id);
  void RetryParked(Clock::time_point now);
  // Placement candidates, refreshed from the registry at most every 100 ms
  // (heartbeats come once a second) or when membership changes: building
  // them per allocation would cost O(nodes) each time.
  const std::vector<PlacementCandidate>& Candidates(Clock::time_point now);

  Options options_;
  Catalog& catalog_;
  ChunkManager& chunks_;
  const NodeRegistry& registry_;
  LeaseTable leases_;
  uint64_t next_chunk_id_;
  std::mt19937_64 rng_;
  std::vector<PlacementCandidate> candidates_;
  Clock::time_point candidates_at_{};
  uint64_t candidates_version_ = UINT64_MAX;
  // Completions waiting for replicas' reports.
  struct Parked {
    ClientMessage request;
    Clock::time_point deadline;
  };
  std::vector<Parked> parked_;
};

}  // namespace dfs::master
