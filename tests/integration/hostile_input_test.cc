// Hostile input to every bound port of a running master and node: random
// bytes, wrong frame counts, a wrong protocol version, a 100 MiB frame. After
// each, the process must still be running and serving.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <random>
#include <zmq.hpp>

#include <gtest/gtest.h>

#include "bus/request_client.h"
#include "client_master.pb.h"
#include "common/net.h"
#include "tests/support/cluster.h"

namespace dfs::test {
namespace {

using namespace std::chrono_literals;

void SendRawTcp(uint16_t port, const std::string& bytes) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;  // the peer hung up on us: that is a fine answer
    off += static_cast<size_t>(n);
  }
  ::close(fd);
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

class HostileInput : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.Start());
    std::string text = MiniCluster::ReadText(cluster_.node_dir(0) + "/node.addr");
    while (!text.empty() && text.back() == '\n') text.pop_back();
    auto node_addr = ParseHostPort(text, 0);
    ASSERT_TRUE(node_addr);
    const std::string& which = GetParam();
    if (which == "master-client") port_ = cluster_.master_port();
    if (which == "master-node") port_ = cluster_.node_port();
    if (which == "node-data") port_ = node_addr->port;
    ASSERT_NE(port_, 0);
    endpoint_ = TcpEndpoint("127.0.0.1", port_);
  }

  // The port answers a request (any answer: hello, or an error reply saying
  // the request type is not served there) and the cluster still works. Every
  // port's envelope has the same header fields, so a client envelope speaks
  // to each of them here.
  void ExpectServing() {
    bus::Context ctx;
    bus::RequestClient<msg::ClientEnvelope> client(ctx, endpoint_, bus::SocketOptions{}, bus::RetryPolicy{2000ms, 2});
    msg::ClientEnvelope hello;
    hello.mutable_hello_request()->set_peer_name("hostile-test");
    auto r = client.Call(hello);
    if (!r) {
      EXPECT_NE(r.error().code(), Code::kTimedOut) << r.error().ToString();
    }
    EXPECT_TRUE(cluster_.master().running());
    EXPECT_TRUE(cluster_.node(0).running());
    EXPECT_EQ(cluster_.NodeState(cluster_.node_id(0)), "alive");
  }

  zmq::socket_t RawDealer() {
    zmq::socket_t s(raw_ctx_, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    s.connect(endpoint_);
    return s;
  }

  // Waits for one reply on a raw socket and returns its envelope.
  std::optional<msg::ClientEnvelope> RawReply(zmq::socket_t& s) {
    zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, 3000ms) <= 0) return std::nullopt;
    zmq::message_t frame;
    if (!s.recv(frame)) return std::nullopt;
    msg::ClientEnvelope env;
    if (!env.ParseFromArray(frame.data(), static_cast<int>(frame.size()))) return std::nullopt;
    while (frame.more()) (void)s.recv(frame);
    return env;
  }

  MiniCluster cluster_{{.nodes = 1, .dead_after = "3s"}};
  uint16_t port_ = 0;
  std::string endpoint_;
  zmq::context_t raw_ctx_;
};

TEST_P(HostileInput, RandomBytesOnTheTcpPort) {
  for (uint32_t seed = 1; seed <= 5; ++seed) SendRawTcp(port_, RandomBytes(64 * 1024, seed));
  // A ZMTP greeting followed by junk, too.
  SendRawTcp(port_, std::string("\xff\0\0\0\0\0\0\0\x01\x7f", 10) + RandomBytes(4096, 9));
  ExpectServing();
}

TEST_P(HostileInput, WrongFrameCountsGetAnErrorReply) {
  auto s = RawDealer();
  s.send(zmq::message_t(), zmq::send_flags::none);  // a lone empty frame
  auto r1 = RawReply(s);
  ASSERT_TRUE(r1);
  EXPECT_NE(r1->error().code(), msg::Status::OK);

  msg::ClientEnvelope e;
  e.set_protocol_major(bus::kProtocolMajor);
  e.mutable_hello_request();
  std::string header = e.SerializeAsString();
  s.send(zmq::buffer(header), zmq::send_flags::sndmore);
  for (int i = 0; i < 500; ++i) s.send(zmq::str_buffer("junk"), zmq::send_flags::sndmore);
  s.send(zmq::str_buffer("last"), zmq::send_flags::none);
  auto r2 = RawReply(s);
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->error().code(), msg::Status::PROTOCOL_ERROR);
  EXPECT_NE(r2->error().message().find("too many frames"), std::string::npos);

  s.send(zmq::str_buffer("\x0a\xff\xff\xff\xff\x0f garbage"), zmq::send_flags::none);
  auto r3 = RawReply(s);
  ASSERT_TRUE(r3);
  EXPECT_EQ(r3->error().code(), msg::Status::PROTOCOL_ERROR);
  ExpectServing();
}

TEST_P(HostileInput, WrongProtocolVersionGetsAClearError) {
  auto s = RawDealer();
  msg::ClientEnvelope e;
  e.set_protocol_major(99);
  e.set_request_id(5);
  e.mutable_hello_request();
  std::string bytes = e.SerializeAsString();
  s.send(zmq::buffer(bytes), zmq::send_flags::none);
  auto r = RawReply(s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->request_id(), 5u);
  EXPECT_EQ(r->error().code(), msg::Status::UNSUPPORTED_VERSION);
  EXPECT_NE(r->error().message().find("unsupported protocol version 99"), std::string::npos)
      << r->error().message();
  ExpectServing();
}

TEST_P(HostileInput, HundredMebibyteFrameIsDropped) {
  auto s = RawDealer();
  std::string huge(100 << 20, 'x');
  s.send(zmq::buffer(huge), zmq::send_flags::none);
  // No reply: the connection is dropped before the frame is buffered.
  EXPECT_FALSE(RawReply(s).has_value());
  ExpectServing();
}

INSTANTIATE_TEST_SUITE_P(EveryPort, HostileInput,
                         ::testing::Values("master-client", "master-node", "node-data"),
                         [](const auto& param_info) {
                           std::string n = param_info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

}  // namespace
}  // namespace dfs::test
