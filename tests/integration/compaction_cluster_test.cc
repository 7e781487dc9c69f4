// Compaction of volume files on real nodes (issue 20, item 8): small files
// put and mostly deleted give their space back (dfs-cli df shows it) while
// every file left reads back identical; a node SIGKILLed at each step of a
// compaction restarts with every live file readable, no deleted chunk back,
// and compacts on. (A full or failing disk mid-compaction is
// tests/unit/compaction_test.cc, through a FaultEnv.)
#include <algorithm>
#include <cstdio>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "client/dfs_client.h"
#include "tests/integration/data_test_util.h"
#include "tests/support/cluster.h"

namespace dfs::test {
namespace {

using namespace std::chrono_literals;

constexpr int kFiles = 160;
constexpr size_t kFileSize = 16 * 1024;  // a small chunk each: into volumes
// Volumes of 256 KiB: 160 files fill about ten, and a compaction is quick.
const std::vector<std::string> kNodeArgs = {"--volume-size", "256K", "--compact-rate", "64M"};

// `dfs-cli --json df`'s used bytes, or -1.
int64_t DfUsed(const MiniCluster& c) {
  auto r = c.Cli({"--json", "df"}, 10s);
  if (r.exit_code != 0) return -1;
  auto doc = nlohmann::json::parse(r.out, nullptr, false);
  if (doc.is_discarded() || !doc.contains("used")) return -1;
  return doc["used"].get<int64_t>();
}

// Chunks node 0 holds per `dfs-cli --json nodes`, or -1.
int64_t NodeChunks(const MiniCluster& c) {
  auto r = c.Cli({"--json", "nodes"}, 10s);
  if (r.exit_code != 0) return -1;
  auto doc = nlohmann::json::parse(r.out, nullptr, false);
  if (doc.is_discarded() || !doc.contains("nodes") || doc["nodes"].size() != 1) return -1;
  const auto& n = doc["nodes"][0];
  return n.value("state", "") == "alive" ? n.value("chunks", int64_t{-1}) : -1;
}

Result<std::string> ReadBack(client::Client& cl, const std::string& remote) {
  std::string out;
  auto st = cl.Read(remote, client::GetOptions{}, /*in_order=*/true,
                    [&](uint64_t offset, std::span<const std::byte> bytes) {
                      if (offset != out.size()) return Status::Internal("out of order");
                      out.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
                      return Status::OK();
                    });
  if (!st) return st.error();
  return out;
}

// The number of chunks the node's last start-up scan found, from its log.
int64_t ScannedChunks(const std::string& log) {
  static const std::regex kScan(R"(/chunks: (\d+) chunks \()");
  int64_t n = -1;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), kScan); it != std::sregex_iterator(); ++it) {
    n = std::stoll((*it)[1].str());
  }
  return n;
}

// Chunks the master had told the node to delete, per its log.
int64_t DeletesDelivered(const std::string& log) {
  static const std::regex kAsk(R"(asks node=\S+ to delete (\d+) chunks)");
  int64_t n = 0;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), kAsk); it != std::sregex_iterator(); ++it) {
    n += std::stoll((*it)[1].str());
  }
  return n;
}

class CompactionTest : public ::testing::Test {
 protected:
  std::string NodeLog() const { return MiniCluster::ReadText(cluster_.root() + "/node0.log"); }

  // kFiles small files at r=1; then three of every four removed.
  void PutAndDeleteMost() {
    ASSERT_NO_FATAL_FAILURE(PutAll());
    ASSERT_NO_FATAL_FAILURE(DeleteMost());
  }
  void PutAll() {
    auto cl = ConnectClient(cluster_.master_address());
    ASSERT_TRUE(cl);
    for (int i = 0; i < kFiles; ++i) {
      const std::string remote = "/f" + std::to_string(i);
      std::string data = RandomBytes(kFileSize + static_cast<size_t>(i), static_cast<uint64_t>(i) + 1);
      auto put = PutBytes(*cl, data, remote, 1);
      ASSERT_TRUE(put) << remote << ": " << put.error().ToString();
      live_[remote] = std::move(data);
    }
    ASSERT_TRUE(WaitFor([&] { return NodeChunks(cluster_) == kFiles; }, 30s));
    // Every volume written: what the disk holds before any delete.
    ASSERT_TRUE(WaitFor([&] { return (used_full_ = DfUsed(cluster_)) >= int64_t{kFiles} * int64_t{kFileSize}; }, 30s))
        << "df used " << used_full_;
  }
  void DeleteMost() {
    auto cl = ConnectClient(cluster_.master_address());
    ASSERT_TRUE(cl);
    for (int i = 0; i < kFiles; ++i) {
      if (i % 4 == 0) continue;
      const std::string remote = "/f" + std::to_string(i);
      auto rm = cl->Remove(remote);
      ASSERT_TRUE(rm) << remote << ": " << rm.error().ToString();
      live_.erase(remote);
      deleted_.push_back(remote);
    }
  }

  // Every live file reads back byte for byte; every deleted one is gone.
  void ExpectFiles() {
    auto cl = ConnectClient(cluster_.master_address());
    ASSERT_TRUE(cl);
    for (const auto& [remote, data] : live_) {
      auto back = ReadBack(*cl, remote);
      ASSERT_TRUE(back) << remote << ": " << back.error().ToString();
      EXPECT_TRUE(*back == data) << remote << " read " << back->size() << " bytes of " << data.size();
    }
    for (const auto& remote : deleted_) EXPECT_FALSE(cl->Stat(remote)) << remote;
  }

  MiniCluster cluster_{{.nodes = 0, .master_args = {"--free-grace", "0s"}, .node_args = kNodeArgs}};
  std::map<std::string, std::string> live_;
  std::vector<std::string> deleted_;
  int64_t used_full_ = -1;
};

TEST_F(CompactionTest, DeletedSpaceComesBackAndEveryFileLeftReadsBack) {
  ASSERT_TRUE(cluster_.StartMaster());
  ASSERT_GE(cluster_.AddNode(), 0);
  ASSERT_TRUE(cluster_.WaitForAliveNodes(1, 15s));
  PutAndDeleteMost();
  ASSERT_TRUE(WaitFor([&] { return NodeChunks(cluster_) == kFiles / 4; }, 30s));
  // A quarter of the bytes live: the volumes give the rest back.
  int64_t used = -1;
  EXPECT_TRUE(WaitFor([&] { return (used = DfUsed(cluster_)) >= 0 && used < used_full_ / 2; }, 30s))
      << "df used " << used << " of " << used_full_ << " before the deletes; node log:\n" << NodeLog();
  const std::string log = NodeLog();
  EXPECT_NE(log.find("chunk store: compacted"), std::string::npos) << log;
  std::printf("df used: %lld bytes after %d puts of %zu bytes, %lld after %d of them were deleted and compacted\n",
              static_cast<long long>(used_full_), kFiles, kFileSize, static_cast<long long>(used),
              kFiles - kFiles / 4);
  RecordProperty("used_before", std::to_string(used_full_));
  RecordProperty("used_after", std::to_string(used));
  ExpectFiles();
}

// A disk that is full (ENOSPC on every volume write from some point on)
// under a compaction: an error line, no crash, nothing lost, the disk not
// called failed; with room again (a restart without the fault) the
// compaction runs to its end.
TEST_F(CompactionTest, AFullDiskStopsACompactionWithAnErrorAndLosesNothing) {
  ASSERT_TRUE(cluster_.StartMaster());
  ASSERT_GE(cluster_.AddNode(), 0);
  ASSERT_TRUE(cluster_.WaitForAliveNodes(1, 15s));
  ASSERT_NO_FATAL_FAILURE(PutAll());
  EXPECT_EQ(cluster_.StopNode(0), 0);
  cluster_.SetNodeArgs(0, {"--unsafe-fault-enospc-after-writes", "0", "--unsafe-fault-path", "*/volumes/*"});
  ASSERT_TRUE(cluster_.StartNode(0));
  ASSERT_TRUE(WaitFor([&] { return NodeChunks(cluster_) == kFiles; }, 30s));
  // The deletes' tombstones fail too: dead to the node, back after a
  // restart (the master deletes them again).
  ASSERT_NO_FATAL_FAILURE(DeleteMost());
  ASSERT_TRUE(WaitFor([&] { return NodeChunks(cluster_) == kFiles / 4; }, 30s));
  EXPECT_TRUE(WaitFor(
      [&] {
        const std::string log = NodeLog();
        return log.find("compaction of") != std::string::npos && log.find("stopped") != std::string::npos;
      },
      30s))
      << NodeLog();
  EXPECT_TRUE(cluster_.node(0).running());
  ExpectFiles();
  auto nodes = cluster_.Cli({"--json", "nodes"}, 10s);
  ASSERT_EQ(nodes.exit_code, 0) << nodes.err;
  EXPECT_EQ(nodes.out.find("\"disk_failed\":true"), std::string::npos) << nodes.out;

  EXPECT_EQ(cluster_.StopNode(0), 0);
  const size_t restart_at = NodeLog().size();
  cluster_.SetNodeArgs(0, {});
  ASSERT_TRUE(cluster_.StartNode(0));
  ASSERT_TRUE(WaitFor([&] { return NodeChunks(cluster_) == kFiles / 4; }, 30s));
  EXPECT_TRUE(WaitFor([&] { return NodeLog().find("chunk store: compacted", restart_at) != std::string::npos; }, 30s))
      << NodeLog().substr(restart_at);
  int64_t used = -1;
  EXPECT_TRUE(WaitFor([&] { return (used = DfUsed(cluster_)) >= 0 && used < used_full_ / 2; }, 30s))
      << "df used " << used << " of " << used_full_;
  ExpectFiles();
}

class CompactionKillTest : public CompactionTest, public ::testing::WithParamInterface<const char*> {};

// SIGKILL at each step, then a restart: the node's scan finds exactly the
// live chunks (a deleted one back would count), every file reads back, and
// a later compaction finishes.
TEST_P(CompactionKillTest, ANodeKilledMidCompactionKeepsEveryLiveFileAndNoDeletedOne) {
  const std::string step = GetParam();
  ASSERT_TRUE(cluster_.StartMaster());
  ASSERT_GE(cluster_.AddNode({"--unsafe-fault-kill-during-compaction", step}), 0);
  ASSERT_TRUE(cluster_.WaitForAliveNodes(1, 15s));
  PutAndDeleteMost();
  ASSERT_TRUE(WaitFor([&] { return !cluster_.node(0).running(); }, 60s))
      << "the node never got to step " << step << "; log:\n" << NodeLog();
  EXPECT_EQ(cluster_.node(0).Wait(5s), 128 + SIGKILL);
  std::string log = NodeLog();
  ASSERT_NE(log.find("SIGKILL at compaction step '" + step + "'"), std::string::npos) << log;
  const size_t restart_at = log.size();

  cluster_.SetNodeArgs(0, {});
  ASSERT_TRUE(cluster_.StartNode(0));
  ASSERT_TRUE(cluster_.WaitForAliveNodes(1, 15s));
  // What the restart's scan found: every chunk the node was not told to
  // delete before the kill, and not one it was (those it had tombstoned:
  // only the node could bring one back, and the scan would count it). A
  // slow node (TSan) may be killed before the master's last batch of
  // deletes reached it; those chunks are rightly still there.
  ASSERT_TRUE(WaitFor([&] { return NodeLog().find("/chunks: ", restart_at) != std::string::npos; }, 15s));
  const int64_t delivered = DeletesDelivered(log.substr(0, restart_at));
  EXPECT_GE(delivered, 1) << log;
  log = NodeLog();
  EXPECT_EQ(ScannedChunks(log.substr(restart_at)), int64_t{kFiles} - delivered) << log.substr(restart_at);
  ASSERT_TRUE(WaitFor([&] { return NodeChunks(cluster_) == static_cast<int64_t>(live_.size()); }, 30s));
  ExpectFiles();
  // And compaction goes on to the end.
  int64_t used = -1;
  EXPECT_TRUE(WaitFor([&] { return NodeLog().find("chunk store: compacted", restart_at) != std::string::npos; }, 30s))
      << NodeLog().substr(restart_at);
  EXPECT_TRUE(WaitFor([&] { return (used = DfUsed(cluster_)) >= 0 && used < used_full_ / 2; }, 30s))
      << "df used " << used << " of " << used_full_;
  ExpectFiles();
}

INSTANTIATE_TEST_SUITE_P(Steps, CompactionKillTest,
                         ::testing::Values("read", "written", "synced", "switched", "repinned", "unlinked"),
                         [](const auto& p) { return std::string(p.param); });

}  // namespace
}  // namespace dfs::test
