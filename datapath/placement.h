// Where a new chunk is written: plain values that the client's public header
// (client/dfs_client.h) and the pipeline writer share. No bus, no protobuf.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dfs::datapath {

// A node of a pipeline: its id and data address ("HOST:PORT").
struct NodeRef {
  std::string id;
  std::string address;
};

// Where one new chunk goes: write it to pipeline[0], which forwards on.
struct ChunkPlacement {
  uint64_t chunk_id = 0;
  uint32_t version = 0;
  std::vector<NodeRef> pipeline;
};

}  // namespace dfs::datapath
