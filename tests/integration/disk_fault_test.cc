// Disks that fail under real daemons, through the --unsafe-fault-* flags
// (common/fault_env.h): a node whose disk starts failing mid-put (the put
// still succeeds on the other nodes; the node says its disk failed and gets
// no more chunks), and a master whose journal fsync fails (it stops
// acknowledging mutations, and nothing it acknowledged is lost).
#include <algorithm>
#include <mutex>
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

constexpr size_t kChunk = 256 * 1024;

// `dfs-cli --json nodes` entry of node `id`; null when absent or on error.
nlohmann::json NodeEntry(const MiniCluster& c, const std::string& id) {
  auto r = c.Cli({"--json", "nodes"}, 10s);
  if (r.exit_code != 0) return nullptr;
  auto doc = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.contains("nodes")) return nullptr;
  for (const auto& n : doc["nodes"]) {
    if (n.value("id", "") == id) return n;
  }
  return nullptr;
}

// Node ids holding any replica of `remote`, per `dfs-cli --json stat`.
std::vector<std::string> Holders(const MiniCluster& c, const std::string& remote) {
  auto r = c.Cli({"--json", "stat", remote}, 10s);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> out;
  auto doc = nlohmann::json::parse(r.out, nullptr, false);
  if (doc.is_discarded() || !doc.contains("chunks")) return out;
  for (const auto& chunk : doc["chunks"]) {
    for (const auto& id : chunk["replicas"]) out.push_back(id.get<std::string>());
  }
  return out;
}

TEST(DiskFault, NodeDiskFailingMidPutIsReportedAndSkipped) {
  MiniCluster c({.nodes = 2});
  ASSERT_TRUE(c.Start());
  // The third node's chunk writes fail with EIO after its first few.
  const int bad = c.AddNode({"--unsafe-fault-eio-after-writes", "3", "--unsafe-fault-path", "*/chunks/*"});
  ASSERT_GE(bad, 0);
  ASSERT_TRUE(c.WaitForAliveNodes(3, 30s));
  const std::string bad_id = c.node_id(bad);
  ASSERT_FALSE(bad_id.empty());

  // 48 chunks on 2 of 3 nodes each: the bad node is in most pipelines.
  const std::string data = RandomBytes(48 * kChunk + 5, 1);
  const std::string local = c.root() + "/in";
  WriteLocal(local, data);
  auto put = c.Cli({"put", "-r", "2", "--chunk-size", "256K", local, "/first"}, 120s);
  ASSERT_EQ(put.exit_code, 0) << put.err;
  auto cat = c.Cli({"cat", "/first"}, 60s);
  ASSERT_EQ(cat.exit_code, 0) << cat.err;
  EXPECT_TRUE(cat.out == data) << "read " << cat.out.size() << " bytes of " << data.size();

  // The node tells the master its disk failed; dfs-cli nodes shows it.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto n = NodeEntry(c, bad_id);
        return n.is_object() && n.value("disk_failed", false);
      },
      30s))
      << "node " << bad_id << " never reported its failed disk; log: "
      << MiniCluster::ReadText(c.root() + "/node" + std::to_string(bad) + ".log");
  auto entry = NodeEntry(c, bad_id);
  EXPECT_EQ(entry.value("state", ""), "alive");  // alive: what it holds is still read
  EXPECT_NE(entry.value("disk_error", "").find("injected"), std::string::npos) << entry.dump();
  auto table = c.Cli({"nodes"}, 10s);
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("node " + bad_id + ": disk failed"), std::string::npos) << table.out;

  // Placement skips it: a new file lands on the two good nodes only.
  const std::string second = RandomBytes(16 * kChunk, 2);
  WriteLocal(local, second);
  put = c.Cli({"put", "-r", "2", "--chunk-size", "256K", local, "/second"}, 120s);
  ASSERT_EQ(put.exit_code, 0) << put.err;
  auto holders = Holders(c, "/second");
  EXPECT_EQ(holders.size(), 32u);
  EXPECT_EQ(std::count(holders.begin(), holders.end(), bad_id), 0) << "a chunk was placed on the failed node";
  cat = c.Cli({"cat", "/second"}, 60s);
  ASSERT_EQ(cat.exit_code, 0) << cat.err;
  EXPECT_TRUE(cat.out == second);
}

TEST(DiskFault, MasterWhoseJournalFsyncFailsAcknowledgesNothingMoreAndLosesNothing) {
  // The master's first syncs succeed (start-up and some mkdirs), then every
  // fsync fails.
  MiniCluster c({.nodes = 0, .master_args = {"--unsafe-fault-fsync-fail-after", "30"}});
  ASSERT_TRUE(c.StartMaster());
  // A short timeout: once the journal fails the master exits (fsyncgate),
  // and the requests after that wait it out.
  auto cl = ConnectClient(c.master_address(), 1000ms);
  ASSERT_TRUE(cl);
  std::vector<std::string> acked;
  Status first_error;
  for (int i = 0; i < 5000 && first_error.ok(); ++i) {
    std::string p = "/j/d" + std::to_string(i);
    auto r = cl->Mkdir(p, true);
    if (r) {
      acked.push_back(p);
    } else {
      first_error = r.error();
    }
  }
  ASSERT_FALSE(first_error.ok()) << "every mkdir succeeded: the fault never fired";
  EXPECT_FALSE(acked.empty());
  // Never a success again, whatever the error.
  for (int i = 0; i < 3; ++i) {
    auto r = cl->Mkdir("/after/d" + std::to_string(i), true);
    EXPECT_FALSE(r) << "a mkdir was acknowledged after the journal failed";
  }
  cl.reset();
  c.KillMaster();
  // A good disk again: everything acknowledged is there.
  c.SetMasterArgs({});
  ASSERT_TRUE(c.StartMaster());
  cl = ConnectClient(c.master_address());
  ASSERT_TRUE(cl);
  size_t missing = 0;
  for (const auto& p : acked) missing += cl->Stat(p) ? 0 : 1;
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged mkdirs; first error was "
                         << first_error.ToString();
}

}  // namespace
}  // namespace dfs::test
