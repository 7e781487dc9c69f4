// Says at once when a peer's process dies: the kernel closes its TCP
// connections, and a connection we hold to it reports the close within
// milliseconds. A peer that stops without closing anything (SIGSTOP, a cut
// cable) is not seen here; heartbeats cover that.
//
// One DEALER connected to every watched endpoint, never sending, with
// reconnection off, and a ZeroMQ socket monitor on it: ZMQ_EVENT_DISCONNECTED
// names the endpoint whose connection closed. Two sockets whatever the
// number of peers. (ZMQ_ROUTER_NOTIFY would show a ROUTER's peers leaving,
// but it is a draft API that Debian's libzmq does not build.)
//
// Not thread-safe: belongs to the thread that made it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bus/socket.h"
#include "common/status.h"

namespace dfs::bus {

class PeerWatch {
 public:
  static Result<std::unique_ptr<PeerWatch>> Create(Context& context);
  ~PeerWatch();

  // Connects to `endpoint` ("tcp://HOST:PORT") and watches that connection.
  // Watching a watched endpoint keeps its connection; once its close was
  // reported, watching it again makes a new one.
  Status Watch(const std::string& endpoint);
  void Unwatch(const std::string& endpoint);
  // Readable when events may be waiting (for a Poller's AddFd); Closed()
  // must then be called, and is cheap to call at any time.
  int fd() const;
  // Endpoints whose connection closed since the last call.
  std::vector<std::string> Closed();

 private:
  struct Impl;
  explicit PeerWatch(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfs::bus
