// Background compaction of the chunk store's volumes (filenode/compaction.h,
// chunk_compaction.cc, volume_compaction.cc): a mostly dead volume is
// compacted (its live chunks identical, its file gone, the bytes down);
// chunks deleted or rewritten while they are being moved stay deleted or
// rewritten, also after a restart; what a compacted volume kept dead in
// earlier volumes stays dead; a corrupt record is reported, never copied;
// what a crash at every step leaves reads right; a full or failing disk
// stops a compaction with everything still readable.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "common/checksum.h"
#include "common/fault_env.h"
#include "common/units.h"
#include "filenode/chunk_store.h"
#include "filenode/volume_format.h"
#include "filenode/volume_store.h"
#include "tests/unit/file_test_util.h"

namespace dfs::filenode {
namespace {

std::vector<std::byte> Bytes(size_t n, uint32_t seed) {
  std::vector<std::byte> out(n);
  std::mt19937 rng(seed);
  for (auto& b : out) b = static_cast<std::byte>(rng());
  return out;
}

// `data` as a buffered chunk, bound for a volume.
Status PutInVolume(ChunkStore& store, ChunkKey key, std::span<const std::byte> data) {
  DFS_ASSIGN_OR_RETURN(auto w, store.Create(key, data.size(), /*buffer_limit=*/data.size()));
  if (!w->buffered()) return Status::Internal(ChunkName(key) + " was not buffered");
  DFS_RETURN_IF_ERROR(w->Append(0, data));
  return w->Finish().status();
}

Result<std::vector<std::byte>> ReadWhole(const ChunkStore& store, ChunkKey key) {
  DFS_ASSIGN_OR_RETURN(ChunkMeta meta, store.Lookup(key));
  std::vector<std::byte> out(meta.size);
  DFS_RETURN_IF_ERROR(store.Read(key, 0, out));
  return out;
}

constexpr uint64_t kVolume = 256 * kKiB;
constexpr size_t kChunk = 20 * kKiB;  // 12 to a volume

class CompactionTest : public ::testing::Test {
 protected:
  ChunkStoreOptions Options() {
    ChunkStoreOptions o;
    o.volume_size = kVolume;
    o.compaction.threshold = threshold_;
    o.compaction.rate = 1ull << 40;  // no pacing: the tests call Compact() themselves
    o.compaction.step = step_;
    o.compaction.retry_after = std::chrono::milliseconds(0);
    o.compaction.on_step = [this](CompactionStep s) {
      if (on_step_) on_step_(s);
    };
    o.env = env_;
    return o;
  }
  void SetUp() override {
    dir_ = test::TestDir("dfs-compaction");
    Open();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    store_.reset();
    store_ = std::make_unique<ChunkStore>(dir_, Options());
    auto found = store_->Scan();
    ASSERT_TRUE(found) << found.error().ToString();
  }
  // Chunks 0..n-1 of kChunk bytes, remembered in `live_`.
  void PutMany(uint64_t first, uint64_t n) {
    for (uint64_t i = first; i < first + n; ++i) {
      auto data = Bytes(kChunk, static_cast<uint32_t>(i));
      ASSERT_TRUE(PutInVolume(*store_, {i, 1}, data).ok()) << i;
      live_[i] = std::move(data);
    }
  }
  void Delete(uint64_t id) {
    ASSERT_TRUE(store_->Delete({id, 1}).ok()) << id;
    live_.erase(id);
    deleted_.insert(id);
  }
  // Calls Compact() until `n` compactions have finished (or gives up).
  void CompactUntil(uint64_t n) {
    for (int i = 0; i < 10000 && store_->volume_stats().compactions < n; ++i) (void)store_->Compact();
    ASSERT_GE(store_->volume_stats().compactions, n);
  }
  // Every live chunk holds its bytes; every deleted one is gone.
  void ExpectContents(const ChunkStore& store) {
    for (const auto& [id, data] : live_) {
      auto back = ReadWhole(store, {id, 1});
      ASSERT_TRUE(back) << id << ": " << back.error().ToString();
      EXPECT_TRUE(*back == data) << "chunk " << id << " changed";
      EXPECT_EQ(store.Lookup({id, 1})->crc32c, Crc32c(data)) << id;
    }
    for (uint64_t id : deleted_) {
      EXPECT_EQ(store.Lookup({id, 1}).error().code(), Code::kNotFound) << "chunk " << id << " came back";
    }
    EXPECT_EQ(store.chunk_count(), live_.size());
  }
  bool VolumeExists(uint32_t v) const { return std::filesystem::exists(store_->VolumePath(v)); }

  std::string dir_;
  double threshold_ = 0.5;
  uint64_t step_ = 64 * kKiB;  // a few chunks a step
  Env* env_ = Env::Default();
  std::unique_ptr<ChunkStore> store_;
  std::function<void(CompactionStep)> on_step_;
  std::map<uint64_t, std::vector<std::byte>> live_;
  std::set<uint64_t> deleted_;
};

TEST_F(CompactionTest, AMostlyDeadVolumeIsCompactedAndItsSpaceComesBack) {
  PutMany(0, 48);  // volumes 1-4 (12 each), volume 4 active
  ASSERT_EQ(store_->Locate({47, 1})->volume, 4u);
  PutMany(100, 1);  // volume 5: 4 is sealed
  // Three of every four die: each sealed volume is 3/4 dead.
  for (uint64_t i = 0; i < 48; ++i) {
    if (i % 4 != 0) Delete(i);
  }
  for (uint32_t v = 1; v <= 4; ++v) ASSERT_TRUE(VolumeExists(v)) << v;
  const uint64_t disk_before = store_->disk_bytes();
  const auto before = store_->volume_stats();

  CompactUntil(4);
  store_->DrainTrash();
  for (uint32_t v = 1; v <= 4; ++v) EXPECT_FALSE(VolumeExists(v)) << "volume " << v << " is still there";
  const auto after = store_->volume_stats();
  EXPECT_EQ(after.compacted_records - before.compacted_records, 12u);  // 3 live in each of 4
  EXPECT_EQ(after.compacted_bytes, 12 * VolumeStore::PutBytes(kChunk));
  EXPECT_GE(after.reclaimed_bytes - before.reclaimed_bytes, 4 * 11 * kChunk);
  for (uint64_t i = 0; i < 48; i += 4) EXPECT_GE(store_->Locate({i, 1})->volume, 5u) << i;
  const uint64_t disk_after = store_->disk_bytes();
  EXPECT_LT(disk_after, disk_before / 2) << disk_before << " -> " << disk_after;
  ExpectContents(*store_);
  // Nothing more is worth compacting.
  for (int i = 0; i < 20; ++i) (void)store_->Compact();
  EXPECT_EQ(store_->volume_stats().compactions, 4u);

  Open();  // as after a restart
  ExpectContents(*store_);
  EXPECT_EQ(store_->disk_bytes(), disk_after);
}

// Chunks deleted or rewritten between a compaction's read of them and its
// switch to their copies: never brought back, in memory or by a restart's
// scan ("the last record of a key decides").
TEST_F(CompactionTest, ChunksDeletedOrRewrittenMidCompactionAreNotResurrected) {
  threshold_ = 0.4;
  step_ = 128 * kKiB;  // one step for the whole volume
  Open();
  PutMany(0, 12);  // volume 1
  PutMany(12, 1);  // volume 2: 1 is sealed
  for (uint64_t i : {2, 5, 7, 8, 9, 11}) Delete(i);  // live: 0 1 3 4 6 10
  auto rewritten = Bytes(kChunk, 777);
  int round = 0;
  on_step_ = [&](CompactionStep s) {
    if (s == CompactionStep::kRead && round == 0) {
      // Read, not written yet: one deleted, one rewritten (a newer volume).
      ++round;
      Delete(1);
      ASSERT_TRUE(PutInVolume(*store_, {3, 1}, rewritten).ok());
      live_[3] = rewritten;
    } else if (s == CompactionStep::kWritten && round == 1) {
      // Copies written, not synced: a delete names the copy, and no writer
      // of a chunk being moved may start.
      ++round;
      Delete(4);
      auto busy = store_->Create({0, 1}, kChunk, kChunk);
      ASSERT_FALSE(busy);
      EXPECT_EQ(busy.error().code(), Code::kBusy) << busy.error().ToString();
    } else if (s == CompactionStep::kSynced && round == 2) {
      ++round;  // copies durable, not switched to yet
      Delete(6);
    } else if (s == CompactionStep::kSwitched && round == 3) {
      ++round;  // switched: a plain delete of the copy
      Delete(0);
    }
  };
  CompactUntil(1);
  EXPECT_EQ(round, 4) << "the compaction did not pass every step";
  on_step_ = nullptr;
  store_->DrainTrash();
  EXPECT_FALSE(VolumeExists(1));
  EXPECT_EQ(store_->Locate({10, 1})->volume, 2u);  // the one left to move
  EXPECT_EQ(store_->volume_stats().compacted_records, 2u);  // 0 and 10 were switched
  ExpectContents(*store_);
  Open();  // a restart's scan: the copies of 4 and 6 come after their originals
  ExpectContents(*store_);
}

// A compacted volume's tombstones (and a put replacing a chunk of an earlier
// volume) keep records of earlier volumes dead: those get tombstones of
// their own before the volume goes, so nothing deleted comes back.
TEST_F(CompactionTest, WhatACompactedVolumeKeptDeadStaysDead) {
  PutMany(0, 12);  // volume 1, which stays mostly live
  PutMany(12, 1);  // volume 2
  Delete(0);       // its tombstone in volume 2
  auto again = Bytes(kChunk, 999);
  ASSERT_TRUE(PutInVolume(*store_, {1, 1}, again).ok());  // volume 2 shadows 1's first copy...
  Delete(1);                                              // ...and then dies itself
  PutMany(13, 9);
  for (uint64_t i = 12; i < 21; ++i) Delete(i);
  PutMany(50, 2);  // 50 fills volume 2, 51 starts volume 3
  ASSERT_EQ(store_->Locate({21, 1})->volume, 2u);
  ASSERT_EQ(store_->Locate({50, 1})->volume, 2u);
  ASSERT_EQ(store_->Locate({51, 1})->volume, 3u);

  CompactUntil(1);
  store_->DrainTrash();
  EXPECT_FALSE(VolumeExists(2));
  EXPECT_TRUE(VolumeExists(1));  // 10 of 12 live: not worth it
  EXPECT_EQ(store_->Locate({21, 1})->volume, 3u);
  ExpectContents(*store_);
  Open();  // without volume 2, chunks 0 and 1 of volume 1 would be back but for their new tombstones
  ExpectContents(*store_);
  // Volume 1 going unpins volume 3.
  for (uint64_t i = 2; i < 12; ++i) Delete(i);
  store_->DrainTrash();
  EXPECT_FALSE(VolumeExists(1));
  Open();
  ExpectContents(*store_);
}

TEST_F(CompactionTest, ACorruptRecordIsReportedAndLeftNeverCopied) {
  PutMany(0, 12);
  PutMany(12, 1);
  for (uint64_t i = 0; i < 12; ++i) {
    if (i % 4 != 0) Delete(i);
  }
  // Chunk 4's data, flipped on disk after the scan.
  const auto place = store_->Locate({4, 1});
  ASSERT_TRUE(place);
  {
    std::string path = store_->VolumePath(place->volume);
    std::string bytes = test::ReadBytes(path);
    bytes[place->offset + RecordHeaderSize(kChunk) + 1000] ^= 0x5a;
    test::WriteBytes(path, bytes);
  }
  CompactUntil(1);
  auto found = store_->TakeFoundCorrupt();
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].key, (ChunkKey{4, 1}));
  EXPECT_TRUE(store_->TakeFoundCorrupt().empty());  // once
  EXPECT_EQ(store_->Locate({4, 1})->volume, 1u);   // never copied
  EXPECT_TRUE(VolumeExists(1));                    // it still holds it
  auto listed = store_->List();
  EXPECT_EQ(std::count_if(listed.begin(), listed.end(), [](const auto& l) { return l.corrupt; }), 1);
  std::vector<std::byte> out(kChunk);
  EXPECT_EQ(store_->Read({4, 1}, 0, out).code(), Code::kCorruption);
  live_.erase(4);
  for (const auto& [id, data] : live_) EXPECT_GE(store_->Locate({id, 1})->volume, 2u) << id;
  // Not picked again and again while the bad record stays.
  for (int i = 0; i < 20; ++i) (void)store_->Compact();
  EXPECT_EQ(store_->volume_stats().compactions, 1u);
  // Once the master has it deleted the volume goes.
  Delete(4);
  store_->DrainTrash();
  EXPECT_FALSE(VolumeExists(1));
  ExpectContents(*store_);
}

// What a SIGKILL leaves at each step is the files as they are then (the page
// cache survives a process): a copy of the folder taken at each step, opened
// as a restart would, holds every live chunk and no deleted one.
TEST_F(CompactionTest, ACrashAtEveryStepLeavesEveryLiveChunkAndNoDeletedOne) {
  PutMany(0, 12);  // volume 1
  PutMany(12, 6);  // volume 2...
  for (uint64_t i : {1, 2, 3}) Delete(i);  // tombstones in volume 2: it keeps them dead
  PutMany(18, 6);  // ...full
  PutMany(24, 1);  // volume 3
  ASSERT_EQ(store_->Locate({24, 1})->volume, 3u);
  for (uint64_t i : {5, 6, 7, 9, 10, 11}) Delete(i);  // volume 1: 0 4 8 live
  for (uint64_t i = 13; i < 24; ++i) {
    if (i != 16) Delete(i);  // volume 2: 12 16 live, 3 pins
  }
  std::map<CompactionStep, int> snapshots;
  on_step_ = [&](CompactionStep s) {
    const std::string copy = dir_ + "-crash-" + std::to_string(static_cast<int>(s)) + "-" +
                             std::to_string(snapshots[s]++);
    std::filesystem::remove_all(copy);
    std::filesystem::copy(dir_, copy, std::filesystem::copy_options::recursive);
  };
  CompactUntil(2);
  on_step_ = nullptr;
  for (CompactionStep s : {CompactionStep::kRead, CompactionStep::kWritten, CompactionStep::kSynced,
                           CompactionStep::kSwitched, CompactionStep::kRepinned, CompactionStep::kUnlinked}) {
    ASSERT_GT(snapshots[s], 0) << "never reached step " << CompactionStepName(s);
    for (int k = 0; k < snapshots[s]; ++k) {
      SCOPED_TRACE(std::string(CompactionStepName(s)) + " #" + std::to_string(k));
      const std::string copy = dir_ + "-crash-" + std::to_string(static_cast<int>(s)) + "-" + std::to_string(k);
      {
        ChunkStore crashed(copy, Options());
        ASSERT_TRUE(crashed.Scan());
        ExpectContents(crashed);
        // And its next compaction finishes the job.
        for (int i = 0; i < 1000; ++i) (void)crashed.Compact();
        ExpectContents(crashed);
      }
      ChunkStore again(copy, Options());
      ASSERT_TRUE(again.Scan());
      ExpectContents(again);
      std::filesystem::remove_all(copy);
    }
  }
}

// A disk that fills (ENOSPC) or fails (EIO on fdatasync) under a compaction:
// it stops with an error, nothing crashes, every chunk reads where it was.
TEST_F(CompactionTest, AFullOrFailingDiskStopsACompactionWithEverythingReadable) {
  FaultEnv fault(Env::Default());
  env_ = &fault;
  Open();
  PutMany(0, 12);
  PutMany(12, 1);
  for (uint64_t i = 0; i < 12; ++i) {
    if (i % 4 != 0) Delete(i);
  }
  fault.SetPathGlob("*/volumes/*.vol");
  fault.FailWritesAfter(0, ENOSPC);
  for (int i = 0; i < 20; ++i) (void)store_->Compact();
  EXPECT_EQ(store_->volume_stats().compactions, 0u);
  EXPECT_FALSE(store_->disk_failed());  // a full disk is not a failed one
  EXPECT_TRUE(VolumeExists(1));
  ExpectContents(*store_);
  // Room again: the next try compacts.
  fault.Disarm();
  CompactUntil(1);
  ExpectContents(*store_);

  // A failing fdatasync mid-compaction: the disk is failed (fsyncgate), the
  // copies cut off, the originals still read.
  PutMany(100, 24);
  for (uint64_t i = 100; i < 124; ++i) {
    if (i % 4 != 0) Delete(i);
  }
  fault.SetPathGlob("*/volumes/*");
  fault.FailSyncsAfter(0);
  for (int i = 0; i < 20; ++i) (void)store_->Compact();
  EXPECT_TRUE(store_->disk_failed());
  ExpectContents(*store_);
  fault.Disarm();
  store_.reset();
  env_ = Env::Default();
  Open();
  ExpectContents(*store_);
}

}  // namespace
}  // namespace dfs::filenode
