#include "master/placement.h"
#include "master/write_load.h"

#include <map>
#include <set>

#include <gtest/gtest.h>

namespace dfs::master {
namespace {

std::vector<PlacementCandidate> Nodes(int n, uint64_t available = 1000) {
  std::vector<PlacementCandidate> out;
  for (int i = 0; i < n; ++i) {
    out.push_back({"n" + std::to_string(i), "h:" + std::to_string(i), 1000, available, 0, 100,
                   static_cast<uint32_t>(i)});
  }
  return out;
}

TEST(Placement, PicksDistinctNodes) {
  std::mt19937_64 rng(1);
  for (int trial = 0; trial < 100; ++trial) {
    auto p = ChoosePipeline(Nodes(5), 3, 10, {}, rng);
    ASSERT_TRUE(p);
    std::set<std::string> ids;
    for (const auto& c : *p) ids.insert(c.id);
    EXPECT_EQ(ids.size(), 3u);
  }
}

TEST(Placement, TooFewNodesSaysHowManyAndHowToLowerIt) {
  std::mt19937_64 rng(1);
  auto p = ChoosePipeline(Nodes(2), 3, 10, {}, rng);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code(), Code::kUnavailable);
  EXPECT_EQ(p.error().message(), "replication 3 needs 3 live nodes, 2 alive");
  auto full = ChoosePipeline(Nodes(3, 5), 3, 10, {}, rng);
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code(), Code::kNoSpace);
}

TEST(Placement, FavoursFreeSpaceAndFreeCredit) {
  std::mt19937_64 rng(7);
  auto nodes = Nodes(3);
  nodes[0].available = 900;   // roomy
  nodes[1].available = 100;   // nearly full
  nodes[2].available = 900;
  nodes[2].credit_in_use = 95;  // busy streaming
  std::map<std::string, int> picks;
  for (int i = 0; i < 3000; ++i) picks[(*ChoosePipeline(nodes, 1, 10, {}, rng))[0].id]++;
  EXPECT_GT(picks["n0"], picks["n1"] * 3);
  EXPECT_GT(picks["n0"], picks["n2"] * 3);
}

TEST(Placement, EqualNodesShareEvenly) {
  std::mt19937_64 rng(3);
  std::map<std::string, int> picks;
  for (int i = 0; i < 6000; ++i) picks[(*ChoosePipeline(Nodes(6), 1, 10, {}, rng))[0].id]++;
  for (const auto& [id, n] : picks) EXPECT_NEAR(n, 1000, 150) << id;
}

}  // namespace
}  // namespace dfs::master

namespace dfs::master {
namespace {

TEST(Placement, ExcludedNodesAreNeverChosen) {
  std::mt19937_64 rng(5);
  for (int i = 0; i < 200; ++i) {
    auto p = ChoosePipeline(Nodes(4), 3, 10, {"n1"}, rng);
    ASSERT_TRUE(p);
    for (const auto& c : *p) EXPECT_NE(c.id, "n1");
  }
  auto none = ChoosePipeline(Nodes(3), 3, 10, {"n0"}, rng);
  ASSERT_FALSE(none);
  // The client's exclusions, not the disks, left too few: Unavailable (the
  // client then retries without them), and the message says so.
  EXPECT_EQ(none.error().code(), Code::kUnavailable);
  EXPECT_NE(none.error().message().find("1 of them failed this write"), std::string::npos)
      << none.error().message();
}

TEST(Placement, ThousandsOfNodesStayCheap) {
  std::mt19937_64 rng(9);
  auto nodes = Nodes(5000);
  for (int i = 0; i < 20000; ++i) ASSERT_TRUE(ChoosePipeline(nodes, 3, 10, {}, rng));
}

using std::chrono::milliseconds;

// Node 3 writes at a fifth of the others' speed: it is seen as slower, and
// gets few of the picks, even before its first write ends.
TEST(WriteLoad, ASlowNodeGetsFewNewChunks) {
  WriteLoad load;
  auto t = WriteLoad::Clock::time_point{} + std::chrono::hours(1);
  const uint64_t mib64 = 64ull << 20;
  uint64_t chunk = 1;
  // Round one: one write each; the fast ones end after 100 ms.
  for (uint32_t n = 0; n < 4; ++n) load.Placed(chunk + n, n, mib64, t);
  t += milliseconds(100);
  for (uint32_t n = 0; n < 3; ++n) load.Stored(chunk + n, n, t);
  load.Refresh();
  EXPECT_EQ(load.in_flight(3), 1u);
  EXPECT_EQ(load.in_flight(0), 0u);
  EXPECT_DOUBLE_EQ(load.Factor(0, t), 1.0);
  // Still under way after 50 ms, so expected to take about 100 ms, like
  // theirs: only the write waiting there counts (an eighth).
  EXPECT_NEAR(load.Factor(3, t - milliseconds(50)), 0.125, 0.001);
  // After 100 ms, expected to take 200: half their speed (an eighth, cubed)
  // and the write waiting (an eighth): under the floor.
  EXPECT_NEAR(load.Factor(3, t), 0.02, 0.001);
  t += milliseconds(400);  // 500 ms and not done: a tenth of their speed
  EXPECT_NEAR(load.Factor(3, t), 0.02, 0.001);  // the floor
  load.Stored(chunk + 3, 3, t);
  load.Refresh();
  EXPECT_NEAR(load.Factor(3, t), 0.02, 0.001);  // its measured speed (a fifth, cubed: under the floor)

  auto nodes = Nodes(4);
  std::mt19937_64 rng(3);
  std::map<std::string, int> picks;
  const LoadFactor factor = [&](const PlacementCandidate& c) { return load.Factor(c.node_index, t); };
  for (int i = 0; i < 4000; ++i) picks[(*ChoosePipeline(nodes, 1, 10, {}, rng, factor))[0].id]++;
  EXPECT_LT(picks["n3"], 4000 * 0.10) << picks["n3"];
  EXPECT_GT(picks["n3"], 0);  // never shut out: it may be all there is
}

TEST(WriteLoad, DroppedWritesAreForgotten) {
  WriteLoad load;
  auto t = WriteLoad::Clock::time_point{} + std::chrono::hours(1);
  load.Placed(7, 0, 1 << 20, t);
  load.Placed(7, 1, 1 << 20, t);
  load.Stored(7, 0, t + milliseconds(10));
  EXPECT_EQ(load.in_flight(0), 0u);
  EXPECT_EQ(load.in_flight(1), 1u);
  load.Dropped(7);  // abandoned: node 1 owes nothing now
  EXPECT_EQ(load.in_flight(1), 0u);
  load.Stored(7, 1, t + milliseconds(20));  // a late report changes nothing
  EXPECT_DOUBLE_EQ(load.speed(1, t), 0.0);
  EXPECT_DOUBLE_EQ(load.Factor(9, t), 1.0);  // a node never seen
}

}  // namespace
}  // namespace dfs::master
