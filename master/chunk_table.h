// Every chunk some file holds, by id (the namespace's chunk table).
//
// Sharded in 64 Abseil flat hash maps picked by a hash of the id, so that no
// single table ever holds them all: a flat hash map grows by doubling, and a
// doubling moves every entry into a new array while the old one is still
// held. With 10 M chunks in one table that was a +400 MiB spike on the
// master's peak RSS and a stall of seconds on its one metadata thread
// (master-scale, the doubling at 7.34 M files: VmRSS 1,479 MiB, VmHWM
// 1,923 MiB, and on a loaded machine every client timed out).
// Shards of random-like sizes double at different moments, each a 1/64th of
// that spike and stall; lookups still cost one hash and one probe.
//
// Not thread-safe: owned by the metadata thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include <absl/container/flat_hash_map.h>
#include <absl/hash/hash.h>

namespace dfs::master {

// What the master knows of one chunk. A chunk id never changes meaning: a
// rewrite makes new chunks, so these fields are fixed for the id's life.
// 16 bytes (24 with its key in the table): chunks are under 4 GiB (the
// master caps the chunk size at 2 GiB), so the size fits 32 bits, and a
// version fits 24.
struct ChunkRecord {
  uint32_t size = 0;
  uint32_t version : 24 = 0;
  // Replicas wanted: the highest replication of the files that hold it
  // (what repair restores). Set when a file takes the chunk, so recovery
  // derives it from the files as the live master did.
  uint32_t replication : 8 = 0;
  uint32_t checksum = 0;
  uint32_t refs = 0;  // files that hold it (cp shares chunks)
};
static_assert(sizeof(ChunkRecord) == 16);

class ChunkTable {
 public:
  const ChunkRecord* Find(uint64_t id) const {
    const Map& m = shards_[Pick(id)];
    auto it = m.find(id);
    return it == m.end() ? nullptr : &it->second;
  }
  ChunkRecord* Find(uint64_t id) {
    Map& m = shards_[Pick(id)];
    auto it = m.find(id);
    return it == m.end() ? nullptr : &it->second;
  }
  // The entry for `id`, made from `record` if there was none.
  ChunkRecord& Insert(uint64_t id, const ChunkRecord& record) {
    auto [it, inserted] = shards_[Pick(id)].try_emplace(id, record);
    size_ += inserted ? 1 : 0;
    return it->second;
  }
  void Erase(uint64_t id) { size_ -= shards_[Pick(id)].erase(id); }
  size_t size() const { return size_; }
  // Every chunk, in no particular order: f(id, record).
  template <typename F>
  void ForEach(F&& f) const {
    for (const Map& m : shards_) {
      for (const auto& [id, rec] : m) f(id, rec);
    }
  }

 private:
  using Map = absl::flat_hash_map<uint64_t, ChunkRecord>;
  static constexpr int kShardBits = 6;
  // The hash's top bits: ids are sequential, and a hash spreads them over
  // the shards unevenly enough (binomially) that the shards cross their
  // growth thresholds thousands of inserts apart, not all at once.
  static size_t Pick(uint64_t id) { return absl::Hash<uint64_t>{}(id) >> (64 - kShardBits); }

  std::array<Map, size_t{1} << kShardBits> shards_;
  size_t size_ = 0;
};

}  // namespace dfs::master
