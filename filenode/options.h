// Everything dfs-node can be told, with its defaults in one place.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/fault_env.h"
#include "filenode/compaction.h"

namespace dfs::filenode {

struct NodeOptions {
  std::string dir;
  std::string master;               // HOST:PORT of the master's client port
  std::string bind = "127.0.0.1";
  uint16_t port = 0;                // data port; 0 picks a free one
  std::string advertise;            // host others dial; default: --bind
  uint64_t capacity = 0;            // 0: the file system's size
  // Space left free on the node's file system (shared disks, room for the
  // OS): the node says it has that much less available, and the master
  // places no chunk that would eat into it.
  uint64_t reserve = 0;
  // Bytes per second this node accepts into its chunks at most (writes of
  // clients and copies alike); 0: as fast as the disk goes. For shared disks,
  // and how tests make a slow node.
  uint64_t max_write_rate = 0;
  // The scrubber (filenode/scrubber.h): bytes per second re-read and
  // verified in the background (0: off), and how often a pass starts.
  uint64_t scrub_rate = 4ull << 20;
  std::chrono::milliseconds scrub_interval{std::chrono::hours(1)};
  std::string log_level = "info";
  bool insecure = false;
  // The master's register reply can change it; 1 s per DESIGN.md.
  std::chrono::milliseconds heartbeat_interval{1000};
  // Silence from the master for this many intervals means it is gone: drop
  // the connection, say hello again (it may have moved ports) and register.
  int master_silent_intervals = 3;
  // Bytes of write frames the node will hold for all its streams at once
  // (credit granted upstream). 256 MiB = 16 streams at full credit of 16 x 1 MiB.
  uint64_t credit_pool = 256ull << 20;
  // A stream whose sender says nothing this long is aborted (its credit freed).
  std::chrono::milliseconds upstream_silence{30000};
  // A next node that answers nothing this long fails the streams through it.
  std::chrono::milliseconds downstream_timeout{3000};
  // Chunks up to this size are appended to volumes with group commit instead
  // of getting two files each (ChunkStoreOptions); 0 keeps every chunk in files.
  uint64_t volume_max_chunk = 1ull << 20;
  // A volume takes batches until the next would pass this (ChunkStoreOptions).
  uint64_t volume_size = 256ull << 20;
  // Background compaction of volumes (filenode/compaction.h): threshold,
  // pace, and (UNSAFE, tests) the step it SIGKILLs the node at.
  CompactionOptions compaction;
  // Zeroed space kept ahead of the active volume (ChunkStoreOptions); off
  // by default: it doubles the bytes small chunks write, for a gain this
  // machine showed only some of the time (volume_store.h).
  uint64_t volume_prepare = 0;
  // ChunkStoreOptions::drop_behind, inverted: false drops a file chunk's
  // pages as they are written.
  bool keep_written_pages = false;
  // --cpu adaptive: the CPU main() pinned the node to, and the CPUs it may
  // spread over while it carries large streams (daemon/cpu_affinity.h).
  int adaptive_cpu = -1;
  std::vector<int> wide_cpus;
  // UNSAFE, for tests (--unsafe-fault-*): the node's disk misbehaves
  // (common/fault_env.h); aim with --unsafe-fault-path.
  DiskFaults disk_faults;
};

}  // namespace dfs::filenode
