// What a server hands its handlers instead of a socket: a decoded Message and
// an Outbox to answer on. In the daemons the Outbox is the socket the request
// came in on; in unit tests it is a fake that records what was sent, so a
// handler's replies are checked without ZeroMQ.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "envelope.pb.h"

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

struct Message {
  // ROUTER: the peer's routing id (set on receive, required on send).
  // SUB: the topic. Empty otherwise.
  std::string route;
  msg::Envelope envelope;
  std::vector<Frame> payload;
  // Receive only. Not OK when the message was malformed (no header, header
  // not a valid Envelope, another protocol major, too many frames). `route`
  // and, when the header parsed, `envelope.request_id` are still set so a
  // server can answer with an error.
  Status defect;
};

// Where replies and other outgoing messages go.
class Outbox {
 public:
  virtual ~Outbox() = default;
  // Sends [route][envelope][payload…] (the protocol version stamped). Never
  // blocks: a full queue is Busy, an unroutable peer Unavailable.
  virtual Status Send(Message message) = 0;
};

// Envelope status <-> dfs::Status.
msg::Status ToProto(const Status& status);
Status FromProto(const msg::Status& status);

// Answers `request` on `out` (route, request id and client id copied over).
Status Reply(Outbox& out, const Message& request, msg::Envelope reply, std::vector<Frame> payload = {});
Status ReplyError(Outbox& out, const Message& request, const Status& error);

}  // namespace dfs::bus
