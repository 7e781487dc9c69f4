#include "filenode/chunk_store.h"

#include <cstring>
#include <map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/checksum.h"
#include "common/crc32c_combine.h"
#include "common/env.h"
#include "common/units.h"
#include "filenode/volume_format.h"
#include "filenode/volume_store.h"

namespace dfs::filenode {

ChunkStore::ChunkStore(std::string dir, ChunkStoreOptions options)
    : root_(dir + "/chunks"),
      options_(options),
      env_(options.env != nullptr ? options.env : Env::Default()),
      trash_(dir + "/trash", env_),
      volumes_(std::make_unique<VolumeStore>(root_ + "/volumes", options.volume_size, options.volume_prepare,
                                             trash_, env_)) {
  options_.volume_max_chunk = std::min(options_.volume_max_chunk, kMaxVolumeChunk);
}
ChunkStore::~ChunkStore() = default;

std::string ChunkStore::StemPath(ChunkKey key) const {
  return fmt::format("{}/{}/{}", root_, ShardName(key.id), ChunkStem(key));
}

namespace {

// A stored chunk checked against its .meta: the metadata, or why it is bad.
Result<ChunkMeta> CheckChunk(Env* env, const std::string& stem, ChunkKey key) {
  const std::string meta_path = stem + ".meta";
  auto bytes = ReadWholeFile(env, meta_path);
  if (!bytes) return bytes.error();
  DFS_ASSIGN_OR_RETURN(MetaHeader h, ValidateMeta(*bytes, meta_path));
  if (h.meta.key != key) {
    return Status::Corruption(fmt::format("{} describes {}", meta_path, ChunkName(h.meta.key)));
  }
  DFS_ASSIGN_OR_RETURN(FileStat st, env->Stat(stem + ".chunk"));
  if (st.size != h.meta.size) {
    return Status::Corruption(fmt::format("{}.chunk holds {} bytes but its .meta says {}", stem, st.size,
                                          h.meta.size));
  }
  return h.meta;
}

// The first and last 64 KiB block a read of `len` > 0 bytes at `offset` touches.
std::pair<uint64_t, uint64_t> BlocksOf(uint64_t offset, uint64_t len) {
  return {offset / kChunkBlockSize, (offset + len - 1) / kChunkBlockSize};
}

// Reads [offset, offset + out.size()) of the chunk `name` (`size` bytes, its
// data at `data_at` in `fd`, which `what` names), checking every block the
// range touches against `crcs`: the little-endian CRC32C of each of those
// blocks, from the first on. Files and volume records alike.
Status ReadBlocks(const std::string& name, uint64_t size, File& file, uint64_t data_at, std::string_view crcs, uint64_t offset, std::span<std::byte> out, uint32_t* out_crc) {
  const auto [b0, b1] = BlocksOf(offset, out.size());
  if (crcs.size() != 4 * (b1 - b0 + 1)) return Status::Corruption(fmt::format("{}: its checksums are cut short", name));
  const uint64_t start = b0 * kChunkBlockSize;
  const uint64_t end = std::min((b1 + 1) * kChunkBlockSize, size);
  // Whole blocks go straight into `out`; a range that starts or ends inside
  // a block reads the covering blocks into a scratch buffer first.
  std::unique_ptr<std::byte[]> scratch;
  std::byte* buf = out.data();
  if (start != offset || end != offset + out.size()) {
    scratch.reset(new std::byte[end - start]);
    buf = scratch.get();
  }
  DFS_ASSIGN_OR_RETURN(size_t got, file.PreadAll(buf, end - start, data_at + start));
  if (got != end - start) {
    return Status::Corruption(fmt::format("{}: {} ends at chunk offset {}, before its recorded size {}", name,
                                          file.path(),
                                          start + got, size));
  }
  uint32_t whole = 0;  // of the blocks read, which are `out` unless scratch was needed
  for (uint64_t b = b0; b <= b1; ++b) {
    uint64_t at = b * kChunkBlockSize;
    uint64_t len = std::min<uint64_t>(kChunkBlockSize, size - at);
    uint32_t want = LoadLe32(crcs.data() + 4 * (b - b0));
    uint32_t have = Crc32c(std::span<const std::byte>(buf + (at - start), len));
    if (want != have) {
      return Status::Corruption(fmt::format("{}: block at offset {} fails its checksum (stored {:08x}, read {:08x})",
                                            name, at, want, have));
    }
    whole = b == b0 ? have : Crc32cCombine(whole, have, len);
  }
  if (scratch) std::memcpy(out.data(), buf + (offset - start), out.size());
  if (out_crc != nullptr) *out_crc = scratch ? Crc32c(std::span<const std::byte>(out.data(), out.size())) : whole;
  return Status::OK();
}

}  // namespace

void ChunkStore::RemoveQuietly(const std::string& path) {
  if (Status s = env_->Remove(path); !s.ok() && s.code() != Code::kNotFound) {
    spdlog::warn("chunk store: {}", s.ToString());
  }
}

Status ChunkStore::NoteWriteError(Status s) {
  if (s.code() != Code::kIOError) return s;
  std::lock_guard lock(mu_);
  if (!disk_failed_.exchange(true)) {
    disk_error_ = s.message();
    spdlog::critical("chunk store {}: the disk failed ({}); taking no more chunks", root_, s.message());
  }
  return s;
}

std::string ChunkStore::disk_error() const {
  std::lock_guard lock(mu_);
  return disk_error_;
}

void ChunkStore::RemoveChunkFiles(const std::string& stem) {
  // The .chunk first: a lone .meta is dropped by Scan, and never read.
  RemoveQuietly(stem + ".chunk");
  RemoveQuietly(stem + ".meta");
}

Result<std::vector<ChunkMeta>> ChunkStore::Scan() {
  DFS_RETURN_IF_ERROR(env_->CreateDirs(root_));
  DFS_RETURN_IF_ERROR(trash_.Start());
  size_t temps = 0, dropped = 0;
  std::vector<ChunkMeta> found;
  for (int shard = 0; shard < 256; ++shard) {
    const std::string dir = fmt::format("{}/{:02x}", root_, shard);
    DFS_RETURN_IF_ERROR(env_->CreateDirs(dir));
    std::map<ChunkKey, bool> keys;  // key -> has a .chunk (else only a .meta)
    DFS_ASSIGN_OR_RETURN(std::vector<std::string> names, env_->ListDir(dir));
    for (const std::string& name : names) {
      if (name.ends_with(".tmp")) {
        RemoveQuietly(dir + "/" + name);
        ++temps;
      } else if (auto k = ParseChunkFileName(name, ".chunk"); k && ShardName(k->id) == ShardName(shard)) {
        keys[*k] = true;
      } else if (auto m = ParseChunkFileName(name, ".meta"); m && ShardName(m->id) == ShardName(shard)) {
        keys.try_emplace(*m, false);
      } else {
        spdlog::warn("chunk store: leaving alone {}/{} (not a chunk file name)", dir, name);
      }
    }
    for (const auto& [key, has_chunk] : keys) {
      const std::string stem = StemPath(key);
      if (!has_chunk) {
        spdlog::warn("chunk store: dropping {}.meta: its chunk is missing", stem);
        RemoveQuietly(stem + ".meta");
        continue;
      }
      auto meta = CheckChunk(env_, stem, key);
      if (!meta) {
        spdlog::warn("chunk store: dropping {}: {}", ChunkName(key), meta.error().message());
        RemoveQuietly(stem + ".chunk");
        RemoveQuietly(stem + ".meta");
        ++dropped;
        continue;
      }
      found.push_back(*meta);
    }
  }
  DFS_RETURN_IF_ERROR(env_->SyncDir(root_));
  DFS_ASSIGN_OR_RETURN(std::vector<VolumeStore::Found> in_volumes, volumes_->Scan());
  uint64_t used = 0, file_bytes = 0;
  {
    std::lock_guard lock(mu_);
    index_.clear();
    for (const auto& m : found) {
      index_[m.key] = Entry{m.size, m.crc32c, false};
      used += m.size;
      file_bytes += m.size;
    }
    for (const auto& v : in_volumes) {
      auto [it, inserted] = index_.try_emplace(v.key);
      if (!inserted) {
        // A put in a volume that is still its key's last record is newer
        // than the file: a file replacing a volume copy first writes a
        // synced tombstone. Here a crash came between a volume copy's commit
        // and the removal of the file it replaced.
        spdlog::warn("chunk store: dropping the file copy of {}: a newer copy is in {}", ChunkName(v.key),
                     volumes_->Path(v.at.volume));
        RemoveChunkFiles(StemPath(v.key));
        used -= it->second.size;
        file_bytes -= it->second.size;
        ++dropped;
      }
      it->second = Entry{v.size, v.crc32c, v.corrupt, v.at.volume, v.at.offset};
      used += v.size;
    }
    used_ = used;
    file_bytes_ = file_bytes;
    found.clear();
    found.reserve(index_.size());
    for (const auto& [key, e] : index_) found.push_back(ChunkMeta{key, e.size, e.crc32c});
  }
  volumes_->CollectGarbage();
  spdlog::info("chunk store {}: {} chunks ({} in volumes), {}; removed {} temp files, dropped {} bad chunks", root_,
               found.size(), in_volumes.size(), FormatSize(used), temps, dropped);
  return found;
}

Result<std::unique_ptr<ChunkWriter>> ChunkStore::Create(ChunkKey key, uint64_t expected_size,
                                                        uint64_t buffer_limit) {
  {
    std::lock_guard lock(mu_);
    if (disk_failed_) {
      return Status::Unavailable(fmt::format("{}: this node's disk failed ({}); it takes no chunks", ChunkName(key),
                                             disk_error_));
    }
    if (!writing_.insert(key).second) {
      return Status::Busy(ChunkName(key) + " is already being written on this node");
    }
  }
  if (expected_size > 0 && expected_size <= std::min(buffer_limit, options_.volume_max_chunk)) {
    // Buffered chunks reach the disk only at their batch: count what open
    // ones will need, so that many small chunks that each fit but together
    // do not are refused here, with NoSpace, not failed as a batch later.
    auto space = env_->Space(root_);
    const bool known = space.has_value();
    const uint64_t free = known ? space->available : 0;
    std::lock_guard lock(mu_);
    if (known && buffered_reserved_ + expected_size + RecordHeaderSize(expected_size) > free) {
      writing_.erase(key);
      return Status(Code::kNoSpace, fmt::format("reserve {} for {}: {} free, {} held by chunks being written",
                                                FormatSize(expected_size), ChunkName(key), FormatSize(free),
                                                FormatSize(buffered_reserved_)));
    }
    buffered_reserved_ += expected_size;
    return std::unique_ptr<ChunkWriter>(new ChunkWriter(*this, key, expected_size));
  }
  const std::string stem = StemPath(key);
  auto file = PendingReplace::Create(env_, stem + ".chunk");
  if (!file && file.error().code() == Code::kNotFound) {
    // The shard folder went missing under us; make it again.
    if (env_->CreateDirs(DirName(stem)).ok()) file = PendingReplace::Create(env_, stem + ".chunk");
  }
  if (!file) {
    Release(key);
    return NoteWriteError(file.error());
  }
  // Refuse what cannot fit before asking fallocate: a failing fallocate may
  // take every free block before it gives up, and for that moment every other
  // writer on the disk sees ENOSPC.
  if (auto space = env_->Space(root_); expected_size > 0 && space && expected_size > space->available) {
    file->Abandon();
    Release(key);
    return Status(Code::kNoSpace, fmt::format("reserve {} for {}: {} free", FormatSize(expected_size),
                                              ChunkName(key), FormatSize(space->available)));
  }
  if (expected_size > 0) {
    // A file system without fallocate still works, only without the early
    // NoSpace; anything else (ENOSPC, EFBIG) refuses the chunk now.
    auto reserved = file->file().Allocate(0, expected_size);
    if (!reserved) {
      file->Abandon();
      Release(key);
      return NoteWriteError(
          reserved.error().Prepend(fmt::format("reserve {} for {}", FormatSize(expected_size), ChunkName(key))));
    }
    if (!*reserved) expected_size = 0;
  }
  return std::unique_ptr<ChunkWriter>(new ChunkWriter(*this, key, stem, std::move(*file), expected_size));
}

Result<ChunkMeta> ChunkStore::Lookup(ChunkKey key) const {
  std::lock_guard lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) return Status::NotFound(ChunkName(key) + " is not stored on this node");
  return ChunkMeta{key, it->second.size, it->second.crc32c};
}

Status ChunkStore::Read(ChunkKey key, uint64_t offset, std::span<std::byte> out, uint32_t* crc) const {
  for (int attempt = 1;; ++attempt) {
    Entry e;
    {
      std::lock_guard lock(mu_);
      auto it = index_.find(key);
      if (it == index_.end()) return Status::NotFound(ChunkName(key) + " is not stored on this node");
      e = it->second;
    }
    if (offset > e.size || out.size() > e.size - offset) {
      return Status::InvalidArgument(fmt::format("{}: read of {} bytes at {} is past its end ({} bytes)",
                                                 ChunkName(key), out.size(), offset, e.size));
    }
    if (out.empty()) {
      if (crc != nullptr) *crc = 0;
      return Status::OK();
    }
    if (e.volume == 0) return ReadFileChunk(key, e.size, offset, out, crc);
    Status s = ReadVolumeChunk(key, e, offset, out, crc);
    if (s.ok() || attempt == 3) return s;
    // Compaction moved the record after we looked it up, and its old volume
    // may be gone (an open descriptor would have kept it; ours came after):
    // where it lives now. A failure where it still lives is the answer.
    std::lock_guard lock(mu_);
    auto it = index_.find(key);
    if (it == index_.end() || (it->second.volume == e.volume && it->second.offset == e.offset)) return s;
  }
}

Status ChunkStore::ReadFileChunk(ChunkKey key, uint64_t size, uint64_t offset, std::span<std::byte> out,
                                 uint32_t* crc) const {
  const std::string name = ChunkName(key);
  const std::string stem = StemPath(key);
  DFS_ASSIGN_OR_RETURN(std::unique_ptr<File> mfd, env_->Open(stem + ".meta", OpenMode::kRead));
  char header[kMetaHeaderSize];
  DFS_ASSIGN_OR_RETURN(size_t got, mfd->PreadAll(header, sizeof header, 0));
  DFS_ASSIGN_OR_RETURN(MetaHeader h, DecodeMetaHeader(std::string_view(header, got), stem + ".meta"));
  if (h.meta.key != key || h.meta.size != size) {
    return Status::Corruption(fmt::format("{}: its .meta no longer matches the chunk", name));
  }
  const auto [b0, b1] = BlocksOf(offset, out.size());
  std::string crcs((b1 - b0 + 1) * 4, '\0');
  DFS_ASSIGN_OR_RETURN(got, mfd->PreadAll(crcs.data(), crcs.size(), MetaBlockCrcOffset(b0)));
  if (got != crcs.size()) return Status::Corruption(fmt::format("{}: its .meta is cut short", name));
  DFS_ASSIGN_OR_RETURN(std::unique_ptr<File> fd, env_->Open(stem + ".chunk", OpenMode::kRead));
  return ReadBlocks(name, size, *fd, 0, crcs, offset, out, crc);
}

Status ChunkStore::ReadVolumeChunk(ChunkKey key, const Entry& e, uint64_t offset, std::span<std::byte> out,
                                   uint32_t* crc) const {
  const std::string name = ChunkName(key);
  const std::string path = volumes_->Path(e.volume);
  DFS_ASSIGN_OR_RETURN(std::unique_ptr<File> fd, env_->Open(path, OpenMode::kRead));
  // The whole header, its checksum and table included: one read, and a
  // record damaged since the scan is Corruption, never a wrong byte.
  const std::string what = fmt::format("{} at offset {}", path, e.offset);
  std::string header(RecordHeaderSize(e.size), '\0');
  DFS_ASSIGN_OR_RETURN(size_t got, fd->PreadAll(header.data(), header.size(), e.offset));
  header.resize(got);
  auto h = DecodeRecordHeader(header, what);
  if (!h) return h.error().Prepend(name);
  if (h->type != RecordType::kPut || h->key != key || h->size != e.size) {
    return Status::Corruption(fmt::format("{}: the record at {} no longer holds it", name, what));
  }
  const auto [b0, b1] = BlocksOf(offset, out.size());
  std::string_view crcs = std::string_view(header).substr(RecordBlockCrcOffset(b0), 4 * (b1 - b0 + 1));
  return ReadBlocks(name, e.size, *fd, e.offset + header.size(), crcs, offset, out, crc);
}

Status ChunkStore::Delete(ChunkKey key) {
  Entry e;
  {
    std::lock_guard lock(mu_);
    auto it = index_.find(key);
    if (it == index_.end()) return Status::NotFound(ChunkName(key) + " is not stored on this node");
    e = it->second;
    used_ -= e.size;
    if (e.volume == 0) file_bytes_ -= e.size;
    index_.erase(it);
    if (auto m = moving_.find(key); m != moving_.end()) {
      // Compaction has written a copy past the record and will switch to
      // it: this tombstone must name the copy, or a restart's scan would
      // find the copy after it and bring the chunk back. Under the lock, so
      // the compaction sees the chunk deleted and its tombstone's volume
      // together; it counts both records dead (chunk_compaction.cc).
      auto tomb = volumes_->AppendTombstone(key, {m->second.to_volume, m->second.to_offset}, /*sync=*/false);
      m->second.deleted = true;
      m->second.tomb_volume = tomb ? *tomb : 0;
      if (!tomb) return tomb.error().Prepend("delete " + ChunkName(key));
      return Status::OK();
    }
  }
  if (e.volume != 0) {
    // Not synced: the next batch's fdatasync carries it, and a deletion lost
    // in a crash only brings back a chunk the master deletes again. Without
    // a tombstone the record is still dead to this process; its volume may
    // go once nothing else in it lives.
    auto tomb = volumes_->Bury(key, {e.volume, e.offset}, e.size);
    volumes_->CollectGarbage();
    if (!tomb) return tomb.error().Prepend("delete " + ChunkName(key));
    return Status::OK();
  }
  // No folder fsync: a deletion lost in a crash brings the chunk back, the
  // full report lists it, and the master asks for the deletion again.
  // The .chunk first (a lone .meta is dropped by the next scan), and into
  // the trash: its blocks are freed off this thread.
  const std::string stem = StemPath(key);
  Status s = trash_.Discard(stem + ".chunk");
  if (s.code() == Code::kNotFound) s = Status::OK();
  RemoveQuietly(stem + ".meta");
  return s;
}

bool ChunkStore::MarkCorrupt(ChunkKey key) {
  std::lock_guard lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end() || it->second.corrupt) return false;
  it->second.corrupt = true;
  return true;
}

std::vector<ChunkStore::Listed> ChunkStore::List() const {
  std::lock_guard lock(mu_);
  std::vector<Listed> out;
  out.reserve(index_.size());
  for (const auto& [key, e] : index_) out.push_back(Listed{ChunkMeta{key, e.size, e.crc32c}, e.corrupt});
  return out;
}

uint64_t ChunkStore::used_bytes() const {
  std::lock_guard lock(mu_);
  return used_;
}

uint64_t ChunkStore::disk_bytes() const {
  uint64_t files = 0;
  {
    std::lock_guard lock(mu_);
    files = file_bytes_;
  }
  return files + volumes_->stats().bytes;
}

uint64_t ChunkStore::chunk_count() const {
  std::lock_guard lock(mu_);
  return index_.size();
}

Result<ChunkStore::Place> ChunkStore::Locate(ChunkKey key) const {
  std::lock_guard lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) return Status::NotFound(ChunkName(key) + " is not stored on this node");
  return Place{it->second.volume, it->second.offset};
}

std::string ChunkStore::VolumePath(uint32_t volume) const { return volumes_->Path(volume); }

ChunkStore::VolumeStats ChunkStore::volume_stats() const {
  VolumeStore::Stats s = volumes_->stats();
  VolumeStats out;
  out.volumes = s.volumes;
  out.bytes = s.bytes;
  out.commits = s.commits;
  out.records = s.records;
  out.indexes_used = s.indexes_used;
  out.prepared = s.prepared;
  out.prepare_declined = s.prepare_declined;
  out.live_bytes = s.live_bytes;
  out.compactions = s.compactions;
  out.compacted_records = s.compacted_records;
  out.compacted_bytes = s.compacted_bytes;
  out.removed = s.removed;
  out.reclaimed_bytes = s.reclaimed_bytes;
  return out;
}

std::vector<Result<ChunkMeta>> ChunkStore::CommitBuffered(std::span<ChunkWriter* const> writers) {
  std::vector<Result<ChunkMeta>> results(writers.size());
  std::vector<VolumeStore::Put> puts;
  std::vector<size_t> batch;  // index in `writers` of each put
  for (size_t i = 0; i < writers.size(); ++i) {
    ChunkWriter& w = *writers[i];
    if (!w.buffered() || w.finished_ || w.aborted_) {
      results[i] = Status::Internal(ChunkName(w.key_) + ": group commit of a closed or unbuffered writer");
      continue;
    }
    w.CloseBlocks();
    puts.push_back(VolumeStore::Put{w.key_, std::span<const std::byte>(w.buffer_.get(), w.size_), w.crc_,
                                    w.blocks_});
    batch.push_back(i);
  }
  if (puts.empty()) return results;
  auto at = volumes_->Append(puts);
  if (!at) {
    IgnoreError(NoteWriteError(at.error()));  // recorded; the writers hear of it below
    for (size_t i : batch) results[i] = writers[i]->Fail(at.error());
    return results;
  }
  struct Shadowed {
    ChunkKey key;
    VolumeStore::Location old;
    uint64_t size;
    uint32_t by;
  };
  std::vector<Shadowed> shadowed;
  std::vector<std::string> old_files;
  {
    std::lock_guard lock(mu_);
    for (size_t k = 0; k < batch.size(); ++k) {
      ChunkWriter& w = *writers[batch[k]];
      const VolumeStore::Location& loc = (*at)[k];
      auto [it, inserted] = index_.try_emplace(w.key_);
      if (!inserted) {
        used_ -= it->second.size;
        if (it->second.volume != 0) {
          shadowed.push_back(Shadowed{w.key_, {it->second.volume, it->second.offset}, it->second.size, loc.volume});
        } else {
          file_bytes_ -= it->second.size;
          old_files.push_back(StemPath(w.key_));
        }
      }
      it->second = Entry{w.size_, w.crc_, false, loc.volume, loc.offset};
      used_ += w.size_;
      w.finished_ = true;
      results[batch[k]] = ChunkMeta{w.key_, w.size_, w.crc_};
    }
  }
  for (const Shadowed& sh : shadowed) volumes_->Shadow(sh.key, sh.old, sh.size, sh.by);
  // Still holding the writers' claims on these keys, so no new file copy of
  // one can appear before its old files are gone.
  for (const std::string& stem : old_files) RemoveChunkFiles(stem);
  for (size_t i : batch) {
    ChunkWriter& w = *writers[i];
    w.buffer_.reset();
    Release(w.key_, w.allocated_);
  }
  volumes_->CollectGarbage();
  return results;
}

Result<uint32_t> ChunkStore::BuryVolumeCopy(ChunkKey key) {
  VolumeStore::Location at;
  {
    std::lock_guard lock(mu_);
    auto it = index_.find(key);
    if (it == index_.end() || it->second.volume == 0) return 0u;
    at = {it->second.volume, it->second.offset};
  }
  return volumes_->AppendTombstone(key, at, /*sync=*/true);
}

void ChunkStore::Install(const ChunkMeta& meta, uint32_t tombstone_volume) {
  Entry old;
  {
    std::lock_guard lock(mu_);
    auto [it, inserted] = index_.try_emplace(meta.key);
    if (!inserted) {
      used_ -= it->second.size;
      old = it->second;
      if (old.volume == 0) file_bytes_ -= old.size;
    }
    it->second = Entry{meta.size, meta.crc32c, false};
    used_ += meta.size;
    file_bytes_ += meta.size;
  }
  if (old.volume != 0) {
    volumes_->Shadow(meta.key, {old.volume, old.offset}, old.size,
                     tombstone_volume != 0 ? tombstone_volume : old.volume);
    volumes_->CollectGarbage();
  }
}

void ChunkStore::Release(ChunkKey key, uint64_t buffered) {
  std::lock_guard lock(mu_);
  writing_.erase(key);
  buffered_reserved_ -= std::min(buffered_reserved_, buffered);
}

bool ChunkStore::IsStoredInFile(ChunkKey key) const {
  std::lock_guard lock(mu_);
  auto it = index_.find(key);
  return it != index_.end() && it->second.volume == 0;
}

}  // namespace dfs::filenode
