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

}  // namespace dfs::bench
