#include "filenode/volume_store.h"

#include <sys/uio.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <unordered_map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/checksum.h"
#include "common/env.h"
#include "common/units.h"
#include "filenode/volume_format.h"

namespace dfs::filenode {
namespace {

// Whether the file system of `path` has 32 times `bytes` free: the last
// free space is not for zeros.
bool RoomToPrepare(Env* env, const std::string& path, uint64_t bytes) {
  auto space = env->Space(path);
  return space && space->available >= 32 * bytes;
}

// Writes zeros over [from, to) of `path` and makes them durable, through a
// descriptor of its own.
Status ZeroFill(Env* env, const std::string& path, uint64_t from, uint64_t to) {
  DFS_ASSIGN_OR_RETURN(std::unique_ptr<File> file, env->Open(path, OpenMode::kWriteExisting));
  static const std::string zeros(1 << 20, '\0');
  for (uint64_t at = from; at < to;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), to - at));
    DFS_RETURN_IF_ERROR(file->PwriteAll(zeros.data(), n, at));
    // Out to the disk a MiB at a time: one fdatasync of them all would hold
    // the disk for milliseconds, and every batch's fdatasync behind it.
    DFS_RETURN_IF_ERROR(file->WriteOut(at, n));
    at += n;
  }
  return file->Sync();
}

// Cuts `path` to `size` and makes that durable (prepared zeros given back).
void CutTo(Env* env, const std::string& path, uint64_t size) {
  auto file = env->Open(path, OpenMode::kWriteExisting);
  if (!file) return;  // removed meanwhile: nothing to give back
  Status s = (*file)->Truncate(size);
  if (s.ok()) s = (*file)->Sync();
  if (!s.ok()) spdlog::warn("chunk store: cannot cut {} back to {} bytes: {}", path, size, s.ToString());
}

}  // namespace

VolumeStore::VolumeStore(std::string dir, uint64_t volume_size, uint64_t prepare, Trash& trash, Env* env)
    : dir_(std::move(dir)),
      volume_size_(std::max<uint64_t>(volume_size, 1)),
      prepare_(prepare),
      trash_(trash),
      env_(env) {}

VolumeStore::~VolumeStore() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  prepare_cv_.notify_all();
  if (preparer_.joinable()) preparer_.join();
}

bool VolumeStore::PrepareWantedLocked() const {
  if (prepare_ == 0 || active_ == 0) return false;
  auto it = volumes_.find(active_);
  if (it == volumes_.end()) return false;
  const Volume& v = it->second;
  if (v.sealed || !v.file || v.file->failed || v.prepare_failed || v.preparing) return false;
  // Between half and all of `prepare_` ahead of the end, in segments of at
  // least half of it (less only at the volume's end).
  const uint64_t have = std::max(v.prepared, v.end);
  const uint64_t target = std::min(v.end + prepare_, volume_size_);
  return target > have && (target - have >= prepare_ / 2 || target == volume_size_);
}

void VolumeStore::PrepareLoop() {
  std::unique_lock lock(mu_);
  for (;;) {
    prepare_cv_.wait(lock, [&] { return stopping_ || PrepareWantedLocked(); });
    if (stopping_) return;
    Volume& v = volumes_.at(active_);
    const uint32_t number = v.number;
    const uint64_t from = std::max(v.prepared, v.end);
    const uint64_t to = std::min(v.end + prepare_, volume_size_);
    const uint64_t cuts = v.cuts;
    const std::string path = v.file->path;
    v.preparing = true;
    v.preparing_from = from;
    lock.unlock();
    const bool room = RoomToPrepare(env_, path, to - from);
    Status s = room ? ZeroFill(env_, path, from, to) : Status::OK();
    lock.lock();
    prepare_cv_.notify_all();  // a batch may be waiting for this segment
    auto it = volumes_.find(number);
    if (it == volumes_.end()) continue;
    Volume& w = it->second;
    w.preparing = false;
    if (!room) {
      // Nothing written; this volume appends from now on.
      SPDLOG_DEBUG("chunk store: too little free space to prepare {} bytes in {}; appending", to - from, path);
      w.prepare_failed = true;
      ++prepare_declined_;
      continue;
    }
    if (!s.ok()) {
      spdlog::warn("chunk store: cannot prepare space in {}: {}; appending without it", path, s.ToString());
      w.prepare_failed = true;
      // Batches wait on the lock, so nothing is written past the end meanwhile.
      CutTo(env_, path, std::max(w.end, w.prepared));
      continue;
    }
    if (w.sealed) {
      CutTo(env_, path, w.end);  // sealed while we wrote: its index says where it ends
      continue;
    }
    if (w.cuts != cuts) continue;  // cut back meanwhile: the next round starts again from its end
    w.prepared = to;
    prepared_bytes_ += to - from;
  }
}

Result<VolumeStore::Volume*> VolumeStore::WritableLocked(std::unique_lock<std::mutex>& lock, uint64_t bytes,
                                                          uint64_t write) {
  for (;;) {
    DFS_ASSIGN_OR_RETURN(Volume * v, ActiveLocked(bytes));
    if (!v->preparing || v->end + write <= v->preparing_from) return v;
    prepare_cv_.wait(lock);
  }
}

std::string VolumeStore::Path(uint32_t volume) const { return fmt::format("{}/{}", dir_, VolumeFileName(volume)); }

std::string VolumeStore::IndexPath(uint32_t volume) const {
  return fmt::format("{}/{}", dir_, VolumeIndexName(volume));
}

void VolumeStore::WritePendingIndexes() {
  std::vector<PendingIndex> pending;
  {
    std::lock_guard lock(mu_);
    pending.swap(pending_indexes_);
  }
  for (const PendingIndex& p : pending) {
    // Without it the next start-up reads the volume's headers instead.
    if (Status s = WriteFileDurably(env_, IndexPath(p.number), EncodeVolumeIndex(p.number, p.size, p.records)); !s.ok()) {
      spdlog::warn("chunk store: cannot write the index of {}: {}", Path(p.number), s.ToString());
    }
  }
}

Result<VolumeStore::Volume*> VolumeStore::ActiveLocked(uint64_t bytes) {
  if (active_ != 0) {
    Volume& a = volumes_.at(active_);
    // A batch bigger than a whole volume still goes somewhere: alone.
    if (!a.sealed && (bytes == 0 || a.end == 0 || a.end + bytes <= volume_size_)) return &a;
    if (!a.sealed) {
      // Its prepared zeros go: the index written at the seal says where it
      // ends. (Zeros being written now are cut by the preparer.)
      if (a.prepared > a.end || a.preparing) {
        if (Status s = a.file->io->Truncate(a.end); !s.ok()) spdlog::warn("chunk store: {}", s.ToString());
      }
      a.prepared = std::min(a.prepared, a.end);
      // Sealed volumes are never torn: sync what tombstones came after the
      // last batch before leaving it. A failure only risks those deletions
      // (and the volume gets no index; the next scan reads its headers).
      if (Status s = Sync(*a.file); !s.ok()) {
        spdlog::warn("chunk store: sealing {}: {}", a.file->path, s.ToString());
      } else {
        pending_indexes_.push_back(PendingIndex{a.number, a.end, std::move(a.records)});
      }
      SealLocked(a);
    }
  }
  return CreateVolumeLocked();
}

Result<VolumeStore::Volume*> VolumeStore::CreateVolumeLocked() {
  const uint32_t number = next_number_;
  auto file = std::make_shared<ActiveFile>();
  file->path = Path(number);
  DFS_ASSIGN_OR_RETURN(file->io, env_->Open(file->path, OpenMode::kCreateNew));
  // The name must be durable before a record in it is acknowledged:
  // fdatasync covers the file's data, not its folder entry.
  if (Status s = env_->SyncDir(dir_); !s.ok()) {
    file->io.reset();
    IgnoreError(env_->Remove(file->path));  // never used; the next scan would take it for an empty volume
    return s;
  }
  ++next_number_;
  Volume& v = volumes_[number];
  v.number = number;
  v.file = std::move(file);
  active_ = number;
  SPDLOG_DEBUG("chunk store: new volume {}", v.file->path);
  return &v;
}

void VolumeStore::SealLocked(Volume& v) {
  v.sealed = true;
  v.records = {};
  v.file.reset();  // a sync in flight keeps its own reference
  if (active_ == v.number) active_ = 0;
  maybe_dead_.insert(v.number);
}

void VolumeStore::TruncateBackLocked(Volume& v, ActiveFile& file, uint64_t to) {
  if (to > v.end) return;  // already cut back further
  if (Status s = file.io->Truncate(to); !s.ok()) {
    // Its end is unknown now: nothing more goes into it.
    spdlog::error("chunk store: cannot truncate {} back to {}: {}; sealing it", file.path, to, s.ToString());
    if (!v.sealed) SealLocked(v);
  }
  v.end = to;
  v.prepared = std::min(v.prepared, to);
  ++v.cuts;
  std::erase_if(v.records, [&](const IndexedRecord& r) { return r.offset >= to; });
}

Status VolumeStore::Sync(ActiveFile& file) {
  std::lock_guard lock(sync_mu_);
  if (file.failed) {
    return Status::IOError(fmt::format("fdatasync {}: an earlier fdatasync of it failed", file.path));
  }
  Status s = file.io->Sync();
  if (!s.ok()) file.failed = true;
  return s;
}

Result<std::vector<VolumeStore::Location>> VolumeStore::Append(std::span<const Put> puts) {
  DFS_ASSIGN_OR_RETURN(Batch batch, Write(puts));
  DFS_RETURN_IF_ERROR(Commit(batch));
  return batch.at_;
}

Status VolumeStore::MakeRoom(uint64_t bytes) {
  {
    std::unique_lock lock(mu_);
    DFS_RETURN_IF_ERROR(WritableLocked(lock, bytes, 0).status());
  }
  WritePendingIndexes();
  return Status::OK();
}

Result<VolumeStore::Batch> VolumeStore::Write(std::span<const Put> puts, bool may_roll_over) {
  Batch batch;
  if (puts.empty()) {
    batch.done_ = true;
    return batch;
  }
  std::string headers;
  headers.reserve(puts.size() * RecordHeaderSize(kChunkBlockSize));
  std::vector<size_t> header_at;  // in `headers`
  std::vector<uint64_t> record_at;  // from the batch's start
  header_at.reserve(puts.size() + 1);
  record_at.reserve(puts.size());
  uint64_t bytes = 0;
  for (const Put& p : puts) {
    header_at.push_back(headers.size());
    record_at.push_back(bytes);
    EncodePutHeader(headers, p.key, static_cast<uint32_t>(p.data.size()), p.crc32c, p.block_crcs);
    bytes += headers.size() - header_at.back() + p.data.size();
  }
  header_at.push_back(headers.size());
  std::vector<iovec> iov;
  iov.reserve(2 * puts.size());
  for (size_t i = 0; i < puts.size(); ++i) {
    iov.push_back(iovec{headers.data() + header_at[i], header_at[i + 1] - header_at[i]});
    if (!puts[i].data.empty()) {
      iov.push_back(iovec{const_cast<std::byte*>(puts[i].data.data()), puts[i].data.size()});
    }
  }

  std::unique_lock lock(mu_);
  DFS_ASSIGN_OR_RETURN(Volume * v, WritableLocked(lock, may_roll_over ? bytes : 0, bytes));
  const uint32_t number = v->number;
  const uint64_t start = v->end;
  std::shared_ptr<ActiveFile> file = v->file;
  if (Status s = file->io->PwritevAll(iov, start); !s.ok()) {
    TruncateBackLocked(*v, *file, start);
    lock.unlock();
    WritePendingIndexes();
    return s.Prepend(fmt::format("batch of {} chunks", puts.size()));
  }
  v->end = start + bytes;
  for (size_t i = 0; i < puts.size(); ++i) {
    const Put& p = puts[i];
    v->records.push_back(IndexedRecord{start + record_at[i],
                                       RecordHeader{RecordType::kPut, p.key, static_cast<uint32_t>(p.data.size()),
                                                    p.crc32c, static_cast<uint32_t>(p.block_crcs.size()), 0, 0}});
  }
  // Live from now, so no collection takes the volume while it syncs unlocked.
  v->live += puts.size();
  v->live_bytes += bytes;
  const bool prepare = PrepareWantedLocked();
  lock.unlock();
  if (prepare) prepare_cv_.notify_all();

  batch.file_ = std::move(file);
  batch.volume_ = number;
  batch.start_ = start;
  batch.bytes_ = bytes;
  batch.at_.reserve(puts.size());
  for (uint64_t at : record_at) batch.at_.push_back(Location{number, start + at});
  return batch;
}

Status VolumeStore::Commit(Batch& batch) {
  if (batch.done_) return Status::OK();
  batch.done_ = true;
  const size_t count = batch.at_.size();
  // Unlocked: deletes keep appending tombstones behind the batch meanwhile.
  Status s = Sync(*batch.file_);
  WritePendingIndexes();
  std::unique_lock lock(mu_);
  if (!s.ok()) {
    if (auto it = volumes_.find(batch.volume_); it != volumes_.end()) {
      // Nothing shadows a record of a batch before it is committed (its
      // writer, or compaction's switch, does that only after), so these
      // counts are exactly the batch's.
      it->second.live -= std::min<uint64_t>(it->second.live, count);
      it->second.live_bytes -= std::min(it->second.live_bytes, batch.bytes_);
      TruncateBackLocked(it->second, *batch.file_, batch.start_);
      if (!it->second.sealed) SealLocked(it->second);
    }
    spdlog::error("chunk store: {}; a batch of {} chunks at offset {} failed, the volume is sealed", s.message(),
                  count, batch.start_);
    return s.Prepend(fmt::format("batch of {} chunks at offset {}", count, batch.start_));
  }
  ++commits_;
  records_ += count;
  return Status::OK();
}

Result<uint32_t> VolumeStore::AppendTombstone(ChunkKey key, Location target, bool sync) {
  std::string record;
  EncodeTombstone(record, key, target.volume, target.offset);
  std::unique_lock lock(mu_);
  DFS_ASSIGN_OR_RETURN(Volume * v, WritableLocked(lock, 0, record.size()));
  const uint32_t number = v->number;
  const uint64_t start = v->end;
  std::shared_ptr<ActiveFile> file = v->file;
  if (Status s = file->io->PwriteAll(record.data(), record.size(), start); !s.ok()) {
    TruncateBackLocked(*v, *file, start);
    return s;
  }
  v->end = start + record.size();
  v->records.push_back(
      IndexedRecord{start, RecordHeader{RecordType::kTombstone, key, 0, 0, 0, target.volume, target.offset}});
  if (!sync) return number;
  lock.unlock();
  Status s = Sync(*file);
  if (!s.ok()) {
    lock.lock();
    if (auto it = volumes_.find(number); it != volumes_.end() && !it->second.sealed) SealLocked(it->second);
    return s;
  }
  return number;
}

Result<uint32_t> VolumeStore::Bury(ChunkKey key, Location target, uint64_t size) {
  std::string record;
  EncodeTombstone(record, key, target.volume, target.offset);
  std::unique_lock lock(mu_);
  auto v = WritableLocked(lock, 0, record.size());
  Status s = v.has_value() ? (*v)->file->io->PwriteAll(record.data(), record.size(), (*v)->end) : v.error();
  if (!s.ok()) {
    if (v.has_value()) TruncateBackLocked(**v, *(*v)->file, (*v)->end);
    // Dead to this process all the same; its volume may go once nothing
    // else in it lives.
    ShadowLocked(key, target, size, target.volume);
    return s;
  }
  Volume& w = **v;
  w.records.push_back(
      IndexedRecord{w.end, RecordHeader{RecordType::kTombstone, key, 0, 0, 0, target.volume, target.offset}});
  w.end += record.size();
  ShadowLocked(key, target, size, w.number);
  return w.number;
}

void VolumeStore::Shadow(ChunkKey key, Location dead, uint64_t size, uint32_t by) {
  std::lock_guard lock(mu_);
  ShadowLocked(key, dead, size, by);
}

void VolumeStore::ShadowLocked(ChunkKey key, Location dead, uint64_t size, uint32_t by) {
  auto it = volumes_.find(dead.volume);
  if (it == volumes_.end()) return;
  Volume& v = it->second;
  if (v.live > 0) --v.live;
  v.live_bytes -= std::min(v.live_bytes, PutBytes(size));
  if (by > dead.volume) {
    if (auto later = volumes_.find(by); later != volumes_.end()) {
      ++v.shadowed_into[by];
      ++later->second.pins;
      later->second.pinned.push_back(Pin{key, dead});
    }
  }
  if (v.live == 0) maybe_dead_.insert(dead.volume);
}

void VolumeStore::CollectGarbage() {
  std::lock_guard gc(gc_mu_);
  for (;;) {
    std::string path, index_path;
    uint64_t bytes = 0;
    {
      std::lock_guard lock(mu_);
      // Each event that can make a volume removable (its last live record
      // dies, it is sealed, its last pin goes) puts it back in the set.
      auto dead = volumes_.end();
      while (!maybe_dead_.empty() && dead == volumes_.end()) {
        auto v = volumes_.find(*maybe_dead_.begin());
        maybe_dead_.erase(maybe_dead_.begin());
        if (v != volumes_.end() && v->second.sealed && v->second.live == 0 && v->second.pins == 0) dead = v;
      }
      if (dead == volumes_.end()) return;
      const uint32_t number = dead->first;
      for (const auto& [later, count] : dead->second.shadowed_into) {
        if (auto l = volumes_.find(later); l != volumes_.end()) {
          l->second.pins -= std::min(l->second.pins, count);
          std::erase_if(l->second.pinned, [&](const Pin& p) { return p.at.volume == number; });
          if (l->second.pins == 0) maybe_dead_.insert(later);
        }
      }
      path = Path(number);
      index_path = IndexPath(number);
      bytes = dead->second.end;
      volumes_.erase(dead);
      ++removed_;
      reclaimed_bytes_ += bytes;
    }
    // The volume before its index: a lone index is removed by the next scan.
    if (Status s = trash_.Discard(path); !s.ok() && s.code() != Code::kNotFound) {
      spdlog::warn("chunk store: cannot remove dead volume {}: {}", path, s.ToString());
    } else {
      spdlog::info("chunk store: removed {} ({}): every record in it is dead", path, FormatSize(bytes));
    }
    IgnoreError(env_->Remove(index_path));  // a lone index is removed by the next scan
    // A volume this removal unpinned may go next; it must never reach the
    // disk first, or its tombstones would vanish while the puts they delete
    // are still there.
    if (Status s = env_->SyncDir(dir_); !s.ok()) spdlog::warn("chunk store: {}", s.ToString());
  }
}

void VolumeStore::RetireDeadActive() {
  {
    std::lock_guard lock(mu_);
    if (active_ == 0) return;
    Volume& a = volumes_.at(active_);
    if (a.sealed || a.end == 0 || a.live > 0 || a.pins > 0 || a.preparing) return;
    // A tombstone for a record of an earlier volume that is still there
    // keeps it, whether or not its delete has counted it yet.
    for (const IndexedRecord& r : a.records) {
      if (r.h.type == RecordType::kTombstone && r.h.target_volume != a.number && volumes_.count(r.h.target_volume)) {
        return;
      }
    }
    if (a.prepared > a.end) {
      if (Status s = a.file->io->Truncate(a.end); !s.ok()) spdlog::warn("chunk store: {}", s.ToString());
      a.prepared = a.end;
    }
    // Its tombstones delete its own puts: durable before it may go, in case
    // the removal fails and it stays as a sealed volume.
    if (Status s = Sync(*a.file); !s.ok()) {
      spdlog::warn("chunk store: retiring {}: {}", a.file->path, s.ToString());
      return;
    }
    SPDLOG_DEBUG("chunk store: retiring {}: nothing in it is live", a.file->path);
    SealLocked(a);
  }
  CollectGarbage();
}

void VolumeStore::NoteCompaction(uint64_t records, uint64_t bytes) {
  std::lock_guard lock(mu_);
  ++compactions_;
  compacted_records_ += records;
  compacted_bytes_ += bytes;
}

VolumeStore::Stats VolumeStore::stats() const {
  std::lock_guard lock(mu_);
  Stats s;
  s.volumes = volumes_.size();
  for (const auto& [n, v] : volumes_) {
    s.bytes += v.end;
    s.live_bytes += v.live_bytes;
  }
  s.commits = commits_;
  s.records = records_;
  s.indexes_used = indexes_used_;
  s.prepared = prepared_bytes_;
  s.prepare_declined = prepare_declined_;
  s.compactions = compactions_;
  s.compacted_records = compacted_records_;
  s.compacted_bytes = compacted_bytes_;
  s.repinned = repinned_;
  s.removed = removed_;
  s.reclaimed_bytes = reclaimed_bytes_;
  return s;
}

}  // namespace dfs::filenode
