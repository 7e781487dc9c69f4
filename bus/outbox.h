// What a server hands its handlers instead of a socket: a decoded Message and
// an Outbox to answer on. In the daemons the Outbox is the socket the request
// came in on; in unit tests it is a fake that records what was sent, so a
// handler's replies are checked without ZeroMQ.
#pragma once

#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/message_lite.h>

#include "common.pb.h"
#include "common/status.h"

namespace dfs::bus {

// Bulk bytes beside the envelope. Moves without copying; Share() adds a
// reference to the same buffer (ZeroMQ refcounts large messages).
class Frame {
 public:
  Frame();
  ~Frame();
  Frame(Frame&&) noexcept;
  Frame& operator=(Frame&&) noexcept;

  static Frame Copy(std::span<const std::byte> bytes);
  static Frame Copy(std::string_view bytes);
  // An uninitialised buffer of `size` bytes to fill through data().
  static Frame Allocate(size_t size);
  // The same, with `size` added to `*held` now and taken off when the last
  // holder lets go of the buffer (ZeroMQ's I/O thread, once it is sent):
  // how a server bounds the bytes queued for readers slower than its disk.
  static Frame AllocateCounted(size_t size, std::shared_ptr<std::atomic<uint64_t>> held);

  Frame Share() const;
  size_t size() const;
  const std::byte* data() const;
  std::byte* data();
  std::string_view view() const;

 private:
  friend class Socket;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

inline constexpr uint32_t kProtocolMajor = 1;
inline constexpr uint32_t kProtocolMinor = 0;

// A port's envelope (msg::ClientEnvelope, NodeEnvelope, DataEnvelope,
// EventEnvelope): a protobuf message whose first fields are the header that
// common.proto describes. bus/ knows no envelope by name, so a change to one
// conversation rebuilds only the code that speaks it.
template <class E>
concept Envelope = std::derived_from<E, google::protobuf::MessageLite> &&
                   requires(E e, const E c, uint32_t v, uint64_t id) {
                     e.set_protocol_major(v);
                     e.set_protocol_minor(v);
                     e.set_request_id(id);
                     e.set_client_id(id);
                     e.mutable_error();
                     { c.protocol_major() } -> std::convertible_to<uint32_t>;
                     { c.protocol_minor() } -> std::convertible_to<uint32_t>;
                     { c.request_id() } -> std::convertible_to<uint64_t>;
                     { c.client_id() } -> std::convertible_to<uint64_t>;
                     { c.has_error() } -> std::convertible_to<bool>;
                     c.body_case();
                   };

template <Envelope E>
struct Message {
  // ROUTER: the peer's routing id (set on receive, required on send).
  // SUB: the topic. Empty otherwise.
  std::string route;
  E envelope;
  std::vector<Frame> payload;
  // Receive only. Not OK when the message was malformed (no header, header
  // not a valid envelope of this port, another protocol major, too many
  // frames). `route` and, when the header parsed, `envelope.request_id` are
  // still set so a server can answer with an error.
  Status defect;
};

// Where replies and other outgoing messages go.
class Outbox {
 public:
  virtual ~Outbox() = default;
  // Sends [route][envelope][payload…], the protocol version stamped. Never
  // blocks: a full queue is Busy, an unroutable peer Unavailable.
  template <Envelope E>
  Status Send(Message<E> message) {
    message.envelope.set_protocol_major(kProtocolMajor);
    message.envelope.set_protocol_minor(kProtocolMinor);
    return Post(message.route, message.envelope, std::move(message.payload));
  }

  // Send's work, with the version already stamped: the one thing an Outbox
  // implements.
  virtual Status Post(std::string_view route, const google::protobuf::MessageLite& envelope,
                      std::vector<Frame> payload) = 0;
};

// Envelope status <-> dfs::Status.
msg::Status ToProto(const Status& status);
Status FromProto(const msg::Status& status);

// Answers `request` on `out` (route, request id and client id copied over).
template <Envelope E>
Status Reply(Outbox& out, const Message<E>& request, E reply, std::vector<Frame> payload = {}) {
  Message<E> m;
  m.route = request.route;
  reply.set_request_id(request.envelope.request_id());
  reply.set_client_id(request.envelope.client_id());
  m.envelope = std::move(reply);
  m.payload = std::move(payload);
  return out.Send(std::move(m));
}

template <Envelope E>
Status ReplyError(Outbox& out, const Message<E>& request, const Status& error) {
  E reply;
  *reply.mutable_error() = ToProto(error);
  return Reply(out, request, std::move(reply));
}

}  // namespace dfs::bus
