#include "master/journal.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "common/fault_env.h"
#include "master/journal_format.h"
#include "tests/support/process.h"
#include "tests/unit/file_test_util.h"

namespace dfs::master {
namespace {

namespace fs = std::filesystem;
namespace fmtj = journal_format;
using Records = std::vector<std::string>;

using test::ReadBytes;
using test::WriteBytes;
std::string TestDir() { return test::TestDir("dfs-journal"); }

// Distinct records of varied sizes, some empty.
std::string Rec(size_t i) {
  return "record-" + std::to_string(i) + std::string(i % 7 == 0 ? 0 : i % 300, static_cast<char>('a' + i % 26));
}

std::unique_ptr<JournalWriter> OpenWriter(const std::string& dir, uint64_t generation = 0,
                                          JournalWriter::Options options = {}) {
  options.dir = dir;
  options.generation = generation;
  auto w = JournalWriter::Open(std::move(options));
  EXPECT_TRUE(w.has_value()) << w.status().ToString();
  return w ? std::move(*w) : nullptr;
}

struct Replayed {
  std::vector<std::string> records;
  ReplayStats stats;
};

Result<Replayed> Replay(const std::string& path, const ReplayOptions& options = {}) {
  Replayed out;
  auto r = ReplayJournal(
      path,
      [&](std::string_view rec) {
        out.records.emplace_back(rec);
        return Status::OK();
      },
      options);
  if (!r) return r.error();
  out.stats = *r;
  return out;
}

// Offset of record `index` in a journal holding `records`.
size_t OffsetOf(const std::vector<std::string>& records, size_t index) {
  size_t offset = fmtj::kFileHeaderSize;
  for (size_t i = 0; i < index; ++i) offset += fmtj::kRecordHeaderSize + records[i].size();
  return offset;
}

// Writes `records` to DIR/journal.0 synchronously and returns its path.
std::string WriteJournal(const std::string& dir, const std::vector<std::string>& records) {
  auto w = OpenWriter(dir);
  for (const auto& r : records) EXPECT_TRUE(w->AppendAndSync(r).ok());
  EXPECT_TRUE(w->Stop().ok());
  return JournalPath(dir, 0);
}

// Holds the writer thread inside a callback until Open() is called, so
// everything appended meanwhile is queued behind it (batching without sleeps).
class Gate {
 public:
  std::function<void(Status)> Callback() {
    return [this](Status s) {
      EXPECT_TRUE(s.ok()) << s.ToString();
      entered_.set_value();
      open_future_.wait();
    };
  }
  // Returns once the writer thread is held (its batch is already synced).
  void WaitEntered() { entered_future_.wait(); }
  void Open() { open_.set_value(); }

 private:
  std::promise<void> entered_;
  std::future<void> entered_future_ = entered_.get_future();
  std::promise<void> open_;
  std::shared_future<void> open_future_ = open_.get_future().share();
};

TEST(JournalWriter, RoundTripsManyRecords) {
  std::string dir = TestDir();
  std::vector<std::string> records;
  for (size_t i = 0; i < 5000; ++i) records.push_back(Rec(i));
  records.push_back(std::string(1 << 20, 'x'));  // one big record
  records.push_back("");
  auto w = OpenWriter(dir, 3);
  std::atomic<size_t> ok{0};
  for (const auto& r : records) {
    w->Append(r, [&ok](Status s) {
      if (s.ok()) ++ok;
    });
  }
  ASSERT_TRUE(w->Stop().ok());
  EXPECT_EQ(ok.load(), records.size());
  JournalStats stats = w->stats();
  EXPECT_EQ(stats.records, records.size());
  EXPECT_EQ(stats.bytes + fmtj::kFileHeaderSize, fs::file_size(JournalPath(dir, 3)));
  EXPECT_GE(stats.syncs, 1u);

  auto replayed = Replay(JournalPath(dir, 3));
  ASSERT_TRUE(replayed) << replayed.error().ToString();
  EXPECT_EQ(replayed->records, records);
  EXPECT_TRUE(replayed->stats.has_header);
  EXPECT_EQ(replayed->stats.generation, 3u);
  EXPECT_FALSE(replayed->stats.torn_tail);
  EXPECT_EQ(replayed->stats.valid_bytes, fs::file_size(JournalPath(dir, 3)));
}

TEST(JournalWriter, GroupCommitBatchesConcurrentAppendsAndKeepsOrder) {
  std::string dir = TestDir();
  auto w = OpenWriter(dir);
  Gate gate;
  w->Append("first", gate.Callback());
  // Its batch is synced and the writer held before anything else is queued:
  // on a loaded machine the writer may otherwise wake only after every append.
  gate.WaitEntered();

  constexpr size_t kThreads = 8;
  constexpr size_t kPerThread = 250;
  std::mutex mu;  // makes append order = sequence order, so callback order can be checked
  size_t next = 0;
  std::vector<size_t> completed;
  std::vector<Status> failures;
  std::vector<std::thread> threads;
  for (size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (size_t i = 0; i < kPerThread; ++i) {
        std::lock_guard lock(mu);
        size_t seq = next++;
        w->Append(Rec(seq), [&completed, &failures, &mu, seq](Status s) {
          std::lock_guard l(mu);
          completed.push_back(seq);
          if (!s.ok()) failures.push_back(s);
        });
      }
    });
  }
  for (auto& t : threads) t.join();
  gate.Open();
  ASSERT_TRUE(w->Stop().ok());

  const size_t n = kThreads * kPerThread;
  EXPECT_TRUE(failures.empty());
  ASSERT_EQ(completed.size(), n);
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(completed[i], i) << "callbacks out of order";
  JournalStats stats = w->stats();
  EXPECT_EQ(stats.records, n + 1);
  // "first" alone, then everything queued behind the held callback in one
  // write and one sync.
  EXPECT_EQ(stats.syncs, 2u);
  EXPECT_LT(stats.syncs, stats.records);

  auto replayed = Replay(JournalPath(dir, 0));
  ASSERT_TRUE(replayed) << replayed.error().ToString();
  ASSERT_EQ(replayed->records.size(), n + 1);
  EXPECT_EQ(replayed->records[0], "first");
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(replayed->records[i + 1], Rec(i));
}

TEST(JournalWriter, ConcurrentSynchronousAppendsAllSucceed) {
  std::string dir = TestDir();
  auto w = OpenWriter(dir);
  std::vector<std::thread> threads;
  std::atomic<size_t> ok{0};
  for (size_t t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = 0; i < 20; ++i) {
        if (w->AppendAndSync(Rec(t * 1000 + i)).ok()) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(w->Stop().ok());
  EXPECT_EQ(ok.load(), 320u);
  EXPECT_LE(w->stats().syncs, 320u);
  auto replayed = Replay(JournalPath(dir, 0));
  ASSERT_TRUE(replayed);
  EXPECT_EQ(replayed->records.size(), 320u);
}

TEST(JournalWriter, LargeBacklogIsSplitAtMaxBatchBytes) {
  std::string dir = TestDir();
  JournalWriter::Options options;
  options.max_batch_bytes = 1000;
  auto w = OpenWriter(dir, 0, options);
  Gate gate;
  w->Append("first", gate.Callback());
  gate.WaitEntered();
  for (size_t i = 0; i < 100; ++i) w->Append(std::string(100, 'r'), nullptr);
  gate.Open();
  ASSERT_TRUE(w->Stop().ok());
  // 100 records of 108 framed bytes, at most 1000 (+ one record) per batch.
  EXPECT_GE(w->stats().syncs, 1u + 100u / 10u);
  EXPECT_LE(w->stats().max_batch_records, 10u);
  auto replayed = Replay(JournalPath(dir, 0));
  ASSERT_TRUE(replayed);
  EXPECT_EQ(replayed->records.size(), 101u);
}

TEST(JournalWriter, OversizedRecordFailsAlone) {
  std::string dir = TestDir();
  auto w = OpenWriter(dir);
  std::vector<Status> results(3);
  w->Append("before", [&](Status s) { results[0] = s; });
  w->Append(std::string(fmtj::kMaxRecordSize + 1, 'x'), [&](Status s) { results[1] = s; });
  w->Append("after", [&](Status s) { results[2] = s; });
  ASSERT_TRUE(w->Stop().ok());
  EXPECT_TRUE(results[0].ok());
  EXPECT_EQ(results[1].code(), Code::kInvalidArgument);
  EXPECT_TRUE(results[2].ok());
  auto replayed = Replay(JournalPath(dir, 0));
  ASSERT_TRUE(replayed);
  EXPECT_EQ(replayed->records, (std::vector<std::string>{"before", "after"}));
}

TEST(JournalWriter, AppendAfterStopIsUnavailable) {
  std::string dir = TestDir();
  auto w = OpenWriter(dir);
  ASSERT_TRUE(w->Stop().ok());
  EXPECT_TRUE(w->Stop().ok());  // idempotent
  EXPECT_EQ(w->AppendAndSync("late").code(), Code::kUnavailable);
  EXPECT_EQ(w->RotateAndWait(1).code(), Code::kUnavailable);
}

TEST(JournalWriter, FailedSyncFailsThatAppendAndEveryLaterOne) {
  std::string dir = TestDir();
  FaultEnv env(Env::Default());
  JournalWriter::Options options;
  options.env = &env;
  options.prepare_bytes = 0;  // every sync is a batch's
  auto w = OpenWriter(dir, 0, options);
  env.FailSyncsAfter(1);
  Gate gate;
  w->Append("a", gate.Callback());  // sync 1: fine
  gate.WaitEntered();
  std::vector<Status> batch(10);
  for (size_t i = 0; i < batch.size(); ++i) w->Append(Rec(i), [&batch, i](Status s) { batch[i] = s; });
  gate.Open();
  Status later = w->AppendAndSync("later");
  EXPECT_EQ(later.code(), Code::kIOError) << later.ToString();
  for (const Status& s : batch) EXPECT_EQ(s.code(), Code::kIOError) << s.ToString();
  EXPECT_NE(batch[0].message().find("injected"), std::string::npos) << batch[0].message();
  EXPECT_EQ(w->AppendAndSync("much later").code(), Code::kIOError);
  EXPECT_EQ(w->RotateAndWait(1).code(), Code::kIOError);
  EXPECT_EQ(w->Stop().code(), Code::kIOError);
  EXPECT_EQ(w->stats().records, 1u);

  // What reached the disk is still a readable journal: "a" first, then the
  // failed batch, written before its sync "failed" ("later" may have joined it).
  auto replayed = Replay(JournalPath(dir, 0));
  ASSERT_TRUE(replayed) << replayed.error().ToString();
  Records expected = {"a"};
  for (size_t i = 0; i < batch.size(); ++i) expected.push_back(Rec(i));
  if (replayed->records.size() == expected.size() + 1) expected.push_back("later");
  EXPECT_EQ(replayed->records, expected);
}

// A power cut during a batch: its write torn and nothing unsynced kept.
// Replay cuts the torn tail and keeps every acknowledged record.
TEST(JournalWriter, TornWriteAndLostCacheKeepEveryAcknowledgedRecord) {
  std::string dir = TestDir();
  FaultEnv env(Env::Default());
  JournalWriter::Options options;
  options.env = &env;
  options.prepare_bytes = 0;
  auto w = OpenWriter(dir, 0, options);
  Records acked;
  for (size_t i = 0; i < 5; ++i) {
    ASSERT_TRUE(w->AppendAndSync(Rec(i)).ok());
    acked.push_back(Rec(i));
  }
  env.TearWriteAfter(0);
  EXPECT_EQ(w->AppendAndSync(std::string(5000, 'x')).code(), Code::kIOError);
  EXPECT_EQ(w->Stop().code(), Code::kIOError);
  // The torn half is on disk: replay cuts it.
  const std::string path = JournalPath(dir, 0);
  const std::string before = ReadBytes(path);
  auto replayed = Replay(path);
  ASSERT_TRUE(replayed) << replayed.error().ToString();
  EXPECT_EQ(replayed->records, acked);
  EXPECT_TRUE(replayed->stats.torn_tail);
  // The same moment with the page cache lost too: only what was synced.
  WriteBytes(path, before);
  ASSERT_TRUE(env.DropUnsyncedData().ok());
  replayed = Replay(path);
  ASSERT_TRUE(replayed) << replayed.error().ToString();
  EXPECT_EQ(replayed->records, acked);
  EXPECT_FALSE(replayed->stats.torn_tail);
}

TEST(JournalWriter, RotateSwitchesFilesInOrder) {
  std::string dir = TestDir();
  auto w = OpenWriter(dir);
  ASSERT_TRUE(w->AppendAndSync("a").ok());
  w->Append("b", nullptr);
  ASSERT_TRUE(w->RotateAndWait(1).ok());
  EXPECT_EQ(w->generation(), 1u);
  ASSERT_TRUE(w->AppendAndSync("c").ok());
  EXPECT_EQ(w->RotateAndWait(1).code(), Code::kInvalidArgument);
  ASSERT_TRUE(w->Stop().ok());
  EXPECT_FALSE(fs::exists(JournalPath(dir, 1) + ".tmp"));

  auto j0 = Replay(JournalPath(dir, 0));
  auto j1 = Replay(JournalPath(dir, 1));
  ASSERT_TRUE(j0 && j1);
  EXPECT_EQ(j0->records, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(j1->records, (std::vector<std::string>{"c"}));
  EXPECT_EQ(j1->stats.generation, 1u);
}

TEST(JournalWriter, ReopensAnExistingJournalForAppend) {
  std::string dir = TestDir();
  WriteJournal(dir, {"a", "b"});
  auto w = OpenWriter(dir);
  ASSERT_TRUE(w->AppendAndSync("c").ok());
  ASSERT_TRUE(w->Stop().ok());
  auto replayed = Replay(JournalPath(dir, 0));
  ASSERT_TRUE(replayed);
  EXPECT_EQ(replayed->records, (std::vector<std::string>{"a", "b", "c"}));

  // The header must match the generation asked for.
  fs::rename(JournalPath(dir, 0), JournalPath(dir, 4));
  auto wrong = JournalWriter::Open({.dir = dir, .generation = 4});
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), Code::kCorruption);
}

TEST(JournalWriterDeathTest, InjectedCrashLeavesTheRecordDurable) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // The threadsafe style re-runs this body in a fresh process: hand it the
  // parent's folder rather than making a new one.
  const char* inherited = std::getenv("DFS_JOURNAL_DEATH_TEST_DIR");
  std::string dir = inherited != nullptr ? inherited : TestDir();
  ::setenv("DFS_JOURNAL_DEATH_TEST_DIR", dir.c_str(), 1);
  EXPECT_EXIT(
      {
        auto w = JournalWriter::Open({.dir = dir, .generation = 0, .fault_crash_after_records = 3});
        if (!w) ::_exit(1);
        for (size_t i = 0; i < 10; ++i) IgnoreError((*w)->AppendAndSync(Rec(i)));
        ::_exit(0);
      },
      ::testing::ExitedWithCode(kFaultCrashExitCode), "");
  ::unsetenv("DFS_JOURNAL_DEATH_TEST_DIR");
  auto replayed = Replay(JournalPath(dir, 0));
  ASSERT_TRUE(replayed) << replayed.error().ToString();
  EXPECT_EQ(replayed->records, (std::vector<std::string>{Rec(0), Rec(1), Rec(2)}));
}

// ---------------------------------------------------------------- replay

TEST(JournalReplay, TornTailAtEveryCutPointIsCutAndAppendingResumes) {
  std::string dir = TestDir();
  std::vector<std::string> records = {"one", "two", "three", "four", "the last record, torn by a crash"};
  std::string full = ReadBytes(WriteJournal(dir, records));
  const size_t boundary = OffsetOf(records, 4);
  ASSERT_EQ(full.size(), OffsetOf(records, 5));
  std::vector<std::string> kept(records.begin(), records.begin() + 4);

  std::string case_dir = dir + "/cut";
  for (size_t cut = boundary; cut <= full.size(); ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    fs::remove_all(case_dir);
    fs::create_directories(case_dir);
    std::string path = JournalPath(case_dir, 0);
    WriteBytes(path, std::string_view(full).substr(0, cut));
    auto replayed = Replay(path);
    ASSERT_TRUE(replayed) << replayed.error().ToString();
    if (cut == full.size()) {
      EXPECT_EQ(replayed->records, records);
      EXPECT_FALSE(replayed->stats.torn_tail);
      continue;
    }
    EXPECT_EQ(replayed->records, kept);
    EXPECT_EQ(replayed->stats.torn_tail, cut > boundary);
    EXPECT_EQ(replayed->stats.dropped_bytes, cut - boundary);
    EXPECT_EQ(replayed->stats.valid_bytes, boundary);
    EXPECT_EQ(fs::file_size(path), boundary);

    auto w = OpenWriter(case_dir);
    ASSERT_TRUE(w->AppendAndSync("after restart").ok());
    ASSERT_TRUE(w->Stop().ok());
    auto again = Replay(path);
    ASSERT_TRUE(again) << again.error().ToString();
    std::vector<std::string> expected = kept;
    expected.push_back("after restart");
    EXPECT_EQ(again->records, expected);
    EXPECT_FALSE(again->stats.torn_tail);
  }
}

TEST(JournalReplay, TornHeaderIsEmptiedAndRestarted) {
  std::string dir = TestDir();
  std::string full = ReadBytes(WriteJournal(dir, {}));
  ASSERT_EQ(full.size(), fmtj::kFileHeaderSize);
  for (size_t cut = 0; cut < fmtj::kFileHeaderSize; ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    std::string path = JournalPath(dir, 0);
    WriteBytes(path, full.substr(0, cut));
    auto replayed = Replay(path);
    ASSERT_TRUE(replayed) << replayed.error().ToString();
    EXPECT_FALSE(replayed->stats.has_header);
    EXPECT_EQ(replayed->stats.torn_tail, cut > 0);
    EXPECT_EQ(fs::file_size(path), 0u);
    auto w = OpenWriter(dir);
    ASSERT_TRUE(w->AppendAndSync("x").ok());
    ASSERT_TRUE(w->Stop().ok());
    auto again = Replay(path);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->records, std::vector<std::string>{"x"});
  }
}

TEST(JournalReplay, EmptyAndHeaderOnlyFilesHoldNoRecords) {
  std::string dir = TestDir();
  std::string path = dir + "/empty";
  WriteBytes(path, "");
  auto empty = Replay(path);
  ASSERT_TRUE(empty) << empty.error().ToString();
  EXPECT_TRUE(empty->records.empty());
  EXPECT_FALSE(empty->stats.has_header);
  EXPECT_FALSE(empty->stats.torn_tail);

  auto w = OpenWriter(dir, 9);
  ASSERT_TRUE(w->Stop().ok());
  auto header_only = Replay(JournalPath(dir, 9));
  ASSERT_TRUE(header_only) << header_only.error().ToString();
  EXPECT_TRUE(header_only->records.empty());
  EXPECT_TRUE(header_only->stats.has_header);
  EXPECT_EQ(header_only->stats.generation, 9u);
  EXPECT_FALSE(header_only->stats.torn_tail);
  EXPECT_EQ(header_only->stats.valid_bytes, fmtj::kFileHeaderSize);

  auto wrong = Replay(JournalPath(dir, 9), {.expected_generation = 8});
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), Code::kCorruption);
}

TEST(JournalReplay, BadHeaderIsCorruption) {
  std::string dir = TestDir();
  std::string full = ReadBytes(WriteJournal(dir, {"a"}));
  std::string path = dir + "/j";
  for (size_t i : {0u, 7u, 8u, 15u, 16u, 19u}) {
    SCOPED_TRACE("byte " + std::to_string(i));
    std::string bad = full;
    bad[i] ^= 0x01;
    WriteBytes(path, bad);
    auto r = Replay(path);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), Code::kCorruption);
    EXPECT_NE(r.error().message().find("offset 0"), std::string::npos) << r.error().message();
    EXPECT_EQ(fs::file_size(path), full.size());
  }
  WriteBytes(path, "NOTAJRNL");
  EXPECT_EQ(Replay(path).error().code(), Code::kCorruption);
  WriteBytes(path, "DFSX");
  EXPECT_EQ(Replay(path).error().code(), Code::kCorruption);
}

TEST(JournalReplay, DamagedLastRecordWithNothingAfterIsATornTail) {
  std::string dir = TestDir();
  std::vector<std::string> records = {"one", "two", "three"};
  std::string full = ReadBytes(WriteJournal(dir, records));
  std::string path = dir + "/j";
  std::vector<std::string> kept = {"one", "two"};
  const size_t last = OffsetOf(records, 2);
  // Every byte of the last record, flipped: a bad CRC, or a length that
  // now runs past the end or stops short of it.
  for (size_t i = last; i < full.size(); ++i) {
    SCOPED_TRACE("byte " + std::to_string(i));
    std::string bad = full;
    bad[i] ^= 0x20;
    WriteBytes(path, bad);
    auto r = Replay(path);
    ASSERT_TRUE(r) << r.error().ToString();
    EXPECT_EQ(r->records, kept);
    EXPECT_TRUE(r->stats.torn_tail);
    EXPECT_EQ(fs::file_size(path), last);
  }
  // Zeros or garbage where the page cache lost the tail after the size grew.
  std::mt19937 rng(42);
  std::string garbage(4096, '\0');
  for (char& c : garbage) c = static_cast<char>(rng());
  for (const std::string& tail : {std::string(4096, '\0'), garbage}) {
    WriteBytes(path, full + tail);
    auto r = Replay(path);
    ASSERT_TRUE(r) << r.error().ToString();
    EXPECT_EQ(r->records, records);
    EXPECT_TRUE(r->stats.torn_tail);
    EXPECT_EQ(r->stats.dropped_bytes, tail.size());
    EXPECT_EQ(fs::file_size(path), full.size());
  }
}

class MidFileCorruption : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TestDir();
    for (size_t i = 0; i < 10; ++i) records_.push_back(Rec(i + 1));
    full_ = ReadBytes(WriteJournal(dir_, records_));
    path_ = dir_ + "/damaged";
    offset_ = OffsetOf(records_, 3);
  }

  // Replays the damaged copy and checks the refusal names file and offset,
  // applies only what came before, and leaves the file alone.
  void ExpectRefused(const std::string& bytes) {
    WriteBytes(path_, bytes);
    auto r = Replay(path_);
    ASSERT_FALSE(r) << "replayed " << r->records.size() << " records";
    EXPECT_EQ(r.error().code(), Code::kCorruption);
    const std::string& m = r.error().message();
    EXPECT_NE(m.find(path_), std::string::npos) << m;
    EXPECT_NE(m.find("offset " + std::to_string(offset_)), std::string::npos) << m;
    EXPECT_EQ(fs::file_size(path_), bytes.size());
  }

  std::string dir_;
  std::vector<std::string> records_;
  std::string full_;
  std::string path_;
  size_t offset_ = 0;
};

TEST_F(MidFileCorruption, FlippedPayloadByte) {
  std::string bad = full_;
  bad[offset_ + fmtj::kRecordHeaderSize + 2] ^= 0x01;
  ExpectRefused(bad);
}

TEST_F(MidFileCorruption, EveryFlippedByteOfAMiddleRecord) {
  for (size_t i = offset_; i < OffsetOf(records_, 4); ++i) {
    SCOPED_TRACE("byte " + std::to_string(i));
    std::string bad = full_;
    bad[i] ^= 0x40;
    ExpectRefused(bad);
  }
}

TEST_F(MidFileCorruption, LengthOfFourGiBIsRefusedWithoutAllocating) {
  std::string bad = full_;
  fmtj::EncodeFixed32(bad.data() + offset_, 0xFFFFFFFFu);
  ExpectRefused(bad);
}

TEST_F(MidFileCorruption, LengthRunningPastTheEndIsNotMistakenForATornTail) {
  std::string bad = full_;
  fmtj::EncodeFixed32(bad.data() + offset_, 32u << 20);
  ExpectRefused(bad);
}

TEST_F(MidFileCorruption, ZeroedPageInTheMiddle) {
  std::string bad = full_;
  for (size_t i = offset_; i < OffsetOf(records_, 5); ++i) bad[i] = '\0';
  ExpectRefused(bad);
}

TEST_F(MidFileCorruption, ApplyErrorStopsReplayWithTheOffset) {
  size_t seen = 0;
  auto r = ReplayJournal(JournalPath(dir_, 0), [&](std::string_view) {
    return ++seen == 4 ? Status::InvalidArgument("bad op") : Status::OK();
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  EXPECT_NE(r.error().message().find("offset " + std::to_string(offset_)), std::string::npos)
      << r.error().message();
}

TEST(JournalReplay, DamagedTailOfAFollowedJournalIsCorruption) {
  std::string dir = TestDir();
  std::vector<std::string> records = {"one", "two"};
  std::string full = ReadBytes(WriteJournal(dir, records));
  std::string path = dir + "/j";
  WriteBytes(path, full.substr(0, full.size() - 1));
  auto r = Replay(path, {.allow_torn_tail = false});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kCorruption);
  EXPECT_EQ(fs::file_size(path), full.size() - 1);
}

TEST(JournalFormat, ZeroedHeaderIsNotAValidRecord) {
  std::string zeros(fmtj::kRecordHeaderSize, '\0');
  EXPECT_EQ(fmtj::CheckRecordAt(zeros, 0).check, fmtj::RecordCheck::kBadCrc);
  char header[fmtj::kRecordHeaderSize];
  fmtj::EncodeRecordHeader(header, "");
  EXPECT_EQ(fmtj::CheckRecordAt(std::string_view(header, sizeof header), 0).check, fmtj::RecordCheck::kOk);
}

// Prepared space: while idle the writer keeps zeros written and synced past
// its last record, so a batch's fdatasync carries its data alone. Records go
// over the zeros, a crash leaves them to replay (which cuts them as a tail
// with no record in it), and rotation and Stop give them back.
TEST(JournalWriter, IdleWriterPreparesZerosThatRecordsOverwrite) {
  std::string dir = TestDir();
  JournalWriter::Options o;
  o.prepare_bytes = 64 << 10;
  auto w = OpenWriter(dir, 0, o);
  const std::string path = JournalPath(dir, 0);
  Records records = {Rec(1), Rec(2)};
  ASSERT_TRUE(w->AppendAndSync(records[0]).ok());
  const size_t end1 = OffsetOf(records, 1);
  // The writer prepares after the batch, on its own thread: wait for it.
  ASSERT_TRUE(test::WaitFor([&] { return w->stats().prepared > 0; }, std::chrono::seconds(10)));
  EXPECT_GE(fs::file_size(path), end1 + (64 << 10) - 1);
  std::string bytes = ReadBytes(path);
  EXPECT_EQ(bytes.find_first_not_of('\0', end1), std::string::npos) << "only zeros past the record";
  ASSERT_TRUE(w->AppendAndSync(records[1]).ok());
  // A crash now: a copy of the file as it is holds both records, then zeros.
  const std::string crashed = dir + "/crashed";
  WriteBytes(crashed, ReadBytes(path));
  ASSERT_GT(fs::file_size(crashed), OffsetOf(records, 2));
  auto r = Replay(crashed);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->records, records);
  EXPECT_EQ(fs::file_size(crashed), OffsetOf(records, 2));
  // Rotation cuts the old file at its last record: a journal that a newer one
  // follows must end there.
  ASSERT_TRUE(w->RotateAndWait(1).ok());
  EXPECT_EQ(fs::file_size(path), OffsetOf(records, 2));
  ReplayOptions strict;
  strict.allow_torn_tail = false;
  auto old = Replay(path, strict);
  ASSERT_TRUE(old) << old.error().ToString();
  EXPECT_EQ(old->records, records);
  // And Stop cuts the new one: reopened, it takes appends at its last record.
  ASSERT_TRUE(w->AppendAndSync("three").ok());
  ASSERT_TRUE(test::WaitFor([&] { return fs::file_size(JournalPath(dir, 1)) > OffsetOf({"three"}, 1); },
                            std::chrono::seconds(10)));
  ASSERT_TRUE(w->Stop().ok());
  EXPECT_EQ(fs::file_size(JournalPath(dir, 1)), OffsetOf({"three"}, 1));
  auto again = OpenWriter(dir, 1, o);
  ASSERT_TRUE(again->AppendAndSync("four").ok());
  ASSERT_TRUE(again->Stop().ok());
  auto back = Replay(JournalPath(dir, 1), strict);
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->records, (Records{"three", "four"}));
}

}  // namespace
}  // namespace dfs::master
