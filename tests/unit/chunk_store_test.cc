// The node's chunk store: round trips, ranged reads, corruption found on
// read, start-up scan, deletion and a full disk; small chunks in volumes
// (group commit, restart, tombstones, torn tails, damaged records, roll-over,
// dead volumes), the sync worker's two lanes, and written chunks dropped
// from the page cache.
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>

#include "common/checksum.h"
#include "common/fault_env.h"
#include "common/units.h"
#include "filenode/chunk_store.h"
#include "filenode/sync_worker.h"
#include "filenode/volume_format.h"
#include "tests/support/process.h"
#include "tests/unit/file_test_util.h"

namespace dfs::filenode {
namespace {

std::string TempDir(const std::string& name) {
  std::string dir = ::testing::TempDir() + "dfs-chunk-store-" + name + "-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::vector<std::byte> RandomBytes(size_t n, uint32_t seed) {
  std::vector<std::byte> out(n);
  std::mt19937 rng(seed);
  for (auto& b : out) b = static_cast<std::byte>(rng());
  return out;
}

// Writes `data` as chunk `key` in frames of `frame` bytes.
Result<ChunkMeta> Put(ChunkStore& store, ChunkKey key, std::span<const std::byte> data, size_t frame = 1 << 20,
                      bool presize = true) {
  DFS_ASSIGN_OR_RETURN(auto w, store.Create(key, presize ? data.size() : 0));
  for (size_t off = 0; off < data.size(); off += frame) {
    DFS_RETURN_IF_ERROR(w->Append(off, data.subspan(off, std::min(frame, data.size() - off))));
  }
  return w->Finish();
}

std::vector<std::string> FilesUnder(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void FlipByte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

// Writes `data` as a buffered chunk, bound for a volume.
Result<ChunkMeta> PutSmall(ChunkStore& store, ChunkKey key, std::span<const std::byte> data,
                           size_t frame = 256 * 1024 + 3) {
  DFS_ASSIGN_OR_RETURN(auto w, store.Create(key, data.size(), /*buffer_limit=*/data.size()));
  if (!w->buffered()) return Status::Internal(ChunkName(key) + " was not buffered");
  for (size_t off = 0; off < data.size(); off += frame) {
    DFS_RETURN_IF_ERROR(w->Append(off, data.subspan(off, std::min(frame, data.size() - off))));
  }
  return w->Finish();
}

// The whole chunk, or its error.
Result<std::vector<std::byte>> ReadAll(const ChunkStore& store, ChunkKey key) {
  DFS_ASSIGN_OR_RETURN(ChunkMeta meta, store.Lookup(key));
  std::vector<std::byte> out(meta.size);
  DFS_RETURN_IF_ERROR(store.Read(key, 0, out));
  return out;
}

class ChunkStoreTest : public ::testing::Test {
 protected:
  // Most tests check the volumes' bytes exactly: no zeros prepared past
  // their ends (the tests of prepared space turn it on).
  static ChunkStoreOptions Exact() {
    ChunkStoreOptions o;
    o.volume_prepare = 0;
    return o;
  }
  void SetUp() override {
    dir_ = TempDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    store_ = std::make_unique<ChunkStore>(dir_, Exact());
    ASSERT_TRUE(store_->Scan());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string ChunkPath(ChunkKey k) const {
    return dir_ + "/chunks/" + ShardName(k.id) + "/" + ChunkStem(k) + ".chunk";
  }
  // A new store on the same folder, as after a restart.
  void Reopen(ChunkStoreOptions options = Exact()) {
    store_.reset();
    store_ = std::make_unique<ChunkStore>(dir_, options);
    auto found = store_->Scan();
    ASSERT_TRUE(found) << found.error().ToString();
  }
  ChunkStore::Place Where(ChunkKey k) const {
    auto p = store_->Locate(k);
    EXPECT_TRUE(p) << p.error().ToString();
    return p ? *p : ChunkStore::Place{};
  }
  // The chunk holds exactly `data`.
  void ExpectHolds(ChunkKey k, std::span<const std::byte> data) const {
    SCOPED_TRACE(ChunkName(k));
    auto back = ReadAll(*store_, k);
    ASSERT_TRUE(back) << back.error().ToString();
    EXPECT_TRUE(std::equal(back->begin(), back->end(), data.begin(), data.end()));
    auto meta = store_->Lookup(k);
    ASSERT_TRUE(meta);
    EXPECT_EQ(meta->crc32c, Crc32c(data));
  }
  bool Exists(const std::string& path) const { return std::filesystem::exists(path); }

  std::string dir_;
  // Before the store, so it outlives it; the store uses it once a test
  // reopens with options.env = &fault_.
  FaultEnv fault_{Env::Default()};
  std::unique_ptr<ChunkStore> store_;
};

TEST_F(ChunkStoreTest, RoundTripsEverySizeAroundABlock) {
  const uint64_t sizes[] = {0, 1, kChunkBlockSize - 1, kChunkBlockSize, kChunkBlockSize + 1, 5 * kMiB + 12345};
  uint64_t total = 0;
  for (uint64_t size : sizes) {
    SCOPED_TRACE(size);
    ChunkKey key{1000 + size, 7};
    auto data = RandomBytes(size, static_cast<uint32_t>(size));
    auto meta = Put(*store_, key, data, 256 * 1024 + 3);  // frames that straddle blocks
    ASSERT_TRUE(meta) << meta.error().ToString();
    EXPECT_EQ(meta->size, size);
    EXPECT_EQ(meta->crc32c, Crc32c(std::span<const std::byte>(data)));
    std::vector<std::byte> back(size);
    ASSERT_TRUE(store_->Read(key, 0, back).ok());
    EXPECT_EQ(back, data);
    total += size;
  }
  EXPECT_EQ(store_->chunk_count(), std::size(sizes));
  EXPECT_EQ(store_->used_bytes(), total);
}

TEST_F(ChunkStoreTest, RangedReadsAtOddOffsets) {
  ChunkKey key{42, 1};
  auto data = RandomBytes(3 * kMiB + 777, 42);
  ASSERT_TRUE(Put(*store_, key, data, 1 << 20, /*presize=*/false));
  std::mt19937 rng(1);
  std::vector<std::pair<uint64_t, uint64_t>> ranges = {
      {0, 1}, {1, 1}, {kChunkBlockSize - 1, 2}, {kChunkBlockSize, kChunkBlockSize}, {12345, 3 * kChunkBlockSize},
      {data.size() - 1, 1}, {data.size(), 0}, {data.size() - 777, 777}, {0, data.size()},
      {kChunkBlockSize, 2 * kChunkBlockSize}};
  for (int i = 0; i < 50; ++i) {
    uint64_t off = rng() % data.size();
    ranges.emplace_back(off, rng() % (data.size() - off + 1));
  }
  for (auto [off, len] : ranges) {
    SCOPED_TRACE(testing::Message() << off << "+" << len);
    std::vector<std::byte> out(len);
    uint32_t crc = 1;
    ASSERT_TRUE(store_->Read(key, off, out, &crc).ok());
    EXPECT_TRUE(std::equal(out.begin(), out.end(), data.begin() + static_cast<ptrdiff_t>(off)));
    // The sum a node sends with the bytes, from the blocks' own when whole.
    EXPECT_EQ(crc, Crc32c(std::span<const std::byte>(out)));
  }
  std::vector<std::byte> past(2);
  EXPECT_EQ(store_->Read(key, data.size() - 1, past).code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->Read(ChunkKey{42, 2}, 0, past).code(), Code::kNotFound);
}

TEST_F(ChunkStoreTest, FlippedByteIsCorruptionInThatBlockOnly) {
  ChunkKey key{7, 3};
  auto data = RandomBytes(4 * kChunkBlockSize + 100, 7);
  ASSERT_TRUE(Put(*store_, key, data));
  const uint64_t bad = 2 * kChunkBlockSize + 500;
  FlipByte(ChunkPath(key), bad);

  std::vector<std::byte> out(kChunkBlockSize);
  ASSERT_TRUE(store_->Read(key, 0, out).ok());
  ASSERT_TRUE(store_->Read(key, kChunkBlockSize, out).ok());
  ASSERT_TRUE(store_->Read(key, 3 * kChunkBlockSize, out).ok());
  Status s = store_->Read(key, 2 * kChunkBlockSize, out);
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_NE(s.message().find("chunk 7 v3"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(std::to_string(2 * kChunkBlockSize)), std::string::npos) << s.message();
  // A small read inside the bad block, and a large one across it.
  std::vector<std::byte> one(1);
  EXPECT_EQ(store_->Read(key, bad + 3, one).code(), Code::kCorruption);
  std::vector<std::byte> all(data.size());
  EXPECT_EQ(store_->Read(key, 0, all).code(), Code::kCorruption);

  EXPECT_TRUE(store_->MarkCorrupt(key));
  EXPECT_FALSE(store_->MarkCorrupt(key));  // reported once
  auto listed = store_->List();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_TRUE(listed[0].corrupt);
}

TEST_F(ChunkStoreTest, ScanDropsTempsAndChunksWithoutValidMeta) {
  auto data = RandomBytes(200000, 9);
  ASSERT_TRUE(Put(*store_, {1, 1}, data));
  ASSERT_TRUE(Put(*store_, {2, 1}, data));
  ASSERT_TRUE(Put(*store_, {3, 1}, data));
  ASSERT_TRUE(Put(*store_, {4, 1}, data));
  ASSERT_TRUE(Put(*store_, {5, 1}, data));
  // A writer that never finished, as a crash leaves it.
  auto w = store_->Create({6, 1}, 1000);
  ASSERT_TRUE(w);
  ASSERT_TRUE((*w)->Append(0, std::span(data).first(100)).ok());
  std::string stem2 = dir_ + "/chunks/02/2_1", stem3 = dir_ + "/chunks/03/3_1";
  std::string stem4 = dir_ + "/chunks/04/4_1", stem5 = dir_ + "/chunks/05/5_1";
  std::filesystem::remove(stem2 + ".meta");                             // no .meta
  FlipByte(stem3 + ".meta", 10);                                        // damaged .meta
  std::filesystem::resize_file(stem4 + ".chunk", data.size() - 1);      // size mismatch
  std::filesystem::remove(stem5 + ".chunk");                            // orphan .meta
  std::ofstream(dir_ + "/chunks/07/7_1.meta.tmp") << "leftover";

  ChunkStore fresh(dir_);
  auto found = fresh.Scan();
  (*w)->Abort();  // the old store's writer; after the scan, as a dead process would
  ASSERT_TRUE(found) << found.error().ToString();
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].key, (ChunkKey{1, 1}));
  EXPECT_EQ((*found)[0].size, data.size());
  EXPECT_EQ((*found)[0].crc32c, Crc32c(std::span<const std::byte>(data)));
  EXPECT_EQ(FilesUnder(dir_ + "/chunks"), (std::vector<std::string>{"1_1.chunk", "1_1.meta"}));
  EXPECT_EQ(fresh.chunk_count(), 1u);
  EXPECT_EQ(fresh.used_bytes(), data.size());
}

TEST_F(ChunkStoreTest, DeleteRemovesFilesAndCounts) {
  auto data = RandomBytes(100000, 3);
  ASSERT_TRUE(Put(*store_, {9, 2}, data));
  ASSERT_TRUE(Put(*store_, {265, 2}, data));  // same shard as 9
  EXPECT_EQ(store_->chunk_count(), 2u);
  ASSERT_TRUE(store_->Delete({9, 2}).ok());
  EXPECT_EQ(store_->Delete({9, 2}).code(), Code::kNotFound);
  EXPECT_EQ(store_->chunk_count(), 1u);
  EXPECT_EQ(store_->used_bytes(), data.size());
  EXPECT_EQ(FilesUnder(dir_ + "/chunks"), (std::vector<std::string>{"265_2.chunk", "265_2.meta"}));
  std::vector<std::byte> out(10);
  EXPECT_EQ(store_->Read({9, 2}, 0, out).code(), Code::kNotFound);
}

TEST_F(ChunkStoreTest, DeletedFilesLeaveAtOnceAndAChunkWrittenAgainKeepsItsName) {
  const auto first = RandomBytes(4 * kMiB + 5, 11);
  const auto second = RandomBytes(3 * kMiB, 12);
  ASSERT_TRUE(Put(*store_, {5, 1}, first));
  ASSERT_TRUE(store_->Delete({5, 1}).ok());
  // The name is free before any unlink has run: the same chunk comes back
  // at once (a re-replication, say), and the trash's late unlink of the old
  // file must not take the new one.
  EXPECT_FALSE(Exists(ChunkPath({5, 1})));
  ASSERT_TRUE(Put(*store_, {5, 1}, second));
  // An aborted writer's reserved file goes the same way.
  {
    auto w = store_->Create({6, 1}, 8 * kMiB);
    ASSERT_TRUE(w);
    ASSERT_TRUE((*w)->Append(0, RandomBytes(kMiB, 13)).ok());
    (*w)->Abort();
  }
  store_->DrainTrash();
  EXPECT_TRUE(FilesUnder(dir_ + "/trash").empty());
  EXPECT_EQ(FilesUnder(dir_ + "/chunks"), (std::vector<std::string>{"5_1.chunk", "5_1.meta"}));
  ExpectHolds({5, 1}, second);
  // What a crash or a stop left in the trash goes after the next start.
  {
    std::ofstream(dir_ + "/trash/left-by-a-crash.chunk") << "old bytes";
  }
  Reopen();
  store_->DrainTrash();
  EXPECT_TRUE(FilesUnder(dir_ + "/trash").empty());
  ExpectHolds({5, 1}, second);
  // With the trash folder gone from under the store, a delete still deletes.
  std::filesystem::remove_all(dir_ + "/trash");
  ASSERT_TRUE(store_->Delete({5, 1}).ok());
  EXPECT_FALSE(Exists(ChunkPath({5, 1})));
}

TEST_F(ChunkStoreTest, WritesAreOrderedAbortedAndExclusive) {
  auto data = RandomBytes(1000, 5);
  auto w = store_->Create({11, 1}, 0);
  ASSERT_TRUE(w);
  EXPECT_EQ(store_->Create({11, 1}, 0).error().code(), Code::kBusy);
  ASSERT_TRUE((*w)->Append(0, std::span(data).first(500)).ok());
  EXPECT_EQ((*w)->Append(400, std::span(data).first(100)).code(), Code::kInvalidArgument);
  EXPECT_TRUE(FilesUnder(dir_ + "/chunks").empty());  // the bad append aborted it
  auto again = store_->Create({11, 1}, 0);
  ASSERT_TRUE(again);
  ASSERT_TRUE((*again)->Append(0, data).ok());
  EXPECT_EQ(store_->Lookup({11, 1}).error().code(), Code::kNotFound);  // invisible until finished
  (*again)->Abort();
  EXPECT_TRUE(FilesUnder(dir_ + "/chunks").empty());

  // A new copy of the same id and version replaces the old one.
  ASSERT_TRUE(Put(*store_, {12, 1}, data));
  auto data2 = RandomBytes(3000, 6);
  ASSERT_TRUE(Put(*store_, {12, 1}, data2));
  EXPECT_EQ(store_->used_bytes(), data2.size());
  std::vector<std::byte> out(data2.size());
  ASSERT_TRUE(store_->Read({12, 1}, 0, out).ok());
  EXPECT_EQ(out, data2);
}

TEST_F(ChunkStoreTest, NoSpaceWhenTheReservationDoesNotFit) {
  struct statvfs fs {};
  ASSERT_EQ(::statvfs(dir_.c_str(), &fs), 0);
  uint64_t too_big = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize + kGiB;
  auto w = store_->Create({13, 1}, too_big);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code(), Code::kNoSpace) << w.error().ToString();
  EXPECT_TRUE(FilesUnder(dir_ + "/chunks").empty());
}

// A disk that fills mid-chunk: a 2 MiB tmpfs. Needs permission to mount.
TEST_F(ChunkStoreTest, NoSpaceMidStreamLeavesNoPartialChunk) {
  std::string mnt = dir_ + "/small";
  std::filesystem::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=2m") != 0) {
    GTEST_SKIP() << "cannot mount a small tmpfs here: " << std::strerror(errno);
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount(path.c_str()); }
  } unmount{mnt};
  {
    ChunkStore small(mnt);
    ASSERT_TRUE(small.Scan());
    auto data = RandomBytes(4 * kMiB, 8);
    auto meta = Put(small, {14, 1}, data, 256 * 1024, /*presize=*/false);
    ASSERT_FALSE(meta);
    EXPECT_EQ(meta.error().code(), Code::kNoSpace) << meta.error().ToString();
    EXPECT_TRUE(FilesUnder(mnt + "/chunks").empty());
    EXPECT_EQ(small.chunk_count(), 0u);
    // Space is back for a chunk that fits, once the trash has freed the
    // failed chunk's blocks (it unlinks on a thread of its own).
    small.DrainTrash();
    auto again = Put(small, {15, 1}, std::span(data).first(kMiB));
    EXPECT_TRUE(again) << again.error().ToString();
  }
}

// ---- Small chunks in volumes ----

TEST_F(ChunkStoreTest, BufferedChunksRoundTripAndSurviveARestart) {
  const uint64_t sizes[] = {1, kChunkBlockSize - 1, kChunkBlockSize, kChunkBlockSize + 1, kMiB};
  uint64_t total = 0;
  for (uint64_t size : sizes) {
    SCOPED_TRACE(size);
    ChunkKey key{2000 + size, 3};
    auto data = RandomBytes(size, static_cast<uint32_t>(size));
    auto meta = PutSmall(*store_, key, data);
    ASSERT_TRUE(meta) << meta.error().ToString();
    EXPECT_EQ(meta->size, size);
    EXPECT_EQ(meta->crc32c, Crc32c(std::span<const std::byte>(data)));
    EXPECT_NE(Where(key).volume, 0u);
    ExpectHolds(key, data);
    // Ranged reads inside, across and at the end of blocks.
    for (auto [off, len] : std::vector<std::pair<uint64_t, uint64_t>>{
             {0, 1}, {size - 1, 1}, {size / 2, size - size / 2}, {size / 3, size / 3}, {0, size}}) {
      std::vector<std::byte> part(len);
      uint32_t crc = 1;
      ASSERT_TRUE(store_->Read(key, off, part, &crc).ok()) << off << "+" << len;
      EXPECT_TRUE(std::equal(part.begin(), part.end(), data.begin() + static_cast<ptrdiff_t>(off)));
      EXPECT_EQ(crc, Crc32c(std::span<const std::byte>(part))) << off << "+" << len;
    }
    total += size;
  }
  // No chunk files at all: every chunk is a record.
  for (const auto& name : FilesUnder(dir_ + "/chunks")) EXPECT_TRUE(name.ends_with(".vol")) << name;
  EXPECT_EQ(store_->chunk_count(), std::size(sizes));
  EXPECT_EQ(store_->used_bytes(), total);

  Reopen();
  EXPECT_EQ(store_->chunk_count(), std::size(sizes));
  EXPECT_EQ(store_->used_bytes(), total);
  for (uint64_t size : sizes) ExpectHolds(ChunkKey{2000 + size, 3}, RandomBytes(size, static_cast<uint32_t>(size)));
}

TEST_F(ChunkStoreTest, GroupCommitMakesABatchVisibleOnlyOnceDurable) {
  constexpr int kChunks = 64;
  std::vector<std::unique_ptr<ChunkWriter>> writers;
  std::vector<std::vector<std::byte>> datas;
  for (int i = 0; i < kChunks; ++i) {
    datas.push_back(RandomBytes(1 + static_cast<size_t>(i) * 1543, static_cast<uint32_t>(i)));
    auto w = store_->Create({static_cast<uint64_t>(100 + i), 1}, datas.back().size(), kMiB);
    ASSERT_TRUE(w) << w.error().ToString();
    ASSERT_TRUE((*w)->buffered());
    ASSERT_TRUE((*w)->Append(0, datas.back()).ok());
    writers.push_back(std::move(*w));
  }
  // Two file-backed writers ride along and finish on their own.
  auto big = RandomBytes(2 * kMiB, 77);
  auto file_writer = store_->Create({99, 1}, big.size(), kMiB);
  ASSERT_TRUE(file_writer);
  ASSERT_FALSE((*file_writer)->buffered());
  ASSERT_TRUE((*file_writer)->Append(0, big).ok());
  writers.push_back(std::move(*file_writer));

  for (int i = 0; i < kChunks; ++i) {
    EXPECT_EQ(store_->Lookup({static_cast<uint64_t>(100 + i), 1}).error().code(), Code::kNotFound);
  }
  const auto before = store_->volume_stats();
  std::vector<ChunkWriter*> ptrs;
  for (auto& w : writers) ptrs.push_back(w.get());
  auto results = ChunkWriter::FinishAll(ptrs);
  ASSERT_EQ(results.size(), writers.size());
  for (const auto& r : results) ASSERT_TRUE(r) << r.error().ToString();
  const auto after = store_->volume_stats();
  EXPECT_EQ(after.commits, before.commits + 1);  // one append, one fdatasync for all 64
  EXPECT_EQ(after.records, before.records + kChunks);
  for (int i = 0; i < kChunks; ++i) ExpectHolds({static_cast<uint64_t>(100 + i), 1}, datas[static_cast<size_t>(i)]);
  EXPECT_EQ(Where({99, 1}).volume, 0u);
  EXPECT_TRUE(Exists(ChunkPath({99, 1})));

  writers.clear();
  Reopen();
  EXPECT_EQ(store_->chunk_count(), kChunks + 1u);
  for (int i = 0; i < kChunks; ++i) ExpectHolds({static_cast<uint64_t>(100 + i), 1}, datas[static_cast<size_t>(i)]);
  ExpectHolds({99, 1}, big);
}

TEST_F(ChunkStoreTest, SyncWorkerFinishesBufferedChunksInBatchesAndFilesOnTheirOwn) {
  SyncWorker worker;
  ASSERT_TRUE(worker.Start().ok());
  constexpr uint64_t kSmall = 40;
  std::map<uint64_t, std::vector<std::byte>> sent;  // token (= chunk id) -> bytes
  auto submit = [&](uint64_t id, size_t size, uint64_t buffer_limit) {
    auto data = RandomBytes(size, static_cast<uint32_t>(id));
    auto w = store_->Create({id, 1}, size, buffer_limit);
    ASSERT_TRUE(w) << w.error().ToString();
    ASSERT_TRUE((*w)->Append(0, data).ok());
    sent[id] = std::move(data);
    worker.Submit(id, std::move(*w));
  };
  submit(1, 3 * kMiB, kMiB);  // a file: its fsync must not hold the small ones up
  for (uint64_t i = 0; i < kSmall; ++i) submit(10 + i, 1000 + i * 997, kMiB);
  submit(2, 2 * kMiB, 0);

  std::map<uint64_t, Result<ChunkMeta>> done;
  while (done.size() < sent.size()) {
    pollfd p{worker.fd(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 30000), 1) << "the sync worker went quiet with " << done.size() << " of "
                                       << sent.size() << " done";
    for (auto& d : worker.Drain()) done.emplace(d.token, std::move(d.result));
  }
  for (const auto& [id, r] : done) {
    ASSERT_TRUE(r) << id << ": " << r.error().ToString();
    EXPECT_EQ(r->size, sent[id].size());
    ExpectHolds({id, 1}, sent[id]);
    EXPECT_EQ(Where({id, 1}).volume == 0, id < 10) << id;
  }
  const auto stats = store_->volume_stats();
  EXPECT_EQ(stats.records, kSmall);
  EXPECT_GE(stats.commits, 1u);
  EXPECT_LE(stats.commits, kSmall);
}

TEST_F(ChunkStoreTest, DeletedVolumeChunksStayDeletedAndCanBeWrittenAgain) {
  auto a = RandomBytes(5000, 1), b = RandomBytes(70000, 2), c = RandomBytes(300, 3);
  ASSERT_TRUE(PutSmall(*store_, {1, 1}, a));
  ASSERT_TRUE(PutSmall(*store_, {2, 1}, b));
  ASSERT_TRUE(PutSmall(*store_, {3, 1}, c));
  ASSERT_TRUE(store_->Delete({2, 1}).ok());
  EXPECT_EQ(store_->Delete({2, 1}).code(), Code::kNotFound);
  std::vector<std::byte> out(10);
  EXPECT_EQ(store_->Read({2, 1}, 0, out).code(), Code::kNotFound);
  EXPECT_EQ(store_->chunk_count(), 2u);
  EXPECT_EQ(store_->used_bytes(), a.size() + c.size());

  Reopen();
  EXPECT_EQ(store_->Lookup({2, 1}).error().code(), Code::kNotFound);
  EXPECT_EQ(store_->chunk_count(), 2u);
  EXPECT_EQ(store_->used_bytes(), a.size() + c.size());
  ExpectHolds({1, 1}, a);
  ExpectHolds({3, 1}, c);

  // The same key again, after its delete: the new put is its last record.
  auto b2 = RandomBytes(1234, 22);
  ASSERT_TRUE(PutSmall(*store_, {2, 1}, b2));
  // And a delete + rewrite with no restart between.
  ASSERT_TRUE(store_->Delete({1, 1}).ok());
  auto a2 = RandomBytes(4321, 11);
  ASSERT_TRUE(PutSmall(*store_, {1, 1}, a2));
  Reopen();
  EXPECT_EQ(store_->chunk_count(), 3u);
  ExpectHolds({1, 1}, a2);
  ExpectHolds({2, 1}, b2);
  ExpectHolds({3, 1}, c);
}

TEST_F(ChunkStoreTest, NewCopiesReplaceOldOnesAcrossFilesAndVolumes) {
  auto v1 = RandomBytes(3000, 1), v2 = RandomBytes(5000, 2), v3 = RandomBytes(7000, 3), v4 = RandomBytes(9000, 4);
  const ChunkKey k{7, 7};
  // Volume over volume.
  ASSERT_TRUE(PutSmall(*store_, k, v1));
  ASSERT_TRUE(PutSmall(*store_, k, v2));
  ExpectHolds(k, v2);
  EXPECT_EQ(store_->used_bytes(), v2.size());
  Reopen();
  ExpectHolds(k, v2);
  // A file over the volume copy (a synced tombstone buries the old record).
  ASSERT_TRUE(Put(*store_, k, v3));
  EXPECT_EQ(Where(k).volume, 0u);
  ExpectHolds(k, v3);
  Reopen();
  EXPECT_EQ(Where(k).volume, 0u);
  ExpectHolds(k, v3);
  // A volume copy over the file: the files go.
  ASSERT_TRUE(PutSmall(*store_, k, v4));
  EXPECT_NE(Where(k).volume, 0u);
  EXPECT_FALSE(Exists(ChunkPath(k)));
  ExpectHolds(k, v4);
  EXPECT_EQ(store_->chunk_count(), 1u);
  EXPECT_EQ(store_->used_bytes(), v4.size());
  Reopen();
  ExpectHolds(k, v4);
  EXPECT_EQ(store_->chunk_count(), 1u);
}

TEST_F(ChunkStoreTest, VolumeCopyWinsOverAFileLeftByACrash) {
  // A crash between a volume commit and removing the file it replaced
  // leaves both; the volume record is the newer one.
  const ChunkKey k{8, 1};
  auto old_bytes = RandomBytes(4000, 1), new_bytes = RandomBytes(6000, 2);
  ASSERT_TRUE(Put(*store_, k, old_bytes));
  const std::string chunk = dfs::test::ReadBytes(ChunkPath(k));
  const std::string meta = dfs::test::ReadBytes(dir_ + "/chunks/08/8_1.meta");
  ASSERT_TRUE(PutSmall(*store_, k, new_bytes));
  dfs::test::WriteBytes(ChunkPath(k), chunk);
  dfs::test::WriteBytes(dir_ + "/chunks/08/8_1.meta", meta);
  Reopen();
  ExpectHolds(k, new_bytes);
  EXPECT_FALSE(Exists(ChunkPath(k)));
  EXPECT_EQ(store_->used_bytes(), new_bytes.size());
}

// Three chunks, one commit each; the last record is the one cut.
struct ThreeRecords {
  std::vector<std::byte> a, b, c;
  std::string volume;
  uint64_t c_offset = 0;
  std::string bytes;  // the whole volume
};

ThreeRecords WriteThree(ChunkStore& store) {
  ThreeRecords t{RandomBytes(1000, 1), RandomBytes(70000, 2), RandomBytes(5000, 3), {}, 0, {}};
  EXPECT_TRUE(PutSmall(store, {1, 1}, t.a));
  EXPECT_TRUE(PutSmall(store, {2, 1}, t.b));
  EXPECT_TRUE(PutSmall(store, {3, 1}, t.c));
  auto where = store.Locate({3, 1});
  EXPECT_TRUE(where);
  t.volume = store.VolumePath(where->volume);
  t.c_offset = where->offset;
  t.bytes = dfs::test::ReadBytes(t.volume);
  EXPECT_EQ(t.bytes.size(), t.c_offset + RecordHeaderSize(t.c.size()) + t.c.size());
  return t;
}

TEST_F(ChunkStoreTest, TornTailIsCutAndEverythingBeforeItKept) {
  ThreeRecords t = WriteThree(*store_);
  const uint64_t header = RecordHeaderSize(t.c.size());
  const uint64_t cuts[] = {t.c_offset + 1,          t.c_offset + 20,         t.c_offset + kRecordFixedSize,
                           t.c_offset + header - 1, t.c_offset + header + 1, t.bytes.size() - 1};
  for (uint64_t cut : cuts) {
    SCOPED_TRACE(cut);
    store_.reset();
    dfs::test::WriteBytes(t.volume, std::string_view(t.bytes).substr(0, cut));
    Reopen();
    ExpectHolds({1, 1}, t.a);
    ExpectHolds({2, 1}, t.b);
    EXPECT_EQ(store_->Lookup({3, 1}).error().code(), Code::kNotFound);
    EXPECT_EQ(std::filesystem::file_size(t.volume), t.c_offset);  // cut back to a record boundary
    // Appending resumes there, and survives the next start.
    auto d = RandomBytes(2000, 4);
    ASSERT_TRUE(PutSmall(*store_, {4, 1}, d));
    Reopen();
    ExpectHolds({1, 1}, t.a);
    ExpectHolds({2, 1}, t.b);
    ExpectHolds({4, 1}, d);
    ASSERT_TRUE(store_->Delete({4, 1}).ok());
  }
  // Zeros past the last record (a file extended, its data never written),
  // and a last record whose data never fully arrived.
  store_.reset();
  dfs::test::WriteBytes(t.volume, t.bytes + std::string(5000, '\0'));
  Reopen();
  ExpectHolds({3, 1}, t.c);
  EXPECT_EQ(std::filesystem::file_size(t.volume), t.bytes.size());
  store_.reset();
  std::string torn = t.bytes;
  torn[t.c_offset + header + 100] ^= 0x01;
  dfs::test::WriteBytes(t.volume, torn);
  Reopen();
  ExpectHolds({1, 1}, t.a);
  ExpectHolds({2, 1}, t.b);
  EXPECT_EQ(store_->Lookup({3, 1}).error().code(), Code::kNotFound);
  EXPECT_EQ(std::filesystem::file_size(t.volume), t.c_offset);
}

TEST_F(ChunkStoreTest, FlippedDataByteInAVolumeIsCorruptionAndListedAfterARestart) {
  auto a = RandomBytes(1000, 1), b = RandomBytes(4 * kChunkBlockSize + 100, 2), c = RandomBytes(5000, 3);
  ASSERT_TRUE(PutSmall(*store_, {1, 1}, a));
  ASSERT_TRUE(PutSmall(*store_, {2, 1}, b));
  ASSERT_TRUE(PutSmall(*store_, {3, 1}, c));
  const auto where = Where({2, 1});
  const std::string volume = store_->VolumePath(where.volume);
  const uint64_t data_at = where.offset + RecordHeaderSize(b.size());
  FlipByte(volume, data_at + 2 * kChunkBlockSize + 500);

  std::vector<std::byte> block(kChunkBlockSize);
  ASSERT_TRUE(store_->Read({2, 1}, 0, block).ok());
  ASSERT_TRUE(store_->Read({2, 1}, 3 * kChunkBlockSize, block).ok());
  Status s = store_->Read({2, 1}, 2 * kChunkBlockSize, block);
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_NE(s.message().find("chunk 2 v1"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(std::to_string(2 * kChunkBlockSize)), std::string::npos) << s.message();
  std::vector<std::byte> one(1);
  EXPECT_EQ(store_->Read({2, 1}, 2 * kChunkBlockSize + 7, one).code(), Code::kCorruption);

  Reopen();
  for (const auto& l : store_->List()) EXPECT_EQ(l.corrupt, l.meta.key == (ChunkKey{2, 1})) << ChunkName(l.meta.key);
  EXPECT_EQ(store_->List().size(), 3u);
  EXPECT_EQ(store_->Read({2, 1}, 2 * kChunkBlockSize, block).code(), Code::kCorruption);
  EXPECT_FALSE(store_->MarkCorrupt({2, 1}));  // already known
  ExpectHolds({1, 1}, a);
  ExpectHolds({3, 1}, c);
}

TEST_F(ChunkStoreTest, DamagedHeaderMidVolumeCostsOnlyThatChunk) {
  std::vector<std::vector<std::byte>> d;
  for (uint32_t i = 0; i < 5; ++i) d.push_back(RandomBytes(3000 + i * 20000, i));
  for (uint64_t i = 0; i < 5; ++i) ASSERT_TRUE(PutSmall(*store_, {i, 1}, d[i]));
  const auto where = Where({1, 1});
  const std::string volume = store_->VolumePath(where.volume);
  const std::string original = dfs::test::ReadBytes(volume);
  for (uint64_t at : {uint64_t{0}, uint64_t{10}, kRecordFixedSize + 2}) {
    SCOPED_TRACE(at);
    store_.reset();
    std::string damaged = original;
    damaged[where.offset + at] ^= 0x40;
    dfs::test::WriteBytes(volume, damaged);
    Reopen();
    EXPECT_EQ(store_->Lookup({1, 1}).error().code(), Code::kNotFound);
    for (uint64_t i : {0, 2, 3, 4}) ExpectHolds({i, 1}, d[i]);
    EXPECT_EQ(std::filesystem::file_size(volume), original.size());  // nothing cut
    // The damaged record is still there: a new put and a restart keep all.
    auto e = RandomBytes(777, 9);
    ASSERT_TRUE(PutSmall(*store_, {9, 1}, e));
    Reopen();
    ExpectHolds({9, 1}, e);
    for (uint64_t i : {0, 2, 3, 4}) ExpectHolds({i, 1}, d[i]);
  }
}

TEST_F(ChunkStoreTest, VolumesRollOverAtTheirSizeLimit) {
  ChunkStoreOptions small = Exact();
  small.volume_size = 200 * kKiB;
  Reopen(small);
  std::vector<std::vector<std::byte>> d;
  for (uint64_t i = 0; i < 10; ++i) {
    d.push_back(RandomBytes(kChunkBlockSize, static_cast<uint32_t>(i)));
    ASSERT_TRUE(PutSmall(*store_, {i, 1}, d[i]));
  }
  // Three 64 KiB records fit in 200 KiB, a fourth does not.
  EXPECT_EQ(store_->volume_stats().volumes, 4u);
  for (uint64_t i = 0; i < 10; ++i) EXPECT_EQ(Where({i, 1}).volume, 1 + i / 3) << i;
  for (uint32_t v = 1; v <= 4; ++v) EXPECT_LE(std::filesystem::file_size(store_->VolumePath(v)), small.volume_size);
  // Sealed volumes are indexed: a restart reads three small files, not ten headers.
  for (uint32_t v = 1; v <= 3; ++v) EXPECT_TRUE(Exists(dir_ + "/chunks/volumes/" + VolumeIndexName(v))) << v;
  EXPECT_FALSE(Exists(dir_ + "/chunks/volumes/" + VolumeIndexName(4)));
  Reopen(small);
  EXPECT_EQ(store_->volume_stats().indexes_used, 3u);
  for (uint64_t i = 0; i < 10; ++i) ExpectHolds({i, 1}, d[i]);

  // A header damaged after its volume was indexed: still listed, and a read
  // of it is Corruption naming the chunk (as a damaged .meta would be).
  const auto where = Where({3, 1});
  const std::string vol2 = store_->VolumePath(where.volume);
  ASSERT_EQ(where.offset, 0u);  // the first record of volume 2
  store_.reset();
  FlipByte(vol2, where.offset + 9);
  Reopen(small);
  std::vector<std::byte> out(10);
  Status s = store_->Read({3, 1}, 0, out);
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find("chunk 3 v1"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(vol2), std::string::npos) << s.message();
  // Without its index the volume's headers are read again: the damaged one
  // is skipped, the records after it found, and the index written anew.
  store_.reset();
  std::filesystem::remove(dir_ + "/chunks/volumes/" + VolumeIndexName(2));
  dfs::test::WriteBytes(dir_ + "/chunks/volumes/" + VolumeIndexName(1), "not an index");
  Reopen(small);
  EXPECT_EQ(store_->volume_stats().indexes_used, 1u);
  EXPECT_EQ(store_->Lookup({3, 1}).error().code(), Code::kNotFound);
  for (uint64_t i = 0; i < 10; ++i) {
    if (i != 3) ExpectHolds({i, 1}, d[i]);
  }
  Reopen(small);
  EXPECT_EQ(store_->volume_stats().indexes_used, 3u);
  EXPECT_EQ(store_->chunk_count(), 9u);
  // The active volume keeps filling after a restart.
  auto more = RandomBytes(100, 1);
  ASSERT_TRUE(PutSmall(*store_, {50, 1}, more));
  EXPECT_EQ(Where({50, 1}).volume, 4u);
}

TEST_F(ChunkStoreTest, DeadSealedVolumesAreUnlinkedOnlyWhenNothingCanComeBack) {
  ChunkStoreOptions small = Exact();
  small.volume_size = 200 * kKiB;
  Reopen(small);
  auto block = RandomBytes(kChunkBlockSize, 1);
  for (uint64_t i = 1; i <= 6; ++i) ASSERT_TRUE(PutSmall(*store_, {i, 1}, block));  // 1-3 in vol 1, 4-6 in vol 2
  const std::string vol1 = store_->VolumePath(1), vol2 = store_->VolumePath(2), vol3 = store_->VolumePath(3);
  ASSERT_EQ(Where({4, 1}).volume, 2u);

  // Volume 1 dies while volume 2 is active: its tombstones are in volume 2.
  for (uint64_t i = 1; i <= 3; ++i) ASSERT_TRUE(store_->Delete({i, 1}).ok());
  EXPECT_FALSE(Exists(vol1));
  EXPECT_FALSE(Exists(dir_ + "/chunks/volumes/" + VolumeIndexName(1)));  // its index goes with it
  Reopen(small);
  EXPECT_EQ(store_->chunk_count(), 3u);

  // 7-9 roll over to volume 3. Then 4-6 die (tombstones in 3) and 7 dies.
  for (uint64_t i = 7; i <= 9; ++i) ASSERT_TRUE(PutSmall(*store_, {i, 1}, block));
  ASSERT_EQ(Where({7, 1}).volume, 3u);
  for (uint64_t i = 4; i <= 6; ++i) ASSERT_TRUE(store_->Delete({i, 1}).ok());
  EXPECT_FALSE(Exists(vol2));  // sealed, dead and pinned by nothing

  // Pins: 10 lives in volume 4; when it dies, its tombstone lands in volume
  // 5. Volume 5 then holds nothing live, but removing it while volume 4
  // holds the put would bring 10 back.
  small.volume_size = 100 * kKiB;
  Reopen(small);
  auto ten = RandomBytes(90 * kKiB, 10);
  ASSERT_TRUE(PutSmall(*store_, {10, 1}, ten));       // volume 4 (3 is full)
  auto eleven = RandomBytes(90 * kKiB, 11);
  ASSERT_TRUE(PutSmall(*store_, {11, 1}, eleven));    // volume 5
  ASSERT_EQ(Where({10, 1}).volume, 4u);
  ASSERT_EQ(Where({11, 1}).volume, 5u);
  ASSERT_TRUE(store_->Delete({10, 1}).ok());          // tombstone in 5; 4 holds nothing live
  EXPECT_FALSE(Exists(store_->VolumePath(4)));        // sealed and dead: gone, and with it the put
  ASSERT_TRUE(PutSmall(*store_, {12, 1}, RandomBytes(90 * kKiB, 12)));  // volume 6; 5 is sealed
  auto twelve_place = Where({12, 1});
  EXPECT_EQ(twelve_place.volume, 6u);
  ASSERT_TRUE(store_->Delete({11, 1}).ok());          // tombstone in 6
  EXPECT_FALSE(Exists(store_->VolumePath(5)));
  Reopen(small);
  EXPECT_EQ(store_->Lookup({10, 1}).error().code(), Code::kNotFound);
  EXPECT_EQ(store_->Lookup({11, 1}).error().code(), Code::kNotFound);
  for (uint64_t i = 8; i <= 9; ++i) ExpectHolds({i, 1}, block);
  EXPECT_TRUE(Exists(vol3));
}

TEST_F(ChunkStoreTest, PinnedDeadVolumeStaysUntilTheVolumeItShadowsGoes) {
  ChunkStoreOptions small = Exact();
  small.volume_size = 100 * kKiB;
  Reopen(small);
  auto x = RandomBytes(40 * kKiB, 1), y = RandomBytes(40 * kKiB, 2);
  ASSERT_TRUE(PutSmall(*store_, {1, 1}, x));  // volume 1
  ASSERT_TRUE(PutSmall(*store_, {2, 1}, y));  // volume 1
  ASSERT_TRUE(PutSmall(*store_, {3, 1}, RandomBytes(90 * kKiB, 3)));  // volume 2
  ASSERT_EQ(Where({3, 1}).volume, 2u);
  ASSERT_TRUE(store_->Delete({1, 1}).ok());  // tombstone in 2: volume 1 still holds 2
  ASSERT_TRUE(store_->Delete({3, 1}).ok());  // volume 2 holds nothing live now
  ASSERT_TRUE(PutSmall(*store_, {4, 1}, RandomBytes(90 * kKiB, 4)));  // volume 3; 2 sealed
  ASSERT_EQ(Where({4, 1}).volume, 3u);
  // Volume 2 is dead but its tombstone still hides chunk 1 in volume 1.
  EXPECT_TRUE(Exists(store_->VolumePath(2)));
  Reopen(small);
  EXPECT_EQ(store_->Lookup({1, 1}).error().code(), Code::kNotFound);
  EXPECT_TRUE(Exists(store_->VolumePath(2)));
  // Once volume 1 goes, volume 2 follows.
  ASSERT_TRUE(store_->Delete({2, 1}).ok());
  EXPECT_FALSE(Exists(store_->VolumePath(1)));
  EXPECT_FALSE(Exists(store_->VolumePath(2)));
  Reopen(small);
  EXPECT_EQ(store_->chunk_count(), 1u);
  EXPECT_TRUE(store_->Lookup({4, 1}));
}

TEST_F(ChunkStoreTest, BigOrUnknownSizedChunksStillGoToFiles) {
  struct Case {
    uint64_t expected, buffer_limit;
    bool buffered;
  };
  const Case cases[] = {
      {kMiB, kMiB, true},            // at the default threshold
      {kMiB + 1, 4 * kMiB, false},   // above it
      {1000, 999, false},            // above the caller's buffer limit
      {0, kMiB, false},              // size unknown
      {1000, 0, false},              // no buffer limit given
  };
  uint64_t id = 1;
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << c.expected << " limit " << c.buffer_limit);
    auto w = store_->Create({id, 1}, c.expected, c.buffer_limit);
    ASSERT_TRUE(w) << w.error().ToString();
    EXPECT_EQ((*w)->buffered(), c.buffered);
    auto data = RandomBytes(c.expected ? c.expected : 5000, static_cast<uint32_t>(id));
    ASSERT_TRUE((*w)->Append(0, data).ok());
    ASSERT_TRUE((*w)->Finish());
    EXPECT_EQ(Where({id, 1}).volume != 0, c.buffered);
    EXPECT_EQ(Exists(ChunkPath({id, 1})), !c.buffered);
    ExpectHolds({id, 1}, data);
    ++id;
  }
  // --volume-max-chunk 0: nothing is buffered, and volumes stay readable.
  ChunkStoreOptions off = Exact();
  off.volume_max_chunk = 0;
  Reopen(off);
  ExpectHolds({1, 1}, RandomBytes(kMiB, 1));
  auto w = store_->Create({id, 1}, 1000, kMiB);
  ASSERT_TRUE(w);
  EXPECT_FALSE((*w)->buffered());
}

// Pages of `path` in the page cache, and pages in all.
std::pair<size_t, size_t> ResidentPages(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {0, 0};
  struct stat st {};
  ::fstat(fd, &st);
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t pages = (static_cast<size_t>(st.st_size) + page - 1) / page;
  void* map = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return {0, pages};
  std::vector<unsigned char> in(pages);
  size_t resident = 0;
  if (::mincore(map, static_cast<size_t>(st.st_size), in.data()) == 0) {
    for (unsigned char c : in) resident += c & 1;
  }
  ::munmap(map, static_cast<size_t>(st.st_size));
  return {resident, pages};
}

TEST_F(ChunkStoreTest, WrittenFileChunksLeaveThePageCacheUnlessKept) {
  struct statfs fs {};
  ASSERT_EQ(::statfs(dir_.c_str(), &fs), 0);
  if (fs.f_type == TMPFS_MAGIC) GTEST_SKIP() << "the test folder is on tmpfs, whose pages are its storage";
  const auto data = RandomBytes(24 * kMiB, 7);
  // Frames of an odd size, so the dropped ranges do not line up with them.
  auto meta = Put(*store_, {1, 1}, data, kMiB + 4097);
  ASSERT_TRUE(meta) << meta.error().ToString();
  auto [resident, pages] = ResidentPages(ChunkPath({1, 1}));
  EXPECT_EQ(pages, 24 * kMiB / 4096);
  EXPECT_LT(resident, pages / 20) << "a written chunk's pages should have left the page cache";
  ExpectHolds({1, 1}, data);

  ChunkStoreOptions keep = Exact();
  keep.drop_behind = false;
  Reopen(keep);
  ASSERT_TRUE(Put(*store_, {2, 1}, data, kMiB + 4097));
  std::tie(resident, pages) = ResidentPages(ChunkPath({2, 1}));
  EXPECT_GT(resident, pages / 2) << "--keep-written-pages should leave them cached";
  ExpectHolds({2, 1}, data);
}

TEST_F(ChunkStoreTest, BufferedWritersKeepTheWriteRules) {
  auto data = RandomBytes(1000, 5);
  auto w = store_->Create({11, 1}, 1000, kMiB);
  ASSERT_TRUE(w);
  ASSERT_TRUE((*w)->buffered());
  EXPECT_EQ(store_->Create({11, 1}, 1000, kMiB).error().code(), Code::kBusy);
  ASSERT_TRUE((*w)->Append(0, std::span(data).first(500)).ok());
  EXPECT_EQ((*w)->Append(400, std::span(data).first(100)).code(), Code::kInvalidArgument);
  EXPECT_FALSE((*w)->Finish());  // the bad append aborted it

  auto again = store_->Create({11, 1}, 1000, kMiB);
  ASSERT_TRUE(again);
  ASSERT_TRUE((*again)->Append(0, data).ok());
  EXPECT_EQ((*again)->Append(1000, std::span(data).first(1)).code(), Code::kInvalidArgument);  // past 1000
  auto third = store_->Create({11, 1}, 1000, kMiB);
  ASSERT_TRUE(third);
  ASSERT_TRUE((*third)->Append(0, std::span(data).first(600)).ok());
  EXPECT_EQ(store_->Lookup({11, 1}).error().code(), Code::kNotFound);  // invisible until finished
  (*third)->Abort();
  EXPECT_EQ(store_->volume_stats().volumes, 0u);  // nothing reached a disk

  // Fewer bytes than announced is a shorter chunk, as with files.
  auto short_writer = store_->Create({12, 1}, 1000, kMiB);
  ASSERT_TRUE(short_writer);
  ASSERT_TRUE((*short_writer)->Append(0, std::span(data).first(10)).ok());
  auto meta = (*short_writer)->Finish();
  ASSERT_TRUE(meta);
  EXPECT_EQ(meta->size, 10u);
  ExpectHolds({12, 1}, std::span(data).first(10));
}

TEST_F(ChunkStoreTest, FailedVolumeSyncFailsTheBatchAndTheDisk) {
  ChunkStoreOptions o = Exact();
  o.env = &fault_;
  Reopen(o);
  auto a = RandomBytes(3000, 1);
  ASSERT_TRUE(PutSmall(*store_, {1, 1}, a));
  const std::string vol1 = store_->VolumePath(1);
  const uint64_t size_before = std::filesystem::file_size(vol1);

  std::vector<std::unique_ptr<ChunkWriter>> writers;
  for (uint64_t i = 2; i <= 4; ++i) {
    auto w = store_->Create({i, 1}, 2000, kMiB);
    ASSERT_TRUE(w);
    ASSERT_TRUE((*w)->Append(0, RandomBytes(2000, static_cast<uint32_t>(i))).ok());
    writers.push_back(std::move(*w));
  }
  fault_.SetPathGlob("*/volumes/*");
  fault_.FailSyncsAfter(0);
  std::vector<ChunkWriter*> ptrs;
  for (auto& w : writers) ptrs.push_back(w.get());
  for (const auto& r : ChunkWriter::FinishAll(ptrs)) {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), Code::kIOError) << r.error().ToString();
    EXPECT_NE(r.error().message().find(vol1), std::string::npos) << r.error().message();
  }
  for (uint64_t i = 2; i <= 4; ++i) EXPECT_EQ(store_->Lookup({i, 1}).error().code(), Code::kNotFound);
  EXPECT_EQ(std::filesystem::file_size(vol1), size_before);  // cut back to the batch's start
  // A failed fdatasync is a failed disk (fsyncgate): no more chunks here,
  // while what it holds is still read.
  EXPECT_TRUE(store_->disk_failed());
  EXPECT_NE(store_->disk_error().find(vol1), std::string::npos) << store_->disk_error();
  auto refused = store_->Create({5, 1}, 100, kMiB);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Code::kUnavailable) << refused.error().ToString();
  ExpectHolds({1, 1}, a);
  // After a restart on a good disk the same keys go in again.
  fault_.Disarm();
  Reopen(o);
  EXPECT_FALSE(store_->disk_failed());
  EXPECT_EQ(store_->chunk_count(), 1u);
  auto b = RandomBytes(2500, 2);
  ASSERT_TRUE(PutSmall(*store_, {2, 1}, b));
  Reopen(o);
  EXPECT_EQ(store_->chunk_count(), 2u);
  ExpectHolds({1, 1}, a);
  ExpectHolds({2, 1}, b);
}

TEST_F(ChunkStoreTest, WriteErrorMidChunkFailsTheDiskButKeepsWhatItHolds) {
  ChunkStoreOptions o = Exact();
  o.env = &fault_;
  Reopen(o);
  auto a = RandomBytes(3 * kChunkBlockSize, 1);
  ASSERT_TRUE(PutSmall(*store_, {1, 1}, a));
  fault_.SetPathGlob("*/chunks/*");
  fault_.FailWritesAfter(1);
  auto w = store_->Create({2, 1}, 0);  // a file chunk
  ASSERT_TRUE(w) << w.error().ToString();
  auto data = RandomBytes(2 * kChunkBlockSize, 2);
  ASSERT_TRUE((*w)->Append(0, std::span(data).first(kChunkBlockSize)).ok());
  Status s = (*w)->Append(kChunkBlockSize, std::span(data).subspan(kChunkBlockSize));
  EXPECT_EQ(s.code(), Code::kIOError) << s.ToString();
  EXPECT_NE(s.message().find("injected"), std::string::npos) << s.message();
  EXPECT_TRUE(store_->disk_failed());
  EXPECT_EQ(store_->Lookup({2, 1}).error().code(), Code::kNotFound);
  EXPECT_EQ(store_->Create({3, 1}, 100, kMiB).error().code(), Code::kUnavailable);
  ExpectHolds({1, 1}, a);
  w->reset();
  fault_.Disarm();
  Reopen(o);
  EXPECT_EQ(store_->chunk_count(), 1u);
  ExpectHolds({1, 1}, a);
}

// Prepared space (volume_store.h): zeros written and synced ahead of the
// active volume's end, which batches then write over; a restart cuts them
// (they are not a torn tail), and so does a seal.
TEST_F(ChunkStoreTest, PreparedZerosAreWrittenOverAndCutAtRestart) {
  ChunkStoreOptions o;
  o.volume_prepare = kMiB;
  Reopen(o);
  auto a = RandomBytes(kChunkBlockSize, 1);
  ASSERT_TRUE(PutSmall(*store_, {1, 1}, a));
  const std::string vol = store_->VolumePath(1);
  const uint64_t end1 = RecordHeaderSize(a.size()) + a.size();
  // The preparer works on its own thread: wait for its zeros.
  ASSERT_TRUE(dfs::test::WaitFor([&] { return store_->volume_stats().prepared > 0; }, std::chrono::seconds(10)));
  EXPECT_GE(std::filesystem::file_size(vol), end1 + kMiB / 2);
  const std::string bytes = dfs::test::ReadBytes(vol);
  EXPECT_EQ(bytes.find_first_not_of('\0', end1), std::string::npos) << "only zeros past the record";
  // The next batch lands right after the first record, over the zeros.
  auto b = RandomBytes(1000, 2);
  ASSERT_TRUE(PutSmall(*store_, {2, 1}, b));
  EXPECT_EQ(Where({2, 1}).offset, end1);
  ExpectHolds({1, 1}, a);
  ExpectHolds({2, 1}, b);
  // A restart keeps both records and cuts the zeros after them.
  Reopen();
  EXPECT_EQ(std::filesystem::file_size(vol), end1 + RecordHeaderSize(b.size()) + b.size());
  ExpectHolds({1, 1}, a);
  ExpectHolds({2, 1}, b);
  auto c = RandomBytes(3000, 3);
  ASSERT_TRUE(PutSmall(*store_, {3, 1}, c));
  Reopen();
  ExpectHolds({3, 1}, c);
}

TEST_F(ChunkStoreTest, ASealedVolumeEndsAtItsLastRecordDespitePreparedZeros) {
  ChunkStoreOptions o;
  o.volume_size = 200 * kKiB;
  o.volume_prepare = 128 * kKiB;
  Reopen(o);
  const uint64_t record = RecordHeaderSize(kChunkBlockSize) + kChunkBlockSize;
  std::vector<std::vector<std::byte>> d;
  for (uint64_t i = 0; i < 7; ++i) {
    d.push_back(RandomBytes(kChunkBlockSize, static_cast<uint32_t>(i)));
    ASSERT_TRUE(PutSmall(*store_, {i, 1}, d[i]));
  }
  // Three records a volume: 1 and 2 are sealed, cut to their records (the
  // preparer may still be giving back a segment it was writing at the seal).
  for (uint32_t v = 1; v <= 2; ++v) {
    const std::string path = store_->VolumePath(v);
    EXPECT_TRUE(dfs::test::WaitFor([&] { return std::filesystem::file_size(path) == 3 * record; },
                                       std::chrono::seconds(10)))
        << path << " is " << std::filesystem::file_size(path) << " bytes";
  }
  Reopen();
  EXPECT_EQ(store_->volume_stats().indexes_used, 2u);  // their indexes match their sizes
  for (uint64_t i = 0; i < 7; ++i) ExpectHolds({i, 1}, d[i]);
}

// A disk that fills: a 1 MiB tmpfs. Needs permission to mount.
TEST_F(ChunkStoreTest, FullDiskIsNoSpaceForBufferedChunksAndLeavesTheVolumeWhole) {
  std::string mnt = dir_ + "/small";
  std::filesystem::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=1m") != 0) {
    GTEST_SKIP() << "cannot mount a small tmpfs here: " << std::strerror(errno);
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount(path.c_str()); }
  } unmount{mnt};
  auto a = RandomBytes(100 * kKiB, 1);
  // Prepared space asked for: with less than 32 segments free nothing is
  // prepared, so the space below stays the chunks' (and the sizes exact).
  ChunkStoreOptions prepare;
  prepare.volume_prepare = 8 * kMiB;
  {
    ChunkStore small(mnt, prepare);
    ASSERT_TRUE(small.Scan());
    ASSERT_TRUE(PutSmall(small, {1, 1}, a));
    // The preparer looks, on its own thread, and declines without writing.
    ASSERT_TRUE(dfs::test::WaitFor([&] { return small.volume_stats().prepare_declined == 1; },
                                   std::chrono::seconds(10)));
    EXPECT_EQ(small.volume_stats().prepared, 0u);
    // Open buffered chunks count against the free space before any is written.
    std::vector<std::unique_ptr<ChunkWriter>> open;
    Result<std::unique_ptr<ChunkWriter>> w;
    for (uint64_t id = 10; (w = small.Create({id, 1}, 300 * kKiB, kMiB)); ++id) open.push_back(std::move(*w));
    EXPECT_EQ(w.error().code(), Code::kNoSpace) << w.error().ToString();
    ASSERT_FALSE(open.empty());
    ASSERT_LT(open.size(), 4u);
    // The space those chunks counted on goes elsewhere: the batch fails
    // with NoSpace and the volume is cut back to where it began.
    const std::string vol = small.VolumePath(1);
    const uint64_t size_before = std::filesystem::file_size(vol);
    {
      std::ofstream filler(mnt + "/filler", std::ios::binary);
      std::string mib(kMiB, 'x');
      filler.write(mib.data(), static_cast<std::streamsize>(mib.size()));
    }
    for (auto& o : open) ASSERT_TRUE(o->Append(0, RandomBytes(300 * kKiB, 7)).ok());
    std::vector<ChunkWriter*> ptrs;
    for (auto& o : open) ptrs.push_back(o.get());
    for (const auto& r : ChunkWriter::FinishAll(ptrs)) {
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().code(), Code::kNoSpace) << r.error().ToString();
    }
    EXPECT_EQ(std::filesystem::file_size(vol), size_before);
    std::filesystem::remove(mnt + "/filler");
    auto b = RandomBytes(200 * kKiB, 2);
    ASSERT_TRUE(PutSmall(small, {2, 1}, b));
  }
  ChunkStore again(mnt);
  ASSERT_TRUE(again.Scan());
  EXPECT_EQ(again.chunk_count(), 2u);
  auto back = ReadAll(again, {1, 1});
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(*back, a);
}

TEST_F(ChunkStoreTest, ScansAHundredThousandSmallChunks) {
  constexpr uint64_t kChunks = 100000;
  constexpr uint64_t kBatch = 10000;
  auto data = RandomBytes(512, 1);
  for (uint64_t first = 0; first < kChunks; first += kBatch) {
    std::vector<std::unique_ptr<ChunkWriter>> writers;
    std::vector<ChunkWriter*> ptrs;
    for (uint64_t id = first; id < first + kBatch; ++id) {
      auto w = store_->Create({id, 1}, data.size(), kMiB);
      ASSERT_TRUE(w);
      data[0] = static_cast<std::byte>(id);
      ASSERT_TRUE((*w)->Append(0, data).ok());
      ptrs.push_back(w->get());
      writers.push_back(std::move(*w));
    }
    for (const auto& r : ChunkWriter::FinishAll(ptrs)) ASSERT_TRUE(r);
  }
  for (uint64_t id = 0; id < kChunks; id += 1000) ASSERT_TRUE(store_->Delete({id, 1}).ok());
  const auto start = std::chrono::steady_clock::now();
  Reopen();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  RecordProperty("scan_ms", static_cast<int>(ms));  // reported, never asserted
  EXPECT_EQ(store_->chunk_count(), kChunks - kChunks / 1000);
  for (uint64_t id : {uint64_t{1}, uint64_t{4242}, kChunks - 1}) {
    data[0] = static_cast<std::byte>(id);
    ExpectHolds({id, 1}, data);
  }
  EXPECT_EQ(store_->Lookup({5000, 1}).error().code(), Code::kNotFound);
}

TEST(VolumeFormat, RecordsDecodeAndNamesAreCanonical) {
  std::string put;
  const uint32_t blocks[] = {1, 2};
  EncodePutHeader(put, {5, 6}, kChunkBlockSize + 1, 0xabcd, blocks);
  ASSERT_EQ(put.size(), RecordHeaderSize(kChunkBlockSize + 1));
  auto h = DecodeRecordHeader(put, "test");
  ASSERT_TRUE(h) << h.error().ToString();
  EXPECT_EQ(h->type, RecordType::kPut);
  EXPECT_EQ(h->key, (ChunkKey{5, 6}));
  EXPECT_EQ(h->size, kChunkBlockSize + 1);
  EXPECT_EQ(h->block_count, 2u);
  std::string tomb;
  EncodeTombstone(tomb, {5, 6}, 3, 12345);
  h = DecodeRecordHeader(tomb, "test");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->type, RecordType::kTombstone);
  EXPECT_EQ(h->target_volume, 3u);
  EXPECT_EQ(h->target_offset, 12345u);
  for (size_t i = 0; i < put.size(); ++i) {
    std::string bad = put;
    bad[i] ^= 0x10;
    EXPECT_FALSE(DecodeRecordHeader(bad, "test")) << i;
  }
  // An index round trip; any damage, or a volume of another size, refuses it.
  std::vector<IndexedRecord> listed = {{0, *DecodeRecordFixed(put, "test")},
                                       {put.size() + kChunkBlockSize + 1, *DecodeRecordFixed(tomb, "test")}};
  const uint64_t volume_size = listed[1].offset + tomb.size();
  const std::string index = EncodeVolumeIndex(4, volume_size, listed);
  auto back = DecodeVolumeIndex(index, 4, volume_size, "idx");
  ASSERT_TRUE(back) << back.error().ToString();
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[1].offset, listed[1].offset);
  EXPECT_EQ((*back)[1].h.target_offset, 12345u);
  EXPECT_FALSE(DecodeVolumeIndex(index, 4, volume_size + 1, "idx"));
  EXPECT_FALSE(DecodeVolumeIndex(index, 5, volume_size, "idx"));
  EXPECT_FALSE(DecodeVolumeIndex(index.substr(0, index.size() - 1), 4, volume_size, "idx"));
  for (size_t i = 0; i < index.size(); i += 7) {
    std::string bad = index;
    bad[i] ^= 0x01;
    EXPECT_FALSE(DecodeVolumeIndex(bad, 4, volume_size, "idx")) << i;
  }
  EXPECT_EQ(VolumeIndexName(12), "00000012.idx");
  EXPECT_EQ(ParseVolumeIndexName("00000012.idx"), 12u);
  EXPECT_FALSE(ParseVolumeIndexName("00000012.vol"));
  EXPECT_EQ(VolumeFileName(12), "00000012.vol");
  EXPECT_EQ(ParseVolumeFileName("00000012.vol"), 12u);
  EXPECT_FALSE(ParseVolumeFileName("12.vol"));
  EXPECT_FALSE(ParseVolumeFileName("00000000.vol"));
  EXPECT_FALSE(ParseVolumeFileName("00000012.vol.tmp"));
  EXPECT_EQ(ParseVolumeFileName("123456789.vol"), 123456789u);
}

TEST(ChunkFormat, ParsesOnlyCanonicalNames) {
  EXPECT_EQ(ParseChunkFileName("12_3.chunk", ".chunk"), (ChunkKey{12, 3}));
  EXPECT_EQ(ParseChunkFileName("18446744073709551615_4294967295.meta", ".meta"),
            (ChunkKey{18446744073709551615ULL, 4294967295U}));
  EXPECT_FALSE(ParseChunkFileName("012_3.chunk", ".chunk"));
  EXPECT_FALSE(ParseChunkFileName("12_3.chunk", ".meta"));
  EXPECT_FALSE(ParseChunkFileName("12-3.chunk", ".chunk"));
  EXPECT_FALSE(ParseChunkFileName("_3.chunk", ".chunk"));
  EXPECT_FALSE(ParseChunkFileName("12_.chunk", ".chunk"));
  EXPECT_FALSE(ParseChunkFileName("12_3x.chunk", ".chunk"));
  EXPECT_EQ(ShardName(12), "0c");
  EXPECT_EQ(ShardName(256 + 255), "ff");
}

}  // namespace
}  // namespace dfs::filenode
