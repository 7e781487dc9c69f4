// The bus over inproc:// and tcp://127.0.0.1: round trips with payload
// frames, timeouts, retries against a server that restarts, and hostile
// messages refused without a crash. Each socket stays in the thread that
// made it; raw cppzmq sockets play the hostile peer.
#include "bus/request_client.h"
#include "bus/socket.h"
#include "client_master.pb.h"
#include "events.pb.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <thread>
#include <zmq.hpp>

#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

namespace dfs::bus {
namespace {

using namespace std::chrono_literals;
// Any port's envelope will do for the bus; the client port's has hello.
using Env = msg::ClientEnvelope;
using Msg = Message<Env>;

Env Hello(const std::string& name = "test") {
  Env e;
  e.mutable_hello_request()->set_peer_name(name);
  return e;
}

// Serves `count` requests on `endpoint` in its own thread, echoing the peer
// name into the reply's incarnation-free hello response and the payload back.
class EchoServer {
 public:
  EchoServer(Context& ctx, std::string endpoint, int count) {
    std::promise<std::string> bound;
    auto bound_future = bound.get_future();
    thread_ = std::thread([&ctx, endpoint, count, bound = std::move(bound)]() mutable {
      auto s = Socket::Create(ctx, SocketType::kRouter, SocketOptions{});
      if (!s || !s->Bind(endpoint).ok()) {
        bound.set_value("");
        return;
      }
      bound.set_value(s->endpoint());
      for (int served = 0; served < count;) {
        auto m = s->Receive<Env>(5000ms);
        if (!m || !*m) return;
        Env reply;
        reply.mutable_hello_response()->set_chunk_size((*m)->payload.size());
        std::vector<Frame> payload;
        for (auto& f : (*m)->payload) payload.push_back(std::move(f));
        if (!Reply(*s, **m, std::move(reply), std::move(payload)).ok()) return;
        ++served;
      }
    });
    endpoint_ = bound_future.get();
  }
  ~EchoServer() { thread_.join(); }
  const std::string& endpoint() const { return endpoint_; }

 private:
  std::thread thread_;
  std::string endpoint_;
};

void ExpectRoundTrip(const std::string& bind_endpoint) {
  Context ctx;
  EchoServer server(ctx, bind_endpoint, 2);
  ASSERT_FALSE(server.endpoint().empty());
  RequestClient<Env> client(ctx, server.endpoint(), SocketOptions{}, RetryPolicy{2000ms, 1});
  auto r = client.Call(Hello());
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_TRUE(r->envelope.has_hello_response());
  EXPECT_EQ(r->envelope.protocol_major(), kProtocolMajor);

  std::string big(3 << 20, 'x');
  big[12345] = 'y';
  std::vector<Frame> payload;
  payload.push_back(Frame::Copy(std::string_view("small")));
  payload.push_back(Frame::Copy(big));
  auto r2 = client.Call(Hello(), std::move(payload));
  ASSERT_TRUE(r2) << r2.error().ToString();
  EXPECT_EQ(r2->envelope.hello_response().chunk_size(), 2u);
  ASSERT_EQ(r2->payload.size(), 2u);
  EXPECT_EQ(r2->payload[0].view(), "small");
  EXPECT_EQ(r2->payload[1].view(), big);
}

TEST(Bus, RoundTripInproc) { ExpectRoundTrip("inproc://bus-test"); }
TEST(Bus, RoundTripTcpLoopback) { ExpectRoundTrip("tcp://127.0.0.1:0"); }

// The Poller wakes for a message on any of its sockets and for a plain
// descriptor, says which, and times out when nothing comes. ZMQ_FD is edge
// triggered: a message left queued after a receive, or one that arrived
// while the socket was sending, must still be reported without a new edge.
// A plain TCP listener on a free loopback port: the port "in use".
int HoldPort(uint16_t* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 1) != 0) return -1;
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

// Fulfils a promise when BindRetrying logs that it is retrying.
class RetryingSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit RetryingSink(std::shared_ptr<std::promise<void>> p) : promise_(std::move(p)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (!fired_ && std::string_view(msg.payload.data(), msg.payload.size()).find("retrying") != std::string_view::npos) {
      fired_ = true;
      promise_->set_value();
    }
  }
  void flush_() override {}

 private:
  std::shared_ptr<std::promise<void>> promise_;
  bool fired_ = false;
};

TEST(Bus, BindRetryingWaitsForABusyPortAndGivesUpAfterItsPatience) {
  uint16_t port = 0;
  const int held = HoldPort(&port);
  ASSERT_GE(held, 0);
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(port);
  Context ctx;
  auto s = Socket::Create(ctx, SocketType::kRouter, {});
  ASSERT_TRUE(s);
  // Held all along: Busy (address in use) once the patience is spent.
  const auto start = std::chrono::steady_clock::now();
  Status busy = BindRetrying(*s, endpoint, std::chrono::milliseconds(300));
  EXPECT_EQ(busy.code(), Code::kBusy) << busy.ToString();
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(300));
  // Let go once it has failed and is retrying (its warning says so): the
  // bind then succeeds on that port.
  auto retrying = std::make_shared<std::promise<void>>();
  auto sink = std::make_shared<RetryingSink>(retrying);
  spdlog::default_logger()->sinks().push_back(sink);
  std::thread release([held, done = retrying->get_future()]() mutable {
    done.wait();  // the "previous process" exits after the first refusal
    ::close(held);
  });
  Status bound = BindRetrying(*s, endpoint, std::chrono::seconds(10));
  release.join();
  spdlog::default_logger()->sinks().pop_back();
  ASSERT_TRUE(bound.ok()) << bound.ToString();
  EXPECT_EQ(s->endpoint(), endpoint);
}

TEST(Bus, PollerReportsEveryQueuedMessageAndPlainDescriptors) {
  Context ctx;
  auto a = Socket::Create(ctx, SocketType::kRouter, SocketOptions{});
  auto b = Socket::Create(ctx, SocketType::kRouter, SocketOptions{});
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->Bind("tcp://127.0.0.1:0").ok());
  ASSERT_TRUE(b->Bind("tcp://127.0.0.1:0").ok());
  auto to_a = Socket::Create(ctx, SocketType::kDealer, SocketOptions{});
  auto to_b = Socket::Create(ctx, SocketType::kDealer, SocketOptions{});
  ASSERT_TRUE(to_a && to_b);
  ASSERT_TRUE(to_a->Connect(a->endpoint()).ok());
  ASSERT_TRUE(to_b->Connect(b->endpoint()).ok());
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  auto send = [](Socket& s) {
    Msg m;
    m.envelope = Hello();
    ASSERT_TRUE(s.Send(std::move(m)).ok());
  };

  Poller poller;
  const size_t ia = poller.Add(*a);
  const size_t ib = poller.Add(*b);
  const size_t ifd = poller.AddFd(pipe_fds[0]);
  auto r = poller.Wait(50ms);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 0);

  // Two messages to b: the first wakes the poller; after one is received,
  // the other is still reported, with no new edge on b's descriptor.
  send(*to_b);
  send(*to_b);
  r = poller.Wait(5000ms);
  ASSERT_TRUE(r);
  EXPECT_FALSE(poller.Readable(ia));
  ASSERT_TRUE(poller.Readable(ib));
  auto first = b->TryReceive<Env>();
  ASSERT_TRUE(first && *first);
  // The second may still be on its way: wait for it through the poller.
  r = poller.Wait(5000ms);
  ASSERT_TRUE(r);
  ASSERT_TRUE(poller.Readable(ib));
  auto second = b->TryReceive<Env>();
  ASSERT_TRUE(second && *second);
  auto none = b->TryReceive<Env>();
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());

  // A message to a that arrives while a sends (its answer) is reported too.
  send(*to_a);
  r = poller.Wait(5000ms);
  ASSERT_TRUE(r && poller.Readable(ia));
  auto req = a->TryReceive<Env>();
  ASSERT_TRUE(req && *req);
  send(*to_a);
  ASSERT_TRUE(Reply(*a, **req, Hello()).ok());
  r = poller.Wait(5000ms);
  ASSERT_TRUE(r);
  EXPECT_TRUE(poller.Readable(ia));

  // A plain descriptor.
  ASSERT_EQ(::write(pipe_fds[1], "x", 1), 1);
  r = poller.Wait(5000ms);
  ASSERT_TRUE(r);
  EXPECT_TRUE(poller.Readable(ifd));
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

TEST(Bus, SilentServerTimesOutNamingTheEndpoint) {
  Context ctx;
  // A ROUTER that never answers.
  auto s = Socket::Create(ctx, SocketType::kRouter, SocketOptions{});
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->Bind("tcp://127.0.0.1:0").ok());
  RequestClient<Env> client(ctx, s->endpoint(), SocketOptions{}, RetryPolicy{150ms, 3});
  auto start = std::chrono::steady_clock::now();
  auto r = client.Call(Hello());
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kTimedOut);
  EXPECT_NE(r.error().message().find(s->endpoint()), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("3 attempts"), std::string::npos);
  EXPECT_GE(took, 450ms);
  EXPECT_LT(took, 3s);
}

TEST(Bus, RetryReachesARestartedServerWithTheSameRequestId) {
  Context ctx;
  std::string endpoint;
  uint64_t first_id = 0;
  {
    // Server A takes the request and dies without answering.
    auto a = Socket::Create(ctx, SocketType::kRouter, SocketOptions{});
    ASSERT_TRUE(a);
    ASSERT_TRUE(a->Bind("tcp://127.0.0.1:0").ok());
    endpoint = a->endpoint();
    RequestClient<Env> client(ctx, endpoint, SocketOptions{}, RetryPolicy{300ms, 10});
    std::promise<uint64_t> seen_by_b;
    std::thread server_b;
    auto call = std::async(std::launch::async, [&] { return client.Call(Hello("retry")); });
    auto m = a->Receive<Env>(5000ms);
    ASSERT_TRUE(m && *m);
    first_id = (*m)->envelope.request_id();
    a = Result<Socket>(Status::Internal("closed"));  // close A: the port is free again
    server_b = std::thread([&ctx, endpoint, &seen_by_b] {
      auto b = Socket::Create(ctx, SocketType::kRouter, SocketOptions{});
      for (int i = 0; i < 100 && !b->Bind(endpoint).ok(); ++i) std::this_thread::sleep_for(20ms);  // retry until the port is released
      auto req = b->Receive<Env>(5000ms);
      if (!req || !*req) {
        seen_by_b.set_value(0);
        return;
      }
      seen_by_b.set_value((*req)->envelope.request_id());
      Env reply;
      reply.mutable_hello_response()->set_replication(7);
      (void)Reply(*b, **req, std::move(reply));
      // Keep B up until the reply is out (linger covers it on close).
    });
    auto r = call.get();
    server_b.join();
    ASSERT_TRUE(r) << r.error().ToString();
    EXPECT_EQ(r->envelope.hello_response().replication(), 7u);
    EXPECT_EQ(seen_by_b.get_future().get(), first_id);
  }
}

TEST(Bus, StaleRepliesAreSkipped) {
  Context ctx;
  auto s = Socket::Create(ctx, SocketType::kRouter, SocketOptions{});
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->Bind("inproc://stale").ok());
  RequestClient<Env> client(ctx, "inproc://stale", SocketOptions{}, RetryPolicy{2000ms, 1});
  auto call = std::async(std::launch::async, [&] { return client.Call(Hello()); });
  auto m = s->Receive<Env>(5000ms);
  ASSERT_TRUE(m && *m);
  Msg stale;
  stale.route = (*m)->route;
  stale.envelope.set_request_id((*m)->envelope.request_id() + 1000);
  stale.envelope.mutable_hello_response()->set_replication(1);
  ASSERT_TRUE(s->Send(std::move(stale)).ok());
  Env good;
  good.mutable_hello_response()->set_replication(2);
  ASSERT_TRUE(Reply(*s, **m, std::move(good)).ok());
  auto r = call.get();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->envelope.hello_response().replication(), 2u);
}

TEST(Bus, ErrorReplyBecomesStatus) {
  Context ctx;
  auto s = Socket::Create(ctx, SocketType::kRouter, SocketOptions{});
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->Bind("inproc://err").ok());
  RequestClient<Env> client(ctx, "inproc://err", SocketOptions{}, RetryPolicy{2000ms, 1});
  auto call = std::async(std::launch::async, [&] { return client.Call(Hello()); });
  auto m = s->Receive<Env>(5000ms);
  ASSERT_TRUE(m && *m);
  ASSERT_TRUE(ReplyError(*s, **m, Status::NotFound("no such file or directory: /x")).ok());
  auto r = call.get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kNotFound);
  EXPECT_EQ(r.error().message(), "no such file or directory: /x");
}

// A raw peer and a bus ROUTER in one thread: every hostile shape gets a defect
// (and an error reply), never a crash, and the socket keeps serving.
class HostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SocketOptions o;
    o.max_message_size = 1 << 20;
    auto s = Socket::Create(ctx_, SocketType::kRouter, o);
    ASSERT_TRUE(s);
    server_ = std::make_unique<Socket>(std::move(*s));
    ASSERT_TRUE(server_->Bind("tcp://127.0.0.1:0").ok());
    raw_.set(zmq::sockopt::linger, 0);
    raw_.connect(server_->endpoint());
  }

  std::optional<Msg> ServerReceive() {
    auto m = server_->Receive<Env>(3000ms);
    EXPECT_TRUE(m) << m.error().ToString();
    if (!m) return std::nullopt;
    return std::move(*m);
  }

  // Reads the raw peer's reply envelope.
  Env RawReply() {
    zmq::message_t frame;
    Env env;
    zmq::pollitem_t item{raw_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, 3000ms) <= 0) return env;
    if (!raw_.recv(frame)) return env;
    EXPECT_TRUE(env.ParseFromArray(frame.data(), static_cast<int>(frame.size())));
    while (frame.more()) (void)raw_.recv(frame);
    return env;
  }

  void ExpectStillServes() {
    RequestClient<Env> client(ctx_, server_->endpoint(), SocketOptions{}, RetryPolicy{3000ms, 1});
    auto call = std::async(std::launch::async, [&] { return client.Call(Hello("after")); });
    auto m = ServerReceive();
    ASSERT_TRUE(m.has_value());
    ASSERT_TRUE(m->defect.ok()) << m->defect.ToString();
    ASSERT_TRUE(Reply(*server_, *m, Hello()).ok());
    ASSERT_TRUE(call.get());
  }

  Context ctx_;
  std::unique_ptr<Socket> server_;
  zmq::context_t raw_ctx_;
  zmq::socket_t raw_{raw_ctx_, zmq::socket_type::dealer};
};

TEST_F(HostileTest, GarbageHeaderIsRefusedWithAnError) {
  raw_.send(zmq::str_buffer("\xff\xff\xff not protobuf"), zmq::send_flags::none);
  auto m = ServerReceive();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->defect.code(), Code::kProtocolError);
  EXPECT_FALSE(m->route.empty());
  ASSERT_TRUE(ReplyError(*server_, *m, m->defect).ok());
  auto reply = RawReply();
  EXPECT_EQ(reply.error().code(), msg::Status::PROTOCOL_ERROR);
  ExpectStillServes();
}

TEST_F(HostileTest, WrongProtocolVersionIsRefusedNamingBothVersions) {
  Env e = Hello();
  e.set_protocol_major(kProtocolMajor + 1);
  e.set_request_id(77);
  std::string bytes = e.SerializeAsString();
  raw_.send(zmq::buffer(bytes), zmq::send_flags::none);
  auto m = ServerReceive();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->defect.code(), Code::kUnsupportedVersion);
  EXPECT_NE(m->defect.message().find("unsupported protocol version 2.0"), std::string::npos);
  ASSERT_TRUE(ReplyError(*server_, *m, m->defect).ok());
  auto reply = RawReply();
  EXPECT_EQ(reply.request_id(), 77u);
  EXPECT_EQ(reply.error().code(), msg::Status::UNSUPPORTED_VERSION);
  ExpectStillServes();
}

TEST_F(HostileTest, EmptyMessageAndTooManyFramesAreRefused) {
  raw_.send(zmq::message_t(), zmq::send_flags::none);  // one empty frame: version 0
  auto m = ServerReceive();
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->defect.ok());

  std::string header = [] {
    Env e = Hello();
    e.set_protocol_major(kProtocolMajor);
    return e.SerializeAsString();
  }();
  raw_.send(zmq::buffer(header), zmq::send_flags::sndmore);
  for (size_t i = 0; i < kMaxPayloadFrames + 50; ++i) raw_.send(zmq::str_buffer("f"), zmq::send_flags::sndmore);
  raw_.send(zmq::str_buffer("end"), zmq::send_flags::none);
  auto many = ServerReceive();
  ASSERT_TRUE(many);
  EXPECT_EQ(many->defect.code(), Code::kProtocolError);
  EXPECT_NE(many->defect.message().find("too many frames"), std::string::npos);
  ExpectStillServes();
}

TEST_F(HostileTest, OversizedFrameDropsThePeerNotTheServer) {
  std::string huge(4 << 20, 'z');  // over the 1 MiB limit set above
  raw_.send(zmq::buffer(huge), zmq::send_flags::none);
  auto m = server_->Receive<Env>(300ms);
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->has_value()) << "an oversized frame must never be delivered";
  ExpectStillServes();
}

TEST(Bus, PubSubDeliversTopicAndEnvelope) {
  Context ctx;
  auto pub = Socket::Create(ctx, SocketType::kPub, SocketOptions{});
  auto sub = Socket::Create(ctx, SocketType::kSub, SocketOptions{});
  ASSERT_TRUE(pub && sub);
  ASSERT_TRUE(pub->Bind("inproc://events").ok());
  ASSERT_TRUE(sub->Connect("inproc://events").ok());
  ASSERT_TRUE(sub->Subscribe("node.").ok());
  // PUB drops messages until the subscription has propagated: publish until
  // one arrives (bounded), which is the condition we wait on.
  std::optional<Message<msg::EventEnvelope>> got;
  for (int i = 0; i < 200 && !got; ++i) {
    msg::EventEnvelope e;
    e.mutable_event()->set_topic("node.up");
    e.mutable_event()->set_sequence(static_cast<uint64_t>(i + 1));
    ASSERT_TRUE(pub->Publish("node.up", e).ok());
    auto m = sub->Receive<msg::EventEnvelope>(10ms);
    ASSERT_TRUE(m);
    if (*m) got = std::move(**m);
  }
  ASSERT_TRUE(got);
  EXPECT_EQ(got->route, "node.up");
  EXPECT_EQ(got->envelope.event().topic(), "node.up");
}

}  // namespace
}  // namespace dfs::bus
