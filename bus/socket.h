// The bus: the only code in dfs that touches ZeroMQ. Everything above it sees
// Sockets that send and receive Messages (a port's protobuf envelope plus raw
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
#include "common/limits.h"
#include "common/status.h"

namespace dfs::bus {

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
  friend class PeerWatch;
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

// A message as it came off the wire, its envelope not decoded yet: what
// Socket::TryReceive<E> decodes as port E's envelope.
struct RawMessage {
  std::string route;
  Frame header;
  std::vector<Frame> payload;
  bool too_many_frames = false;
  Status defect;  // no header frame
};

// Decodes `raw`'s header as an E, checking what every port checks: the
// envelope parses, the protocol major is ours, the frames are few enough.
template <Envelope E>
Message<E> Decode(RawMessage raw);

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

  // Outbox::Send stamps the protocol version and sends [route][envelope]
  // [payload…] through here. Never blocks: a full queue is Busy, an
  // unroutable ROUTER peer Unavailable.
  Status Post(std::string_view route, const google::protobuf::MessageLite& envelope,
              std::vector<Frame> payload) override;
  // PUB: [topic][envelope].
  template <Envelope E>
  Status Publish(std::string_view topic, E envelope) {
    envelope.set_protocol_major(kProtocolMajor);
    envelope.set_protocol_minor(kProtocolMinor);
    return PublishEncoded(topic, envelope);
  }
  // SUB: receive topics starting with `prefix` ("" for all).
  Status Subscribe(std::string_view prefix);

  // A queued message, or nullopt when none is. Never blocks.
  template <Envelope E>
  Result<std::optional<Message<E>>> TryReceive() {
    DFS_ASSIGN_OR_RETURN(std::optional<RawMessage> raw, TryReceiveRaw());
    if (!raw) return std::optional<Message<E>>();
    return std::optional<Message<E>>(Decode<E>(std::move(*raw)));
  }
  Result<std::optional<RawMessage>> TryReceiveRaw();
  // The last look (a Poller's, or a receive) found no message, and nothing
  // was sent or received since. A message that came after makes the next
  // Poller::Wait return at once, so a loop that polls this socket can skip
  // receiving from it now: an empty TryReceive still costs libzmq two
  // system calls.
  bool idle() const;
  // Waits up to `timeout` for a message.
  template <Envelope E>
  Result<std::optional<Message<E>>> Receive(std::chrono::milliseconds timeout) {
    DFS_ASSIGN_OR_RETURN(std::optional<RawMessage> raw, ReceiveRaw(timeout));
    if (!raw) return std::optional<Message<E>>();
    return std::optional<Message<E>>(Decode<E>(std::move(*raw)));
  }
  Result<std::optional<RawMessage>> ReceiveRaw(std::chrono::milliseconds timeout);

 private:
  Status PublishEncoded(std::string_view topic, const google::protobuf::MessageLite& envelope);
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

// Hands up to `limit` queued messages of `socket` to `handle` (which returns
// false to stop early: say, when it closed the socket). The one receive loop
// every server runs: bounded, so one busy socket cannot starve the others of
// a poll loop, and skipping a socket the Poller found idle. Returns how many
// were handled; a receive error ends the batch and is returned.
template <Envelope E, class Handle>
Result<size_t> Drain(Socket& socket, size_t limit, Handle&& handle) {
  size_t handled = 0;
  if (socket.idle()) return handled;  // its ZMQ_FD wakes the poll loop when something comes
  while (handled < limit) {
    DFS_ASSIGN_OR_RETURN(std::optional<Message<E>> m, socket.TryReceive<E>());
    if (!m) break;
    ++handled;
    if (!handle(*m)) break;
  }
  return handled;
}

// ---- implementation --------------------------------------------------------

// What Decode says about a header frame that did not parse or a version it
// does not speak; OK otherwise.
Status ParseHeader(const Frame& header, google::protobuf::MessageLite& envelope);
Status CheckVersion(uint32_t major, uint32_t minor);
Status TooManyFrames();

template <Envelope E>
Message<E> Decode(RawMessage raw) {
  Message<E> out;
  out.route = std::move(raw.route);
  out.defect = std::move(raw.defect);
  if (!out.defect.ok()) return out;
  out.defect = ParseHeader(raw.header, out.envelope);
  if (!out.defect.ok()) return out;
  out.defect = CheckVersion(out.envelope.protocol_major(), out.envelope.protocol_minor());
  if (!out.defect.ok()) return out;
  if (raw.too_many_frames) {
    out.defect = TooManyFrames();
    return out;
  }
  out.payload = std::move(raw.payload);
  return out;
}

}  // namespace dfs::bus
