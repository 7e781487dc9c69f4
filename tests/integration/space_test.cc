// Space on real nodes (issue 20, item 6): a chunk reserves the space it will
// hold, not a whole chunk size; a node without room gets no chunk while
// others have room; a put no node has room for fails with a clear error in
// human sizes, naming the path; --reserve keeps space free. And load: a
// node capped by --max-write-rate writes no faster, and gets few new chunks.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/data_test_util.h"
#include "tests/support/cluster.h"

namespace dfs::test {
namespace {

using namespace std::chrono_literals;

class SpaceTest : public ::testing::Test {
 protected:
  std::string Local(const std::string& name) const { return cluster_.root() + "/" + name; }
  // Node `id`'s available bytes as the master last heard them; -1 if unknown.
  int64_t Available(const std::string& id) const {
    auto j = nlohmann::json::parse(cluster_.Cli({"--json", "nodes"}).out, nullptr, false);
    if (j.is_discarded()) return -1;
    for (const auto& n : j["nodes"]) {
      if (n["id"] == id) return n["available"].get<int64_t>();
    }
    return -1;
  }

  // Three nodes of 20 MiB each; chunks in files of their own.
  MiniCluster cluster_{{.nodes = 3, .node_args = {"--capacity", "20M", "--volume-max-chunk", "0"}}};
};

TEST_F(SpaceTest, AChunkReservesWhatItHoldsNotAWholeChunkSize) {
  ASSERT_TRUE(cluster_.Start());
  // 15 MB at the default 64 MiB chunk size onto nodes with 20 MiB free.
  const std::string data = RandomBytes(15'000'000, 1);
  WriteLocal(Local("in"), data);
  auto p = cluster_.Cli({"-q", "put", "-r", "1", Local("in"), "/fits"});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  auto c = cluster_.Cli({"cat", "/fits"});
  EXPECT_TRUE(c.out == data);
}

TEST_F(SpaceTest, APutNoNodeHasRoomForIsAClearErrorInHumanSizes) {
  ASSERT_TRUE(cluster_.Start());
  WriteLocal(Local("in"), RandomBytes(30 << 20, 2));
  auto p = cluster_.Cli({"-q", "put", "-r", "1", Local("in"), "/too-big"});
  EXPECT_EQ(p.exit_code, 1);
  EXPECT_NE(p.err.find("/too-big"), std::string::npos) << p.err;
  EXPECT_NE(p.err.find("30.0 MiB free, 0 have it"), std::string::npos) << p.err;
  EXPECT_EQ(std::count(p.err.begin(), p.err.end(), '\n'), 1) << p.err;
  EXPECT_EQ(cluster_.Cli({"stat", "/too-big"}).exit_code, 1);  // nothing half-visible
}

TEST_F(SpaceTest, AFullNodeGetsNoNewChunksWhileOthersHaveRoom) {
  ASSERT_TRUE(cluster_.Start());
  // Node 0 is filled: 18 MiB of single-replica chunks land on it alone
  // while the others are stopped.
  cluster_.KillNode(1);
  cluster_.KillNode(2);
  ASSERT_TRUE(cluster_.WaitForAliveNodes(1, 10s));
  WriteLocal(Local("fill"), RandomBytes(18 << 20, 3));
  auto fill = cluster_.Cli({"-q", "put", "-r", "1", "--chunk-size", "6M", Local("fill"), "/fill"});
  ASSERT_EQ(fill.exit_code, 0) << fill.err;
  ASSERT_TRUE(cluster_.StartNode(1));
  ASSERT_TRUE(cluster_.StartNode(2));
  ASSERT_TRUE(cluster_.WaitForAliveNodes(3, 10s));
  // The master knows how full node 0 is from its heartbeats.
  const std::string full = cluster_.node_id(0);
  ASSERT_TRUE(WaitFor([&] { auto a = Available(full); return a >= 0 && a <= (2 << 20); }, 10s)) << Available(full);
  const size_t full_before = ChunkFiles(cluster_.node_dir(0)).size();
  // 4 MiB chunks: node 0 has 2 MiB left, so every new chunk goes elsewhere.
  const std::string data = RandomBytes(16 << 20, 4);
  WriteLocal(Local("in"), data);
  auto p = cluster_.Cli({"-q", "put", "-r", "2", "--chunk-size", "4M", Local("in"), "/more"});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_EQ(ChunkFiles(cluster_.node_dir(0)).size(), full_before);
  EXPECT_EQ(ChunkFiles(cluster_.node_dir(1)).size() + ChunkFiles(cluster_.node_dir(2)).size(), 8u);
  EXPECT_TRUE(cluster_.Cli({"cat", "/more"}).out == data);
}

TEST_F(SpaceTest, ReserveKeepsSpaceFreeOnTheNode) {
  ASSERT_TRUE(cluster_.Start());
  // More than any disk here has: nothing is left to offer.
  ASSERT_EQ(cluster_.AddNode({"--reserve", "1000T"}), 3);
  ASSERT_TRUE(cluster_.WaitForAliveNodes(4, 10s));
  EXPECT_EQ(Available(cluster_.node_id(3)), 0);
  EXPECT_EQ(Available(cluster_.node_id(0)), 20 << 20);
}

// Three nodes as fast as the disk and chunks of 1 MiB, in files of their own.
class LoadTest : public ::testing::Test {
 protected:
  std::string Local(const std::string& name) const { return cluster_.root() + "/" + name; }
  MiniCluster cluster_{{.nodes = 3, .node_args = {"--volume-max-chunk", "0"}}};
};

TEST_F(LoadTest, MaxWriteRateCapsWhatANodeTakes) {
  ASSERT_TRUE(cluster_.Start());
  for (int i = 0; i < 3; ++i) cluster_.KillNode(i);
  ASSERT_EQ(cluster_.AddNode({"--max-write-rate", "2M"}), 3);
  ASSERT_TRUE(cluster_.WaitForAliveNodes(1, 10s));
  const std::string data = RandomBytes(6 << 20, 5);
  WriteLocal(Local("in"), data);
  const auto start = std::chrono::steady_clock::now();
  auto p = cluster_.Cli({"-q", "put", "-r", "1", Local("in"), "/capped"});
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(p.exit_code, 0) << p.err;
  // 6 MiB at 2 MiB/s: the first frame goes at once, the other 5 MiB take 2.5 s.
  EXPECT_GE(took, 2400ms);
  EXPECT_TRUE(cluster_.Cli({"cat", "/capped"}).out == data);
}

TEST_F(LoadTest, ASlowNodeGetsFewNewChunks) {
  ASSERT_TRUE(cluster_.Start());
  ASSERT_EQ(cluster_.AddNode({"--max-write-rate", "1M"}), 3);
  ASSERT_TRUE(cluster_.WaitForAliveNodes(4, 10s));
  // 48 chunks at one replica: blind placement would give the slow node about
  // 12 (and 6 or fewer once in 50 puts); each of its chunks takes a second
  // while the others take about a hundredth of that. Its first chunk or
  // few land before the master has seen any node's speed (2-4 of 48 here).
  const std::string data = RandomBytes(48 << 20, 6);
  WriteLocal(Local("in"), data);
  auto p = cluster_.Cli({"-q", "put", "-r", "1", "--chunk-size", "1M", Local("in"), "/spread"});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const size_t slow = ChunkFiles(cluster_.node_dir(3)).size();
  size_t all = slow;
  for (int i = 0; i < 3; ++i) all += ChunkFiles(cluster_.node_dir(i)).size();
  EXPECT_EQ(all, 48u);
  EXPECT_LE(slow, 6u);
  EXPECT_TRUE(cluster_.Cli({"cat", "/spread"}).out == data);
}

}  // namespace
}  // namespace dfs::test
