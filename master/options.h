// Everything dfs-master can be told, with its defaults in one place.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "common/fault_env.h"
#include "common/units.h"
#include "master/retry_cache.h"
#include "common/limits.h"

namespace dfs::master {

struct MasterOptions {
  std::string dir;
  std::string bind = "127.0.0.1";
  // 0 picks a free port; event and node ports then default to free ports too.
  uint16_t port = 5550;
  // 0 with a fixed --port means PORT+1 / PORT+2 (DESIGN.md).
  uint16_t event_port = 0;
  uint16_t node_port = 0;
  uint32_t replication = limits::kDefaultReplication;
  uint64_t chunk_size = limits::kDefaultChunkSize;
  // Five missed 1 s heartbeats: long enough to ride out a GC-free hiccup or a
  // busy fsync, short enough that repair starts within seconds.
  std::chrono::milliseconds dead_after{5000};
  // Told to nodes in the register reply.
  std::chrono::milliseconds heartbeat_interval{1000};
  // A deleted or overwritten file's chunks are deleted from the nodes this
  // long after, so readers that started before finish (ChunkManager::Release).
  std::chrono::milliseconds free_grace{30000};
  // A chunk goes to fewer nodes than its replication when no more can take
  // it, if at least this many (WriteCoordinator::Options::min_replicas).
  uint32_t min_replicas = 2;
  // Re-replication (master/repairer.h): copies one node may receive and
  // send at once, copies under way in the cluster, and how long after a
  // start nothing is repaired (the nodes report what they hold first).
  uint32_t repair_writes_per_node = 2;
  uint32_t repair_writes_per_busy_node = 1;
  uint32_t repair_reads_per_node = 4;
  uint32_t repair_max_copies = 256;
  std::chrono::milliseconds repair_holdoff{10000};
  // The balancer (master/balancer.h): moves chunks while a node's
  // utilisation is further than this from the mean (relative); 0: off.
  double balance_threshold = 0.1;
  // A writer that stops renewing for this long loses its lease: the path is
  // free again and the chunks it allocated are released.
  std::chrono::milliseconds lease_time{30000};
  // A background checkpoint starts after this many journal records, which
  // bounds the journal a restart must replay (~1 s per million records).
  uint64_t checkpoint_every_records = 1'000'000;
  // Memory for answers to recent mutations (the retry cache): a few seconds'
  // worth at the master's peak rate; past it the oldest are dropped and a
  // retry of one is applied again. Why 64 MiB: master/retry_cache.h.
  uint64_t retry_cache_bytes = RetryCache::kDefaultByteBudget;
  // UNSAFE, for metadata-only benchmarks and tests: complete writes without
  // the replicas' checksum reports (no bytes need to have moved).
  bool unverified_writes = false;
  // UNSAFE, for tests (--unsafe-fault-*): the journal's and checkpoint's
  // disk misbehaves (common/fault_env.h).
  DiskFaults disk_faults;
  // UNSAFE, for tests: the checkpoint writer exits (status 85) after this
  // many entries, leaving a partial checkpoint.tmp; 0: off.
  uint64_t fault_crash_during_checkpoint = 0;
  // UNSAFE, for tests: exit (status 85) once the N-th journal record is
  // durable, before it is acknowledged; 0: off.
  uint64_t fault_crash_after_journal_append = 0;
  std::string log_level = "info";
  // Allow binding a non-loopback address without CURVE keys.
  bool insecure = false;
};

}  // namespace dfs::master
