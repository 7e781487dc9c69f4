// The node's side of the conversation with the master, as a non-blocking
// state machine the node's poll loop drives:
//
//   hello (client port) -> register (node port) -> heartbeat every interval
//
// Any reply counts as proof of life. A master silent for a few intervals is
// presumed gone (paranoid pirate): the link drops both sockets and starts
// again from hello, so a master that restarted, even on other ports, is found
// again. A heartbeat answered "needs_register" registers again at once.
//
// Not thread-safe: owned by the node's main thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bus/socket.h"
#include "common/net.h"

namespace dfs::filenode {

class MasterLink {
 public:
  using Clock = std::chrono::steady_clock;

  struct Config {
    HostAndPort master;             // the client port
    std::string node_id;
    uint64_t incarnation = 0;
    std::string data_address;       // HOST:PORT others dial
    std::chrono::milliseconds heartbeat_interval{1000};
    int silent_intervals = 3;
  };

  // `stats` is asked for fresh figures before every register and heartbeat.
  MasterLink(bus::Context& ctx, Config config, std::function<msg::NodeStats()> stats);
  ~MasterLink();

  // Receives whatever arrived and sends what is due. Never blocks.
  void Service(Clock::time_point now);
  // When Service next has something to do without input.
  Clock::time_point NextWake() const { return next_wake_; }
  // Sockets to poll for input (changes after reconnects: re-read each turn).
  std::vector<bus::Socket*> sockets();
  bool registered() const { return state_ == State::kRegistered; }

 private:
  enum class State { kNeedHello, kAwaitHello, kAwaitRegister, kRegistered };

  void StartHello(Clock::time_point now);
  void SendRegister(Clock::time_point now);
  void SendHeartbeat(Clock::time_point now);
  void HandleHelloSocket(Clock::time_point now);
  void HandleControlSocket(Clock::time_point now);
  void Reset(Clock::time_point now, std::string_view why);
  Status SendOn(bus::Socket& socket, msg::Envelope env);

  bus::Context& ctx_;
  Config config_;
  std::function<msg::NodeStats()> stats_;
  State state_ = State::kNeedHello;
  std::unique_ptr<bus::Socket> hello_socket_;
  std::unique_ptr<bus::Socket> control_socket_;
  uint64_t next_request_id_ = 1;
  uint64_t awaited_request_id_ = 0;
  uint64_t master_incarnation_ = 0;
  Clock::time_point deadline_{};        // for the awaited reply
  Clock::time_point last_heard_{};
  Clock::time_point next_heartbeat_{};
  Clock::time_point next_wake_{};
  std::chrono::milliseconds backoff_{100};
  bool logged_unreachable_ = false;
};

}  // namespace dfs::filenode
