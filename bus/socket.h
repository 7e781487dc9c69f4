// The bus: the only code in dfs that touches ZeroMQ. Everything above it sees
// Sockets that send and receive Messages (a protobuf Envelope plus raw
// payload frames), a Poller, and Status instead of exceptions.
//
// Thread-safety: a Context is thread-safe; a Socket and a Poller belong to the
// thread that created them (ZeroMQ sockets must never be shared, libzmq#3200).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bus/outbox.h"
#include "common/status.h"
#include "envelope.pb.h"
#include "common/limits.h"

namespace dfs::bus {

inline constexpr uint32_t kProtocolMajor = 1;
inline constexpr uint32_t kProtocolMinor = 0;

// Most raw frames one message may carry after its envelope. Data messages
// carry one frame each (issue 4); a peer that sends more is refused.
inline constexpr size_t kMaxPayloadFrames = 16;

// One per process; owns ZeroMQ's I/O threads.
class Context {
 public:
  explicit Context(int io_threads = 1);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

 private:
  friend class Socket;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// CURVE keys, Z85 text (40 chars). A server sets public+secret; a client sets
// its own pair and the server's public key.
struct CurveKeys {
  std::string public_key;
  std::string secret_key;
  std::string server_key;  // clients only
};

struct SocketOptions {
  // Largest single frame accepted (see limits::kMaxMessageSize).
  int64_t max_message_size = limits::kMaxMessageSize;
  // Unsent messages are dropped this long after close, so stopping never hangs
  // on a dead peer.
  int linger_ms = 200;
  // ZMTP heartbeats: a silent TCP peer is detected and its connection dropped
  // (and a DEALER reconnects) even when no application message is due.
  int zmtp_heartbeat_ivl_ms = 1000;
  int zmtp_heartbeat_timeout_ms = 3000;
  int reconnect_ivl_ms = 100;
  int reconnect_ivl_max_ms = 1000;
  int send_hwm = 10000;
  int receive_hwm = 10000;
  // ROUTER: an unroutable reply is an error, not a silent drop.
  bool router_mandatory = true;
  // ROUTER: a reconnecting peer with the same routing id takes over.
  bool router_handover = false;
  // DEALER: a fixed routing id (else ZeroMQ makes one up).
  std::string routing_id;
  std::optional<CurveKeys> curve;
  bool curve_server = false;
};

enum class SocketType { kRouter, kDealer, kPub, kSub };

// A Socket is an Outbox: handlers that only answer take the Outbox, so a
// test drives them with a recording fake instead of ZeroMQ.
class Socket final : public Outbox {
 public:
  static Result<Socket> Create(Context& ctx, SocketType type, const SocketOptions& options);
  ~Socket();
  Socket(Socket&&) noexcept;
  Socket& operator=(Socket&&) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // "tcp://127.0.0.1:0" binds any free port; endpoint() tells which.
  Status Bind(const std::string& endpoint);
  Status Connect(const std::string& endpoint);
  // The last bound endpoint, "tcp://127.0.0.1:41234".
  std::string endpoint() const;
  SocketType type() const;

  // Stamps the protocol version and sends [route][envelope][payload…].
  // Never blocks: a full queue is Busy, an unroutable ROUTER peer Unavailable.
  Status Send(Message message) override;
  // PUB: [topic][envelope].
  Status Publish(std::string_view topic, msg::Envelope envelope);
  // SUB: receive topics starting with `prefix` ("" for all).
  Status Subscribe(std::string_view prefix);

  // A queued message, or nullopt when none is. Never blocks.
  Result<std::optional<Message>> TryReceive();
  // The last look (a Poller's, or a receive) found no message, and nothing
  // was sent or received since. A message that came after makes the next
  // Poller::Wait return at once, so a loop that polls this socket can skip
  // receiving from it now: an empty TryReceive still costs libzmq two
  // system calls.
  bool idle() const;
  // Waits up to `timeout` for a message.
  Result<std::optional<Message>> Receive(std::chrono::milliseconds timeout);

 private:
  friend class Poller;
  struct Impl;
  explicit Socket(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Binds `endpoint`, retrying for up to `patience` while its port is in use.
// A daemon restarted on its old port can find it taken for a moment: by the
// previous process's last connections, or by a client whose ephemeral source
// port happened to land on it while the daemon was down (ports picked with
// --port 0 lie in the ephemeral range).
Status BindRetrying(Socket& socket, const std::string& endpoint,
                    std::chrono::milliseconds patience = std::chrono::seconds(5));

// Waits until sockets or plain file descriptors (a signalfd) are readable.
class Poller {
 public:
  Poller();
  ~Poller();
  // Returns the index to ask Readable() about. The socket must outlive the poller.
  size_t Add(Socket& socket);
  size_t AddFd(int fd);
  // Waits up to `timeout` (negative: forever). Returns how many are readable.
  Result<int> Wait(std::chrono::milliseconds timeout);
  bool Readable(size_t index) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Envelope status <-> dfs::Status.
msg::Status ToProto(const Status& status);
Status FromProto(const msg::Status& status);

}  // namespace dfs::bus
