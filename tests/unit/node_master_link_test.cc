// The node's master link against a scripted master in-process: full chunk
// reports in pages after registering and when a heartbeat answer asks,
// incremental reports batched, deletions handed to the node, and a master
// that refuses reports (its side not there yet) changes nothing.
#include <gtest/gtest.h>

#include "bus/socket.h"
#include "client_master.pb.h"
#include "node_master.pb.h"
#include "common/net.h"
#include "filenode/master_link.h"

namespace dfs::filenode {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

msg::StoredChunk Chunk(uint64_t id) {
  msg::StoredChunk c;
  c.set_chunk_id(id);
  c.set_version(1);
  c.set_size(id * 10);
  c.set_crc32c(static_cast<uint32_t>(id));
  return c;
}

// One ROUTER answering both the hello (client port) and the node messages.
class FakeMaster {
 public:
  explicit FakeMaster(bus::Context& ctx) {
    auto s = bus::Socket::Create(ctx, bus::SocketType::kRouter, {});
    EXPECT_TRUE(s);
    socket_ = std::make_unique<bus::Socket>(std::move(*s));
    EXPECT_TRUE(socket_->Bind("tcp://127.0.0.1:0").ok());
    port_ = *PortOfEndpoint(socket_->endpoint());
  }
  uint16_t port() const { return port_; }

  // Answers what arrives within `wait`.
  void Pump(std::chrono::milliseconds wait) {
    auto r = socket_->ReceiveRaw(wait);
    while (r && *r) {
      Handle(std::move(**r));
      r = socket_->TryReceiveRaw();
    }
  }

  std::vector<msg::ChunkReportRequest> reports;
  int heartbeats = 0;
  bool refuse_reports = false;
  std::vector<msg::StoredChunk> delete_next_heartbeat;
  bool full_report_next_heartbeat = false;

 private:
  // One socket stands for both of the master's ports: a hello is the client
  // port's (it names this same port as the node port), the rest the node port's.
  void Handle(bus::RawMessage raw) {
    bus::RawMessage copy{raw.route, raw.header.Share(), {}, false, raw.defect};
    auto hello = bus::Decode<msg::ClientEnvelope>(std::move(copy));
    if (hello.envelope.has_hello_request()) {
      msg::ClientEnvelope reply;
      reply.mutable_hello_response()->set_node_port(port_);
      reply.mutable_hello_response()->set_incarnation(1);
      IgnoreError(bus::Reply(*socket_, hello, std::move(reply)));
      return;
    }
    HandleNode(bus::Decode<msg::NodeEnvelope>(std::move(raw)));
  }

  void HandleNode(const bus::Message<msg::NodeEnvelope>& m) {
    msg::NodeEnvelope reply;
    switch (m.envelope.body_case()) {
      case msg::NodeEnvelope::kRegisterNodeRequest:
        reply.mutable_register_node_response()->set_heartbeat_interval_ms(20);
        break;
      case msg::NodeEnvelope::kHeartbeatRequest: {
        ++heartbeats;
        auto* hb = reply.mutable_heartbeat_response();
        for (const auto& c : std::exchange(delete_next_heartbeat, {})) *hb->add_delete_chunks() = c;
        hb->set_needs_full_report(std::exchange(full_report_next_heartbeat, false));
        break;
      }
      case msg::NodeEnvelope::kChunkReportRequest:
        reports.push_back(m.envelope.chunk_report_request());
        if (refuse_reports) {
          IgnoreError(bus::ReplyError(*socket_, m, Status::ProtocolError("not served yet")));
          return;
        }
        // As the master does: an incremental report is answered only when
        // there is something to delete.
        reply.mutable_chunk_report_response();
        if (m.envelope.chunk_report_request().stored_size() > 0 &&
            m.envelope.chunk_report_request().stored(0).chunk_id() == 666) {
          *reply.mutable_chunk_report_response()->add_delete_() = Chunk(666);
        } else if (!m.envelope.chunk_report_request().full()) {
          return;
        }
        break;
      default: return;
    }
    IgnoreError(bus::Reply(*socket_, m, std::move(reply)));
  }

  std::unique_ptr<bus::Socket> socket_;
  uint16_t port_ = 0;
};

class MasterLinkTest : public ::testing::Test {
 protected:
  static constexpr size_t kPage = 1000;
  void SetUp() override {
    MasterLink::Config c;
    c.master = HostAndPort{"127.0.0.1", master_.port()};
    c.node_id = "n1";
    c.incarnation = 7;
    c.data_address = "127.0.0.1:1";
    c.heartbeat_interval = 20ms;
    // Pages of 1000: three pages take 2,001+ chunks, not 100,001+ (which
    // took a ThreadSanitizer build 35 s to page and parse).
    c.report_page_chunks = kPage;
    MasterLink::Hooks h;
    h.stats = [] { return msg::NodeStats(); };
    h.inventory = [this] { return inventory_; };
    h.delete_chunks = [this](const std::vector<msg::StoredChunk>& v) {
      deleted_.insert(deleted_.end(), v.begin(), v.end());
    };
    link_ = std::make_unique<MasterLink>(ctx_, c, std::move(h));
  }
  // Drives link and master until `done` holds (or 10 s pass). The link's
  // sockets are polled as the node's loop polls them: the link reads only
  // what a poll found.
  bool RunUntil(const std::function<bool()>& done) {
    auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline) {
      link_->Service(Clock::now());
      if (done()) return true;
      master_.Pump(5ms);
      bus::Poller poller;
      for (bus::Socket* s : link_->sockets()) poller.Add(*s);
      EXPECT_TRUE(poller.Wait(0ms));
    }
    return false;
  }
  size_t Full() const {
    size_t n = 0;
    for (const auto& r : master_.reports) n += r.full() ? 1 : 0;
    return n;
  }

  bus::Context ctx_;
  FakeMaster master_{ctx_};
  MasterLink::Inventory inventory_;
  std::vector<msg::StoredChunk> deleted_;
  std::unique_ptr<MasterLink> link_;
};

TEST_F(MasterLinkTest, FullReportInPagesAfterRegistering) {
  for (uint64_t i = 1; i <= 2400; ++i) inventory_.stored.push_back(Chunk(i));
  inventory_.corrupt.push_back(Chunk(200000));
  ASSERT_TRUE(RunUntil([&] { return master_.reports.size() >= 3; }));
  ASSERT_EQ(master_.reports.size(), 3u);
  size_t stored = 0;
  for (size_t i = 0; i < 3; ++i) {
    const auto& r = master_.reports[i];
    EXPECT_TRUE(r.full());
    EXPECT_EQ(r.last_page(), i == 2);
    EXPECT_EQ(r.node_id(), "n1");
    EXPECT_EQ(r.incarnation(), 7u);
    EXPECT_LE(static_cast<size_t>(r.stored_size() + r.corrupt_size()), kPage);
    stored += static_cast<size_t>(r.stored_size());
  }
  EXPECT_EQ(stored, 2400u);
  EXPECT_EQ(master_.reports[2].corrupt_size(), 1);
}

TEST_F(MasterLinkTest, EmptyNodeStillSendsOneLastPage) {
  ASSERT_TRUE(RunUntil([&] { return !master_.reports.empty(); }));
  EXPECT_TRUE(master_.reports[0].full());
  EXPECT_TRUE(master_.reports[0].last_page());
  EXPECT_EQ(master_.reports[0].stored_size(), 0);
}

TEST_F(MasterLinkTest, IncrementalReportsAreBatchedPerTurn) {
  ASSERT_TRUE(RunUntil([&] { return link_->registered() && Full() == 1; }));
  link_->ReportStored(Chunk(1));
  link_->ReportStored(Chunk(2));
  link_->ReportDeleted(Chunk(3));
  link_->ReportCorrupt(Chunk(4));
  ASSERT_TRUE(RunUntil([&] { return master_.reports.size() == 2; }));
  const auto& r = master_.reports[1];
  EXPECT_FALSE(r.full());
  EXPECT_EQ(r.stored_size(), 2);
  EXPECT_EQ(r.deleted_size(), 1);
  EXPECT_EQ(r.corrupt_size(), 1);
}

TEST_F(MasterLinkTest, DeletionsFromHeartbeatsAndReportAnswers) {
  ASSERT_TRUE(RunUntil([&] { return Full() == 1; }));
  master_.delete_next_heartbeat = {Chunk(5), Chunk(6)};
  ASSERT_TRUE(RunUntil([&] { return deleted_.size() == 2; }));
  link_->ReportStored(Chunk(666));  // the scripted master answers: delete it
  ASSERT_TRUE(RunUntil([&] { return deleted_.size() == 3; }));
  EXPECT_EQ(deleted_[2].chunk_id(), 666u);
}

TEST_F(MasterLinkTest, HeartbeatAsksForAFullReport) {
  inventory_.stored.push_back(Chunk(9));
  ASSERT_TRUE(RunUntil([&] { return Full() == 1; }));
  master_.full_report_next_heartbeat = true;
  ASSERT_TRUE(RunUntil([&] { return Full() == 2; }));
  EXPECT_EQ(master_.reports.back().stored_size(), 1);
}

TEST_F(MasterLinkTest, RefusedReportsDoNotDisturbTheLink) {
  master_.refuse_reports = true;
  ASSERT_TRUE(RunUntil([&] { return Full() == 1; }));
  link_->ReportStored(Chunk(1));
  ASSERT_TRUE(RunUntil([&] { return master_.reports.size() == 2; }));
  int beats = master_.heartbeats;
  ASSERT_TRUE(RunUntil([&] { return master_.heartbeats >= beats + 5; }));
  EXPECT_TRUE(link_->registered());
  EXPECT_EQ(Full(), 1u);  // no re-registration happened
}

}  // namespace
}  // namespace dfs::filenode
