// The node's credit pool: grants never add up to more than --credit-pool,
// the heartbeat's credit_in_use shows it, a pipeline grants no more than its
// tightest node, and a stream whose sender falls silent gives its credit back.
#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "tests/integration/node_test_client.h"

namespace dfs::test {
namespace {

constexpr uint64_t kMiB = 1 << 20;

// A field of node `id` in `dfs-cli --json nodes`; -1 when unknown.
int64_t NodeField(const MiniCluster& c, const std::string& id, const std::string& field) {
  auto r = c.Cli({"--json", "nodes"}, 10s);
  if (r.exit_code != 0) return -1;
  auto doc = nlohmann::json::parse(r.out, nullptr, false);
  if (doc.is_discarded() || !doc.contains("nodes")) return -1;
  for (const auto& n : doc["nodes"]) {
    if (n.value("id", "") == id) return n.value(field, int64_t{-1});
  }
  return -1;
}

TEST(NodeCreditTest, GrantsNeverExceedThePool) {
  ClusterOptions o;
  o.nodes = 1;
  o.node_args = {"--credit-pool", "8M"};
  MiniCluster cluster(o);
  ASSERT_TRUE(cluster.Start());
  bus::Context ctx;
  NodeClient c(ctx, NodeHostPort(cluster, 0));
  const std::string id = cluster.node_id(0);

  uint64_t granted = 0;
  std::vector<uint64_t> streams;
  int busy = 0;
  for (int i = 0; i < 64; ++i) {
    auto open = c.Open(1000 + static_cast<uint64_t>(i), 1, {}, 1 << 20);
    Status s = AnswerStatus(open);
    if (s.ok()) {
      const auto& r = open->envelope.write_open_response();
      EXPECT_GE(r.credit_frames(), 1u);
      granted += uint64_t{r.credit_frames()} * kMiB;
      streams.push_back(r.stream_id());
    } else {
      EXPECT_EQ(s.code(), Code::kBusy) << s.ToString();
      EXPECT_NE(s.message().find("credit"), std::string::npos) << s.message();
      ++busy;
    }
    EXPECT_LE(granted, 8 * kMiB);
  }
  EXPECT_GT(granted, 0u);
  EXPECT_GT(busy, 0);
  // The heartbeat carries the same figure, and never more than the pool.
  ASSERT_TRUE(WaitFor([&] { return NodeField(cluster, id, "credit_in_use") == static_cast<int64_t>(granted); }, 10s))
      << NodeField(cluster, id, "credit_in_use");
  EXPECT_EQ(NodeField(cluster, id, "streams_open"), static_cast<int64_t>(streams.size()));

  // Aborting gives the credit back; a new stream gets the whole window again.
  for (uint64_t s : streams) EXPECT_TRUE(AnswerStatus(c.Await(c.SendAbort(s))).ok());
  ASSERT_TRUE(WaitFor([&] { return NodeField(cluster, id, "credit_in_use") == 0; }, 10s));
  auto again = c.Open(2000, 1, {}, 1 << 20);
  ASSERT_TRUE(AnswerStatus(again).ok()) << AnswerStatus(again).ToString();
  EXPECT_EQ(again->envelope.write_open_response().credit_frames(), 8u);
  // Frames bigger than the pool leave nothing to grant.
  EXPECT_EQ(AnswerStatus(c.Open(2001, 1, {}, 4 << 20)).code(), Code::kBusy);
}

TEST(NodeCreditTest, PipelineGrantsNoMoreThanItsTightestNode) {
  ClusterOptions o;
  o.node_args = {"--credit-pool", "8M"};
  MiniCluster cluster(o);
  ASSERT_TRUE(cluster.Start());
  bus::Context ctx;
  NodeClient first(ctx, NodeHostPort(cluster, 0));
  NodeClient last(ctx, NodeHostPort(cluster, 2));
  // One 6 MiB frame of node 2's pool taken: 2 MiB left there.
  auto hog = last.Open(1, 1, {}, 6 << 20);
  ASSERT_TRUE(AnswerStatus(hog).ok()) << AnswerStatus(hog).ToString();
  ASSERT_EQ(hog->envelope.write_open_response().credit_frames(), 1u);

  auto open = first.Open(2, 1, {NodeAddressOf(cluster, 1), NodeAddressOf(cluster, 2)}, 1 << 20);
  ASSERT_TRUE(AnswerStatus(open).ok()) << AnswerStatus(open).ToString();
  EXPECT_EQ(open->envelope.write_open_response().credit_frames(), 2u);
  // Nodes 0 and 1 hold only what they granted.
  EXPECT_TRUE(WaitFor([&] {
    return NodeField(cluster, cluster.node_id(0), "credit_in_use") == static_cast<int64_t>(2 * kMiB) &&
           NodeField(cluster, cluster.node_id(1), "credit_in_use") == static_cast<int64_t>(2 * kMiB) &&
           NodeField(cluster, cluster.node_id(2), "credit_in_use") == static_cast<int64_t>(8 * kMiB);
  }, 10s));

  // Node 2 full: the open fails at the end of the pipeline, the reason comes
  // back to the sender, and nodes 0 and 1 free what they had reserved.
  auto full = first.Open(3, 1, {NodeAddressOf(cluster, 1), NodeAddressOf(cluster, 2)}, 1 << 20);
  Status s = AnswerStatus(full);
  EXPECT_EQ(s.code(), Code::kBusy) << s.ToString();
  EXPECT_NE(s.message().find(cluster.node_id(2)), std::string::npos) << s.message();
  EXPECT_TRUE(WaitFor([&] {
    return NodeField(cluster, cluster.node_id(0), "streams_open") == 1 &&
           NodeField(cluster, cluster.node_id(1), "streams_open") == 1 &&
           NodeField(cluster, cluster.node_id(0), "credit_in_use") == static_cast<int64_t>(2 * kMiB);
  }, 10s));
  EXPECT_TRUE(ChunkFiles(cluster.node_dir(0), ".tmp").size() == 1 && ChunkFiles(cluster.node_dir(1), ".tmp").size() == 1);
}

TEST(NodeCreditTest, SilentSenderLosesItsStream) {
  ClusterOptions o;
  o.nodes = 1;
  o.node_args = {"--credit-pool", "8M", "--stream-idle-timeout", "1s"};
  MiniCluster cluster(o);
  ASSERT_TRUE(cluster.Start());
  bus::Context ctx;
  NodeClient c(ctx, NodeHostPort(cluster, 0));
  auto open = c.Open(5, 1, {}, 1 << 20);
  ASSERT_TRUE(AnswerStatus(open).ok());
  const uint64_t stream = open->envelope.write_open_response().stream_id();
  ASSERT_TRUE(AnswerStatus(c.Await(c.SendFrame(stream, 0, RandomData(1000, 1)))).ok());
  ASSERT_EQ(ChunkFiles(cluster.node_dir(0), ".tmp").size(), 1u);
  // Silence: the stream goes, with its temp file and its credit.
  EXPECT_TRUE(WaitFor([&] { return ChunkFiles(cluster.node_dir(0), ".tmp").empty(); }, 10s));
  EXPECT_TRUE(WaitFor([&] { return NodeField(cluster, cluster.node_id(0), "credit_in_use") == 0; }, 10s));
  Status late = AnswerStatus(c.Await(c.SendFrame(stream, 1000, "x")));
  EXPECT_FALSE(late.ok());
  EXPECT_NE(late.message().find("no word from upstream"), std::string::npos) << late.ToString();
}

}  // namespace
}  // namespace dfs::test
