// The master's half of the three-way integrity check, with a scripted node:
// a write completes only when every replica the client names has reported
// the chunk with the client's checksum; a mismatch fails the write; a late
// report is waited for; orphans are deleted; a removed file's chunks are
// deleted from the nodes through heartbeat answers; the head of a pipeline
// reports for the nodes after it.
#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "bus/request_client.h"
#include "client_master.pb.h"
#include "node_master.pb.h"
#include "common/net.h"
#include "tests/support/cluster.h"

namespace dfs::test {
namespace {

using namespace std::chrono_literals;

class FakeNode {
 public:
  FakeNode(bus::Context& ctx, const MiniCluster& c, std::string id) : id_(std::move(id)) {
    auto s = bus::Socket::Create(ctx, bus::SocketType::kDealer, bus::SocketOptions{});
    socket_ = std::make_unique<bus::Socket>(std::move(*s));
    EXPECT_TRUE(socket_->Connect(TcpEndpoint("127.0.0.1", c.node_port())).ok());
    msg::NodeEnvelope e;
    auto* r = e.mutable_register_node_request();
    r->set_node_id(id_);
    r->set_incarnation(1);
    r->set_address("127.0.0.1:9");
    r->mutable_stats()->set_capacity(1ull << 40);
    r->mutable_stats()->set_available(1ull << 40);
    EXPECT_TRUE(Call(e).has_register_node_response());
  }
  // Sends `e` with the next request id, which it returns.
  uint64_t Send(msg::NodeEnvelope e) {
    e.set_request_id(++seq_);
    bus::Message<msg::NodeEnvelope> m;
    m.envelope = std::move(e);
    EXPECT_TRUE(socket_->Send(std::move(m)).ok());
    return seq_;
  }
  msg::NodeEnvelope Call(msg::NodeEnvelope e) {
    Send(std::move(e));
    for (;;) {
      auto r = socket_->Receive<msg::NodeEnvelope>(5000ms);
      if (!r || !*r) return {};
      if ((*r)->envelope.request_id() == seq_) return (*r)->envelope;
    }
  }
  static msg::StoredChunk Stored(uint64_t chunk, uint64_t size, uint32_t crc) {
    msg::StoredChunk s;
    s.set_chunk_id(chunk);
    s.set_version(1);
    s.set_size(size);
    s.set_crc32c(crc);
    return s;
  }
  // This node stored the chunk; `relayed` names the nodes after it in the
  // pipeline that stored it too (this node reports for them).
  msg::NodeEnvelope Report(uint64_t chunk, uint64_t size, uint32_t crc, const std::vector<std::string>& relayed = {}) {
    msg::NodeEnvelope e;
    auto* r = e.mutable_chunk_report_request();
    r->set_node_id(id_);
    r->set_incarnation(1);
    *r->add_stored() = Stored(chunk, size, crc);
    for (const auto& node : relayed) {
      auto* rel = r->add_relayed();
      rel->set_node_id(node);
      *rel->mutable_chunk() = Stored(chunk, size, crc);
    }
    // The master answers a report only when it has something to say; a
    // heartbeat after it, on the same connection, is answered once the
    // report has been handled. Returns the report's answer, or an empty
    // envelope when there was none.
    const uint64_t report_id = Send(std::move(e));
    msg::NodeEnvelope hb;
    hb.mutable_heartbeat_request()->set_node_id(id_);
    hb.mutable_heartbeat_request()->set_incarnation(1);
    Send(std::move(hb));
    msg::NodeEnvelope answer;
    for (;;) {
      auto got = socket_->Receive<msg::NodeEnvelope>(5000ms);
      if (!got || !*got) {
        ADD_FAILURE() << "no heartbeat answer after a chunk report";
        return answer;
      }
      if ((*got)->envelope.request_id() == report_id) answer = (*got)->envelope;
      if ((*got)->envelope.request_id() == seq_) return answer;
    }
  }
  msg::NodeEnvelope Heartbeat() {
    msg::NodeEnvelope e;
    e.mutable_heartbeat_request()->set_node_id(id_);
    e.mutable_heartbeat_request()->set_incarnation(1);
    return Call(e);
  }
  const std::string& id() const { return id_; }

 private:
  std::string id_;
  std::unique_ptr<bus::Socket> socket_;
  uint64_t seq_ = 0;
};

class MasterIntegrity : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.StartMaster());
    node_ = std::make_unique<FakeNode>(ctx_, cluster_, "fake-1");
    auto hp = ParseHostPort(cluster_.master_address(), 0);
    client_ = std::make_unique<bus::RequestClient<msg::ClientEnvelope>>(ctx_, TcpEndpoint(hp->host, hp->port), bus::SocketOptions{},
                                                   bus::RetryPolicy{8000ms, 1});
  }
  // Lease + one chunk; returns {lease, chunk id}.
  std::pair<uint64_t, uint64_t> Begin(const std::string& path) {
    msg::ClientEnvelope c;
    c.mutable_create_file_request()->set_path(path);
    c.mutable_create_file_request()->set_replication(1);
    auto created = client_->Call(c);
    EXPECT_TRUE(created) << created.error().ToString();
    uint64_t lease = created->envelope.create_file_response().lease_id();
    msg::ClientEnvelope a;
    a.mutable_allocate_chunk_request()->set_lease_id(lease);
    auto placed = client_->Call(a);
    EXPECT_TRUE(placed) << placed.error().ToString();
    EXPECT_EQ(placed->envelope.allocate_chunk_response().pipeline(0).id(), node_->id());
    return {lease, placed->envelope.allocate_chunk_response().chunk_id()};
  }
  // Completes a one-chunk file of `size` bytes and checksum `crc`, naming
  // `replicas` (default: the fake node) as holding the chunk.
  msg::ClientEnvelope CompleteRequest(uint64_t lease, uint64_t chunk, uint64_t size, uint32_t crc,
                                std::vector<std::string> replicas = {}) {
    if (replicas.empty()) replicas.push_back(node_->id());
    msg::ClientEnvelope e;
    auto* c = e.mutable_complete_file_request();
    c->set_lease_id(lease);
    c->set_size(size);
    c->set_checksum(crc);
    auto* ci = c->add_chunks();
    ci->set_id(chunk);
    ci->set_version(1);
    ci->set_size(size);
    ci->set_checksum(crc);
    for (auto& r : replicas) ci->add_replicas(std::move(r));
    return e;
  }
  Result<bus::Message<msg::ClientEnvelope>> Complete(uint64_t lease, uint64_t chunk, uint64_t size, uint32_t crc) {
    return client_->Call(CompleteRequest(lease, chunk, size, crc));
  }
  Result<bus::Message<msg::ClientEnvelope>> Stat(const std::string& path) {
    msg::ClientEnvelope e;
    e.mutable_stat_request()->set_path(path);
    e.mutable_stat_request()->set_with_chunks(true);
    return client_->Call(e);
  }

  // Freed chunks are deleted at once (no grace period for readers).
  MiniCluster cluster_{{.nodes = 0, .dead_after = "30s", .master_args = {"--free-grace", "0s"}}};
  bus::Context ctx_;
  std::unique_ptr<FakeNode> node_;
  std::unique_ptr<bus::RequestClient<msg::ClientEnvelope>> client_;
};

TEST_F(MasterIntegrity, MatchingReportCompletesAndLocatesTheReplica) {
  auto [lease, chunk] = Begin("/ok");
  node_->Report(chunk, 100, 0xabc);
  auto done = Complete(lease, chunk, 100, 0xabc);
  ASSERT_TRUE(done) << done.error().ToString();
  auto st = Stat("/ok");
  ASSERT_TRUE(st);
  ASSERT_EQ(st->envelope.stat_response().info().chunks_size(), 1);
  EXPECT_EQ(st->envelope.stat_response().info().chunks(0).replicas(0), node_->id());
  msg::ClientEnvelope loc;
  loc.mutable_locate_request()->set_path("/ok");
  auto l = client_->Call(loc);
  ASSERT_TRUE(l);
  ASSERT_EQ(l->envelope.locate_response().chunks_size(), 1);
  EXPECT_EQ(l->envelope.locate_response().chunks(0).replicas(0).address(), "127.0.0.1:9");
}

TEST_F(MasterIntegrity, AReplicaThatDiedBeforeReportingIsLostNotAwaited) {
  auto [lease, chunk] = Begin("/partly");
  node_->Report(chunk, 40, 0x40);
  // "gone-node" acknowledged the chunk, then died unreported.
  auto done = client_->Call(CompleteRequest(lease, chunk, 40, 0x40, {node_->id(), "gone-node"}));
  ASSERT_TRUE(done) << done.error().ToString();
  auto st = Stat("/partly");
  ASSERT_TRUE(st);
  const auto& reps = st->envelope.stat_response().info().chunks(0).replicas();
  ASSERT_EQ(reps.size(), 1);
  EXPECT_EQ(reps[0], node_->id());
}

TEST_F(MasterIntegrity, NoConfirmedReplicaFailsClearly) {
  auto [lease, chunk] = Begin("/nobody");
  auto done = client_->Call(CompleteRequest(lease, chunk, 8, 0, {"gone-node"}));
  ASSERT_FALSE(done);
  EXPECT_EQ(done.error().code(), Code::kUnavailable);
  EXPECT_NE(done.error().message().find("no live replica confirmed chunk"), std::string::npos)
      << done.error().message();
  EXPECT_FALSE(Stat("/nobody"));
}

TEST_F(MasterIntegrity, ChecksumMismatchFailsTheWriteAndCommitsNothing) {
  auto [lease, chunk] = Begin("/bad");
  node_->Report(chunk, 100, 0x111);
  auto done = Complete(lease, chunk, 100, 0x222);
  ASSERT_FALSE(done);
  EXPECT_EQ(done.error().code(), Code::kCorruption);
  EXPECT_NE(done.error().message().find("node fake-1 stored 100 bytes with crc 00000111"), std::string::npos)
      << done.error().message();
  EXPECT_FALSE(Stat("/bad"));
}

TEST_F(MasterIntegrity, ALateReportIsWaitedFor) {
  auto [lease, chunk] = Begin("/late");
  ASSERT_TRUE(client_->Send(CompleteRequest(lease, chunk, 5, 0x55)));
  // No answer while the node's report is missing: the completion is held.
  auto early = client_->Receive(300ms);
  ASSERT_TRUE(early);
  EXPECT_FALSE(early->has_value()) << "completed before the replica confirmed the chunk";
  node_->Report(chunk, 5, 0x55);
  auto done = client_->Receive(5000ms);
  ASSERT_TRUE(done && done->has_value());
  EXPECT_TRUE((*done)->envelope.has_complete_file_response()) << (*done)->envelope.error().message();
}

TEST_F(MasterIntegrity, OrphansAreDeletedAndRemovedFilesLeaveTheNodes) {
  // A report with nothing to delete gets no answer; an orphan gets one.
  auto [lease0, chunk0] = Begin("/kept");
  EXPECT_EQ(node_->Report(chunk0, 3, 3).body_case(), msg::NodeEnvelope::BODY_NOT_SET);
  auto orphan = node_->Report(999999, 10, 1);
  ASSERT_EQ(orphan.chunk_report_response().delete__size(), 1);
  EXPECT_EQ(orphan.chunk_report_response().delete_(0).chunk_id(), 999999u);

  auto [lease, chunk] = Begin("/doomed");
  node_->Report(chunk, 7, 7);
  ASSERT_TRUE(Complete(lease, chunk, 7, 7));
  msg::ClientEnvelope rm;
  rm.mutable_delete_request()->set_path("/doomed");
  ASSERT_TRUE(client_->Call(rm));
  auto hb = node_->Heartbeat();
  ASSERT_EQ(hb.heartbeat_response().delete_chunks_size(), 1);
  EXPECT_EQ(hb.heartbeat_response().delete_chunks(0).chunk_id(), chunk);
}

TEST_F(MasterIntegrity, TheHeadOfAPipelineReportsForTheNodesAfterIt) {
  auto [lease, chunk] = Begin("/two");
  FakeNode second(ctx_, cluster_, "fake-2");
  // One report from the head names both replicas; a node the master does not
  // know is skipped, not a reason to refuse the report.
  EXPECT_EQ(node_->Report(chunk, 9, 0x99, {second.id(), "ghost"}).body_case(), msg::NodeEnvelope::BODY_NOT_SET);
  auto done = client_->Call(CompleteRequest(lease, chunk, 9, 0x99, {node_->id(), second.id()}));
  ASSERT_TRUE(done) << done.error().ToString();
  auto st = Stat("/two");
  ASSERT_TRUE(st);
  std::vector<std::string> reps(st->envelope.stat_response().info().chunks(0).replicas().begin(),
                                st->envelope.stat_response().info().chunks(0).replicas().end());
  std::sort(reps.begin(), reps.end());
  EXPECT_EQ(reps, (std::vector<std::string>{"fake-1", "fake-2"}));

  // A relayed copy no file owns is deleted from the node that holds it,
  // through that node's heartbeat answer (the report's answer goes to the head).
  auto answer = node_->Report(777777, 4, 4, {second.id()});
  ASSERT_EQ(answer.chunk_report_response().delete__size(), 1);  // the head's own copy
  auto hb = second.Heartbeat();
  ASSERT_EQ(hb.heartbeat_response().delete_chunks_size(), 1);
  EXPECT_EQ(hb.heartbeat_response().delete_chunks(0).chunk_id(), 777777u);
}

}  // namespace
}  // namespace dfs::test
