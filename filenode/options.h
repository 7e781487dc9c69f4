// Everything dfs-node can be told, with its defaults in one place.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace dfs::filenode {

struct NodeOptions {
  std::string dir;
  std::string master;               // HOST:PORT of the master's client port
  std::string bind = "127.0.0.1";
  uint16_t port = 0;                // data port; 0 picks a free one
  std::string advertise;            // host others dial; default: --bind
  uint64_t capacity = 0;            // 0: the file system's size
  std::string log_level = "info";
  bool insecure = false;
  // The master's register reply can change it; 1 s per DESIGN.md.
  std::chrono::milliseconds heartbeat_interval{1000};
  // Silence from the master for this many intervals means it is gone: drop
  // the connection, say hello again (it may have moved ports) and register.
  int master_silent_intervals = 3;
};

}  // namespace dfs::filenode
