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

// Headers only: one small read per record, a few per page for tiny records.
constexpr size_t kHeaderWindow = 4096;
// Whole records (the last volume) and the search past a damaged header.
constexpr size_t kDataWindow = 8 << 20;
constexpr std::string_view kMagicBytes("DFSV", 4);

// Reads a volume through a window, so a scan costs one pread per window
// rather than one per field.
class WindowReader {
 public:
  WindowReader(File& file, uint64_t file_size, size_t window)
      : file_(file), size_(file_size), window_(window) {}

  // Up to `len` bytes at `offset`: fewer only at the end of the file. Valid
  // until the next call.
  Result<std::string_view> View(uint64_t offset, uint64_t len) {
    if (offset >= size_) return std::string_view();
    len = std::min(len, size_ - offset);
    if (offset < start_ || offset + len > start_ + filled_) {
      const uint64_t want = std::min<uint64_t>(std::max<uint64_t>(len, window_), size_ - offset);
      if (buf_.size() < want) buf_.resize(want);
      DFS_ASSIGN_OR_RETURN(filled_, file_.PreadAll(buf_.data(), want, offset));
      start_ = offset;
      len = std::min<uint64_t>(len, filled_);
    }
    return std::string_view(buf_.data() + (offset - start_), len);
  }
  uint64_t size() const { return size_; }
  const std::string& path() const { return file_.path(); }

 private:
  File& file_;
  uint64_t size_;
  size_t window_;
  std::string buf_;
  uint64_t start_ = 0;
  uint64_t filled_ = 0;
};

struct Parsed {
  RecordHeader h;
  uint64_t offset = 0;
  bool data_ok = true;
};

// The header at `at`, if a whole valid record (header and data) fits in the
// file there. Corruption means no record starts there; other codes are I/O
// errors.
Result<RecordHeader> RecordAt(WindowReader& r, uint64_t at) {
  const std::string what = fmt::format("{} at offset {}", r.path(), at);
  DFS_ASSIGN_OR_RETURN(std::string_view fixed, r.View(at, kRecordFixedSize));
  DFS_ASSIGN_OR_RETURN(RecordHeader h, DecodeRecordFixed(fixed, what));
  const uint64_t header_size = RecordHeaderSizeForBlocks(h.block_count);
  if (at + header_size + h.size > r.size()) {
    return Status::Corruption(fmt::format("{}: a record of {} bytes runs past the end of the file ({} bytes)", what,
                                          header_size + h.size, r.size()));
  }
  DFS_ASSIGN_OR_RETURN(std::string_view header, r.View(at, header_size));
  return DecodeRecordHeader(header, what);
}

// The next offset after `from` where a valid record starts.
Result<std::optional<uint64_t>> FindNextRecord(WindowReader& r, uint64_t from) {
  uint64_t at = from;
  while (at + kRecordFixedSize <= r.size()) {
    DFS_ASSIGN_OR_RETURN(std::string_view v, r.View(at, kDataWindow));
    if (v.size() < kRecordFixedSize) break;  // the file shrank under us
    const size_t i = v.find(kMagicBytes);
    if (i == std::string_view::npos) {
      at += v.size() - (kMagicBytes.size() - 1);  // a magic may straddle the window's end
      continue;
    }
    const uint64_t candidate = at + i;
    auto h = RecordAt(r, candidate);
    if (h) return std::optional<uint64_t>(candidate);
    if (h.error().code() != Code::kCorruption) return h.error();
    at = candidate + 1;
  }
  return std::optional<uint64_t>();
}

struct ParsedVolume {
  std::vector<Parsed> records;
  uint64_t size = 0;       // of the file
  uint64_t good_end = 0;   // just past the last record that checked out
  uint64_t damaged = 0;    // headers skipped
  bool zero_tail = false;  // everything past good_end is zeros (prepared space)
};

// Whether [from, r.size()) holds only zero bytes.
Result<bool> AllZero(WindowReader& r, uint64_t from) {
  for (uint64_t at = from; at < r.size();) {
    DFS_ASSIGN_OR_RETURN(std::string_view v, r.View(at, kDataWindow));
    if (v.empty()) break;  // the file shrank under us
    if (v.find_first_not_of('\0') != std::string_view::npos) return false;
    at += v.size();
  }
  return true;
}

// Every record of one volume, in offset order. With `verify_data`, the data
// of each put is checked against its CRC (Parsed::data_ok).
Result<ParsedVolume> ParseVolume(Env* env, const std::string& path, bool verify_data) {
  DFS_ASSIGN_OR_RETURN(std::unique_ptr<File> file, env->Open(path, OpenMode::kRead));
  ParsedVolume out;
  DFS_ASSIGN_OR_RETURN(out.size, file->Size());
  WindowReader r(*file, out.size, verify_data ? kDataWindow : kHeaderWindow);
  uint64_t at = 0;
  while (at < out.size) {
    auto h = RecordAt(r, at);
    if (!h) {
      if (h.error().code() != Code::kCorruption) return h.error();
      DFS_ASSIGN_OR_RETURN(std::optional<uint64_t> next, FindNextRecord(r, at + 1));
      if (!next) break;  // the rest is not records: the caller decides about a tail
      spdlog::warn("chunk store: {}; skipping {} bytes to the next valid record at offset {}",
                   h.error().message(), *next - at, *next);
      ++out.damaged;
      at = *next;
      continue;
    }
    Parsed p{*h, at, true};
    const uint64_t header_size = RecordHeaderSizeForBlocks(h->block_count);
    if (verify_data && h->type == RecordType::kPut && h->size > 0) {
      DFS_ASSIGN_OR_RETURN(std::string_view data, r.View(at + header_size, h->size));
      p.data_ok = data.size() == h->size && Crc32c(data) == h->crc32c;
    }
    at += header_size + h->size;
    if (p.data_ok) out.good_end = at;
    out.records.push_back(p);
  }
  if (out.good_end < out.size) {
    DFS_ASSIGN_OR_RETURN(out.zero_tail, AllZero(r, out.good_end));
  }
  return out;
}

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

Result<std::vector<IndexedRecord>> VolumeStore::LoadSealed(uint32_t number, bool& from_index) {
  const std::string path = Path(number);
  const std::string index_path = IndexPath(number);
  DFS_ASSIGN_OR_RETURN(FileStat st, env_->Stat(path));
  const uint64_t size = st.size;
  from_index = false;
  if (auto bytes = ReadWholeFile(env_, index_path)) {
    auto records = DecodeVolumeIndex(*bytes, number, size, index_path);
    if (records) {
      from_index = true;
      return records;
    }
    spdlog::warn("chunk store: {}; rebuilding it from the volume's headers", records.error().message());
  } else if (bytes.error().code() != Code::kNotFound) {
    spdlog::warn("chunk store: {}; rebuilding it from the volume's headers", bytes.error().message());
  }
  // Sealed volumes were synced before they were sealed: headers suffice.
  DFS_ASSIGN_OR_RETURN(ParsedVolume pv, ParseVolume(env_, path, /*verify_data=*/false));
  if (pv.good_end < pv.size) {
    spdlog::warn("chunk store: {}: {} bytes at offset {} are no record; left as they are (a sealed volume)", path,
                 pv.size - pv.good_end, pv.good_end);
  }
  std::vector<IndexedRecord> records;
  records.reserve(pv.records.size());
  for (const Parsed& p : pv.records) records.push_back(IndexedRecord{p.offset, p.h});
  if (Status s = WriteFileDurably(env_, index_path, EncodeVolumeIndex(number, pv.size, records)); !s.ok()) {
    spdlog::warn("chunk store: cannot write the index of {}: {}", path, s.ToString());
  }
  return records;
}

Result<std::vector<VolumeStore::Found>> VolumeStore::Scan() {
  DFS_RETURN_IF_ERROR(env_->CreateDirs(dir_));
  std::vector<uint32_t> numbers;
  std::set<uint32_t> indexes;
  DFS_ASSIGN_OR_RETURN(std::vector<std::string> names, env_->ListDir(dir_));
  for (const std::string& name : names) {
    if (auto n = ParseVolumeFileName(name)) {
      numbers.push_back(*n);
    } else if (auto i = ParseVolumeIndexName(name)) {
      indexes.insert(*i);
    } else if (name.ends_with(".idx.tmp")) {
      // An index write cut short; the next scan or seal rewrites it.
      IgnoreError(env_->Remove(dir_ + "/" + name));
    } else {
      spdlog::warn("chunk store: leaving alone {}/{} (not a volume file name)", dir_, name);
    }
  }
  std::sort(numbers.begin(), numbers.end());
  for (uint32_t i : indexes) {
    // The index of a volume removed as dead (the volume goes first).
    if (!std::binary_search(numbers.begin(), numbers.end(), i)) IgnoreError(env_->Remove(IndexPath(i)));
  }

  // The last record of each key so far; a put shadowed by a later record is
  // dead, and the volumes involved are linked for CollectGarbage.
  struct Last {
    Location at;
    uint64_t size = 0;
    uint32_t crc32c = 0;
    bool live = false;
    bool corrupt = false;
  };
  std::unordered_map<ChunkKey, Last, ChunkKeyHash> last;
  std::lock_guard lock(mu_);
  volumes_.clear();
  maybe_dead_.clear();
  pending_indexes_.clear();
  active_ = 0;
  indexes_used_ = 0;
  uint64_t records = 0, torn = 0, corrupt = 0, damaged = 0;
  for (size_t i = 0; i < numbers.size(); ++i) {
    const uint32_t number = numbers[i];
    const bool is_last = i + 1 == numbers.size();
    const std::string path = Path(number);
    std::vector<Parsed> parsed;
    Volume& v = volumes_[number];
    v.number = number;
    v.sealed = !is_last;
    if (!is_last) {
      bool from_index = false;
      DFS_ASSIGN_OR_RETURN(std::vector<IndexedRecord> sealed, LoadSealed(number, from_index));
      indexes_used_ += from_index ? 1 : 0;
      parsed.reserve(sealed.size());
      for (const IndexedRecord& r : sealed) parsed.push_back(Parsed{r.h, r.offset, true});
      auto st = env_->Stat(path);
      v.end = st ? st->size : 0;
    } else {
      // The only volume a crash can have left torn: every byte is checked.
      DFS_ASSIGN_OR_RETURN(ParsedVolume pv, ParseVolume(env_, path, /*verify_data=*/true));
      damaged += pv.damaged;
      v.end = pv.size;
      if (pv.good_end < pv.size) {
        // Zeros are space prepared ahead. Anything else is a crash
        // mid-batch: nothing past the last good record was ever
        // acknowledged. Either way it is cut, so the next batch starts on a
        // record boundary.
        if (pv.zero_tail) {
          SPDLOG_DEBUG("chunk store: {}: cutting {} bytes of prepared zeros at offset {}", path,
                       pv.size - pv.good_end, pv.good_end);
        } else {
          spdlog::warn("chunk store: {}: torn tail, truncating {} bytes at offset {} (file was {} bytes)", path,
                       pv.size - pv.good_end, pv.good_end, pv.size);
          ++torn;
        }
        DFS_ASSIGN_OR_RETURN(std::unique_ptr<File> torn_file, env_->Open(path, OpenMode::kWriteExisting));
        DFS_RETURN_IF_ERROR(torn_file->Truncate(pv.good_end));
        std::erase_if(pv.records, [&](const Parsed& p) { return p.offset >= pv.good_end; });
        v.end = pv.good_end;
      }
      v.prepared = v.end;
      parsed = std::move(pv.records);
      v.records.reserve(parsed.size());
      for (const Parsed& p : parsed) v.records.push_back(IndexedRecord{p.offset, p.h});
    }
    for (const Parsed& p : parsed) {
      ++records;
      const Location here{number, p.offset};
      if (p.h.type == RecordType::kPut) {
        auto [it, inserted] = last.try_emplace(p.h.key);
        if (!inserted && it->second.live) ShadowLocked(it->second.at.volume, number);
        it->second = Last{here, p.h.size, p.h.crc32c, true, !p.data_ok};
        ++v.live;
        if (!p.data_ok) {
          ++corrupt;
          spdlog::warn("chunk store: {} at offset {}: the data of {} fails its checksum; kept as corrupt", path,
                       p.offset, ChunkName(p.h.key));
        }
      } else {
        // A tombstone deletes only the put it names; one naming anything
        // else lost a race with a newer put of the key and is ignored.
        auto it = last.find(p.h.key);
        const Location target{p.h.target_volume, p.h.target_offset};
        if (it == last.end() || !it->second.live || it->second.at != target) continue;
        ShadowLocked(target.volume, number);
        it->second.live = false;
      }
    }
    next_number_ = number + 1;
  }
  if (!numbers.empty()) {
    Volume& v = volumes_[numbers.back()];
    if (v.end < volume_size_) {
      auto file = std::make_shared<ActiveFile>();
      file->path = Path(v.number);
      DFS_ASSIGN_OR_RETURN(file->io, env_->Open(file->path, OpenMode::kReadWrite));
      v.file = std::move(file);
      active_ = v.number;
    } else {
      v.sealed = true;
      if (Status s = WriteFileDurably(env_, IndexPath(v.number), EncodeVolumeIndex(v.number, v.end, v.records)); !s.ok()) {
        spdlog::warn("chunk store: cannot write the index of {}: {}", Path(v.number), s.ToString());
      }
      v.records = {};
    }
  }
  for (const auto& [number, v] : volumes_) {
    if (v.live == 0) maybe_dead_.insert(number);
  }
  if (prepare_ > 0 && !preparer_.joinable()) preparer_ = std::thread([this] { PrepareLoop(); });
  std::vector<Found> found;
  for (const auto& [key, l] : last) {
    if (l.live) found.push_back(Found{key, l.at, l.size, l.crc32c, l.corrupt});
  }
  if (!numbers.empty()) {
    spdlog::info("chunk store {}: {} volumes ({} from their index), {} records, {} live; {} torn tails cut, "
                 "{} damaged headers skipped, {} corrupt",
                 dir_, numbers.size(), indexes_used_, records, found.size(), torn, damaged, corrupt);
  }
  return found;
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
  if (puts.empty()) return std::vector<Location>();
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
  DFS_ASSIGN_OR_RETURN(Volume * v, WritableLocked(lock, bytes, bytes));
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
  const bool prepare = PrepareWantedLocked();
  lock.unlock();
  if (prepare) prepare_cv_.notify_all();

  // Unlocked: deletes keep appending tombstones behind the batch meanwhile.
  Status s = Sync(*file);
  WritePendingIndexes();
  if (!s.ok()) {
    lock.lock();
    if (auto it = volumes_.find(number); it != volumes_.end()) {
      it->second.live -= std::min<uint64_t>(it->second.live, puts.size());
      TruncateBackLocked(it->second, *file, start);
      if (!it->second.sealed) SealLocked(it->second);
    }
    spdlog::error("chunk store: {}; a batch of {} chunks at offset {} failed, the volume is sealed", s.message(),
                  puts.size(), start);
    return s.Prepend(fmt::format("batch of {} chunks at offset {}", puts.size(), start));
  }
  lock.lock();
  ++commits_;
  records_ += puts.size();
  lock.unlock();
  std::vector<Location> out;
  out.reserve(puts.size());
  for (uint64_t at : record_at) out.push_back(Location{number, start + at});
  return out;
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

void VolumeStore::Shadow(uint32_t volume, uint32_t by) {
  std::lock_guard lock(mu_);
  ShadowLocked(volume, by);
}

void VolumeStore::ShadowLocked(uint32_t volume, uint32_t by) {
  auto it = volumes_.find(volume);
  if (it == volumes_.end()) return;
  Volume& v = it->second;
  if (v.live > 0) --v.live;
  if (by > volume) {
    if (auto later = volumes_.find(by); later != volumes_.end()) {
      ++v.shadowed_into[by];
      ++later->second.pins;
    }
  }
  if (v.live == 0) maybe_dead_.insert(volume);
}

void VolumeStore::CollectGarbage() {
  std::lock_guard gc(gc_mu_);
  for (;;) {
    std::string path, index_path;
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
      for (const auto& [later, count] : dead->second.shadowed_into) {
        if (auto l = volumes_.find(later); l != volumes_.end()) {
          l->second.pins -= std::min(l->second.pins, count);
          if (l->second.pins == 0) maybe_dead_.insert(later);
        }
      }
      path = Path(dead->first);
      index_path = IndexPath(dead->first);
      volumes_.erase(dead);
    }
    // The volume before its index: a lone index is removed by the next scan.
    if (Status s = trash_.Discard(path); !s.ok() && s.code() != Code::kNotFound) {
      spdlog::warn("chunk store: cannot remove dead volume {}: {}", path, s.ToString());
    } else {
      spdlog::info("chunk store: removed {}: every record in it is dead", path);
    }
    IgnoreError(env_->Remove(index_path));  // a lone index is removed by the next scan
    // A volume this removal unpinned may go next; it must never reach the
    // disk first, or its tombstones would vanish while the puts they delete
    // are still there.
    if (Status s = env_->SyncDir(dir_); !s.ok()) spdlog::warn("chunk store: {}", s.ToString());
  }
}

VolumeStore::Stats VolumeStore::stats() const {
  std::lock_guard lock(mu_);
  Stats s;
  s.volumes = volumes_.size();
  for (const auto& [n, v] : volumes_) s.bytes += v.end;
  s.commits = commits_;
  s.records = records_;
  s.indexes_used = indexes_used_;
  s.prepared = prepared_bytes_;
  s.prepare_declined = prepare_declined_;
  return s;
}

}  // namespace dfs::filenode
