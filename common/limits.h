// Every protocol limit and default dfs's processes must agree on, each with
// its reason, in one place. A value is checked once, where it enters: a flag
// parser (dfs-master, dfs-node, dfs-cli), or the first daemon that receives
// it in a request (the master for a file's layout, the head node for a
// stream). Components take their defaults from here, never from a literal.
#pragma once

#include <cstdint>

#include <fmt/format.h>

#include "common/status.h"
#include "common/units.h"

namespace dfs::limits {

// --- Chunks ---------------------------------------------------------------
// 64 MiB, as GFS and HDFS: long sequential streams per chunk, and a chunk
// table of ~16 k records per TiB stored, so the master's memory goes to files,
// not chunk records.
inline constexpr uint64_t kDefaultChunkSize = 64 * kMiB;
// A chunk must hold at least one small frame; tests and tiny files use 4 KiB.
inline constexpr uint64_t kMinChunkSize = 4 * kKiB;
// The chunk table keeps sizes in 32 bits; 2 GiB leaves room, and a bigger
// chunk would make one node's failure cost a long repair of one stream.
inline constexpr uint64_t kMaxChunkSize = 2 * kGiB;

inline Status CheckChunkSize(uint64_t bytes) {
  if (bytes >= kMinChunkSize && bytes <= kMaxChunkSize) return Status::OK();
  return Status::InvalidArgument(fmt::format("chunk size {} is out of range: it must be {} to {}", FormatSize(bytes),
                                             FormatSize(kMinChunkSize), FormatSize(kMaxChunkSize)));
}

// --- Replication ----------------------------------------------------------
inline constexpr uint32_t kDefaultReplication = 3;
// A pipeline longer than this is a mistake, not a replication factor: each
// replica adds a hop of latency, and 16 is beyond any failure-domain count.
inline constexpr uint32_t kMaxReplication = 16;
// The nodes after the head of a write pipeline.
inline constexpr uint32_t kMaxDownstream = kMaxReplication - 1;

inline Status CheckReplication(uint32_t replicas) {
  if (replicas >= 1 && replicas <= kMaxReplication) return Status::OK();
  return Status::InvalidArgument(fmt::format("replication {} is out of range: it must be 1 to {}", replicas,
                                             kMaxReplication));
}

// --- Frames and messages --------------------------------------------------
// Payload bytes per data frame when a sender names none (DESIGN.md): big
// enough that per-message costs vanish against the copy, small enough that a
// 16-frame credit window is 16 MiB per stream.
inline constexpr uint32_t kDefaultFrameSize = 1u << 20;
// Smaller frames cost more in per-message overhead than they save in memory.
inline constexpr uint64_t kMinFrameSize = 4 * kKiB;
// A frame is at most 8 MiB: with its envelope it stays under the data
// sockets' message limit below, and 8 frames of it still fit the default
// credit pool.
inline constexpr uint64_t kMaxFrameSize = 8 * kMiB;
// Largest single ZeroMQ frame a socket accepts by default (libzmq drops the
// peer's connection before buffering a bigger one): control traffic is small,
// and 16 MiB covers the largest data frame with margin and a long listing.
inline constexpr int64_t kMaxMessageSize = 16 * kMiB;
// Node <-> master sockets carry paged full chunk reports (about 100 k chunks,
// a few MiB per page), so they take up to 64 MiB; a hostile 100 MiB frame is
// still dropped before it is buffered.
inline constexpr int64_t kMaxReportMessageSize = 64 * kMiB;

}  // namespace dfs::limits
