// Pipelined metadata requests for tools that keep many in flight (dfs-bench,
// bulk imports): submit requests tagged by the caller, collect completions
// as they arrive. No retries: a lost reply shows up as a timeout in Wait.
//
// Not thread-safe: one per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "client/dfs_client.h"

namespace dfs::client {

enum class MetaOp {
  kMkdir,        // path
  kStat,         // path
  kList,         // path (first page)
  kRename,       // path -> path2
  kRmdir,        // path
  kRemove,       // path (a file)
  kCreateEmpty,     // path: create + complete an empty file (two round trips)
  kCreateOneChunk,  // path: create + allocate + complete a one-chunk file of
                    // `size` bytes, metadata only (master-scale; no data moves)
};

struct MetaRequest {
  MetaOp op;
  std::string path;
  std::string path2;
  uint64_t tag = 0;
  uint64_t size = 0;          // kCreateOneChunk
  uint32_t replication = 0;   // create ops; 0: the cluster default
};

struct MetaCompletion {
  uint64_t tag = 0;
  Status status;
};

class MetaPipeline {
 public:
  static Result<std::unique_ptr<MetaPipeline>> Connect(const ClientOptions& options);
  ~MetaPipeline();

  Status Submit(const MetaRequest& request);
  // Completions that arrived; waits up to `timeout` for the first one.
  Result<std::vector<MetaCompletion>> Wait(std::chrono::milliseconds timeout);
  size_t in_flight() const;

 private:
  struct Impl;
  explicit MetaPipeline(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfs::client
