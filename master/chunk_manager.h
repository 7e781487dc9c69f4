// The master's chunk manager: where each chunk's replicas are (learned from
// the nodes' reports, never persisted: GFS), the reports of chunks still
// being written that the three-way check at completion reads, readers'
// locations, and the garbage: replicas no file owns, deleted by riding on
// each node's heartbeat answer; re-replication (master/repairer.h) and the
// trimming of surplus replicas. The balancer belongs here.
//
// Not thread-safe: driven by the master's metadata thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>
#include <absl/container/inlined_vector.h>

#include "bus/outbox.h"
#include "master/ports.h"
#include "master/chunk_locations.h"
#include "master/namespace.h"
#include "master/node_registry.h"
#include "master/balancer.h"
#include "master/repairer.h"
#include "master/write_load.h"

namespace dfs::master {

// Every chunk is written once, as version 1; versions are there for in-place
// appends and repairs to come.
inline constexpr uint32_t kChunkVersion = 1;

class ChunkManager {
 public:
  using Clock = std::chrono::steady_clock;
  // Where cluster events go ("chunk.lost", "chunk.repaired").
  using Publish = std::function<void(const std::string& topic, const msg::ChunkEvent& e)>;

  // `ns` says which chunks files own; `registry` which nodes are alive.
  ChunkManager(const Namespace& ns, const NodeRegistry& registry, Repairer::Options repair = {},
               Clock::time_point start = Clock::now());

  // Cluster events go to `publish`; repair commands to `nodes` (the node port).
  void Connect(Publish publish, bus::Outbox* nodes);
  // Membership, as the registry decided it: a node came up (or back), or died.
  void NodeUp(const std::string& node_id);
  void NodeDown(const std::string& node_id);
  // Repair: starts copies, gives up late ones.
  void Tick(Clock::time_point now);
  // Node port: a source's answer to a repair command.
  void HandleReplicated(const NodeMessage& m);
  // A write completed: a chunk stored on fewer live nodes than wanted (one
  // died during the write) is queued for repair.
  void CheckReplication(uint64_t chunk) { repairer_.Check(chunk); }
  // setrep changed these chunks' wanted replication: short ones are queued
  // for copies, those with a surplus trimmed.
  void Reconcile(const std::vector<uint64_t>& chunks);
  // Client port: the health of the chunks under a path.
  void Fsck(const ClientMessage& m, bus::Outbox& out, Clock::time_point now) const;
  const Repairer& repairer() const { return repairer_; }

  // Node port: a (full or incremental) chunk report. Answered on `out` when
  // the node must delete something, and always for a full report's pages.
  void HandleReport(const NodeMessage& m, bus::Outbox& out);
  // Adds what the master wants of node `node_id` to its heartbeat answer.
  void DecorateHeartbeat(const std::string& node_id, msg::HeartbeatResponse* reply);

  // Client port: where a file's chunks are, live replicas least loaded first.
  void Locate(const ClientMessage& m, bus::Outbox& out) const;
  // Client port: a reader found a replica bad.
  void ReportBadReplica(const ClientMessage& m, bus::Outbox& out);
  // The replicas of `chunk`, as node ids, into `out`.
  void AddReplicas(uint64_t chunk, msg::ChunkInfo* out) const;

  // Writes: `chunk` was allocated to write lease `lease`, `bytes` of it
  // to each of `nodes`; its replicas' reports are kept until the write
  // completes or is dropped.
  void TrackWrite(uint64_t chunk, uint64_t lease, const std::vector<std::string>& nodes, uint64_t bytes,
                  Clock::time_point now);
  // The location index placement and WriteLoad know node `node_id` by.
  uint32_t NodeIndex(const std::string& node_id) { return locations_.NodeIndex(node_id); }
  // How fast each node has been taking the chunks placed on it.
  WriteLoad& write_load() { return load_; }
  // The write of `chunk` completed: its confirmed reports become replicas.
  void CommitWrite(uint64_t chunk);
  // Checks every replica's report against a completion's chunk list: OK,
  // Corruption (a mismatch), or Unavailable (a live replica's report has
  // not arrived yet).
  Status VerifyReplicas(const msg::CompleteFileRequest& req) const;
  // Chunks no file or write references any more: each node holding one is
  // told to delete it. A chunk some file held (deleted, or replaced by a
  // new version) waits `free_grace` first, so a reader that located it
  // before reads it to the end (GFS reclaims lazily too); a chunk no file
  // ever held (an abandoned write's) goes at once.
  void Release(const std::vector<uint64_t>& chunks);
  void set_free_grace(Clock::duration grace) { free_grace_ = grace; }
  void set_balance_threshold(double t) { balancer_.set_threshold(t); }

  // decommission: node `node_id` takes no new chunk, its chunks are copied
  // elsewhere (or, `draining` false, it is a normal node again).
  void SetDraining(const std::string& node_id, bool draining);
  // Draining and every chunk it holds whole without it: it may be stopped.
  bool Retired(const std::string& node_id);
  // Client port: what repair and the balancer are doing.
  void BalancerStatus(const ClientMessage& m, bus::Outbox& out, Clock::time_point now);

 private:
  // Node `idx` holds `s`: a replica, a write in progress, or (false) a copy
  // no file owns at that version, which the node must delete.
  bool AcceptStored(uint32_t idx, const std::string& node_id, const msg::StoredChunk& s);
  // Tells every node holding `id` to delete it.
  void Free(uint64_t id);
  // Tells the nodes holding a corrupt replica of `chunk` to delete it (not
  // one that since holds a good replica).
  void DeleteCorrupt(uint64_t chunk);
  // A replica another node reported on `r.node_id()`'s behalf (a pipeline's
  // head, a copy's source): accepted like its own report, or deleted there.
  // A holder not known alive is skipped: its own report covers it.
  void AcceptRelayed(const msg::RelayedChunk& r);
  bool Alive(uint32_t idx) const { return idx < alive_.size() && alive_[idx] != 0; }
  // Alive and not being decommissioned: its replicas count.
  bool Counts(uint32_t idx) const { return Alive(idx) && !balancer_.draining(idx); }
  // More live replicas than wanted (a node came back after its chunks were
  // copied elsewhere): the one on the fullest node goes.
  void TrimSurplus(uint64_t chunk, const ChunkRecord& rec);
  // Trimmed replicas whose reader grace ended: deleted on their nodes.
  void DeleteTrimmed(Clock::time_point now);

  const Namespace& ns_;
  const NodeRegistry& registry_;
  ChunkLocations locations_;
  // Chunks allocated to writes in progress (not yet any file's) -> lease.
  absl::flat_hash_map<uint64_t, uint64_t> writing_;
  WriteLoad load_;
  // Surplus replicas taken out of the locations, deleted after a grace
  // (min(free_grace_, kTrimGrace)) so that a reader that located one first
  // reads it to the end.
  static constexpr auto kTrimGrace = std::chrono::seconds(5);
  struct Trim {
    Clock::time_point due;
    uint32_t node;
    msg::StoredChunk chunk;
  };
  std::deque<Trim> trims_;
  // Chunks some node reported corrupt -> those nodes: the bad replica stays
  // there until the chunk has its live replicas again.
  absl::flat_hash_map<uint64_t, absl::InlinedVector<uint32_t, 2>> corrupt_;
  // Nodes in the middle of a paged full report.
  absl::flat_hash_set<uint32_t> full_reports_;
  // Freed chunks waiting out the grace period, oldest first, and their set
  // (a report of one is neither a replica nor an orphan meanwhile).
  std::deque<std::pair<Clock::time_point, uint64_t>> grace_queue_;
  absl::flat_hash_set<uint64_t> in_grace_;
  Clock::duration free_grace_ = std::chrono::seconds(30);
  // By location index: whether the node is alive (NodeUp / NodeDown).
  std::vector<char> alive_;
  Publish publish_;
  Repairer repairer_;
  Balancer balancer_;
};

}  // namespace dfs::master
