// Write leases against a real master: one writer per path, readers see the
// last completed version, a dead writer frees the path after the lease time,
// and placement refuses clearly when too few nodes are alive.
#include <signal.h>

#include <gtest/gtest.h>

#include "client/dfs_client.h"
#include "tests/integration/data_test_util.h"
#include "tests/support/cluster.h"

namespace dfs::test {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<client::Client> Connect(const std::string& master) {
  client::ClientOptions o;
  o.master = master;
  o.timeout = 2000ms;
  auto r = client::Client::Connect(o);
  return r ? std::move(*r) : nullptr;
}

// A whole write at the metadata level: lease, one chunk of `size`, complete.
Result<client::FileStatus> PutMeta(client::Client& c, const std::string& path, uint64_t size, bool overwrite) {
  DFS_ASSIGN_OR_RETURN(auto lease, c.BeginWrite(path, {.overwrite = overwrite, .replication = 1}));
  DFS_ASSIGN_OR_RETURN(auto placed, c.AllocateChunk(lease, 0));
  return c.CompleteWrite(lease, {{placed.chunk_id, placed.version, size, 7}}, size, 7);
}

class LeaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.Start());
    a_ = Connect(cluster_.master_address());
    b_ = Connect(cluster_.master_address());
    ASSERT_TRUE(a_ && b_);
  }
  // Metadata-level writes: no bytes move, so the replica check is off here
  // (the data path tests exercise it).
  MiniCluster cluster_{{.nodes = 1, .master_args = {"--lease-time", "2s", "--unsafe-unverified-writes"}}};
  std::unique_ptr<client::Client> a_, b_;
};

TEST_F(LeaseTest, SecondWriterIsBusyUntilTheFirstCompletes) {
  auto lease = a_->BeginWrite("/f", {.replication = 1});
  ASSERT_TRUE(lease) << lease.error().ToString();
  auto second = b_->BeginWrite("/f", {.overwrite = true, .replication = 1});
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), Code::kBusy);
  EXPECT_NE(second.error().message().find("/f"), std::string::npos) << second.error().message();
  ASSERT_TRUE(a_->CompleteWrite(*lease, {}, 0, 0));
  auto again = b_->BeginWrite("/f", {.replication = 1});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Code::kAlreadyExists);
  EXPECT_TRUE(b_->BeginWrite("/f", {.overwrite = true, .replication = 1}));
}

TEST_F(LeaseTest, ReadersSeeTheLastCompletedVersionUntilTheNewOneCommits) {
  auto v1 = PutMeta(*a_, "/doc", 100, false);
  ASSERT_TRUE(v1) << v1.error().ToString();
  auto lease = a_->BeginWrite("/doc", {.overwrite = true, .replication = 1});
  ASSERT_TRUE(lease);
  auto placed = a_->AllocateChunk(*lease, 0);
  ASSERT_TRUE(placed);
  auto during = b_->Stat("/doc", true);
  ASSERT_TRUE(during);
  EXPECT_EQ(during->size, 100u);
  ASSERT_EQ(during->chunks.size(), 1u);
  EXPECT_EQ(during->chunks[0].id, v1->chunks[0].id);
  ASSERT_TRUE(a_->CompleteWrite(*lease, {{placed->chunk_id, placed->version, 250, 9}}, 250, 9));
  auto after = b_->Stat("/doc", true);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->size, 250u);
  EXPECT_EQ(after->chunks[0].id, placed->chunk_id);
  EXPECT_EQ(after->checksum, 9u);
}

TEST_F(LeaseTest, AnotherClientCannotUseMyLease) {
  auto lease = a_->BeginWrite("/mine", {.replication = 1});
  ASSERT_TRUE(lease);
  auto stolen = b_->CompleteWrite(*lease, {}, 0, 0);
  ASSERT_FALSE(stolen);
  EXPECT_EQ(stolen.error().code(), Code::kNotFound);
  EXPECT_FALSE(b_->Stat("/mine"));
}

TEST_F(LeaseTest, AbandonFreesThePathAtOnceAndLeavesNoFile) {
  auto lease = a_->BeginWrite("/gone", {.replication = 1});
  ASSERT_TRUE(lease);
  ASSERT_TRUE(a_->AllocateChunk(*lease, 0));
  ASSERT_TRUE(a_->AbandonWrite(*lease).ok());
  EXPECT_FALSE(a_->Stat("/gone"));
  EXPECT_TRUE(b_->BeginWrite("/gone", {.replication = 1}));
}

TEST_F(LeaseTest, AKilledWriterFreesThePathAfterTheLeaseTime) {
  // A writer streaming stdin (small chunks, so bytes reach the node at
  // once) holds the lease while it waits for more input; then it dies.
  PipedCli writer({"--master", cluster_.master_address(), "put", "-r", "1", "--chunk-size", "4K", "--frame-size", "4K",
                   "-", "/orphan"},
                  cluster_.root());
  ASSERT_TRUE(writer.Write(std::string(64 * 1024, 'x')));
  ASSERT_TRUE(WaitFor([&] { return VolumeBytes(cluster_.node_dir(0)) > 0; }, 30s))
      << "the writer stored nothing: " << writer.err();
  ::kill(writer.pid(), SIGKILL);
  auto busy = a_->BeginWrite("/orphan", {.replication = 1});
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code(), Code::kBusy);
  // Lease time 2 s (+ the 100 ms housekeeping tick).
  EXPECT_TRUE(WaitFor([&] { return a_->BeginWrite("/orphan", {.replication = 1}).has_value(); }, 6s));
  EXPECT_FALSE(a_->Stat("/orphan")) << "an abandoned write must leave no visible file";
  auto log = MiniCluster::ReadText(cluster_.root() + "/master.log");
  EXPECT_NE(log.find("lease on /orphan expired"), std::string::npos) << log;
}

TEST_F(LeaseTest, RenewKeepsALeaseAlive) {
  auto lease = a_->BeginWrite("/long", {.replication = 1});
  ASSERT_TRUE(lease);
  auto start = std::chrono::steady_clock::now();
  // Renew for three lease times; the path must stay ours throughout.
  while (std::chrono::steady_clock::now() - start < 6s) {
    auto expired = a_->RenewLeases({lease->id});
    ASSERT_TRUE(expired);
    ASSERT_TRUE(expired->empty());
    ASSERT_FALSE(b_->BeginWrite("/long", {.replication = 1}));
    WaitFor([] { return false; }, 500ms);  // renew twice a second
  }
  EXPECT_TRUE(a_->CompleteWrite(*lease, {}, 0, 0));
}

// One small write at the metadata level: the lease (a spare when the
// client holds one), chunk 0 as placed with it, complete.
Result<client::FileStatus> PutSmall(client::Client& c, const std::string& path, bool overwrite = false,
                                    bool* used_spare = nullptr) {
  DFS_ASSIGN_OR_RETURN(auto lease, c.BeginWrite(path, {.overwrite = overwrite, .replication = 1,
                                                       .allocate_first = true, .small = true}));
  if (used_spare != nullptr) *used_spare = lease.spare;
  if (!lease.first_chunk) return Status::Internal("no chunk 0 with the lease");
  const auto& placed = *lease.first_chunk;
  return c.CompleteWrite(lease, {{placed.chunk_id, placed.version, 10, 7}}, 10, 7);
}

TEST_F(LeaseTest, ARunOfSmallWritesGetsEachNextLeaseWithTheLastCompletion) {
  bool spare = true;
  ASSERT_TRUE(PutSmall(*a_, "/s1", false, &spare));
  EXPECT_FALSE(spare) << "a first small write cannot have a spare";
  ASSERT_TRUE(PutSmall(*a_, "/s2", false, &spare));
  EXPECT_FALSE(spare) << "the second asks for one; it does not have one yet";
  for (int i = 3; i <= 6; ++i) {
    const std::string path = "/s" + std::to_string(i);
    auto st = PutSmall(*a_, path, false, &spare);
    ASSERT_TRUE(st) << st.error().ToString();
    EXPECT_TRUE(spare) << path;
    auto seen = b_->Stat(path, true);
    ASSERT_TRUE(seen) << path;
    EXPECT_EQ(seen->size, 10u);
    ASSERT_EQ(seen->chunks.size(), 1u);
  }
  // Any other write ends the run: no spare is asked for.
  ASSERT_TRUE(PutMeta(*a_, "/big", 100, false));
  ASSERT_TRUE(PutSmall(*a_, "/s7", false, &spare));
  EXPECT_FALSE(spare);
}

// A spare names its file only at completion, so the checks CreateFile makes
// happen there: an existing file needs overwrite, a path another writer
// holds is busy, and a failed completion frees the spare's chunk.
TEST_F(LeaseTest, ASpareIsCheckedForItsPathWhenItCompletes) {
  ASSERT_TRUE(PutSmall(*a_, "/t1"));
  ASSERT_TRUE(PutSmall(*a_, "/t2"));
  bool spare = false;
  auto exists = PutSmall(*a_, "/t1", false, &spare);
  EXPECT_TRUE(spare);
  ASSERT_FALSE(exists);
  EXPECT_EQ(exists.error().code(), Code::kAlreadyExists) << exists.error().ToString();
  auto before = b_->Stat("/t1", true);
  ASSERT_TRUE(before);

  // The run goes on (plain leases again until a completion brings a spare).
  ASSERT_TRUE(PutSmall(*a_, "/t3"));
  auto held = b_->BeginWrite("/t4", {.replication = 1});
  ASSERT_TRUE(held);
  auto busy = PutSmall(*a_, "/t4", false, &spare);
  EXPECT_TRUE(spare);
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code(), Code::kBusy);
  EXPECT_NE(busy.error().message().find("/t4"), std::string::npos) << busy.error().message();
  ASSERT_TRUE(b_->CompleteWrite(*held, {}, 0, 0));

  ASSERT_TRUE(PutSmall(*a_, "/t5"));
  auto replaced = PutSmall(*a_, "/t1", /*overwrite=*/true, &spare);
  EXPECT_TRUE(spare);
  ASSERT_TRUE(replaced) << replaced.error().ToString();
  auto after = b_->Stat("/t1", true);
  ASSERT_TRUE(after);
  EXPECT_NE(after->chunks[0].id, before->chunks[0].id);
}

// A spare's chunk 0 was placed before the write began: when its pipeline
// fails, the chunk is placed again on the same (still nameless) lease, as
// for any lease, and the file completes with the new chunk.
TEST_F(LeaseTest, ASparesChunkIsPlacedAgainWhenItsPipelineFails) {
  ASSERT_TRUE(PutSmall(*a_, "/v1"));
  ASSERT_TRUE(PutSmall(*a_, "/v2"));
  auto lease = a_->BeginWrite("/v3", {.replication = 1, .allocate_first = true, .small = true});
  ASSERT_TRUE(lease);
  ASSERT_TRUE(lease->spare);
  ASSERT_TRUE(lease->first_chunk);
  auto again = a_->AllocateChunk(*lease, 0);
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_NE(again->chunk_id, lease->first_chunk->chunk_id);
  ASSERT_TRUE(a_->CompleteWrite(*lease, {{again->chunk_id, again->version, 10, 7}}, 10, 7));
  auto st = b_->Stat("/v3", true);
  ASSERT_TRUE(st);
  ASSERT_EQ(st->chunks.size(), 1u);
  EXPECT_EQ(st->chunks[0].id, again->chunk_id);
  // Another client cannot complete (or name) my spare.
  ASSERT_TRUE(PutSmall(*a_, "/v4"));
  auto mine = a_->BeginWrite("/v5", {.replication = 1, .allocate_first = true, .small = true});
  ASSERT_TRUE(mine && mine->spare);
  auto stolen = b_->CompleteWrite(*mine, {{mine->first_chunk->chunk_id, mine->first_chunk->version, 10, 7}}, 10, 7);
  ASSERT_FALSE(stolen);
  EXPECT_EQ(stolen.error().code(), Code::kNotFound);
  EXPECT_FALSE(b_->Stat("/v5"));
}

// What a completion names is checked: a spare needs a path, and a lease
// on one path cannot complete another.
TEST_F(LeaseTest, ACompletionNamingTheWrongPathIsRefused) {
  ASSERT_TRUE(PutSmall(*a_, "/w1"));
  ASSERT_TRUE(PutSmall(*a_, "/w2"));
  auto spare = a_->BeginWrite("/w3", {.replication = 1, .allocate_first = true, .small = true});
  ASSERT_TRUE(spare && spare->spare);
  spare->path.clear();
  const auto& c = *spare->first_chunk;
  auto nameless = a_->CompleteWrite(*spare, {{c.chunk_id, c.version, 10, 7}}, 10, 7);
  ASSERT_FALSE(nameless);
  EXPECT_EQ(nameless.error().code(), Code::kInvalidArgument) << nameless.error().ToString();

  auto lease = a_->BeginWrite("/mine-only", {.replication = 1, .allocate_first = true});
  ASSERT_TRUE(lease && !lease->spare);
  lease->spare = true;  // so the completion names a path
  lease->path = "/someone-elses";
  const auto& d = *lease->first_chunk;
  auto other = a_->CompleteWrite(*lease, {{d.chunk_id, d.version, 10, 7}}, 10, 7);
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code(), Code::kInvalidArgument);
  EXPECT_NE(other.error().message().find("/mine-only"), std::string::npos) << other.error().message();
  EXPECT_FALSE(b_->Stat("/someone-elses"));
  EXPECT_FALSE(b_->Stat("/mine-only"));
}

// A spare is never renewed: the client uses it within half its lease time
// (2 s here), after that it asks for a lease of its own.
TEST_F(LeaseTest, AStaleSpareIsNotUsed) {
  ASSERT_TRUE(PutSmall(*a_, "/u1"));
  ASSERT_TRUE(PutSmall(*a_, "/u2"));
  WaitFor([] { return false; }, 1200ms);
  bool spare = true;
  ASSERT_TRUE(PutSmall(*a_, "/u3", false, &spare));
  EXPECT_FALSE(spare);
}

TEST_F(LeaseTest, TooFewLiveNodesIsAClearError) {
  auto lease = a_->BeginWrite("/r3", {.replication = 3});
  ASSERT_TRUE(lease);
  auto placed = a_->AllocateChunk(*lease, 0);
  ASSERT_FALSE(placed);
  EXPECT_EQ(placed.error().code(), Code::kUnavailable);
  EXPECT_EQ(placed.error().message(), "replication 3 needs 3 live nodes, 1 alive");
}

// A write in flight when the master restarts: the new master knows no
// lease, so its writer cannot complete on it; the path is free for another
// writer, and the first writer's later chunks and completion are refused
// with a clear error. Nothing of the first write becomes visible, and the
// file the second writer completed stays whole.
TEST_F(LeaseTest, AWriteAcrossAMasterRestartIsNeverCompletedTwice) {
  PipedCli writer({"--master", cluster_.master_address(), "put", "-f", "-r", "1", "--chunk-size", "4K", "--frame-size",
                   "4K", "-", "/w"},
                  cluster_.root());
  ASSERT_TRUE(writer.Write(std::string(64 * 1024, 'x')));
  ASSERT_TRUE(WaitFor([&] { return VolumeBytes(cluster_.node_dir(0)) > 0; }, 30s))
      << "the writer stored nothing: " << writer.err();
  cluster_.KillMaster();
  ASSERT_TRUE(cluster_.StartMaster());
  ASSERT_TRUE(cluster_.WaitForAliveNodes(1, 10s));
  // Another writer takes the path the restarted master sees free.
  auto second = cluster_.Cli({"put", "-r", "1", "-", "/w"}, 60s, "the second writer's bytes");
  ASSERT_EQ(second.exit_code, 0) << second.err;
  // The first goes on and finishes its input: refused, never installed.
  IgnoreError(writer.Write(std::string(64 * 1024, 'y')) ? Status::OK() : Status::IOError("the writer left early"));
  const auto code = writer.Finish(60s);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 1) << writer.err();
  EXPECT_NE(writer.err().find("/w"), std::string::npos) << writer.err();
  EXPECT_EQ(writer.err().find('\n'), writer.err().size() - 1) << "one line: " << writer.err();
  EXPECT_EQ(cluster_.Cli({"cat", "/w"}).out, "the second writer's bytes");
}

}  // namespace
}  // namespace dfs::test
