// The namespace survives crashes: every acknowledged mutation is there after
// a SIGKILL, after a crash in the middle of a checkpoint, and after a torn
// journal tail; a journal corrupted in the middle stops the master with a
// message naming the file and offset; a retried mutation is never applied
// twice, even across a restart.
#include <sys/stat.h>

#include <atomic>
#include <functional>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "bus/request_client.h"
#include "client_master.pb.h"
#include "client/dfs_client.h"
#include "common/net.h"
#include "tests/support/cluster.h"

namespace dfs::test {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<client::Client> Connect(const MiniCluster& c) {
  client::ClientOptions o;
  o.master = c.master_address();
  o.timeout = 2000ms;
  o.attempts = 1;
  auto r = client::Client::Connect(o);
  EXPECT_TRUE(r) << r.error().ToString();
  return r ? std::move(*r) : nullptr;
}

std::vector<std::string> Journals(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().filename().string().rfind("journal.", 0) == 0) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Clients mkdir in a loop until told to stop; returns what was acknowledged.
std::vector<std::string> MkdirUntilMasterDies(MiniCluster& c, int clients, int kill_after,
                                              const std::function<bool()>& also_wait_for = {}) {
  std::mutex mu;
  std::vector<std::string> acked;
  std::atomic<int> total{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      auto cl = Connect(c);
      if (!cl) return;
      for (int i = 0;; ++i) {
        std::string p = "/crash/t" + std::to_string(t) + "/d" + std::to_string(i);
        auto r = cl->Mkdir(p, true);
        if (!r) return;  // the master is gone
        std::lock_guard l(mu);
        acked.push_back(p);
        ++total;
      }
    });
  }
  WaitFor([&] { return total.load() >= kill_after; }, 30s);
  if (also_wait_for) {
    EXPECT_TRUE(WaitFor(also_wait_for, 10s));
  }
  c.KillMaster();
  for (auto& th : threads) th.join();
  return acked;
}

void ExpectAllExist(const MiniCluster& c, const std::vector<std::string>& paths) {
  auto cl = Connect(c);
  ASSERT_TRUE(cl);
  size_t missing = 0;
  for (const auto& p : paths) {
    if (!cl->Stat(p)) ++missing;
  }
  EXPECT_EQ(missing, 0u) << "of " << paths.size() << " acknowledged mkdirs";
}

TEST(Durability, EveryAcknowledgedMkdirSurvivesSigkill) {
  MiniCluster c({.nodes = 0});
  ASSERT_TRUE(c.StartMaster());
  auto acked = MkdirUntilMasterDies(c, 4, 2000);
  ASSERT_GE(acked.size(), 2000u);
  ASSERT_TRUE(c.StartMaster());
  ExpectAllExist(c, acked);
}

TEST(Durability, CrashInTheMiddleOfACheckpointLosesNothing) {
  // A background checkpoint every 300 records, whose writer dies after 100
  // entries (fault injection), then the master is SIGKILLed.
  MiniCluster c({.nodes = 0,
                 .master_args = {"--checkpoint-every", "300", "--unsafe-fault-crash-during-checkpoint", "100"}});
  ASSERT_TRUE(c.StartMaster());
  c.SetMasterArgs({"--checkpoint-every", "300"});  // restarts write whole checkpoints
  // Keep the load on until the master has seen its checkpoint writer die
  // (the injected crash), then SIGKILL the master too.
  auto acked = MkdirUntilMasterDies(c, 4, 1500, [&] {
    return MiniCluster::ReadText(c.root() + "/master.log").find("failed; the journals still hold") !=
           std::string::npos;
  });
  ASSERT_TRUE(c.StartMaster());
  ExpectAllExist(c, acked);
  // And a clean checkpoint on shutdown, then a restart from it.
  ASSERT_EQ(c.StopMaster(), 0);
  ASSERT_TRUE(c.StartMaster());
  ExpectAllExist(c, acked);
}

TEST(Durability, TornJournalTailIsCutAndEverythingBeforeItKept) {
  MiniCluster c({.nodes = 0});
  ASSERT_TRUE(c.StartMaster());
  auto cl = Connect(c);
  ASSERT_TRUE(cl);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(cl->Mkdir("/t/d" + std::to_string(i), true));
  cl.reset();
  c.KillMaster();
  auto journals = Journals(c.master_dir());
  ASSERT_FALSE(journals.empty());
  // A crash mid-append: half a record of garbage at the end.
  {
    std::ofstream out(journals.back(), std::ios::app | std::ios::binary);
    out.write("\x30\x00\x00\x00\x12\x34", 6);
  }
  ASSERT_TRUE(c.StartMaster());
  auto log = MiniCluster::ReadText(c.root() + "/master.log");
  EXPECT_NE(log.find("torn"), std::string::npos) << log;
  cl = Connect(c);
  ASSERT_TRUE(cl);
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(cl->Stat("/t/d" + std::to_string(i))) << i;
}

TEST(Durability, CorruptedJournalRecordStopsStartupNamingFileAndOffset) {
  MiniCluster c({.nodes = 0});
  ASSERT_TRUE(c.StartMaster());
  auto cl = Connect(c);
  ASSERT_TRUE(cl);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(cl->Mkdir("/c/d" + std::to_string(i), true));
  cl.reset();
  c.KillMaster();
  auto journals = Journals(c.master_dir());
  ASSERT_FALSE(journals.empty());
  const std::string journal = journals.back();
  auto size = std::filesystem::file_size(journal);
  // The records end at the last non-zero byte: zeros the writer prepared
  // after them may follow (a killed master leaves them).
  std::string bytes;
  {
    std::ifstream in(journal, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const size_t used = bytes.find_last_not_of('\0') + 1;
  ASSERT_GT(used, 200u);
  {
    std::fstream f(journal, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(used / 2));
    f.put('\x5a');
    f.put('\xa5');
  }
  auto r = RunCommand({DFS_MASTER_BIN, "--dir", c.master_dir(), "--port", "0"}, 20s);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(journal), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("offset"), std::string::npos) << r.err;
  // Nothing was cut: the file is as long as before.
  EXPECT_EQ(std::filesystem::file_size(journal), size);
}

TEST(Durability, RetriedMkdirIsAnsweredNotAppliedTwiceEvenAcrossARestart) {
  MiniCluster c({.nodes = 0});
  ASSERT_TRUE(c.StartMaster());
  // RequestClient keeps one random client id: sending the same envelope
  // (same request id) again through it is exactly a retry.
  bus::Context ctx;
  auto hp = ParseHostPort(c.master_address(), 0);
  bus::RequestClient<msg::ClientEnvelope> rc(ctx, TcpEndpoint(hp->host, hp->port), bus::SocketOptions{}, bus::RetryPolicy{3000ms, 1});
  msg::ClientEnvelope e;
  e.set_request_id(777);
  e.mutable_mkdir_request()->set_path("/once");
  auto first = rc.Call(e);
  ASSERT_TRUE(first) << first.error().ToString();
  auto again = rc.Call(e);  // same client id, same request id: a retry
  ASSERT_TRUE(again) << "a retried mkdir must not fail: " << again.error().ToString();
  msg::ClientEnvelope fresh = e;
  fresh.set_request_id(778);
  auto other = rc.Call(fresh);  // a new request is a new mkdir
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code(), Code::kAlreadyExists);
  c.KillMaster();
  ASSERT_TRUE(c.StartMaster());
  // The same client retrying after the restart: reconnect and resend.
  ASSERT_TRUE(rc.Reconnect().ok());
  auto after = rc.Call(e);
  ASSERT_TRUE(after) << "a retry across a restart must be answered from the journal: " << after.error().ToString();
}

}  // namespace
}  // namespace dfs::test
