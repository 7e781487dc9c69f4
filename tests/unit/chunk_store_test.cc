// The node's chunk store: round trips, ranged reads, corruption found on
// read, start-up scan, deletion and a full disk.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>

#include "common/checksum.h"
#include "common/units.h"
#include "filenode/chunk_store.h"

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

class ChunkStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    store_ = std::make_unique<ChunkStore>(dir_);
    ASSERT_TRUE(store_->Scan());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string ChunkPath(ChunkKey k) const {
    return dir_ + "/chunks/" + ShardName(k.id) + "/" + ChunkStem(k) + ".chunk";
  }

  std::string dir_;
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
      {data.size() - 1, 1}, {data.size(), 0}, {data.size() - 777, 777}};
  for (int i = 0; i < 50; ++i) {
    uint64_t off = rng() % data.size();
    ranges.emplace_back(off, rng() % (data.size() - off + 1));
  }
  for (auto [off, len] : ranges) {
    SCOPED_TRACE(testing::Message() << off << "+" << len);
    std::vector<std::byte> out(len);
    ASSERT_TRUE(store_->Read(key, off, out).ok());
    EXPECT_TRUE(std::equal(out.begin(), out.end(), data.begin() + static_cast<ptrdiff_t>(off)));
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
    // Space is back for a chunk that fits.
    EXPECT_TRUE(Put(small, {15, 1}, std::span(data).first(kMiB)));
  }
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
