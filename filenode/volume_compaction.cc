// Compaction's half of the volume store: which sealed volume is worth
// compacting, reading a live record back checked, and moving what a
// compacted volume keeps dead elsewhere onto tombstones of its own. The
// copies themselves go through Write/Commit, the group-commit path
// (volume_store.cc); ChunkStore::Compact (chunk_compaction.cc) drives it.
#include <algorithm>
#include <set>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/checksum.h"
#include "common/crc32c_combine.h"
#include "filenode/volume_format.h"
#include "filenode/volume_store.h"

namespace dfs::filenode {
namespace {

// A tombstone's bytes: what each pin of a compacted volume costs again.
const uint64_t kTombstoneBytes = RecordHeaderSizeForBlocks(0);

}  // namespace

std::optional<VolumeStore::Candidate> VolumeStore::PickForCompaction(double threshold, uint64_t min_dead,
                                                                     const std::set<uint32_t>& skip) const {
  std::lock_guard lock(mu_);
  std::optional<Candidate> best;
  uint64_t best_dead = 0;
  for (const auto& [number, v] : volumes_) {
    if (!v.sealed || v.end == 0 || skip.count(number) != 0) continue;
    // What a compaction must write again (live records, a tombstone per
    // pin) is not gained: a volume of nothing but pins is not worth
    // rewriting as the same pins, again and again.
    const uint64_t kept = v.live_bytes + v.pins * kTombstoneBytes;
    const uint64_t dead = v.end > kept ? v.end - kept : 0;
    if (dead < min_dead || static_cast<double>(dead) <= threshold * static_cast<double>(v.end)) continue;
    if (v.live == 0 && v.pins == 0) continue;  // CollectGarbage's already
    if (!best || dead > best_dead) {
      best = Candidate{number, v.end, v.live, v.live_bytes, v.pins};
      best_dead = dead;
    }
  }
  return best;
}

Result<std::vector<IndexedRecord>> VolumeStore::SealedRecords(uint32_t volume) {
  bool from_index = false;
  return LoadSealed(volume, from_index);
}

Result<VolumeStore::Record> VolumeStore::ReadPut(File& file, Location at, ChunkKey key, uint64_t size) {
  const std::string what = fmt::format("{} at offset {}", file.path(), at.offset);
  const uint64_t header_size = RecordHeaderSize(size);
  std::string header(header_size, '\0');
  DFS_ASSIGN_OR_RETURN(size_t got, file.PreadAll(header.data(), header.size(), at.offset));
  header.resize(got);
  DFS_ASSIGN_OR_RETURN(RecordHeader h, DecodeRecordHeader(header, what));
  if (h.type != RecordType::kPut || h.key != key || h.size != size) {
    return Status::Corruption(fmt::format("{}: the record no longer holds {}", what, ChunkName(key)));
  }
  Record r;
  r.data.resize(size);
  DFS_ASSIGN_OR_RETURN(got, file.PreadAll(r.data.data(), size, at.offset + header_size));
  if (got != size) {
    return Status::Corruption(fmt::format("{}: {} is cut short at {} of {} bytes", what, ChunkName(key), got, size));
  }
  // Every block against its checksum, and the whole against the chunk's
  // (combined from the blocks': the bytes are summed once).
  r.block_crcs.reserve(h.block_count);
  uint32_t whole = 0;
  for (uint32_t i = 0; i < h.block_count; ++i) {
    const uint64_t from = uint64_t{i} * kChunkBlockSize;
    const uint64_t len = std::min<uint64_t>(kChunkBlockSize, size - from);
    const uint32_t crc = Crc32c(std::span<const std::byte>(r.data.data() + from, len));
    if (crc != LoadLe32(header.data() + RecordBlockCrcOffset(i))) {
      return Status::Corruption(
          fmt::format("{}: {} fails its checksum in the block at chunk offset {}", what, ChunkName(key), from));
    }
    r.block_crcs.push_back(crc);
    whole = i == 0 ? crc : Crc32cCombine(whole, crc, len);
  }
  if (whole != h.crc32c) {
    return Status::Corruption(fmt::format("{}: {} fails its whole-chunk checksum", what, ChunkName(key)));
  }
  r.crc32c = whole;
  return r;
}

Status VolumeStore::Repin(uint32_t volume) {
  // Its pins that still matter: records of volumes that are still there.
  std::vector<Pin> pins;
  std::string records;
  {
    std::lock_guard lock(mu_);
    auto it = volumes_.find(volume);
    if (it == volumes_.end() || it->second.pins == 0) return Status::OK();
    for (const Pin& p : it->second.pinned) {
      auto earlier = volumes_.find(p.at.volume);
      if (earlier == volumes_.end()) continue;
      auto count = earlier->second.shadowed_into.find(volume);
      if (count == earlier->second.shadowed_into.end() || count->second == 0) continue;
      pins.push_back(p);
      EncodeTombstone(records, p.key, p.at.volume, p.at.offset);
    }
  }
  if (pins.empty()) return Status::OK();
  // One write and one fdatasync for all of them, as AppendTombstone does
  // for one. A tombstone naming a record that something later shadows
  // anyway is ignored by a scan: these delete nothing that lives.
  std::unique_lock lock(mu_);
  DFS_ASSIGN_OR_RETURN(Volume * a, WritableLocked(lock, 0, records.size()));
  const uint32_t into = a->number;
  const uint64_t start = a->end;
  std::shared_ptr<ActiveFile> file = a->file;
  if (Status s = file->io->PwriteAll(records.data(), records.size(), start); !s.ok()) {
    TruncateBackLocked(*a, *file, start);
    return s.Prepend(fmt::format("tombstones for what {} keeps dead", Path(volume)));
  }
  a->end = start + records.size();
  for (size_t i = 0; i < pins.size(); ++i) {
    const Pin& p = pins[i];
    a->records.push_back(IndexedRecord{
        start + i * kTombstoneBytes, RecordHeader{RecordType::kTombstone, p.key, 0, 0, 0, p.at.volume, p.at.offset}});
  }
  lock.unlock();
  if (Status s = Sync(*file); !s.ok()) {
    lock.lock();
    if (auto it = volumes_.find(into); it != volumes_.end() && !it->second.sealed) SealLocked(it->second);
    return s.Prepend(fmt::format("tombstones for what {} keeps dead", Path(volume)));
  }
  // Durable: the pins move over, and `volume` may go.
  lock.lock();
  auto it = volumes_.find(volume);
  auto to = volumes_.find(into);
  if (it == volumes_.end() || to == volumes_.end()) return Status::OK();
  Volume& v = it->second;
  for (const Pin& p : pins) {
    auto earlier = volumes_.find(p.at.volume);
    if (earlier == volumes_.end()) continue;  // gone meanwhile: nothing left to keep dead
    auto count = earlier->second.shadowed_into.find(volume);
    if (count == earlier->second.shadowed_into.end() || count->second == 0) continue;
    if (--count->second == 0) earlier->second.shadowed_into.erase(count);
    ++earlier->second.shadowed_into[into];
    v.pins -= std::min<uint64_t>(v.pins, 1);
    ++to->second.pins;
    to->second.pinned.push_back(p);
    ++repinned_;
  }
  std::set<std::pair<uint32_t, uint64_t>> moved;
  for (const Pin& p : pins) moved.emplace(p.at.volume, p.at.offset);
  std::erase_if(v.pinned, [&](const Pin& p) { return moved.count({p.at.volume, p.at.offset}) != 0; });
  // Left: a record a tombstone appended just before this volume was sealed
  // shadows, whose delete counted it only now. It goes with its volume.
  if (v.pins == 0) maybe_dead_.insert(volume);
  return Status::OK();
}

}  // namespace dfs::filenode
