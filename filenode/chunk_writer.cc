// ChunkWriter: the write half of the chunk store (see chunk_store.h).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/checksum.h"
#include "common/files.h"
#include "filenode/chunk_store.h"
#include "filenode/file_io.h"

namespace dfs::filenode {

ChunkWriter::ChunkWriter(ChunkStore& store, ChunkKey key, std::string stem_path, int fd, uint64_t allocated)
    : store_(store), key_(key), stem_path_(std::move(stem_path)), fd_(fd), allocated_(allocated) {
  blocks_.reserve(BlockCount(allocated));
}

// Uninitialised on purpose (new[] without ()): zeroing a buffer about to be
// overwritten would cost as much as the copy into it.
ChunkWriter::ChunkWriter(ChunkStore& store, ChunkKey key, uint64_t capacity)
    : store_(store), key_(key), allocated_(capacity), buffer_(new std::byte[capacity]), buffered_(true) {
  blocks_.reserve(BlockCount(capacity));
}

ChunkWriter::~ChunkWriter() {
  if (!finished_) Abort();
}

Status ChunkWriter::Fail(Status s) {
  Abort();
  return s.Prepend(ChunkName(key_));
}

Status ChunkWriter::Append(uint64_t offset, std::span<const std::byte> data) {
  if (finished_ || aborted_) return Status::Internal(ChunkName(key_) + ": append to a closed writer");
  if (offset != size_) {
    return Fail(Status::InvalidArgument(
        fmt::format("write at offset {} but {} bytes were written so far", offset, size_)));
  }
  if (data.empty()) return Status::OK();
  if (buffered_) {
    // The buffer was sized (and its disk space counted) for what the sender
    // announced; more than that is a broken sender, not a bigger chunk.
    if (data.size() > allocated_ - size_) {
      return Fail(Status::InvalidArgument(fmt::format("{} bytes at offset {} go past the {} bytes announced",
                                                      data.size(), offset, allocated_)));
    }
    std::memcpy(buffer_.get() + size_, data.data(), data.size());
  } else {
    Status s = PwriteAll(fd_, data.data(), data.size(), offset, stem_path_ + ".chunk.tmp");
    if (!s.ok()) return Fail(s);
    if (store_.options_.drop_behind) DropBehind(offset + data.size());
  }
  crc_ = Crc32c(data, crc_);
  // Per-block checksums, carried across frames that do not line up with blocks.
  while (!data.empty()) {
    size_t in_block = size_ % kChunkBlockSize;
    size_t take = std::min<size_t>(data.size(), kChunkBlockSize - in_block);
    block_crc_ = Crc32c(data.first(take), block_crc_);
    size_ += take;
    data = data.subspan(take);
    if (size_ % kChunkBlockSize == 0) {
      blocks_.push_back(block_crc_);
      block_crc_ = 0;
    }
  }
  return Status::OK();
}

// Hints only, so their errors are ignored: a real write error comes back
// from Finish's fdatasync. Dropping skips pages still dirty or in flight;
// the lag gives their writeback time to end first, and Finish drops the rest.
void ChunkWriter::DropBehind(uint64_t end) {
  constexpr uint64_t kLag = 8ull << 20;
  ::sync_file_range(fd_, static_cast<off_t>(size_), static_cast<off_t>(end - size_), SYNC_FILE_RANGE_WRITE);
  if (end < kLag) return;
  const uint64_t upto = (end - kLag) & ~uint64_t{4095};
  if (upto <= dropped_) return;
  ::posix_fadvise(fd_, static_cast<off_t>(dropped_), static_cast<off_t>(upto - dropped_), POSIX_FADV_DONTNEED);
  dropped_ = upto;
}

void ChunkWriter::CloseBlocks() {
  if (size_ % kChunkBlockSize != 0) blocks_.push_back(block_crc_);
  block_crc_ = 0;
}

std::vector<Result<ChunkMeta>> ChunkWriter::FinishAll(std::span<ChunkWriter* const> writers) {
  std::vector<Result<ChunkMeta>> out(writers.size());
  // Buffered writers commit together per store (a node has one, so one batch).
  std::vector<std::pair<ChunkStore*, std::vector<size_t>>> groups;
  for (size_t i = 0; i < writers.size(); ++i) {
    if (!writers[i]->buffered()) {
      out[i] = writers[i]->Finish();
      continue;
    }
    ChunkStore* store = &writers[i]->store_;
    auto g = std::find_if(groups.begin(), groups.end(), [&](const auto& e) { return e.first == store; });
    if (g == groups.end()) g = groups.insert(groups.end(), {store, {}});
    g->second.push_back(i);
  }
  for (const auto& [store, indices] : groups) {
    std::vector<ChunkWriter*> batch;
    batch.reserve(indices.size());
    for (size_t i : indices) batch.push_back(writers[i]);
    auto results = store->CommitBuffered(batch);
    for (size_t k = 0; k < indices.size(); ++k) out[indices[k]] = std::move(results[k]);
  }
  return out;
}

Result<ChunkMeta> ChunkWriter::Finish() {
  if (finished_ || aborted_) return Status::Internal(ChunkName(key_) + ": finish of a closed writer");
  if (buffered_) {
    ChunkWriter* self = this;
    return std::move(store_.CommitBuffered(std::span<ChunkWriter* const>(&self, 1))[0]);
  }
  CloseBlocks();
  const std::string chunk_tmp = stem_path_ + ".chunk.tmp";
  const std::string meta_tmp = stem_path_ + ".meta.tmp";
  const std::string chunk_path = stem_path_ + ".chunk";
  const std::string meta_path = stem_path_ + ".meta";
  if (allocated_ > size_ && ::ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
    return Fail(Status::FromErrno(errno, "truncate " + chunk_tmp));
  }
  ChunkMeta meta{key_, size_, crc_};
  std::string bytes = EncodeMeta(meta, blocks_);
  {
    UniqueFd mfd(::open(meta_tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!mfd.valid()) return Fail(Status::FromErrno(errno, meta_tmp));
    Status s = PwriteAll(mfd.get(), bytes.data(), bytes.size(), 0, meta_tmp);
    if (s.ok() && ::fdatasync(mfd.get()) != 0) s = Status::FromErrno(errno, "fdatasync " + meta_tmp);
    if (!s.ok()) return Fail(s);
  }
  if (::fdatasync(fd_) != 0) return Fail(Status::FromErrno(errno, "fdatasync " + chunk_tmp));
  if (store_.options_.drop_behind) ::posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd_);
  fd_ = -1;
  // Replacing an older copy in a volume: a synced tombstone before the
  // renames, or a crash after them would let that copy win the next Scan.
  // (Should a rename then fail, the chunk is gone from this node on its next
  // start; the master's report sees it missing and re-replicates it.)
  auto tombstone = store_.BuryVolumeCopy(key_);
  if (!tombstone) return Fail(tombstone.error());
  // Replacing an older file: drop its .chunk first, so a crash between the
  // renames below never pairs the old bytes with the new checksums.
  if (store_.IsStoredInFile(key_)) {
    if (Status s = store_.trash_.Discard(chunk_path); !s.ok() && s.code() != Code::kNotFound) return Fail(s);
  }
  // .meta first: a .chunk in place always has its checksums beside it.
  if (::rename(meta_tmp.c_str(), meta_path.c_str()) != 0) {
    return Fail(Status::FromErrno(errno, "rename " + meta_tmp));
  }
  Status s;
  if (::rename(chunk_tmp.c_str(), chunk_path.c_str()) != 0) s = Status::FromErrno(errno, "rename " + chunk_tmp);
  if (s.ok()) s = SyncDirectory(std::filesystem::path(stem_path_).parent_path().string());
  if (!s.ok()) {
    ::unlink(chunk_path.c_str());
    ::unlink(meta_path.c_str());
    return Fail(s);
  }
  finished_ = true;
  store_.Install(meta, *tombstone);
  store_.Release(key_);
  return meta;
}

void ChunkWriter::Abort() {
  if (finished_ || aborted_) return;
  aborted_ = true;
  if (buffered_) {
    buffer_.reset();
    store_.Release(key_, allocated_);
    return;
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  // The .chunk.tmp may hold a whole chunk's reserved blocks: to the trash,
  // and before Release, so that a new writer of this chunk never meets it.
  for (const char* ext : {".chunk.tmp", ".meta.tmp"}) {
    std::string p = stem_path_ + ext;
    Status s = store_.trash_.Discard(p);
    if (!s.ok() && s.code() != Code::kNotFound) spdlog::warn("cannot remove {}: {}", p, s.ToString());
  }
  store_.Release(key_);
}

}  // namespace dfs::filenode
