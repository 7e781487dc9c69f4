// dfs-bench's workloads; each prints its Report and returns the exit status.
#pragma once

#include <string>

#include "client/dfs_client.h"

namespace dfs::bench {

struct MetaOptions {
  client::ClientOptions client;
  uint64_t ops = 20000;
  int clients = 4;
  int depth = 32;
  bool create = false;  // empty files instead of directories
};
int RunMeta(const MetaOptions& options, bool json);

struct MasterScaleOptions {
  uint64_t files = 100000;
  int nodes = 1000;
  uint64_t mkdir_ops = 20000;
  int clients = 4;
  int depth = 32;
  std::string master_bin;  // default: next to dfs-bench in the build tree, else PATH
  std::string dir;         // default: a temp folder, removed after
};
int RunMasterScale(const MasterScaleOptions& options, bool json);

struct LargeOptions {
  client::ClientOptions client;
  uint64_t size = 1ull << 30;
  uint32_t replication = 0;  // 0: the cluster default
  uint64_t chunk_size = 0;   // 0: the cluster default
  int parallel = 4;
  bool drop_caches = false;  // before the get (root only)
  bool verify_bytes = false;  // memcmp what is read, on top of the CRC checks
  bool keep = false;          // leave the file in place
};
int RunLarge(const LargeOptions& options, bool json);

struct SmallOptions {
  client::ClientOptions client;
  uint64_t files = 1000;
  uint64_t size = 4096;
  int clients = 4;
  uint32_t replication = 0;
  bool drop_caches = false;
  bool chain = false;  // put --chain: small files node to node, not to every replica at once
};
int RunSmall(const SmallOptions& options, bool json);

}  // namespace dfs::bench
