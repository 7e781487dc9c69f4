// Re-replication driven through the master's dispatcher with fake outboxes:
// which chunks are queued when a node dies, which node is told to copy to
// which, the per-node limit, copies given up when their source dies or
// fail, the hold-off after a start, surplus replicas trimmed from the
// fullest node, and what fsck says meanwhile. No sockets, no nodes: the
// test plays the nodes' answers.
#include <set>

#include <gtest/gtest.h>

#include "master_service_fixture.h"

namespace dfs::master {
namespace {

class RepairerTest : public MasterServiceTest {
 protected:
  void SetUp() override {
    options_.repair_holdoff = 0ms;
    options_.repair_writes_per_node = 1;
    MasterServiceTest::SetUp();  // nodes n1..n3
    for (int i = 1; i <= 3; ++i) service_->chunks().NodeUp("n" + std::to_string(i));
    service_->chunks().Connect([this](const std::string& topic, const msg::ChunkEvent&) { events_.insert(topic); },
                               &nodes_);
  }

  void Up(const std::string& id, uint64_t available = 100ull << 30) {
    AddNode(id, available);
    service_->chunks().NodeUp(id);
  }
  void Kill(const std::string& id) {
    ASSERT_TRUE(registry_.MarkDead(id));
    service_->chunks().NodeDown(id);
  }
  // A one-chunk file of 100 bytes at r3, stored on its pipeline and complete.
  msg::CreateFileResponse Store(const std::string& path, uint64_t request_id) {
    auto lease = Create(path, request_id);
    for (const auto& n : lease.first_chunk().pipeline()) {
      Report(n.id(), lease.first_chunk().chunk_id(), 0xfeed, 100);
    }
    Client(Complete(lease, 0xfeed, 100), request_id + 1);
    msg::ClientEnvelope done = Answer();
    EXPECT_FALSE(done.has_error()) << done.error().message();
    return lease;
  }
  void Tick() {
    now_ = Clock::now();
    service_->chunks().Tick(now_);
  }
  // Copy commands sent to nodes since the last call (other messages dropped).
  std::vector<NodeMessage> Commands() {
    std::vector<NodeMessage> out;
    while (auto m = nodes_.Take()) {
      if (m->envelope.has_replicate_chunk_request()) out.push_back(std::move(*m));
    }
    return out;
  }
  // The source's answer to `command`: stored on every target, or failed.
  void Reply(const NodeMessage& command, bool ok = true) {
    const auto& req = command.envelope.replicate_chunk_request();
    NodeMessage m;
    m.route = command.route;
    m.envelope.set_request_id(command.envelope.request_id());
    auto* r = m.envelope.mutable_replicate_chunk_response();
    r->set_chunk_id(req.chunk().chunk_id());
    if (ok) {
      for (const auto& t : req.targets()) {
        auto* s = r->add_stored();
        s->set_node_id(t.id());
        *s->mutable_chunk() = req.chunk();
      }
    } else {
      *r->mutable_failure() = bus::ToProto(Status::TimedOut("pipeline silent"));
    }
    service_->dispatcher().Dispatch(m, nodes_, now_);
  }
  msg::FsckResponse Fsck(const std::string& path = "/") {
    msg::ClientEnvelope e;
    e.mutable_fsck_request()->set_path(path);
    Client(e, next_query_++);
    auto m = clients_.Take();
    if (!m || !m->envelope.has_fsck_response()) {
      ADD_FAILURE() << "no fsck answer";
      return {};
    }
    return m->envelope.fsck_response();
  }
  static std::set<std::string> Ids(const msg::CreateFileResponse& lease) {
    std::set<std::string> ids;
    for (const auto& n : lease.first_chunk().pipeline()) ids.insert(n.id());
    return ids;
  }

  std::set<std::string> events_;
  uint64_t next_query_ = 1000;
};

TEST_F(RepairerTest, ADeadHoldersChunkIsCopiedFromALiveReplicaToANodeWithoutOne) {
  auto lease = Store("/a", 1);  // on n1, n2, n3: the only nodes
  Up("n4");
  Kill("n2");
  auto short_ = Fsck();
  EXPECT_EQ(short_.under_replicated(), 1u);
  EXPECT_EQ(short_.missing(), 0u);
  ASSERT_EQ(short_.unhealthy_size(), 1);
  EXPECT_EQ(short_.unhealthy(0).path(), "/a");
  EXPECT_EQ(short_.unhealthy(0).chunks(0).live(), 2u);
  EXPECT_EQ(short_.unhealthy(0).chunks(0).wanted(), 3u);

  Tick();
  auto sent = Commands();
  ASSERT_EQ(sent.size(), 1u);
  const auto& req = sent[0].envelope.replicate_chunk_request();
  EXPECT_TRUE(sent[0].route == "route-n1" || sent[0].route == "route-n3") << sent[0].route;
  EXPECT_EQ(req.chunk().chunk_id(), lease.first_chunk().chunk_id());
  EXPECT_EQ(req.chunk().size(), 100u);
  EXPECT_EQ(req.chunk().crc32c(), 0xfeedu);
  ASSERT_EQ(req.targets_size(), 1);
  EXPECT_EQ(req.targets(0).id(), "n4");
  EXPECT_EQ(Fsck().repairing(), 1u);

  Reply(sent[0]);
  auto healthy = Fsck();
  EXPECT_EQ(healthy.under_replicated(), 0u);
  EXPECT_EQ(healthy.unhealthy_size(), 0);
  EXPECT_EQ(healthy.repaired(), 1u);
  EXPECT_TRUE(events_.contains("chunk.repaired"));
  Tick();
  EXPECT_TRUE(Commands().empty());
}

TEST_F(RepairerTest, CopiesStayWithinTheTargetsLimitAndTheRestFollow) {
  for (int i = 0; i < 3; ++i) Store("/f" + std::to_string(i), 10 + 2 * i);
  Up("n4");
  Kill("n1");  // three chunks short; n4 is the only target and takes one copy at a time
  std::set<uint64_t> copied;
  for (int round = 0; round < 3; ++round) {
    Tick();
    auto sent = Commands();
    ASSERT_EQ(sent.size(), 1u) << "round " << round;
    EXPECT_EQ(sent[0].envelope.replicate_chunk_request().targets(0).id(), "n4");
    copied.insert(sent[0].envelope.replicate_chunk_request().chunk().chunk_id());
    Tick();
    EXPECT_TRUE(Commands().empty()) << "a second copy to n4 before the first ended";
    Reply(sent[0]);
  }
  EXPECT_EQ(copied.size(), 3u);
  EXPECT_EQ(Fsck().under_replicated(), 0u);
}

TEST_F(RepairerTest, ACopyWhoseSourceDiesOrFailsIsPlacedAgain) {
  Store("/a", 1);
  Up("n4");
  Kill("n1");
  Tick();
  auto first = Commands();
  ASSERT_EQ(first.size(), 1u);
  const std::string source = first[0].route.substr(std::string("route-").size());
  Kill(source);  // mid-copy: placed again at once
  auto second = Commands();
  ASSERT_EQ(second.size(), 1u);
  const std::string other = source == "n2" ? "n3" : "n2";
  EXPECT_EQ(second[0].route, "route-" + other);
  // That one fails (a stalled target, say): it is placed once more, at once
  // (no copy waits for a tick when a slot frees).
  Reply(second[0], false);
  auto third = Commands();
  ASSERT_EQ(third.size(), 1u);
  EXPECT_NE(third[0].envelope.request_id(), second[0].envelope.request_id());
  // A late answer to the given-up copy changes nothing but adds what it stored.
  Reply(first[0]);
  Reply(third[0]);
  auto f = Fsck();
  EXPECT_EQ(f.under_replicated(), 1u) << "two of three nodes holding it are dead; only n4 and one more are left";
}

TEST_F(RepairerTest, ASurplusReplicaIsTrimmedFromTheFullestNode) {
  auto lease = Store("/a", 1);
  const uint64_t chunk = lease.first_chunk().chunk_id();
  Up("n4");
  Kill("n1");
  Tick();
  auto sent = Commands();
  ASSERT_EQ(sent.size(), 1u);
  Reply(sent[0]);
  // n3 is fuller than the others; n1 comes back with its copy: four live.
  Up("n3", 1ull << 30);
  Up("n1");
  Report("n1", chunk, 0xfeed, 100);
  // Out of the locations at once; deleted once readers had their grace.
  EXPECT_EQ(service_->chunks().repairer().Live(chunk), 3u);
  msg::HeartbeatResponse early;
  service_->chunks().DecorateHeartbeat("n3", &early);
  EXPECT_EQ(early.delete_chunks_size(), 0);
  service_->chunks().Tick(Clock::now() + std::chrono::seconds(6));
  for (const std::string id : {"n1", "n2", "n4"}) {
    msg::HeartbeatResponse hb;
    service_->chunks().DecorateHeartbeat(id, &hb);
    EXPECT_EQ(hb.delete_chunks_size(), 0) << id;
  }
  msg::HeartbeatResponse hb;
  service_->chunks().DecorateHeartbeat("n3", &hb);
  ASSERT_EQ(hb.delete_chunks_size(), 1);
  EXPECT_EQ(hb.delete_chunks(0).chunk_id(), chunk);
  auto f = Fsck();
  EXPECT_EQ(f.under_replicated(), 0u);
}

TEST_F(RepairerTest, NothingIsCopiedDuringTheHoldOffAfterAStart) {
  // A master that just started: its locations are what nodes reported so far.
  service_.reset();
  options_.repair_holdoff = 1h;
  service_ = std::make_unique<MasterService>(options_, registry_, clients_);
  ASSERT_TRUE(service_->Open().ok());
  for (int i = 1; i <= 3; ++i) service_->chunks().NodeUp("n" + std::to_string(i));
  service_->chunks().Connect(nullptr, &nodes_);
  Store("/a", 1);
  Up("n4");
  Kill("n1");
  Tick();
  EXPECT_TRUE(Commands().empty());
  auto f = Fsck();
  EXPECT_TRUE(f.holdoff());
  EXPECT_EQ(f.under_replicated(), 1u);
}

}  // namespace
}  // namespace dfs::master
