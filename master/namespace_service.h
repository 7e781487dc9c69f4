// The master's namespace requests: turns client messages into journal
// records, applies them to the Namespace, and answers each mutation only once
// its record is durable (group commit in the JournalWriter's thread; the
// completion comes back through a CompletionQueue the poll loop watches).
// Also owns write leases, the retry cache, start-up recovery and checkpoints.
//
// A mutation is applied in memory when it arrives and acknowledged when
// durable, so a concurrent reader may see it up to one sync (~0.2 ms) before
// its writer is told; if the journal then fails, the master stops (see
// JournalWriter) and the mutation may or may not survive, as with any
// request whose answer was lost.
//
// Not thread-safe: driven by the master's metadata thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>

#include <absl/container/flat_hash_set.h>
#include <string>

#include "bus/socket.h"
#include "master/chunk_locations.h"
#include "master/completion_queue.h"
#include "master/journal.h"
#include "master/lease_table.h"
#include "master/namespace.h"
#include "master/node_registry.h"
#include "master/placement.h"
#include "master/retry_cache.h"

namespace dfs::master {

class NamespaceService {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    std::string dir;
    uint32_t replication = 3;
    uint64_t chunk_size = 64 << 20;
    std::chrono::milliseconds lease_time{30000};
    // A background checkpoint starts after this many journal records.
    uint64_t checkpoint_every_records = 1'000'000;
    // Three-way integrity check at completion: every replica the client
    // names must have reported the chunk with the client's checksum. Off
    // only for metadata-only benchmarks and tests (--unsafe-unverified-writes).
    bool verify_replicas = true;
    // How long a completion waits for live replicas' reports: under the
    // client's patience (2 attempts of 1.5 s), so it hears why, not a timeout.
    std::chrono::milliseconds report_wait{2500};
    // The retry cache's memory bound (RetryCache explains the default).
    size_t retry_cache_bytes = RetryCache::kDefaultByteBudget;
  };

  NamespaceService(Options options, const NodeRegistry& registry);
  ~NamespaceService();

  // Start-up: checkpoint + journal replay, then the journal opened for append.
  Status Open();
  // Readable when journal completions are waiting for OnCompletions.
  int completion_fd() const { return completions_.fd(); }

  // Handles `m` if it is a namespace or write request (answering now or once
  // durable) and returns true; false leaves it to the caller.
  bool Handle(bus::Socket& socket, const bus::Message& m, Clock::time_point now);
  // Where parked completions are answered (the client ROUTER).
  void set_client_socket(bus::Socket* socket) { client_socket_ = socket; }
  // Node port: chunk reports. Returns false when `m` is not one.
  bool HandleNode(bus::Socket& socket, const bus::Message& m, Clock::time_point now);
  // Adds what the master wants of node `node_id` to its heartbeat answer.
  void DecorateHeartbeat(const std::string& node_id, msg::HeartbeatResponse* reply);
  // Sends the answers whose records became durable. An error means the
  // journal failed and the master must stop.
  Status OnCompletions(bus::Socket& socket);
  // Lease expiry and checkpoint scheduling.
  void Tick(Clock::time_point now);
  // Flushes the journal and writes a checkpoint (clean shutdown).
  Status Close();

  const Namespace& ns() const { return ns_; }
  JournalStats journal_stats() const;

 private:
  struct Pending {
    RetryCache::Key key;
    msg::Envelope reply;
  };

  // Applies `record`; on success journals it and answers `key` once durable
  // with `reply` (filled by `fill` from the ApplyResult); on error answers now.
  void Mutate(bus::Socket& socket, const RetryCache::Key& key, msg::JournalRecord record,
              const std::function<void(const ApplyResult&, msg::Envelope&)>& fill);
  void Answer(bus::Socket& socket, const RetryCache::Key& key, const msg::Envelope& reply);
  // Fills a compact cached answer's FileInfo from the namespace as it is now.
  void Redescribe(msg::Envelope& reply) const;
  void AnswerError(bus::Socket& socket, const RetryCache::Key& key, const Status& error);
  void Journal(const msg::JournalRecord& record, Pending pending);
  msg::JournalRecord NewRecord(const bus::Message& m) const;

  void HandleMutation(bus::Socket& socket, const bus::Message& m, Clock::time_point now);
  void HandleQuery(bus::Socket& socket, const bus::Message& m);
  void CreateFile(bus::Socket& socket, const bus::Message& m, const RetryCache::Key& key, Clock::time_point now);
  // Places a new chunk of lease `l` into `out`. Out of reserved chunk ids,
  // it journals the next block and answers `reply` once that is durable.
  Status PlaceChunk(Lease& l, const std::vector<std::string>& exclude, Clock::time_point now,
                    msg::AllocateChunkResponse* out);
  // Answers `reply`, after journaling the next block of chunk ids when the
  // allocation used up the reserved ones.
  void AnswerAllocation(bus::Socket& socket, const bus::Message& m, const RetryCache::Key& key, msg::Envelope reply);
  void AllocateChunk(bus::Socket& socket, const bus::Message& m, const RetryCache::Key& key,
                     Clock::time_point now);
  void CompleteFile(bus::Socket& socket, const bus::Message& m, const RetryCache::Key& key);
  // A spare lease like `like` (its client, replication, chunk size) with
  // chunk 0 placed; nullopt when no chunk id is at hand or no pipeline fits.
  std::optional<msg::CreateFileResponse> NewSpare(const Lease& like, Clock::time_point now);
  void ReleaseChunks(const std::vector<uint64_t>& chunks);
  void HandleChunkReport(bus::Socket& socket, const bus::Message& m);
  // Node `idx` holds `s`: a replica, a write in progress, or (false) a copy
  // no file owns at that version, which the node must delete.
  bool AcceptStored(uint32_t idx, const std::string& node_id, const msg::StoredChunk& s);
  void Locate(bus::Socket& socket, const bus::Message& m);
  void AddReplicas(uint64_t chunk, msg::ChunkInfo* out) const;
  // Checks every replica's report against the client's chunk list: OK,
  // Corruption (mismatch), or Unavailable (a report has not arrived yet).
  Status VerifyReplicas(const msg::CompleteFileRequest& req) const;
  void RetryParked(bus::Socket& socket, Clock::time_point now);
  void StartCheckpoint();
  void ReapCheckpoint();

  Options options_;
  const NodeRegistry& registry_;
  Namespace ns_;
  RetryCache retry_cache_{std::chrono::seconds(60), options_.retry_cache_bytes};
  LeaseTable leases_;
  CompletionQueue completions_;
  std::unique_ptr<JournalWriter> journal_;
  uint64_t next_token_ = 1;
  std::map<uint64_t, Pending> pending_;
  Status journal_failed_;
  uint64_t next_chunk_id_ = 1;
  std::mt19937_64 rng_;
  // Placement candidates, refreshed from the registry at most every 100 ms
  // (heartbeats come once a second) or when membership changes: building
  // them per allocation would cost O(nodes) each time.
  const std::vector<PlacementCandidate>& Candidates(Clock::time_point now);
  std::vector<PlacementCandidate> candidates_;
  Clock::time_point candidates_at_{};
  uint64_t candidates_version_ = UINT64_MAX;
  // Chunks no file references any more; deleted from nodes by the data path.
  std::vector<uint64_t> garbage_chunks_;
  ChunkLocations locations_;
  // Chunks allocated to writes in progress (not yet any file's).
  absl::flat_hash_map<uint64_t, uint64_t> leased_chunks_;  // chunk -> lease
  // Completions waiting for replicas' reports: retried on every report and tick.
  struct Parked {
    bus::Message request;
    Clock::time_point deadline;
  };
  std::vector<Parked> parked_;
  // Nodes in the middle of a paged full report.
  absl::flat_hash_set<uint32_t> full_reports_;
  bus::Socket* client_socket_ = nullptr;
  // Background checkpoint (a forked child writing a snapshot).
  pid_t checkpoint_pid_ = -1;
  uint64_t checkpoint_generation_ = 0;
  uint64_t records_at_last_checkpoint_ = 0;
};

}  // namespace dfs::master
