// The node's chunk reports to the master, end to end with the real master:
// stored chunks become replicas, a restarted node's full report replaces
// what the master knew, a corrupt replica is reported and dropped, deletions
// the master asks for (a removed file, an orphan) empty the node's disk, and
// a replica the head of its pipeline did not live to report is reported by
// its own node.
#include <nlohmann/json.hpp>

#include <fstream>

#include <gtest/gtest.h>

#include "client/dfs_client.h"
#include "tests/integration/node_test_client.h"

namespace dfs::test {
namespace {

class NodeReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.Start());
    for (int i = 0; i < 3; ++i) nodes_.push_back(std::make_unique<NodeClient>(ctx_, NodeHostPort(cluster_, i)));
    client::ClientOptions o;
    o.master = cluster_.master_address();
    auto c = client::Client::Connect(o);
    ASSERT_TRUE(c) << c.error().ToString();
    client_ = std::move(*c);
  }

  // Writes `data` as a one-chunk file through nodes 0 -> 1 -> 2 and commits it.
  void WriteFile(const std::string& path, const std::string& data) {
    auto lease = client_->BeginWrite(path);
    ASSERT_TRUE(lease) << lease.error().ToString();
    auto p = client_->AllocateChunk(*lease, 0);
    ASSERT_TRUE(p) << p.error().ToString();
    chunk_ = p->chunk_id;
    version_ = p->version;
    WriteOutcome w = WriteChunk(*nodes_[0], chunk_, version_, {NodeAddressOf(cluster_, 1), NodeAddressOf(cluster_, 2)},
                                data, 1 << 20);
    ASSERT_TRUE(w.status.ok()) << w.status.ToString();
    client::WrittenChunk c{chunk_, version_, data.size(), Crc32c(data), {}};
    for (const auto& r : w.replicas) c.replicas.push_back(r.node_id());
    auto done = client_->CompleteWrite(*lease, {c}, data.size(), Crc32c(data));
    ASSERT_TRUE(done) << done.error().ToString();
  }

  // Node ids the master lists as holding the file's first chunk.
  std::vector<std::string> Replicas(const std::string& path) {
    auto r = cluster_.Cli({"--json", "stat", path}, 10s);
    auto doc = nlohmann::json::parse(r.out, nullptr, false);
    std::vector<std::string> out;
    if (doc.is_discarded() || !doc.contains("chunks") || doc["chunks"].empty()) return out;
    for (const auto& id : doc["chunks"][0]["replicas"]) out.push_back(id.get<std::string>());
    std::sort(out.begin(), out.end());
    return out;
  }
  std::vector<std::string> Ids(std::vector<int> which) {
    std::vector<std::string> out;
    for (int i : which) out.push_back(cluster_.node_id(i));
    std::sort(out.begin(), out.end());
    return out;
  }

  // Chunks in files of their own: the tests look at them on disk.
  // Freed chunks are deleted at once (no grace period for readers).
  MiniCluster cluster_{{.master_args = {"--free-grace", "0s"}, .node_args = {"--volume-max-chunk", "0"}}};
  bus::Context ctx_;
  std::vector<std::unique_ptr<NodeClient>> nodes_;
  std::unique_ptr<client::Client> client_;
  uint64_t chunk_ = 0;
  uint32_t version_ = 0;
};

TEST_F(NodeReportTest, StoredChunksBecomeReplicasAndRestartReportsInFull) {
  const std::string data = RandomData(3 << 20, 1);
  WriteFile("/f", data);
  EXPECT_TRUE(WaitFor([&] { return Replicas("/f") == Ids({0, 1, 2}); }, 10s));
  // Node 1 loses the chunk while down: its full report after the restart
  // no longer lists it, and the master forgets that replica.
  EXPECT_EQ(cluster_.StopNode(1), 0);
  for (const auto& f : ChunkFiles(cluster_.node_dir(1), ".chunk")) std::filesystem::remove(f);
  ASSERT_TRUE(cluster_.StartNode(1));
  EXPECT_TRUE(WaitFor([&] { return Replicas("/f") == Ids({0, 2}); }, 15s)) << testing::PrintToString(Replicas("/f"));
  // Node 2 restarts with its chunk: still a replica.
  EXPECT_EQ(cluster_.StopNode(2), 0);
  ASSERT_TRUE(cluster_.StartNode(2));
  EXPECT_TRUE(WaitFor([&] { return cluster_.NodeState(cluster_.node_id(2)) == "alive"; }, 15s));
  EXPECT_TRUE(WaitFor([&] { return Replicas("/f") == Ids({0, 2}); }, 15s));
}

TEST_F(NodeReportTest, CorruptReplicaIsReportedAndDropped) {
  const std::string data = RandomData(1 << 20, 2);
  WriteFile("/g", data);
  ASSERT_TRUE(WaitFor([&] { return Replicas("/g") == Ids({0, 1, 2}); }, 10s));
  auto files = ChunkFiles(cluster_.node_dir(0), ".chunk");
  ASSERT_EQ(files.size(), 1u);
  {
    std::fstream f(files[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(12345);
    char c = static_cast<char>(data[12345] ^ 0x10);
    f.write(&c, 1);
  }
  EXPECT_EQ(AnswerStatus(nodes_[0]->Read(chunk_, version_, 0, 65536)).code(), Code::kCorruption);
  EXPECT_TRUE(WaitFor([&] { return Replicas("/g") == Ids({1, 2}); }, 10s)) << testing::PrintToString(Replicas("/g"));
}

TEST_F(NodeReportTest, RemovedFileAndOrphansAreDeletedFromNodes) {
  WriteFile("/h", RandomData(2 << 20, 3));
  ASSERT_TRUE(WaitFor([&] { return Replicas("/h").size() == 3; }, 10s));
  // An orphan: a chunk no file or write owns.
  WriteOutcome w = WriteChunk(*nodes_[2], 999999, 1, {}, RandomData(1000, 4), 1 << 20);
  ASSERT_TRUE(w.status.ok()) << w.status.ToString();
  EXPECT_EQ(cluster_.Cli({"rm", "/h"}).exit_code, 0);
  EXPECT_TRUE(WaitFor([&] {
    size_t n = 0;
    for (int i = 0; i < 3; ++i) n += ChunkFiles(cluster_.node_dir(i), ".chunk").size();
    return n == 0;
  }, 15s));
  auto r = cluster_.Cli({"--json", "nodes"}, 10s);
  auto doc = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded());
  EXPECT_TRUE(WaitFor([&] {
    auto out = cluster_.Cli({"--json", "nodes"}, 10s);
    auto d = nlohmann::json::parse(out.out, nullptr, false);
    if (d.is_discarded()) return false;
    for (const auto& n : d["nodes"]) {
      if (n.value("chunks", 1) != 0 || n.value("used", 1) != 0) return false;
    }
    return true;
  }, 10s));
}

// A node after the head of a pipeline leaves its report to the head, and
// sends its own with its next heartbeat: a copy whose head died before
// reporting (here the test poses as that head) is still found, an orphan,
// and deleted.
TEST_F(NodeReportTest, AReplicaLeftToADeadHeadIsReportedWithTheNodesHeartbeat) {
  auto answer = nodes_[1]->WriteWhole(888888, 1, {}, RandomData(5000, 6), {}, /*reported_upstream=*/true);
  ASSERT_TRUE(answer.has_value());
  ASSERT_TRUE(answer->envelope.has_write_close_response()) << answer->envelope.error().message();
  EXPECT_EQ(ChunkFiles(cluster_.node_dir(1), ".chunk").size(), 1u);
  EXPECT_TRUE(WaitFor([&] { return ChunkFiles(cluster_.node_dir(1), ".chunk").empty(); }, 15s));
}

}  // namespace
}  // namespace dfs::test
