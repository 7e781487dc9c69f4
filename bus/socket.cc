#include "bus/socket.h"
#include "bus/context_impl.h"

#include <poll.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <zmq.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace dfs::bus {
namespace {

Status FromZmq(const zmq::error_t& e, std::string_view what) {
  int err = e.num();
  std::string m = fmt::format("{}: {}", what, e.what());
  switch (err) {
    case EHOSTUNREACH: return Status::Unavailable(m);
    case EAGAIN: return Status::Busy(m);
    case EADDRINUSE: return Status::Busy(m);
    case EINVAL:
    case EPROTONOSUPPORT: return Status::InvalidArgument(m);
    default: return Status::IOError(m);
  }
}

zmq::socket_type ToZmq(SocketType t) {
  switch (t) {
    case SocketType::kRouter: return zmq::socket_type::router;
    case SocketType::kDealer: return zmq::socket_type::dealer;
    case SocketType::kPub: return zmq::socket_type::pub;
    case SocketType::kSub: return zmq::socket_type::sub;
  }
  return zmq::socket_type::dealer;
}

}  // namespace

// ---- Context ---------------------------------------------------------------

Context::Context(int io_threads) : impl_(std::make_unique<Impl>()) {
  impl_->ctx.set(zmq::ctxopt::io_threads, io_threads);
  // Plenty for a master with many nodes and clients; the default is 1024.
  impl_->ctx.set(zmq::ctxopt::max_sockets, 65536);
}
Context::~Context() = default;

// ---- Frame -----------------------------------------------------------------

struct Frame::Impl {
  zmq::message_t msg;
};

Frame::Frame() : impl_(std::make_unique<Impl>()) {}
Frame::~Frame() = default;
Frame::Frame(Frame&&) noexcept = default;
Frame& Frame::operator=(Frame&&) noexcept = default;

Frame Frame::Copy(std::span<const std::byte> bytes) {
  Frame f;
  f.impl_->msg.rebuild(bytes.data(), bytes.size());
  return f;
}
Frame Frame::Copy(std::string_view bytes) { return Copy(std::as_bytes(std::span(bytes.data(), bytes.size()))); }
Frame Frame::Allocate(size_t size) {
  Frame f;
  f.impl_->msg.rebuild(size);
  return f;
}
namespace {
struct CountedBuffer {
  std::shared_ptr<std::atomic<uint64_t>> held;
  size_t size;
};
// ZeroMQ calls this from whichever thread drops the last reference.
void FreeCounted(void* data, void* hint) {
  auto* c = static_cast<CountedBuffer*>(hint);
  c->held->fetch_sub(c->size, std::memory_order_relaxed);
  delete c;
  ::operator delete(data);
}
}  // namespace

Frame Frame::AllocateCounted(size_t size, std::shared_ptr<std::atomic<uint64_t>> held) {
  Frame f;
  void* data = ::operator new(std::max<size_t>(size, 1));
  held->fetch_add(size, std::memory_order_relaxed);
  f.impl_->msg.rebuild(data, size, &FreeCounted, new CountedBuffer{std::move(held), size});
  return f;
}
Frame Frame::Share() const {
  Frame f;
  f.impl_->msg.copy(impl_->msg);
  return f;
}
size_t Frame::size() const { return impl_->msg.size(); }
const std::byte* Frame::data() const { return static_cast<const std::byte*>(impl_->msg.data()); }
std::byte* Frame::data() { return static_cast<std::byte*>(impl_->msg.data()); }
std::string_view Frame::view() const { return {static_cast<const char*>(impl_->msg.data()), impl_->msg.size()}; }

// ---- Socket ----------------------------------------------------------------

struct Socket::Impl {
  zmq::socket_t sock;
  SocketType type;
  std::string endpoint;
  // A Poller found no message here (ZMQ_EVENTS, or a receive that came back
  // empty) and nothing was done with the socket since: its ZMQ_FD will
  // signal the next one, so the next Wait need not ask again. Any send or
  // receive clears it (ZMQ_FD is edge-triggered, and both may consume the
  // signal of a message that is then left in the queue).
  bool quiet = false;
};

Socket::Socket(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Socket::~Socket() = default;
Socket::Socket(Socket&&) noexcept = default;
Socket& Socket::operator=(Socket&&) noexcept = default;

Result<Socket> Socket::Create(Context& ctx, SocketType type, const SocketOptions& o) {
  try {
    auto impl = std::make_unique<Impl>(Impl{zmq::socket_t(ctx.impl_->ctx, ToZmq(type)), type, ""});
    zmq::socket_t& s = impl->sock;
    s.set(zmq::sockopt::maxmsgsize, o.max_message_size);
    s.set(zmq::sockopt::linger, o.linger_ms);
    s.set(zmq::sockopt::heartbeat_ivl, o.zmtp_heartbeat_ivl_ms);
    s.set(zmq::sockopt::heartbeat_timeout, o.zmtp_heartbeat_timeout_ms);
    s.set(zmq::sockopt::heartbeat_ttl, o.zmtp_heartbeat_timeout_ms);
    s.set(zmq::sockopt::reconnect_ivl, o.reconnect_ivl_ms);
    s.set(zmq::sockopt::reconnect_ivl_max, o.reconnect_ivl_max_ms);
    s.set(zmq::sockopt::sndhwm, o.send_hwm);
    s.set(zmq::sockopt::rcvhwm, o.receive_hwm);
    if (type == SocketType::kRouter) {
      s.set(zmq::sockopt::router_mandatory, o.router_mandatory);
      s.set(zmq::sockopt::router_handover, o.router_handover);
    }
    if (!o.routing_id.empty()) s.set(zmq::sockopt::routing_id, o.routing_id);
    if (o.curve) {
      if (o.curve_server) {
        s.set(zmq::sockopt::curve_server, true);
        s.set(zmq::sockopt::curve_secretkey, o.curve->secret_key);
      } else {
        s.set(zmq::sockopt::curve_serverkey, o.curve->server_key);
        s.set(zmq::sockopt::curve_publickey, o.curve->public_key);
        s.set(zmq::sockopt::curve_secretkey, o.curve->secret_key);
      }
    }
    return Socket(std::move(impl));
  } catch (const zmq::error_t& e) {
    return FromZmq(e, "create socket");
  }
}

Status Socket::Bind(const std::string& endpoint) {
  impl_->quiet = false;  // libzmq may process commands here too
  try {
    impl_->sock.bind(endpoint);
    impl_->endpoint = impl_->sock.get(zmq::sockopt::last_endpoint);
    return Status::OK();
  } catch (const zmq::error_t& e) {
    return FromZmq(e, "bind " + endpoint);
  }
}

Status BindRetrying(Socket& socket, const std::string& endpoint, std::chrono::milliseconds patience) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  for (int attempt = 1;; ++attempt) {
    Status s = socket.Bind(endpoint);
    // Busy is EADDRINUSE (FromZmq).
    if (s.code() != Code::kBusy || std::chrono::steady_clock::now() >= deadline) return s;
    if (attempt == 1) spdlog::warn("{}; retrying for up to {} ms", s.message(), patience.count());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

Status Socket::Connect(const std::string& endpoint) {
  impl_->quiet = false;  // libzmq may process commands here too
  try {
    impl_->sock.connect(endpoint);
    return Status::OK();
  } catch (const zmq::error_t& e) {
    return FromZmq(e, "connect " + endpoint);
  }
}

std::string Socket::endpoint() const { return impl_->endpoint; }
SocketType Socket::type() const { return impl_->type; }

namespace {

zmq::message_t Serialize(const google::protobuf::MessageLite& env) {
  zmq::message_t m(env.ByteSizeLong());
  env.SerializeWithCachedSizesToArray(static_cast<uint8_t*>(m.data()));
  return m;
}

}  // namespace

Status Socket::Post(std::string_view route, const google::protobuf::MessageLite& envelope,
                    std::vector<Frame> payload) {
  impl_->quiet = false;
  try {
    auto more = zmq::send_flags::sndmore | zmq::send_flags::dontwait;
    if (impl_->type == SocketType::kRouter) {
      if (route.empty()) return Status::InvalidArgument("ROUTER send without a route");
      if (!impl_->sock.send(zmq::buffer(route), more)) {
        return Status::Busy("send queue to peer is full");
      }
    }
    // After the first frame of a multipart message is accepted, ZeroMQ accepts
    // the rest: the message is queued atomically.
    bool last = payload.empty();
    if (!impl_->sock.send(Serialize(envelope), last ? zmq::send_flags::dontwait : more)) {
      return Status::Busy("send queue is full");
    }
    for (size_t i = 0; i < payload.size(); ++i) {
      bool final = i + 1 == payload.size();
      (void)impl_->sock.send(payload[i].impl_->msg, final ? zmq::send_flags::dontwait : more);
    }
    return Status::OK();
  } catch (const zmq::error_t& e) {
    return FromZmq(e, "send");
  }
}

Status Socket::PublishEncoded(std::string_view topic, const google::protobuf::MessageLite& envelope) {
  impl_->quiet = false;
  try {
    // PUB never blocks: a slow subscriber past its HWM loses messages, which
    // the event sequence number makes visible.
    (void)impl_->sock.send(zmq::buffer(topic), zmq::send_flags::sndmore);
    (void)impl_->sock.send(Serialize(envelope), zmq::send_flags::none);
    return Status::OK();
  } catch (const zmq::error_t& e) {
    return FromZmq(e, "publish");
  }
}

Status Socket::Subscribe(std::string_view prefix) {
  impl_->quiet = false;  // libzmq may process commands here too
  try {
    impl_->sock.set(zmq::sockopt::subscribe, prefix);
    return Status::OK();
  } catch (const zmq::error_t& e) {
    return FromZmq(e, "subscribe");
  }
}

bool Socket::idle() const { return impl_->quiet; }

Result<std::optional<RawMessage>> Socket::TryReceiveRaw() {
  try {
    std::vector<zmq::message_t> frames;
    zmq::message_t first;
    if (!impl_->sock.recv(first, zmq::recv_flags::dontwait)) {
      impl_->quiet = true;  // nothing queued: the next message signals ZMQ_FD
      return std::optional<RawMessage>();
    }
    impl_->quiet = false;
    bool more = first.more();
    frames.push_back(std::move(first));
    // The rest of a multipart message is already queued. Read every part,
    // even past the limit, so the next receive starts on a message boundary.
    size_t dropped = 0;
    while (more) {
      zmq::message_t part;
      (void)impl_->sock.recv(part, zmq::recv_flags::none);
      more = part.more();
      if (frames.size() < kMaxPayloadFrames + 2) {
        frames.push_back(std::move(part));
      } else {
        ++dropped;
      }
    }

    RawMessage out;
    size_t i = 0;
    if (impl_->type == SocketType::kRouter || impl_->type == SocketType::kSub) {
      out.route = frames[0].to_string();
      i = 1;
    }
    if (i >= frames.size()) {
      out.defect = Status::ProtocolError("message has no header frame");
      return std::optional<RawMessage>(std::move(out));
    }
    out.header.impl_->msg = std::move(frames[i]);
    out.too_many_frames = dropped > 0 || frames.size() - i - 1 > kMaxPayloadFrames;
    if (!out.too_many_frames) {
      for (++i; i < frames.size(); ++i) {
        Frame f;
        f.impl_->msg = std::move(frames[i]);
        out.payload.push_back(std::move(f));
      }
    }
    return std::optional<RawMessage>(std::move(out));
  } catch (const zmq::error_t& e) {
    return FromZmq(e, "receive");
  }
}

Result<std::optional<RawMessage>> Socket::ReceiveRaw(std::chrono::milliseconds timeout) {
  auto r = TryReceiveRaw();
  if (!r || *r) return r;
  try {
    zmq::pollitem_t item{impl_->sock.handle(), 0, ZMQ_POLLIN, 0};
    int n = zmq::poll(&item, 1, timeout);
    if (n == 0) return std::optional<RawMessage>();
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return std::optional<RawMessage>();
    return FromZmq(e, "poll");
  }
  return TryReceiveRaw();
}

Status ParseHeader(const Frame& header, google::protobuf::MessageLite& envelope) {
  if (envelope.ParseFromArray(header.data(), static_cast<int>(header.size()))) return Status::OK();
  envelope.Clear();
  return Status::ProtocolError(
      fmt::format("malformed header frame ({} bytes is not a {})", header.size(), envelope.GetTypeName()));
}

Status CheckVersion(uint32_t major, uint32_t minor) {
  if (major == kProtocolMajor) return Status::OK();
  return Status(Code::kUnsupportedVersion, fmt::format("unsupported protocol version {}.{} (this peer speaks {}.{})",
                                                       major, minor, kProtocolMajor, kProtocolMinor));
}

Status TooManyFrames() {
  return Status::ProtocolError(fmt::format("too many frames in one message (limit {})", kMaxPayloadFrames));
}

// ---- Poller ----------------------------------------------------------------
//
// zmq_poll asks every socket for ZMQ_EVENTS twice per call (before and after
// it sleeps), and each ask that finds the socket's command mailbox empty is a
// poll(2) and a getpid(2) inside libzmq: most of a loaded node's and
// master's system calls. This one asks a socket only when it may hold a
// message its ZMQ_FD will not signal (something was done with it since the
// last ask) and after its ZMQ_FD fired. Plain descriptors are polled as they are.

struct Poller::Impl {
  struct Item {
    Socket::Impl* socket = nullptr;  // null: a plain descriptor
    bool readable = false;
  };
  std::vector<Item> items;
  std::vector<pollfd> fds;

  // Whether `s` has a message to receive now (processes its pending commands).
  static bool HasMessage(Socket::Impl* s) {
    const bool in = (s->sock.get(zmq::sockopt::events) & ZMQ_POLLIN) != 0;
    s->quiet = !in;
    return in;
  }
};

Poller::Poller() : impl_(std::make_unique<Impl>()) {}
Poller::~Poller() = default;

size_t Poller::Add(Socket& socket) {
  impl_->items.push_back({socket.impl_.get(), false});
  impl_->fds.push_back({socket.impl_->sock.get(zmq::sockopt::fd), POLLIN, 0});
  return impl_->items.size() - 1;
}

size_t Poller::AddFd(int fd) {
  impl_->items.push_back({nullptr, false});
  impl_->fds.push_back({fd, POLLIN, 0});
  return impl_->items.size() - 1;
}

Result<int> Poller::Wait(std::chrono::milliseconds timeout) {
  auto& items = impl_->items;
  auto& fds = impl_->fds;
  int ready = 0;
  try {
    for (auto& item : items) {
      item.readable = item.socket != nullptr && !item.socket->quiet && Impl::HasMessage(item.socket);
      ready += item.readable ? 1 : 0;
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      int ms = 0;
      if (ready == 0) {
        ms = timeout.count() < 0 ? -1
                                 : static_cast<int>(std::max<int64_t>(
                                       0, std::chrono::ceil<std::chrono::milliseconds>(
                                              deadline - std::chrono::steady_clock::now())
                                              .count()));
      }
      const int n = ::poll(fds.data(), fds.size(), ms);
      if (n < 0) {
        if (errno == EINTR) return ready;
        return Status::FromErrno(errno, "poll");
      }
      for (size_t i = 0; i < items.size(); ++i) {
        if (fds[i].revents == 0 || items[i].readable) continue;
        // A socket's ZMQ_FD says "commands arrived", not "a message did".
        items[i].readable = items[i].socket == nullptr ? true : Impl::HasMessage(items[i].socket);
        ready += items[i].readable ? 1 : 0;
      }
      if (ready > 0 || n == 0 || ms == 0) return ready;
      // Woken by commands that brought no message (a peer connecting, send
      // credit): sleep again for what is left of the timeout.
    }
  } catch (const zmq::error_t& e) {
    return FromZmq(e, "poll");
  }
}

bool Poller::Readable(size_t index) const {
  return index < impl_->items.size() && impl_->items[index].readable;
}

// ---- Status and replies ----------------------------------------------------

msg::Status ToProto(const Status& status) {
  msg::Status out;
  out.set_code(static_cast<msg::Status::Code>(status.code()));
  out.set_message(status.message());
  return out;
}

Status FromProto(const msg::Status& status) {
  int code = status.code();
  if (code < 0 || code > static_cast<int>(kLastCode)) {
    return Status::ProtocolError(fmt::format("unknown status code {}: {}", code, status.message()));
  }
  return Status(static_cast<Code>(code), status.message());
}

}  // namespace dfs::bus
