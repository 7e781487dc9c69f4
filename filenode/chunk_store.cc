#include "filenode/chunk_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/checksum.h"
#include "common/files.h"
#include "common/units.h"
#include "filenode/file_io.h"

namespace dfs::filenode {

ChunkStore::ChunkStore(std::string dir) : root_(std::move(dir) + "/chunks") {}
ChunkStore::~ChunkStore() = default;

std::string ChunkStore::StemPath(ChunkKey key) const {
  return fmt::format("{}/{}/{}", root_, ShardName(key.id), ChunkStem(key));
}

namespace {

// A stored chunk checked against its .meta: the metadata, or why it is bad.
Result<ChunkMeta> CheckChunk(const std::string& stem, ChunkKey key) {
  const std::string meta_path = stem + ".meta";
  auto bytes = ReadFile(meta_path);
  if (!bytes) return bytes.error();
  DFS_ASSIGN_OR_RETURN(MetaHeader h, ValidateMeta(*bytes, meta_path));
  if (h.meta.key != key) {
    return Status::Corruption(fmt::format("{} describes {}", meta_path, ChunkName(h.meta.key)));
  }
  struct stat st {};
  if (::stat((stem + ".chunk").c_str(), &st) != 0) return Status::FromErrno(errno, stem + ".chunk");
  if (static_cast<uint64_t>(st.st_size) != h.meta.size) {
    return Status::Corruption(fmt::format("{}.chunk holds {} bytes but its .meta says {}", stem, st.st_size,
                                          h.meta.size));
  }
  return h.meta;
}

void RemoveQuietly(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    spdlog::warn("cannot remove {}: {}", path, std::strerror(errno));
  }
}

}  // namespace

Result<std::vector<ChunkMeta>> ChunkStore::Scan() {
  DFS_RETURN_IF_ERROR(CreateDirectories(root_));
  size_t temps = 0, dropped = 0;
  std::vector<ChunkMeta> found;
  for (int shard = 0; shard < 256; ++shard) {
    const std::string dir = fmt::format("{}/{:02x}", root_, shard);
    DFS_RETURN_IF_ERROR(CreateDirectories(dir));
    std::map<ChunkKey, bool> keys;  // key -> has a .chunk (else only a .meta)
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      std::string name = entry.path().filename().string();
      if (name.ends_with(".tmp")) {
        RemoveQuietly(entry.path().string());
        ++temps;
      } else if (auto k = ParseChunkFileName(name, ".chunk"); k && ShardName(k->id) == ShardName(shard)) {
        keys[*k] = true;
      } else if (auto m = ParseChunkFileName(name, ".meta"); m && ShardName(m->id) == ShardName(shard)) {
        keys.try_emplace(*m, false);
      } else {
        spdlog::warn("chunk store: leaving alone {} (not a chunk file name)", entry.path().string());
      }
    }
    if (ec) return Status::FromErrno(ec.value(), "list " + dir);
    for (const auto& [key, has_chunk] : keys) {
      const std::string stem = StemPath(key);
      if (!has_chunk) {
        spdlog::warn("chunk store: dropping {}.meta: its chunk is missing", stem);
        RemoveQuietly(stem + ".meta");
        continue;
      }
      auto meta = CheckChunk(stem, key);
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
  DFS_RETURN_IF_ERROR(SyncDirectory(root_));
  uint64_t used = 0;
  {
    std::lock_guard lock(mu_);
    index_.clear();
    for (const auto& m : found) {
      index_[m.key] = Entry{m.size, m.crc32c, false};
      used += m.size;
    }
    used_ = used;
  }
  spdlog::info("chunk store {}: {} chunks, {}; removed {} temp files, dropped {} bad chunks", root_,
               found.size(), FormatSize(used), temps, dropped);
  return found;
}

Result<std::unique_ptr<ChunkWriter>> ChunkStore::Create(ChunkKey key, uint64_t expected_size) {
  {
    std::lock_guard lock(mu_);
    if (!writing_.insert(key).second) {
      return Status::Busy(ChunkName(key) + " is already being written on this node");
    }
  }
  const std::string stem = StemPath(key);
  const std::string tmp = stem + ".chunk.tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid() && errno == ENOENT) {
    // The shard folder went missing under us; make it again.
    if (CreateDirectories(std::filesystem::path(stem).parent_path().string()).ok()) {
      fd = UniqueFd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    }
  }
  if (!fd.valid()) {
    Status s = Status::FromErrno(errno, tmp);
    Release(key);
    return s;
  }
  // Refuse what cannot fit before asking fallocate: a failing fallocate may
  // take every free block before it gives up, and for that moment every other
  // writer on the disk sees ENOSPC.
  if (struct statvfs fs {}; expected_size > 0 && ::fstatvfs(fd.get(), &fs) == 0 &&
                            expected_size > static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize) {
    fd.Reset();
    RemoveQuietly(tmp);
    Release(key);
    return Status(Code::kNoSpace, fmt::format("reserve {} for {}: {} free", FormatSize(expected_size),
                                              ChunkName(key),
                                              FormatSize(static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize)));
  }
  if (expected_size > 0 && ::fallocate(fd.get(), 0, 0, static_cast<off_t>(expected_size)) != 0) {
    int err = errno;
    // A file system without fallocate still works, only without the early
    // NoSpace; anything else (ENOSPC, EFBIG) refuses the chunk now.
    if (err != EOPNOTSUPP) {
      fd.Reset();
      RemoveQuietly(tmp);
      Release(key);
      return Status::FromErrno(err, fmt::format("reserve {} for {}", FormatSize(expected_size), ChunkName(key)));
    }
    expected_size = 0;
  }
  return std::unique_ptr<ChunkWriter>(new ChunkWriter(*this, key, stem, fd.release(), expected_size));
}

Result<ChunkMeta> ChunkStore::Lookup(ChunkKey key) const {
  std::lock_guard lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) return Status::NotFound(ChunkName(key) + " is not stored on this node");
  return ChunkMeta{key, it->second.size, it->second.crc32c};
}

Status ChunkStore::Read(ChunkKey key, uint64_t offset, std::span<std::byte> out) const {
  DFS_ASSIGN_OR_RETURN(ChunkMeta meta, Lookup(key));
  const std::string name = ChunkName(key);
  if (offset > meta.size || out.size() > meta.size - offset) {
    return Status::InvalidArgument(
        fmt::format("{}: read of {} bytes at {} is past its end ({} bytes)", name, out.size(), offset, meta.size));
  }
  if (out.empty()) return Status::OK();
  const std::string stem = StemPath(key);
  UniqueFd mfd(::open((stem + ".meta").c_str(), O_RDONLY | O_CLOEXEC));
  if (!mfd.valid()) return Status::FromErrno(errno, stem + ".meta");
  char header[kMetaHeaderSize];
  DFS_ASSIGN_OR_RETURN(size_t got, PreadAll(mfd.get(), header, sizeof header, 0, stem + ".meta"));
  DFS_ASSIGN_OR_RETURN(MetaHeader h, DecodeMetaHeader(std::string_view(header, got), stem + ".meta"));
  if (h.meta.key != key || h.meta.size != meta.size) {
    return Status::Corruption(fmt::format("{}: its .meta no longer matches the chunk", name));
  }
  const uint64_t b0 = offset / kChunkBlockSize;
  const uint64_t b1 = (offset + out.size() - 1) / kChunkBlockSize;
  std::vector<char> crcs((b1 - b0 + 1) * 4);
  DFS_ASSIGN_OR_RETURN(got, PreadAll(mfd.get(), crcs.data(), crcs.size(), MetaBlockCrcOffset(b0), stem + ".meta"));
  if (got != crcs.size()) return Status::Corruption(fmt::format("{}: its .meta is cut short", name));

  const uint64_t start = b0 * kChunkBlockSize;
  const uint64_t end = std::min((b1 + 1) * kChunkBlockSize, meta.size);
  // Whole blocks go straight into `out`; a range that starts or ends inside
  // a block reads the covering blocks into a scratch buffer first.
  std::unique_ptr<std::byte[]> scratch;
  std::byte* buf = out.data();
  if (start != offset || end != offset + out.size()) {
    scratch.reset(new std::byte[end - start]);
    buf = scratch.get();
  }
  UniqueFd fd(::open((stem + ".chunk").c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno(errno, stem + ".chunk");
  DFS_ASSIGN_OR_RETURN(got, PreadAll(fd.get(), buf, end - start, start, stem + ".chunk"));
  if (got != end - start) {
    return Status::Corruption(fmt::format("{}: the file ends at {}, before its recorded size {}", name,
                                          start + got, meta.size));
  }
  for (uint64_t b = b0; b <= b1; ++b) {
    uint64_t at = b * kChunkBlockSize;
    uint64_t len = std::min<uint64_t>(kChunkBlockSize, meta.size - at);
    uint32_t want = LoadLe32(crcs.data() + 4 * (b - b0));
    uint32_t have = Crc32c(std::span<const std::byte>(buf + (at - start), len));
    if (want != have) {
      return Status::Corruption(fmt::format("{}: block at offset {} fails its checksum (stored {:08x}, read {:08x})",
                                            name, at, want, have));
    }
  }
  if (scratch) std::memcpy(out.data(), buf + (offset - start), out.size());
  return Status::OK();
}

Status ChunkStore::Delete(ChunkKey key) {
  {
    std::lock_guard lock(mu_);
    auto it = index_.find(key);
    if (it == index_.end()) return Status::NotFound(ChunkName(key) + " is not stored on this node");
    used_ -= it->second.size;
    index_.erase(it);
  }
  // No folder fsync: a deletion lost in a crash brings the chunk back, the
  // full report lists it, and the master asks for the deletion again.
  const std::string stem = StemPath(key);
  Status s;
  if (::unlink((stem + ".chunk").c_str()) != 0 && errno != ENOENT) s = Status::FromErrno(errno, stem + ".chunk");
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

uint64_t ChunkStore::chunk_count() const {
  std::lock_guard lock(mu_);
  return index_.size();
}

void ChunkStore::Install(const ChunkMeta& meta) {
  std::lock_guard lock(mu_);
  auto [it, inserted] = index_.try_emplace(meta.key);
  if (!inserted) used_ -= it->second.size;
  it->second = Entry{meta.size, meta.crc32c, false};
  used_ += meta.size;
}

void ChunkStore::Release(ChunkKey key) {
  std::lock_guard lock(mu_);
  writing_.erase(key);
}

bool ChunkStore::IsStored(ChunkKey key) const {
  std::lock_guard lock(mu_);
  return index_.contains(key);
}

}  // namespace dfs::filenode
