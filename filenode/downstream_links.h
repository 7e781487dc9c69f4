// The node's DEALERs to the next nodes of its write pipelines: one per
// downstream address, made on first use and polled by the node's loop. Many
// streams share one link; the receiving node tells them apart by stream id.
//
// Not thread-safe: the poll thread owns every socket.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bus/socket.h"

namespace dfs::filenode {

class DownstreamLinks {
 public:
  using Clock = std::chrono::steady_clock;

  explicit DownstreamLinks(bus::Context& ctx) : ctx_(ctx) {}

  // "HOST:PORT" (what nodes register) or "tcp://HOST:PORT" -> a bus endpoint.
  static Result<std::string> Endpoint(const std::string& address);

  // The link to `endpoint`, dialled now if there is none.
  Result<bus::Socket*> Get(const std::string& endpoint, Clock::time_point now);
  // Closes the link (a peer that stopped answering); the next Get dials anew.
  void Drop(const std::string& endpoint);
  // Closes links unused for `idle`.
  void DropIdle(Clock::time_point now, std::chrono::milliseconds idle);

  struct Link {
    std::string endpoint;
    bus::Socket* socket;
  };
  std::vector<Link> links();

 private:
  struct Entry {
    std::unique_ptr<bus::Socket> socket;
    Clock::time_point last_used;
  };
  bus::Context& ctx_;
  std::map<std::string, Entry> links_;
};

}  // namespace dfs::filenode
