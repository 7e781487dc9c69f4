// The node's data port driven directly over the bus (no client library):
// a 3-node write pipeline, reads from every replica, bad frames aborting the
// stream on every node, corruption on disk, and a node killed mid-stream.
// Chunk ids come from the master under a write lease, as a client's do: the
// master deletes chunks that no file and no write owns.
#include <sys/stat.h>

#include <fstream>
#include <set>

#include <fmt/format.h>

#include <gtest/gtest.h>

#include "client/dfs_client.h"
#include "tests/integration/node_test_client.h"

namespace dfs::test {
namespace {

constexpr uint32_t kFrame = 256 * 1024;

class NodeDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.Start());
    for (int i = 0; i < 3; ++i) clients_.push_back(std::make_unique<NodeClient>(ctx_, NodeHostPort(cluster_, i)));
    client::ClientOptions o;
    o.master = cluster_.master_address();
    auto c = client::Client::Connect(o);
    ASSERT_TRUE(c) << c.error().ToString();
    master_ = std::move(*c);
    auto lease = master_->BeginWrite("/node-data-test");
    ASSERT_TRUE(lease) << lease.error().ToString();
    lease_ = *lease;
  }
  // A fresh chunk id and version, leased to this test.
  std::pair<uint64_t, uint32_t> Allocate() {
    auto p = master_->AllocateChunk(lease_, next_index_++);
    EXPECT_TRUE(p) << p.error().ToString();
    return p ? std::pair(p->chunk_id, p->version) : std::pair(uint64_t{0}, 0u);
  }
  std::vector<msg::NodeAddress> After(int first) {
    std::vector<msg::NodeAddress> out;
    for (int i = first + 1; i < 3; ++i) out.push_back(NodeAddressOf(cluster_, i));
    return out;
  }
  // Temp files left on any node.
  size_t TempsEverywhere() {
    size_t n = 0;
    for (int i = 0; i < 3; ++i) n += ChunkFiles(cluster_.node_dir(i), ".tmp").size();
    return n;
  }
  // Opens a 3-node stream on node 0 and sends `good` frames of `data`, acked.
  uint64_t OpenWithFrames(const std::string& data, int good) {
    auto [chunk, version] = Allocate();
    auto open = clients_[0]->Open(chunk, version, After(0), kFrame);
    EXPECT_TRUE(AnswerStatus(open).ok()) << AnswerStatus(open).ToString();
    if (!open) return 0;
    uint64_t stream = open->envelope.write_open_response().stream_id();
    for (int i = 0; i < good; ++i) {
      auto ack = clients_[0]->Await(clients_[0]->SendFrame(stream, uint64_t{kFrame} * i,
                                                          std::string_view(data).substr(kFrame * i, kFrame)));
      EXPECT_TRUE(AnswerStatus(ack).ok()) << AnswerStatus(ack).ToString();
    }
    // Every node holds a temp file for the chunk now.
    EXPECT_EQ(TempsEverywhere(), 3u);
    return stream;
  }

  // Chunks in files of their own: the tests look at them on disk.
  MiniCluster cluster_{{.node_args = {"--volume-max-chunk", "0"}}};
  bus::Context ctx_;
  std::unique_ptr<client::Client> master_;
  client::WriteLease lease_;
  uint32_t next_index_ = 0;
  std::vector<std::unique_ptr<NodeClient>> clients_;
};

TEST_F(NodeDataTest, PipelineWriteReadsBackFromEveryNode) {
  const std::string data = RandomData(5 * 1024 * 1024 + 12345, 1);
  auto [id, v] = Allocate();
  WriteOutcome w = WriteChunk(*clients_[0], id, v, After(0), data, kFrame);
  ASSERT_TRUE(w.status.ok()) << w.status.ToString();
  EXPECT_GE(w.credit, 1u);
  EXPECT_LE(w.credit, 16u);
  EXPECT_EQ(w.max_in_flight, w.credit);  // the window was used
  ASSERT_EQ(w.replicas.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(w.replicas[static_cast<size_t>(i)].node_id(), cluster_.node_id(i));  // this node first, then downstream
    EXPECT_EQ(w.replicas[static_cast<size_t>(i)].crc32c(), Crc32c(data));
    EXPECT_EQ(w.replicas[static_cast<size_t>(i)].size(), data.size());
    auto back = ReadChunk(*clients_[static_cast<size_t>(i)], id, v, 0, data.size(), 1 << 20);
    ASSERT_TRUE(back) << back.error().ToString();
    EXPECT_TRUE(*back == data) << "node " << i << " returned other bytes";
    // A ranged read at an odd offset.
    auto part = ReadChunk(*clients_[static_cast<size_t>(i)], id, v, 70001, 200003, 65536);
    ASSERT_TRUE(part) << part.error().ToString();
    EXPECT_TRUE(*part == data.substr(70001, 200003));
    EXPECT_EQ(ChunkFiles(cluster_.node_dir(i), ".chunk").size(), 1u);
  }
  EXPECT_EQ(TempsEverywhere(), 0u);
  // A read past the end, of a missing chunk, and one longer than 8 MiB.
  EXPECT_EQ(AnswerStatus(clients_[0]->Read(id, v, data.size() + 1, 10)).code(), Code::kInvalidArgument);
  EXPECT_EQ(AnswerStatus(clients_[0]->Read(id, v + 1, 0, 10)).code(), Code::kNotFound);
  auto capped = clients_[0]->Read(id, v, 0, 64u << 20);
  ASSERT_TRUE(AnswerStatus(capped).ok());
  EXPECT_EQ(capped->payload[0].size(), data.size());  // the chunk is shorter than the cap
  EXPECT_EQ(capped->envelope.read_response().chunk_size(), data.size());
}

TEST_F(NodeDataTest, WholeChunkInOneMessageIsStoredOnEveryNode) {
  for (size_t size : {size_t{1}, size_t{65536}, size_t{300000}}) {
    SCOPED_TRACE(size);
    const std::string data = RandomData(size, size);
    auto [id, v] = Allocate();
    auto w = clients_[0]->WriteWhole(id, v, After(0), data);
    ASSERT_TRUE(AnswerStatus(w).ok()) << AnswerStatus(w).ToString();
    ASSERT_TRUE(w->envelope.has_write_close_response());
    const auto& reps = w->envelope.write_close_response().replicas();
    ASSERT_EQ(reps.size(), 3);
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(reps[i].node_id(), cluster_.node_id(i));
      EXPECT_EQ(reps[i].crc32c(), Crc32c(data));
      EXPECT_EQ(reps[i].size(), size);
      auto back = ReadChunk(*clients_[static_cast<size_t>(i)], id, v, 0, size, 1 << 20);
      ASSERT_TRUE(back) << back.error().ToString();
      EXPECT_TRUE(*back == data) << "node " << i << " returned other bytes";
    }
  }
  EXPECT_EQ(TempsEverywhere(), 0u);
}

TEST_F(NodeDataTest, WholeChunkWithAWrongCrcOrSizeIsRefusedAndStoredNowhere) {
  const std::string data = RandomData(100000, 9);
  auto [id, v] = Allocate();
  auto bad = clients_[0]->WriteWhole(id, v, After(0), data, Crc32c(data) ^ 1);
  EXPECT_EQ(AnswerStatus(bad).code(), Code::kCorruption) << AnswerStatus(bad).ToString();
  // A size that disagrees with the payload.
  msg::DataEnvelope env;
  auto* o = env.mutable_write_open_request();
  o->set_chunk_id(id);
  o->set_version(v);
  o->set_whole(true);
  o->set_expected_size(data.size() + 1);
  o->set_crc32c(Crc32c(data));
  std::vector<bus::Frame> payload;
  payload.push_back(bus::Frame::Copy(data));
  auto wrong_size = clients_[0]->Call(std::move(env), std::move(payload));
  EXPECT_EQ(AnswerStatus(wrong_size).code(), Code::kInvalidArgument) << AnswerStatus(wrong_size).ToString();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(AnswerStatus(clients_[static_cast<size_t>(i)]->Read(id, v, 0, 10)).code(), Code::kNotFound);
  }
  EXPECT_EQ(TempsEverywhere(), 0u);
}

// 40 reads of 8 MiB at once are 320 MiB, five times what a node holds for
// readers: the ones past its read buffer wait their turn, and all are
// answered with the right bytes.
TEST_F(NodeDataTest, ReadsBeyondTheReadBufferWaitAndAreAllAnswered) {
  const std::string data = RandomData(8 << 20, 11);
  auto [id, v] = Allocate();
  WriteOutcome w = WriteChunk(*clients_[0], id, v, {}, data, 1 << 20);
  ASSERT_TRUE(w.status.ok()) << w.status.ToString();
  std::set<uint64_t> asked;
  for (int i = 0; i < 40; ++i) {
    msg::DataEnvelope env;
    auto* r = env.mutable_read_request();
    r->set_chunk_id(id);
    r->set_version(v);
    r->set_length(8 << 20);
    asked.insert(clients_[0]->Send(std::move(env)));
  }
  while (!asked.empty()) {
    auto m = clients_[0]->Receive(30s);
    ASSERT_TRUE(m) << asked.size() << " reads unanswered";
    ASSERT_TRUE(AnswerStatus(m).ok()) << AnswerStatus(m).ToString();
    ASSERT_EQ(asked.erase(m->envelope.request_id()), 1u);
    ASSERT_EQ(m->payload.size(), 1u);
    EXPECT_TRUE(m->payload[0].view() == data);
  }
}

TEST_F(NodeDataTest, WrongCrcAbortsTheStreamOnEveryNode) {
  const std::string data = RandomData(8 * kFrame, 2);
  uint64_t stream = OpenWithFrames(data, 2);
  auto bad = clients_[0]->Await(
      clients_[0]->SendFrame(stream, 2 * kFrame, std::string_view(data).substr(2 * kFrame, kFrame), 12345));
  Status s = AnswerStatus(bad);
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  EXPECT_TRUE(WaitFor([&] { return TempsEverywhere() == 0; }, 5s)) << TempsEverywhere() << " temp files left";
  // The stream is gone: the next frame is refused and names the reason.
  auto next = clients_[0]->Await(clients_[0]->SendFrame(stream, 2 * kFrame, "x"));
  EXPECT_FALSE(AnswerStatus(next).ok());
  EXPECT_NE(AnswerStatus(next).message().find("aborted"), std::string::npos) << AnswerStatus(next).message();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(ChunkFiles(cluster_.node_dir(i), ".chunk").empty());
}

TEST_F(NodeDataTest, WrongOffsetAbortsTheStreamOnEveryNode) {
  const std::string data = RandomData(8 * kFrame, 3);
  uint64_t stream = OpenWithFrames(data, 3);
  // Frame 4 where frame 3 belongs: a gap.
  auto bad = clients_[0]->Await(
      clients_[0]->SendFrame(stream, 4 * kFrame, std::string_view(data).substr(4 * kFrame, kFrame)));
  EXPECT_EQ(AnswerStatus(bad).code(), Code::kInvalidArgument) << AnswerStatus(bad).ToString();
  EXPECT_TRUE(WaitFor([&] { return TempsEverywhere() == 0; }, 5s)) << TempsEverywhere() << " temp files left";
  // A fresh write works afterwards.
  auto [id, v] = Allocate();
  WriteOutcome w = WriteChunk(*clients_[0], id, v, After(0), data, kFrame);
  EXPECT_TRUE(w.status.ok()) << w.status.ToString();
}

TEST_F(NodeDataTest, WrongCloseChecksumIsCorruption) {
  const std::string data = RandomData(3 * kFrame, 4);
  uint64_t stream = OpenWithFrames(data, 3);
  auto close = clients_[0]->Await(clients_[0]->SendClose(stream, data.size(), Crc32c(data) ^ 1));
  EXPECT_EQ(AnswerStatus(close).code(), Code::kCorruption) << AnswerStatus(close).ToString();
  EXPECT_TRUE(WaitFor([&] { return TempsEverywhere() == 0; }, 5s));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(ChunkFiles(cluster_.node_dir(i), ".chunk").empty());
}

TEST_F(NodeDataTest, CorruptedByteOnDiskIsCorruptionOnRead) {
  const std::string data = RandomData(1024 * 1024, 5);
  auto [id, v] = Allocate();
  WriteOutcome w = WriteChunk(*clients_[0], id, v, After(0), data, kFrame);
  ASSERT_TRUE(w.status.ok()) << w.status.ToString();
  auto files = ChunkFiles(cluster_.node_dir(1), ".chunk");
  ASSERT_EQ(files.size(), 1u);
  {
    std::fstream f(files[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(300000);
    char c = static_cast<char>(data[300000] ^ 0x01);
    f.write(&c, 1);
  }
  auto bad = clients_[1]->Read(id, v, 262144, 65536);  // the block holding byte 300000
  Status s = AnswerStatus(bad);
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find(fmt::format("chunk {} v{}", id, v)), std::string::npos) << s.message();
  EXPECT_TRUE(bad && bad->payload.empty());
  // Other blocks of that replica, and the other replicas, still read.
  EXPECT_TRUE(AnswerStatus(clients_[1]->Read(id, v, 0, 262144)).ok());
  auto good = ReadChunk(*clients_[2], id, v, 0, data.size(), 1 << 20);
  ASSERT_TRUE(good);
  EXPECT_TRUE(*good == data);
}

TEST_F(NodeDataTest, KilledLastNodeFailsTheStreamWithinSeconds) {
  const std::string data = RandomData(16 * kFrame, 6);
  uint64_t stream = OpenWithFrames(data, 2);
  cluster_.KillNode(2);
  auto start = std::chrono::steady_clock::now();
  // The client keeps sending within its credit; some answer must be an error.
  Status seen;
  for (int i = 2; i < 16 && seen.ok(); ++i) {
    clients_[0]->SendFrame(stream, uint64_t{kFrame} * i, std::string_view(data).substr(kFrame * i, kFrame));
    auto m = clients_[0]->Receive(15s);
    seen = AnswerStatus(m);
  }
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(seen.ok());
  EXPECT_NE(seen.code(), Code::kTimedOut) << "no answer at all: " << seen.ToString();
  EXPECT_LT(took, 12s);
  EXPECT_NE(seen.message().find(cluster_.node_id(2)), std::string::npos) << seen.ToString();
  // The survivors dropped their temp files.
  EXPECT_TRUE(WaitFor([&] {
    return ChunkFiles(cluster_.node_dir(0), ".tmp").empty() && ChunkFiles(cluster_.node_dir(1), ".tmp").empty();
  }, 10s));
}

TEST_F(NodeDataTest, StoppingANodeMidStreamIsCleanAndLeavesNoTemps) {
  const std::string data = RandomData(8 * kFrame, 8);
  OpenWithFrames(data, 2);
  EXPECT_EQ(cluster_.StopNode(0), 0);  // SIGTERM: a clean exit (and no leak under ASan)
  EXPECT_TRUE(ChunkFiles(cluster_.node_dir(0), ".tmp").empty());
  ASSERT_TRUE(cluster_.StartNode(0));
}

// Prints MiB/s for chunks of 64 MiB written one after another through a
// 3-node pipeline in 1 MiB frames; DFS_NODE_BENCH_MIB sets the total (64).
TEST_F(NodeDataTest, PipelineThroughput) {
  const char* env = std::getenv("DFS_NODE_BENCH_MIB");
  const uint64_t total_mib = env ? std::strtoull(env, nullptr, 10) : 64;
  const std::string data = RandomData(64 << 20, 7);
  auto start = std::chrono::steady_clock::now();
  for (uint64_t done = 0; done < total_mib; done += 64) {
    auto [id, v] = Allocate();
    WriteOutcome w = WriteChunk(*clients_[0], id, v, After(0), data, 1 << 20);
    ASSERT_TRUE(w.status.ok()) << w.status.ToString();
    ASSERT_EQ(w.replicas.size(), 3u);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("3-node pipeline write: %llu MiB in %.3f s = %.0f MiB/s\n",
              static_cast<unsigned long long>(total_mib), secs, static_cast<double>(total_mib) / secs);
}

}  // namespace
}  // namespace dfs::test
