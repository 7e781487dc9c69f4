// Re-replication: every chunk with fewer live replicas than its files want
// is queued, fewest live replicas first, and copied node to node. The master
// only decides: it tells a node holding a good replica (the source) to
// stream the chunk to one or more targets with the write protocol clients
// use (messages/node_master.proto, REPAIR); no byte passes through it.
//
// Copies run in parallel within limits the master keeps per node and for the
// cluster (MooseFS's CHUNKS_WRITE_REP_LIMIT / CHUNKS_READ_REP_LIMIT, HDFS's
// max-streams), so that users' own traffic keeps most of the bandwidth. A
// copy whose source or target dies, or that fails or times out, is queued
// again and placed anew.
//
// After the master starts, nothing is queued for a hold-off: locations come
// from the nodes' full reports, and a chunk whose replicas have not been
// reported yet is not lost. When the hold-off ends one scan of every chunk
// queues what is short.
//
// Not thread-safe: driven by the master's metadata thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <absl/container/btree_set.h>
#include <absl/container/flat_hash_map.h>

#include "bus/outbox.h"
#include "events.pb.h"
#include "master/chunk_locations.h"
#include "master/namespace.h"
#include "master/node_registry.h"
#include "master/placement.h"

namespace dfs::master {

class Repairer {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    // Copies one node may receive at once (MooseFS's CHUNKS_WRITE_REP_LIMIT
    // is 2; HDFS's max-streams 2). Each copy is one credit-paced stream.
    uint32_t writes_per_node = 2;
    // The same for a node clients are writing to now (the master placed
    // client writes there that it has not reported stored): its disk and
    // CPU go to the users first, so a put during repair keeps most of its
    // throughput (issue 20's figure), and an idle node copies at full pace.
    uint32_t writes_per_busy_node = 1;
    // Copies one node may send at once (MooseFS's CHUNKS_READ_REP_LIMIT is 10).
    uint32_t reads_per_node = 4;
    // Copies under way in the whole cluster.
    uint32_t max_copies = 256;
    // Nothing is queued this long after the master starts (see above).
    Clock::duration holdoff = std::chrono::seconds(10);
    // A copy not answered this long is given up and placed again (the
    // source gives up first on a stalled pipeline: 5 s of silence).
    Clock::duration copy_timeout = std::chrono::seconds(120);
  };

  // What the repairer needs of the chunk manager: whether the node at a
  // location index is alive (it can be a copy's source), whether its
  // replicas count (alive and not decommissioning), and where events go.
  struct Hooks {
    std::function<bool(uint32_t node)> alive;
    std::function<bool(uint32_t node)> counts;
    // Whether clients are writing to it now (empty: never).
    std::function<bool(uint32_t node)> busy;
    std::function<void(const std::string& topic, const msg::ChunkEvent& e)> publish;
  };

  Repairer(Options options, const Namespace& ns, const NodeRegistry& registry, ChunkLocations& locations,
           Hooks hooks, Clock::time_point start);

  // Where commands to nodes go (the master's node port); set before Tick.
  void set_node_outbox(bus::Outbox* out) { nodes_ = out; }

  // Replicas that count (live nodes not being decommissioned), and how many
  // the chunk's files want (at least 1).
  uint32_t Live(uint64_t chunk) const;
  static uint32_t Wanted(const ChunkRecord& rec) { return rec.replication == 0 ? 1 : rec.replication; }

  // Queues `chunk` if it is short of live replicas (not during the hold-off:
  // the scan at its end covers it).
  void Check(uint64_t chunk);
  // Node `node` died: its copies are given up and their chunks queued again,
  // and every chunk it held is checked.
  void NodeDown(uint32_t node);
  // Gives up copies past their deadline, then StartCopies.
  void Tick(Clock::time_point now);
  // Starts what the limits allow from the queue. Called on every tick, and
  // at once when a node dies or a copy ends, so no copy waits for a tick.
  void StartCopies(Clock::time_point now);
  // A source's answer: ends the copy and frees its slots. False when no
  // copy under way has that request id (given up already: a late answer).
  bool Done(uint64_t request_id, uint64_t chunk, const Status& failure);
  // After a copy's replicas were accepted: re-checks the chunk, and says
  // so on the event socket when it is whole again.
  void AfterCopy(uint64_t chunk);

  // The balancer: copies `chunk` from `source` to `target` (both live; the
  // chunk whole), within the per-node limits; the surplus this makes is
  // trimmed from the fullest holder when the copy lands. False when the
  // limits or the state forbid it now.
  bool StartMove(uint64_t chunk, uint32_t source, uint32_t target, Clock::time_point now);
  size_t moving() const { return moving_; }
  // The source of a move of `chunk` that just ended, once: the replica to trim.
  std::optional<uint32_t> TakeMoveSource(uint64_t chunk);
  uint64_t moved() const { return moved_; }
  // Copies under way into / out of a node.
  uint32_t copies_in(uint32_t node) const;
  // Copies `node` may receive at once now (Options::writes_per_busy_node).
  uint32_t WriteLimit(uint32_t node) const;
  uint32_t copies_out(uint32_t node) const;
  bool in_holdoff(Clock::time_point now) const { return !holdoff_over_ && now < holdoff_end_; }
  bool repairing(uint64_t chunk) const { return copies_.contains(chunk); }
  size_t queued() const { return queue_.size(); }
  size_t copies() const { return copies_.size(); }
  uint64_t repaired() const { return repaired_; }

 private:
  struct Copy {
    uint64_t request_id = 0;
    uint32_t source = 0;
    std::vector<uint32_t> targets;
    Clock::time_point deadline;
    Clock::time_point started;
    bool move = false;  // the balancer's, not a repair
  };
  // Sends the copy command and records the copy.
  bool Send(uint64_t chunk, const ChunkRecord& rec, uint32_t source, const std::vector<PlacementCandidate>& targets,
            bool move, Clock::time_point now);

  void Queue(uint64_t chunk, uint32_t live);
  void Unqueue(uint64_t chunk);
  // Whether a copy of `chunk` could start (true: started or hopeless, so it
  // leaves the queue).
  bool TryStart(uint64_t chunk, Clock::time_point now);
  void Release(const Copy& c);
  void ScanAll();

  Options options_;
  const Namespace& ns_;
  const NodeRegistry& registry_;
  ChunkLocations& locations_;
  Hooks hooks_;
  bus::Outbox* nodes_ = nullptr;
  Clock::time_point holdoff_end_;
  bool holdoff_over_ = false;
  // (live replicas, chunk): fewest first.
  absl::btree_set<std::pair<uint32_t, uint64_t>> queue_;
  absl::flat_hash_map<uint64_t, uint32_t> queued_;
  absl::flat_hash_map<uint64_t, Copy> copies_;
  absl::flat_hash_map<uint32_t, uint32_t> reading_, writing_;  // copies per node
  uint64_t next_request_id_ = 1;
  uint64_t repaired_ = 0;
  size_t moving_ = 0;
  absl::flat_hash_map<uint64_t, uint32_t> moved_from_;
  uint64_t moved_ = 0;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace dfs::master
