// The data path under faults, through dfs-cli on a real cluster: a node
// killed or stopped in the middle of a put (the put succeeds and the bytes
// are right), corrupted replicas on disk (get returns the right bytes from a
// good one and the bad ones are reported), and every node down (a clear
// error within seconds). "Mid-put" is made certain: the put reads a pipe the
// test feeds, or the put is frozen while the node dies.
#include <signal.h>

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/data_test_util.h"
#include "tests/support/cluster.h"

namespace dfs::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr size_t kChunk = 256 * 1024;

// Every fault twice: chunks in files of their own (--volume-max-chunk 0),
// and small chunks in shared volume files (the default for 256K chunks).
class DataFaultTest : public ::testing::TestWithParam<std::string> {
 protected:
  bool volumes() const { return GetParam() == "volumes"; }
  static std::vector<std::string> NodeArgs(const std::string& layout) {
    if (layout == "volumes") return {};
    return {"--volume-max-chunk", "0"};
  }
  void SetUp() override { ASSERT_TRUE(cluster_.Start()); }

  std::string Local(const std::string& name) const { return cluster_.root() + "/" + name; }
  std::vector<std::string> PutArgs(const std::string& local, const std::string& remote, int r) const {
    // Recovery steps are logged (warn) to the put's stderr file, kept with a failed test.
    return {"--master", cluster_.master_address(), "--log-level", "warn", "put", "-r", std::to_string(r), "--chunk-size", "256K",
            local, remote};
  }
  // The first node holding at least `n` chunk files, once one does; -1 if none within the timeout.
  int NodeWithChunks(size_t n) const {
    int found = -1;
    WaitFor(
        [&] {
          for (int i = 0; i < cluster_.node_count(); ++i) {
            const std::string dir = cluster_.node_dir(i);
            if (ChunkFiles(dir).size() >= n || (n == 1 && VolumeBytes(dir) > 0)) {
              found = i;
              return true;
            }
          }
          return false;
        },
        30s);
    return found;
  }
  void ExpectContent(const std::string& remote, const std::string& data) {
    auto c = cluster_.Cli({"cat", remote});
    ASSERT_EQ(c.exit_code, 0) << c.err;
    EXPECT_TRUE(c.out == data) << "read " << c.out.size() << " bytes of " << data.size();
  }

  MiniCluster cluster_{{.nodes = 3, .dead_after = "2s", .node_args = NodeArgs(GetParam())}};
};

INSTANTIATE_TEST_SUITE_P(Layouts, DataFaultTest, ::testing::Values("files", "volumes"),
                         [](const auto& p) { return p.param; });

TEST_P(DataFaultTest, NodeKilledMidStreamPut) {
  const std::string data = RandomBytes(24 * kChunk + 17, 1);
  PipedCli put(PutArgs("-", "/killed", 2), cluster_.root());
  ASSERT_TRUE(put.Write(data.substr(0, 4 * kChunk)));
  int victim = NodeWithChunks(1);
  ASSERT_GE(victim, 0) << "no chunk was stored";
  cluster_.KillNode(victim);
  ASSERT_TRUE(put.Write(data.substr(4 * kChunk)));
  auto rc = put.Finish(90s);
  ASSERT_TRUE(rc.has_value()) << "put did not finish";
  EXPECT_EQ(*rc, 0) << put.err();
  ExpectContent("/killed", data);
}

TEST_P(DataFaultTest, NodeKilledMidFilePut) {
  const std::string data = RandomBytes(64 * kChunk, 2);
  WriteLocal(Local("in"), data);
  PipedCli put(PutArgs(Local("in"), "/killed-file", 2), cluster_.root());
  int victim = NodeWithChunks(1);
  ASSERT_GE(victim, 0) << "no chunk was stored";
  // Freeze the put so the node dies while chunks are still to be written.
  ::kill(put.pid(), SIGSTOP);
  cluster_.KillNode(victim);
  ::kill(put.pid(), SIGCONT);
  auto rc = put.Finish(90s);
  ASSERT_TRUE(rc.has_value()) << "put did not finish";
  EXPECT_EQ(*rc, 0) << put.err();
  ExpectContent("/killed-file", data);
}

TEST_P(DataFaultTest, NodeStoppedMidPutIsDetectedAsAStall) {
  const std::string data = RandomBytes(40 * kChunk, 3);
  PipedCli put(PutArgs("-", "/stalled", 2), cluster_.root());
  ASSERT_TRUE(put.Write(data.substr(0, 4 * kChunk)));
  int victim = NodeWithChunks(1);
  ASSERT_GE(victim, 0) << "no chunk was stored";
  cluster_.node(victim).Signal(SIGSTOP);
  const auto t0 = Clock::now();
  ASSERT_TRUE(put.Write(data.substr(4 * kChunk)));
  auto rc = put.Finish(90s);
  cluster_.node(victim).Signal(SIGCONT);
  ASSERT_TRUE(rc.has_value()) << "put did not finish";
  EXPECT_EQ(*rc, 0) << put.err();
  EXPECT_LT(Clock::now() - t0, 60s);
  ExpectContent("/stalled", data);
}

// A file of one-frame chunks goes to every replica at once: a stopped node
// is the one that stays silent, so it is named and left out at once (no
// pings), and the chunks it held up are written to pipelines without it.
TEST_P(DataFaultTest, NodeStoppedMidFanOutPutIsNamedAndWrittenAround) {
  const std::string data = RandomBytes(48 * kChunk + 5, 6);
  WriteLocal(Local("in"), data);
  PipedCli put(PutArgs(Local("in"), "/fanned", 2), cluster_.root());
  int victim = NodeWithChunks(1);
  ASSERT_GE(victim, 0) << "no chunk was stored";
  ::kill(put.pid(), SIGSTOP);
  cluster_.node(victim).Signal(SIGSTOP);
  const auto t0 = Clock::now();
  ::kill(put.pid(), SIGCONT);
  auto rc = put.Finish(90s);
  cluster_.node(victim).Signal(SIGCONT);
  ASSERT_TRUE(rc.has_value()) << "put did not finish";
  EXPECT_EQ(*rc, 0) << put.err();
  EXPECT_LT(Clock::now() - t0, 30s);
  const std::string victim_id = cluster_.node_id(victim);
  EXPECT_NE(put.err().find("node(s) " + victim_id + " silent"), std::string::npos) << put.err();
  EXPECT_EQ(put.err().find("did not answer a ping"), std::string::npos) << put.err();
  ExpectContent("/fanned", data);
}

// Small puts one after another through one client run on spare leases,
// each placed at the last completion: a node that dies between two puts is
// in the next one's placement. That put finds it silent, leaves it out and
// places the chunk again on the same spare lease; the run goes on.
TEST_P(DataFaultTest, ARunOfSmallPutsGoesOnWhenANodeDies) {
  auto c = ConnectClient(cluster_.master_address());
  ASSERT_TRUE(c);
  std::vector<std::string> written;
  auto put = [&](int i) {
    const std::string data = RandomBytes(5000 + static_cast<size_t>(i), 70 + static_cast<uint64_t>(i));
    auto st = PutBytes(*c, data, "/small-" + std::to_string(i), 2);
    ASSERT_TRUE(st) << i << ": " << st.error().ToString();
    written.push_back(data);
  };
  for (int i = 0; i < 4; ++i) put(i);
  cluster_.KillNode(0);
  const auto t0 = Clock::now();
  for (int i = 4; i < 10; ++i) put(i);
  EXPECT_LT(Clock::now() - t0, 30s);
  for (size_t i = 0; i < written.size(); ++i) ExpectContent("/small-" + std::to_string(i), written[i]);
}

TEST_P(DataFaultTest, CorruptReplicasAreSkippedAndReported) {
  const std::string data = RandomBytes(10 * kChunk, 4);
  WriteLocal(Local("in"), data);
  auto p = cluster_.Cli({"put", "-r", "3", "--chunk-size", "256K", Local("in"), "/bad"});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  auto st = nlohmann::json::parse(cluster_.Cli({"--json", "stat", "/bad"}).out);
  ASSERT_EQ(st["chunks"].size(), 10u);
  // Two of the three replicas of every chunk go bad on disk, and the good
  // one is on a different node from chunk to chunk: whichever node the master
  // offers first (it orders replicas by load), most chunks meet a bad one
  // before the good one.
  size_t index = 0;
  for (const auto& c : st["chunks"]) {
    const int good = static_cast<int>(index % 3);
    const std::string needle = data.substr(index++ * kChunk + kChunk / 2, 64);
    for (int i = 0; i < 3; ++i) {
      if (i == good) continue;
      if (volumes()) {
        EXPECT_EQ(FlipInVolumes(cluster_.node_dir(i), needle), 1);
        continue;
      }
      const std::string f = ChunkFile(cluster_.node_dir(i), c["id"], c["version"]);
      std::fstream io(f, std::ios::in | std::ios::out | std::ios::binary);
      ASSERT_TRUE(io) << f;
      const auto at = static_cast<std::streamoff>(kChunk / 2);
      io.seekg(at);
      const char was = static_cast<char>(io.get());
      io.seekp(at);
      io.put(static_cast<char>(~was));  // one bit flip would do; every bit is surer
    }
  }
  ExpectContent("/bad", data);
  auto g = cluster_.Cli({"get", "/bad", Local("out")});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  EXPECT_TRUE(ReadLocal(Local("out")) == data);
  const std::string log = MiniCluster::ReadText(cluster_.root() + "/master.log");
  EXPECT_NE(log.find("client reports chunk="), std::string::npos) << "no bad replica was reported";
  // The master stops offering what was reported, and repair (after its
  // hold-off; a slow build may already be past it) copies good replicas
  // back: healthy in the end, and every replica it offers reads right.
  EXPECT_TRUE(WaitFor([&] { return cluster_.Cli({"fsck", "/bad"}).exit_code == 0; }, 60s))
      << cluster_.Cli({"fsck", "-v", "/bad"}).out;
  ExpectContent("/bad", data);
}

TEST_P(DataFaultTest, AllNodesDownIsAClearErrorWithinSeconds) {
  WriteLocal(Local("in"), RandomBytes(3 * kChunk, 5));
  ASSERT_EQ(cluster_.Cli({"put", "-r", "3", "--chunk-size", "256K", Local("in"), "/kept"}).exit_code, 0);
  for (int i = 0; i < cluster_.node_count(); ++i) cluster_.KillNode(i);

  auto t0 = Clock::now();
  auto p = cluster_.Cli({"put", "-r", "1", Local("in"), "/new"}, 60s);
  auto put_took = Clock::now() - t0;
  EXPECT_EQ(p.exit_code, 1);
  EXPECT_NE(p.err.find("/new"), std::string::npos) << p.err;
  EXPECT_EQ(std::count(p.err.begin(), p.err.end(), '\n'), 1) << p.err;
  EXPECT_LT(put_took, 20s);
  EXPECT_EQ(cluster_.Cli({"stat", "/new"}).exit_code, 1);

  t0 = Clock::now();
  auto g = cluster_.Cli({"get", "/kept", Local("out")}, 60s);
  auto get_took = Clock::now() - t0;
  EXPECT_EQ(g.exit_code, 1);
  EXPECT_NE(g.err.find("/kept"), std::string::npos) << g.err;
  EXPECT_EQ(std::count(g.err.begin(), g.err.end(), '\n'), 1) << g.err;
  EXPECT_LT(get_took, 20s);
  EXPECT_FALSE(std::filesystem::exists(Local("out")));
}

}  // namespace
}  // namespace dfs::test
