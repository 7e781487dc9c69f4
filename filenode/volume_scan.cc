// Start-up half of the volume store: reading volumes back (their indexes,
// or their record headers), cutting a torn tail off the last one, and
// folding every record into what each key holds now.
#include <algorithm>
#include <optional>
#include <set>
#include <unordered_map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/checksum.h"
#include "common/env.h"
#include "common/files.h"
#include "filenode/volume_format.h"
#include "filenode/volume_store.h"

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

// The last record of each key so far; a put shadowed by a later record is
// dead, and the volumes involved are linked for CollectGarbage.
struct Last {
  VolumeStore::Location at;
  uint64_t size = 0;
  uint32_t crc32c = 0;
  bool live = false;
  bool corrupt = false;
};

}  // namespace

struct VolumeStore::ScanState {
  std::unordered_map<ChunkKey, Last, ChunkKeyHash> last;
  uint64_t records = 0, torn = 0, corrupt = 0, damaged = 0;
};

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

Result<std::vector<uint32_t>> VolumeStore::ListVolumes() {
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
  return numbers;
}

Status VolumeStore::LoadVolumeLocked(uint32_t number, bool is_last, ScanState& scan) {
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
    scan.damaged += pv.damaged;
    v.end = pv.size;
    if (pv.good_end < pv.size) {
      // Zeros are space prepared ahead. Anything else is a crash mid-batch:
      // nothing past the last good record was ever acknowledged. Either way
      // it is cut, so the next batch starts on a record boundary.
      if (pv.zero_tail) {
        SPDLOG_DEBUG("chunk store: {}: cutting {} bytes of prepared zeros at offset {}", path,
                     pv.size - pv.good_end, pv.good_end);
      } else {
        spdlog::warn("chunk store: {}: torn tail, truncating {} bytes at offset {} (file was {} bytes)", path,
                     pv.size - pv.good_end, pv.good_end, pv.size);
        ++scan.torn;
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
    ++scan.records;
    const Location here{number, p.offset};
    if (p.h.type == RecordType::kPut) {
      auto [it, inserted] = scan.last.try_emplace(p.h.key);
      if (!inserted && it->second.live) ShadowLocked(p.h.key, it->second.at, it->second.size, number);
      it->second = Last{here, p.h.size, p.h.crc32c, true, !p.data_ok};
      ++v.live;
      v.live_bytes += PutBytes(p.h.size);
      if (!p.data_ok) {
        ++scan.corrupt;
        spdlog::warn("chunk store: {} at offset {}: the data of {} fails its checksum; kept as corrupt", path,
                     p.offset, ChunkName(p.h.key));
      }
    } else {
      // A tombstone deletes only the put it names; one naming anything else
      // lost a race with a newer put of the key and is ignored.
      auto it = scan.last.find(p.h.key);
      const Location target{p.h.target_volume, p.h.target_offset};
      if (it == scan.last.end() || !it->second.live || it->second.at != target) continue;
      ShadowLocked(p.h.key, target, it->second.size, number);
      it->second.live = false;
    }
  }
  next_number_ = number + 1;
  return Status::OK();
}

Status VolumeStore::OpenLastLocked(uint32_t number) {
  Volume& v = volumes_[number];
  if (v.end < volume_size_) {
    auto file = std::make_shared<ActiveFile>();
    file->path = Path(v.number);
    DFS_ASSIGN_OR_RETURN(file->io, env_->Open(file->path, OpenMode::kReadWrite));
    v.file = std::move(file);
    active_ = v.number;
    return Status::OK();
  }
  v.sealed = true;
  if (Status s = WriteFileDurably(env_, IndexPath(v.number), EncodeVolumeIndex(v.number, v.end, v.records)); !s.ok()) {
    spdlog::warn("chunk store: cannot write the index of {}: {}", Path(v.number), s.ToString());
  }
  v.records = {};
  return Status::OK();
}

Result<std::vector<VolumeStore::Found>> VolumeStore::Scan() {
  DFS_ASSIGN_OR_RETURN(std::vector<uint32_t> numbers, ListVolumes());
  ScanState scan;
  std::lock_guard lock(mu_);
  volumes_.clear();
  maybe_dead_.clear();
  pending_indexes_.clear();
  active_ = 0;
  indexes_used_ = 0;
  for (size_t i = 0; i < numbers.size(); ++i) {
    DFS_RETURN_IF_ERROR(LoadVolumeLocked(numbers[i], i + 1 == numbers.size(), scan));
  }
  if (!numbers.empty()) DFS_RETURN_IF_ERROR(OpenLastLocked(numbers.back()));
  for (const auto& [number, v] : volumes_) {
    if (v.live == 0) maybe_dead_.insert(number);
  }
  if (prepare_ > 0 && !preparer_.joinable()) preparer_ = std::thread([this] { PrepareLoop(); });
  std::vector<Found> found;
  for (const auto& [key, l] : scan.last) {
    if (l.live) found.push_back(Found{key, l.at, l.size, l.crc32c, l.corrupt});
  }
  if (!numbers.empty()) {
    spdlog::info("chunk store {}: {} volumes ({} from their index), {} records, {} live; {} torn tails cut, "
                 "{} damaged headers skipped, {} corrupt",
                 dir_, numbers.size(), indexes_used_, scan.records, found.size(), scan.torn, scan.damaged,
                 scan.corrupt);
  }
  return found;
}

}  // namespace dfs::filenode
