#include "master/checkpoint.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "common/fault_env.h"
#include "master/journal_format.h"
#include "tests/unit/file_test_util.h"

namespace dfs::master {
namespace {

namespace fs = std::filesystem;
namespace fmtj = journal_format;
using Records = std::vector<std::string>;

using test::ReadBytes;
using test::WriteBytes;
std::string TestDir() { return test::TestDir("dfs-checkpoint"); }

// Replaces `to` with a copy of `from`: the disk as a crash at that moment
// would leave it (every step before the copy has synced what it wrote).
void CopyDir(const std::string& from, const std::string& to) {
  fs::remove_all(to);
  fs::copy(from, to, fs::copy_options::recursive);
}

std::function<Status(RecordSink&)> Produce(const Records& records) {
  return [records](RecordSink& sink) {
    for (const auto& r : records) DFS_RETURN_IF_ERROR(sink.Add(r));
    return Status::OK();
  };
}

Result<Records> Read(const std::string& dir, uint64_t* generation = nullptr) {
  Records out;
  auto g = ReadCheckpoint(dir, [&](std::string_view r) {
    out.emplace_back(r);
    return Status::OK();
  });
  if (!g) return g.error();
  if (generation != nullptr) *generation = *g;
  return out;
}

Records Concat(Records a, const Records& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Records Numbered(const std::string& prefix, size_t n) {
  Records out;
  for (size_t i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

// ---------------------------------------------------------------- checkpoint

TEST(Checkpoint, FailedFsyncOrWriteKeepsTheOldCheckpoint) {
  std::string dir = TestDir();
  ASSERT_TRUE(WriteCheckpoint(dir, 1, Produce({"old"})).ok());
  FaultEnv env(Env::Default());
  env.FailSyncsAfter(0);
  Status s = WriteCheckpoint(dir, 2, Produce(Numbered("new-", 100)), &env);
  EXPECT_EQ(s.code(), Code::kIOError) << s.ToString();
  env.Disarm();
  env.FailWritesAfter(0, ENOSPC);
  s = WriteCheckpoint(dir, 3, Produce(Numbered("new-", 100)), &env);
  EXPECT_EQ(s.code(), Code::kNoSpace) << s.ToString();
  EXPECT_FALSE(fs::exists(CheckpointPath(dir) + ".tmp"));
  uint64_t generation = 0;
  auto read = Read(dir, &generation);
  ASSERT_TRUE(read) << read.error().ToString();
  EXPECT_EQ(generation, 1u);
  EXPECT_EQ(*read, Records{"old"});
}


TEST(Checkpoint, RoundTrip) {
  std::string dir = TestDir();
  Records records = Numbered("inode-", 3000);
  records.push_back("");
  records.push_back(std::string(3 << 20, 'z'));  // spans several I/O chunks
  ASSERT_TRUE(WriteCheckpoint(dir, 7, Produce(records)).ok());
  EXPECT_FALSE(fs::exists(CheckpointPath(dir) + ".tmp"));
  uint64_t generation = 0;
  auto read = Read(dir, &generation);
  ASSERT_TRUE(read) << read.error().ToString();
  EXPECT_EQ(generation, 7u);
  EXPECT_EQ(*read, records);

  ASSERT_TRUE(WriteCheckpoint(dir, 8, Produce({})).ok());
  read = Read(dir, &generation);
  ASSERT_TRUE(read) << read.error().ToString();
  EXPECT_EQ(generation, 8u);
  EXPECT_TRUE(read->empty());
}

TEST(Checkpoint, MissingIsNotFound) {
  std::string dir = TestDir();
  EXPECT_EQ(Read(dir).error().code(), Code::kNotFound);
}

class DamagedCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TestDir();
    ASSERT_TRUE(WriteCheckpoint(dir_, 3, Produce({"alpha", "beta", "", "gamma"})).ok());
    full_ = ReadBytes(CheckpointPath(dir_));
  }

  void ExpectRefused(std::string_view bytes) {
    WriteBytes(CheckpointPath(dir_), bytes);
    auto r = Read(dir_);
    ASSERT_FALSE(r) << "read " << r->size() << " records";
    EXPECT_EQ(r.error().code(), Code::kCorruption) << r.error().ToString();
    EXPECT_NE(r.error().message().find(CheckpointPath(dir_)), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find("at offset "), std::string::npos) << r.error().message();
  }

  std::string dir_;
  std::string full_;
};

TEST_F(DamagedCheckpoint, TruncatedAtEveryLengthIsRefused) {
  for (size_t cut = 0; cut < full_.size(); ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    ExpectRefused(std::string_view(full_).substr(0, cut));
  }
}

TEST_F(DamagedCheckpoint, EveryFlippedByteIsRefused) {
  for (size_t i = 0; i < full_.size(); ++i) {
    SCOPED_TRACE("byte " + std::to_string(i));
    std::string bad = full_;
    bad[i] ^= 0x04;
    ExpectRefused(bad);
  }
}

TEST_F(DamagedCheckpoint, BytesAfterTheTrailerAreRefused) {
  ExpectRefused(full_ + "x");
  ExpectRefused(full_ + full_);
}

TEST_F(DamagedCheckpoint, HugeRecordLengthIsRefusedWithoutAllocating) {
  std::string bad = full_;
  fmtj::EncodeFixed32(bad.data() + fmtj::kFileHeaderSize, 0xFFFFFFF0u);
  ExpectRefused(bad);
  fmtj::EncodeFixed32(bad.data() + fmtj::kFileHeaderSize, fmtj::kMaxRecordSize);
  ExpectRefused(bad);
}

TEST(Checkpoint, FailedProducerKeepsTheOldCheckpoint) {
  std::string dir = TestDir();
  ASSERT_TRUE(WriteCheckpoint(dir, 1, Produce({"old"})).ok());
  Status s = WriteCheckpoint(dir, 2, [](RecordSink& sink) {
    DFS_RETURN_IF_ERROR(sink.Add("new"));
    return Status::Internal("snapshot failed");
  });
  EXPECT_EQ(s.code(), Code::kInternal);
  s = WriteCheckpoint(dir, 2, [](RecordSink& sink) { return sink.Add(std::string(fmtj::kMaxRecordSize + 1, 'x')); });
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_FALSE(fs::exists(CheckpointPath(dir) + ".tmp"));
  uint64_t generation = 0;
  auto read = Read(dir, &generation);
  ASSERT_TRUE(read);
  EXPECT_EQ(generation, 1u);
  EXPECT_EQ(*read, Records{"old"});
}

TEST(Checkpoint, ApplyErrorIsReturnedWithTheOffset) {
  std::string dir = TestDir();
  ASSERT_TRUE(WriteCheckpoint(dir, 1, Produce({"a", "b"})).ok());
  auto r = ReadCheckpoint(dir, [](std::string_view rec) {
    return rec == "b" ? Status::InvalidArgument("cannot apply b") : Status::OK();
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  EXPECT_NE(r.error().message().find("offset " + std::to_string(fmtj::kFileHeaderSize + 9)), std::string::npos)
      << r.error().message();
}

// ---------------------------------------------------------------- recovery

struct Recovered {
  Records checkpoint;
  Records journal;
  RecoveryStats stats;
  Records all() const { return Concat(checkpoint, journal); }
};

Result<Recovered> Recover(const std::string& dir) {
  Recovered out;
  auto stats = RecoverMasterState(
      dir,
      [&](std::string_view r) {
        out.checkpoint.emplace_back(r);
        return Status::OK();
      },
      [&](std::string_view r) {
        out.journal.emplace_back(r);
        return Status::OK();
      });
  if (!stats) return stats.error();
  out.stats = *stats;
  return out;
}

// Recovers `dir`, checks the state is `expected`, then carries on as a
// restarted master would (append one record at the generation recovery
// names) and checks a second recovery sees it after the rest.
void ExpectRecoversTo(const std::string& dir, const Records& expected) {
  auto first = Recover(dir);
  ASSERT_TRUE(first) << first.error().ToString();
  EXPECT_EQ(first->all(), expected);
  for (const auto& entry : fs::directory_iterator(dir)) {
    EXPECT_FALSE(entry.path().string().ends_with(".tmp")) << entry.path();
  }
  auto w = JournalWriter::Open({.dir = dir, .generation = first->stats.journal_generation});
  ASSERT_TRUE(w) << w.error().ToString();
  ASSERT_TRUE((*w)->AppendAndSync("after restart").ok());
  ASSERT_TRUE((*w)->Stop().ok());
  auto second = Recover(dir);
  ASSERT_TRUE(second) << second.error().ToString();
  EXPECT_EQ(second->all(), Concat(expected, {"after restart"}));
}

TEST(Recovery, FreshDirectoryStartsAtGenerationZero) {
  std::string dir = TestDir();
  auto r = Recover(dir);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_FALSE(r->stats.checkpoint_found);
  EXPECT_EQ(r->stats.journal_generation, 0u);
  EXPECT_TRUE(r->all().empty());
  ExpectRecoversTo(dir, {});
}

// The rotation protocol of checkpoint.h, run for real twice (0 -> 1 -> 2),
// with the folder copied at every point a crash could stop it. Every
// acknowledged record must come back, in order, from every copy.
TEST(Recovery, CrashAtEveryStepOfRotationLosesNothing) {
  std::string dir = TestDir();
  std::string live = dir + "/live";
  std::string crash = dir + "/crash";
  std::string scratch = dir + "/scratch";
  fs::create_directories(live);
  auto w = JournalWriter::Open({.dir = live, .generation = 0});
  ASSERT_TRUE(w) << w.error().ToString();
  JournalWriter& writer = **w;
  Records state;  // everything acknowledged so far
  auto append = [&](const Records& records) {
    for (const auto& r : records) {
      ASSERT_TRUE(writer.AppendAndSync(r).ok());
      state.push_back(r);
    }
  };

  for (uint64_t round = 0; round < 2; ++round) {
    const uint64_t next = round + 1;
    SCOPED_TRACE("rotation to generation " + std::to_string(next));
    append(Numbered("before-" + std::to_string(next) + "-", 5));

    {
      SCOPED_TRACE("crash while journal.N+1 is being created");
      CopyDir(live, crash);
      WriteBytes(JournalPath(crash, next) + ".tmp", std::string(fmtj::kJournalMagic.substr(0, 5)));
      ExpectRecoversTo(crash, state);
    }

    // Step 1: rotate, and snapshot in the same turn.
    const Records snapshot = state;
    ASSERT_TRUE(writer.RotateAndWait(next).ok());
    {
      SCOPED_TRACE("crash right after the rotation");
      CopyDir(live, crash);
      ExpectRecoversTo(crash, state);
    }

    // Step 2: mutations keep coming, into journal.N+1.
    append(Numbered("after-" + std::to_string(next) + "-", 4));
    {
      SCOPED_TRACE("crash before the checkpoint is written");
      CopyDir(live, crash);
      ExpectRecoversTo(crash, state);
    }

    // Step 3a, interrupted: the temp checkpoint at every length, including
    // complete but not yet renamed.
    fs::remove_all(scratch);
    fs::create_directories(scratch);
    ASSERT_TRUE(WriteCheckpoint(scratch, next, Produce(snapshot)).ok());
    std::string tmp_image = ReadBytes(CheckpointPath(scratch));
    for (size_t cut : {size_t{0}, size_t{7}, fmtj::kFileHeaderSize + 3, tmp_image.size() / 2,
                       tmp_image.size() - 1, tmp_image.size()}) {
      SCOPED_TRACE("crash while checkpoint.tmp has " + std::to_string(cut) + " bytes");
      CopyDir(live, crash);
      WriteBytes(CheckpointPath(crash) + ".tmp", std::string_view(tmp_image).substr(0, cut));
      ExpectRecoversTo(crash, state);
    }

    // Step 3a: the checkpoint is in place; the journals it covers are not yet gone.
    ASSERT_TRUE(WriteCheckpoint(live, next, Produce(snapshot)).ok());
    {
      SCOPED_TRACE("crash before the old journals are removed");
      CopyDir(live, crash);
      auto r = Recover(crash);
      ASSERT_TRUE(r) << r.error().ToString();
      EXPECT_EQ(r->checkpoint, snapshot);
      EXPECT_EQ(r->stats.checkpoint_generation, next);
      EXPECT_GE(r->stats.files_removed, 1u);
      EXPECT_FALSE(fs::exists(JournalPath(crash, round)));
      CopyDir(live, crash);
      ExpectRecoversTo(crash, state);
    }

    // Step 3b.
    auto removed = RemoveJournalsBefore(live, next);
    ASSERT_TRUE(removed) << removed.error().ToString();
    EXPECT_EQ(*removed, 1u);
    {
      SCOPED_TRACE("crash after the rotation completed");
      CopyDir(live, crash);
      auto r = Recover(crash);
      ASSERT_TRUE(r) << r.error().ToString();
      EXPECT_EQ(r->checkpoint, snapshot);
      EXPECT_EQ(r->stats.journals_replayed, 1u);
      EXPECT_EQ(r->stats.journal_generation, next);
      ExpectRecoversTo(crash, state);
    }
  }
  ASSERT_TRUE(writer.Stop().ok());
  ExpectRecoversTo(live, state);
}

TEST(Recovery, InstallCheckpointDoesBothStepsAndNeedsTheRotation) {
  std::string dir = TestDir();
  auto w = JournalWriter::Open({.dir = dir, .generation = 0});
  ASSERT_TRUE(w);
  ASSERT_TRUE((*w)->AppendAndSync("a").ok());
  EXPECT_EQ(InstallCheckpoint(dir, 1, Produce({"a"})).code(), Code::kInvalidArgument);
  EXPECT_FALSE(fs::exists(CheckpointPath(dir)));
  ASSERT_TRUE((*w)->RotateAndWait(1).ok());
  ASSERT_TRUE((*w)->AppendAndSync("b").ok());
  ASSERT_TRUE(InstallCheckpoint(dir, 1, Produce({"a"})).ok());
  ASSERT_TRUE((*w)->Stop().ok());
  EXPECT_FALSE(fs::exists(JournalPath(dir, 0)));
  ExpectRecoversTo(dir, {"a", "b"});
}

TEST(Recovery, SeveralRotationsWithoutACheckpointReplayInOrder) {
  std::string dir = TestDir();
  auto w = JournalWriter::Open({.dir = dir, .generation = 0});
  ASSERT_TRUE(w);
  ASSERT_TRUE((*w)->AppendAndSync("a").ok());
  ASSERT_TRUE((*w)->RotateAndWait(1).ok());
  ASSERT_TRUE((*w)->AppendAndSync("b").ok());
  ASSERT_TRUE((*w)->RotateAndWait(2).ok());
  ASSERT_TRUE((*w)->AppendAndSync("c").ok());
  ASSERT_TRUE((*w)->Stop().ok());
  auto r = Recover(dir);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->stats.journals_replayed, 3u);
  EXPECT_EQ(r->stats.journal_generation, 2u);
  ExpectRecoversTo(dir, {"a", "b", "c"});
}

class BrokenFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TestDir();
    auto w = JournalWriter::Open({.dir = dir_, .generation = 0});
    ASSERT_TRUE(w);
    ASSERT_TRUE((*w)->AppendAndSync("a").ok());
    ASSERT_TRUE((*w)->AppendAndSync("b").ok());
    ASSERT_TRUE((*w)->RotateAndWait(1).ok());
    ASSERT_TRUE((*w)->AppendAndSync("c").ok());
    ASSERT_TRUE((*w)->Stop().ok());
  }

  void ExpectRefused(std::string_view needle) {
    auto r = Recover(dir_);
    ASSERT_FALSE(r) << "recovered " << r->all().size() << " records";
    EXPECT_EQ(r.error().code(), Code::kCorruption) << r.error().ToString();
    EXPECT_NE(r.error().message().find(needle), std::string::npos) << r.error().message();
  }

  std::string dir_;
};

TEST_F(BrokenFolder, TornTailIsCutOnlyOnTheNewestJournal) {
  std::string j0 = JournalPath(dir_, 0);
  std::string j1 = JournalPath(dir_, 1);
  std::string image0 = ReadBytes(j0);
  std::string image1 = ReadBytes(j1);
  WriteBytes(j0, image0.substr(0, image0.size() - 1));
  ExpectRefused(j0);
  EXPECT_EQ(fs::file_size(j0), image0.size() - 1);

  WriteBytes(j0, image0);
  WriteBytes(j1, image1.substr(0, image1.size() - 1));
  auto r = Recover(dir_);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_TRUE(r->stats.torn_tail);
  EXPECT_EQ(r->stats.dropped_bytes, fmtj::kRecordHeaderSize);
  EXPECT_EQ(r->all(), (Records{"a", "b"}));
}

TEST_F(BrokenFolder, JournalWithoutItsCheckpointIsRefused) {
  fs::remove(JournalPath(dir_, 0));
  ExpectRefused("no checkpoint");
}

TEST_F(BrokenFolder, GapInGenerationsIsRefused) {
  fs::rename(JournalPath(dir_, 1), JournalPath(dir_, 2));
  ExpectRefused(JournalPath(dir_, 1));
}

TEST_F(BrokenFolder, CheckpointWithoutItsJournalIsRefused) {
  ASSERT_TRUE(WriteCheckpoint(dir_, 1, Produce({"a", "b"})).ok());
  fs::remove(JournalPath(dir_, 1));
  ExpectRefused(JournalPath(dir_, 1));
  EXPECT_TRUE(fs::exists(JournalPath(dir_, 0)));  // nothing deleted on refusal
}

TEST_F(BrokenFolder, HeaderDisagreeingWithTheNameIsRefused) {
  fs::remove(JournalPath(dir_, 1));
  fs::rename(JournalPath(dir_, 0), JournalPath(dir_, 1));
  ASSERT_TRUE(WriteCheckpoint(dir_, 1, Produce({})).ok());
  ExpectRefused("header says generation 0");
}

TEST_F(BrokenFolder, DamagedCheckpointStopsRecoveryAndDeletesNothing) {
  ASSERT_TRUE(WriteCheckpoint(dir_, 1, Produce({"a", "b"})).ok());
  std::string image = ReadBytes(CheckpointPath(dir_));
  WriteBytes(CheckpointPath(dir_), image.substr(0, image.size() - 3));
  ExpectRefused(CheckpointPath(dir_));
  EXPECT_TRUE(fs::exists(JournalPath(dir_, 0)));
  EXPECT_TRUE(fs::exists(JournalPath(dir_, 1)));
}

TEST_F(BrokenFolder, CorruptRecordMidJournalStopsRecovery) {
  std::string j0 = JournalPath(dir_, 0);
  std::string image = ReadBytes(j0);
  image[fmtj::kFileHeaderSize + fmtj::kRecordHeaderSize] ^= 0x01;  // payload of "a"
  WriteBytes(j0, image);
  ExpectRefused("offset " + std::to_string(fmtj::kFileHeaderSize));
}

}  // namespace
}  // namespace dfs::master
