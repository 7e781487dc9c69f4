// ChunkWriter: the write half of the chunk store (see chunk_store.h).
#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/checksum.h"
#include "common/env.h"
#include "filenode/chunk_store.h"

namespace dfs::filenode {

ChunkWriter::ChunkWriter(ChunkStore& store, ChunkKey key, std::string stem_path, PendingReplace file,
                         uint64_t allocated)
    : store_(store), key_(key), stem_path_(std::move(stem_path)), file_(std::move(file)), allocated_(allocated) {
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
  return store_.NoteWriteError(s.Prepend(ChunkName(key_)));
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
    Status s = file_->file().PwriteAll(data.data(), data.size(), offset);
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
  File& file = file_->file();
  file.StartWriteback(size_, end - size_);
  if (end < kLag) return;
  const uint64_t upto = (end - kLag) & ~uint64_t{4095};
  if (upto <= dropped_) return;
  file.DropCache(dropped_, upto - dropped_);
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
  Env* env = store_.env_;
  const std::string chunk_path = stem_path_ + ".chunk";
  const std::string meta_path = stem_path_ + ".meta";
  if (allocated_ > size_) {
    if (Status s = file_->file().Truncate(size_); !s.ok()) return Fail(s);
  }
  ChunkMeta meta{key_, size_, crc_};
  std::string bytes = EncodeMeta(meta, blocks_);
  // Both files go through the one durable-replace sequence (common/env.h),
  // step by step: both synced, the renames in order, one folder sync. The
  // .meta's temp is removed if anything fails before its rename.
  auto created = PendingReplace::Create(env, meta_path);
  if (!created) return Fail(created.error());
  PendingReplace meta_file = std::move(*created);
  // Its temp goes before Fail releases the key: a new writer of this chunk
  // may create it again at once.
  auto fail = [&](Status s) {
    meta_file.Abandon();
    return Fail(std::move(s));
  };
  if (Status s = meta_file.file().PwriteAll(bytes.data(), bytes.size(), 0); !s.ok()) return fail(s);
  if (Status s = meta_file.Sync(); !s.ok()) return fail(s);
  if (Status s = file_->Sync(); !s.ok()) return fail(s);
  if (store_.options_.drop_behind) file_->file().DropCache(0, 0);
  // Replacing an older copy in a volume: a synced tombstone before the
  // renames, or a crash after them would let that copy win the next Scan.
  // (Should a rename then fail, the chunk is gone from this node on its next
  // start; the master's report sees it missing and re-replicates it.)
  auto tombstone = store_.BuryVolumeCopy(key_);
  if (!tombstone) return fail(tombstone.error());
  // Replacing an older file: drop its .chunk first, so a crash between the
  // renames below never pairs the old bytes with the new checksums.
  if (store_.IsStoredInFile(key_)) {
    if (Status s = store_.trash_.Discard(chunk_path); !s.ok() && s.code() != Code::kNotFound) return fail(s);
  }
  // .meta first: a .chunk in place always has its checksums beside it.
  if (Status s = meta_file.Rename(); !s.ok()) return fail(s);
  Status s = file_->Rename();
  if (s.ok()) s = env->SyncDir(DirName(stem_path_));
  if (!s.ok()) {
    IgnoreError(env->Remove(chunk_path));  // best effort: Scan drops a .chunk without its .meta
    IgnoreError(env->Remove(meta_path));
    return Fail(s);
  }
  file_.reset();  // closes the .chunk
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
  // Closed here, removed below through the trash.
  if (file_) file_->Forget();
  file_.reset();
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
