// The node's chunk store: chunk files named only by id and version, each
// with a checksum file beside it (see chunk_format.h for the layout).
//
// A chunk is written through a ChunkWriter to temp names, in order, into a
// file pre-sized when the final size is known; Finish() makes it durable
// (fdatasync both files, rename both into place, fsync the folder) and only
// then visible to Read and the chunk report. A crash at any point leaves
// either no chunk or a whole one: Scan() at start-up drops temp leftovers
// and any .chunk whose .meta is missing or does not match it.
//
// Reads verify the 64 KiB blocks they touch against the stored checksums and
// answer Corruption rather than a wrong byte.
//
// Thread-safety: ChunkStore is thread-safe (the index is behind a mutex), so
// a ChunkWriter may Finish() on a sync thread while the poll thread reads.
// One ChunkWriter is used by one thread at a time. The store must outlive
// its writers.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/status.h"
#include "filenode/chunk_format.h"

namespace dfs::filenode {

class ChunkStore;

class ChunkWriter {
 public:
  ~ChunkWriter();  // removes the temp files unless Finish() succeeded
  ChunkWriter(const ChunkWriter&) = delete;
  ChunkWriter& operator=(const ChunkWriter&) = delete;

  // Writes `data` at `offset`, which must equal size(): chunks are written in
  // order. A full disk is NoSpace; after any error the writer is aborted.
  Status Append(uint64_t offset, std::span<const std::byte> data);
  // Durable and visible: writes the .meta, fdatasyncs both files, renames
  // both into place (replacing an older copy of the same id and version),
  // fsyncs the folder and adds the chunk to the store's index.
  Result<ChunkMeta> Finish();
  // Removes the temp files; idempotent.
  void Abort();

  ChunkKey key() const { return key_; }
  uint64_t size() const { return size_; }
  // CRC32C of everything appended so far.
  uint32_t crc32c() const { return crc_; }

 private:
  friend class ChunkStore;
  ChunkWriter(ChunkStore& store, ChunkKey key, std::string stem_path, int fd, uint64_t allocated);
  Status Fail(Status s);

  ChunkStore& store_;
  ChunkKey key_;
  std::string stem_path_;  // DIR/chunks/xx/<id>_<version>
  int fd_ = -1;
  uint64_t allocated_ = 0;
  uint64_t size_ = 0;
  uint32_t crc_ = 0;
  uint32_t block_crc_ = 0;          // of the block being filled
  std::vector<uint32_t> blocks_;    // finished blocks
  bool finished_ = false;
  bool aborted_ = false;
};

class ChunkStore {
 public:
  // Chunks live under `dir`/chunks.
  explicit ChunkStore(std::string dir);
  ~ChunkStore();

  // Start-up: creates the folders, removes temp leftovers, drops (and logs)
  // every .chunk without a valid matching .meta and every .meta without its
  // .chunk, and loads the index. Returns every chunk stored.
  Result<std::vector<ChunkMeta>> Scan();

  // Starts writing a chunk. `expected_size` > 0 reserves the space up front
  // (fallocate), so a full disk is NoSpace here rather than mid-stream. Busy
  // while another writer holds the same id and version.
  Result<std::unique_ptr<ChunkWriter>> Create(ChunkKey key, uint64_t expected_size);

  // The stored chunk's size and checksum; NotFound when absent.
  Result<ChunkMeta> Lookup(ChunkKey key) const;
  // Reads exactly out.size() bytes at `offset`, verifying every 64 KiB block
  // the range touches. A mismatch is Corruption naming the chunk and the
  // block's offset; `out` is then garbage and must not be sent.
  Status Read(ChunkKey key, uint64_t offset, std::span<std::byte> out) const;
  // Removes a stored chunk (not an open writer's temp files).
  Status Delete(ChunkKey key);

  // Remembers that a chunk failed a checksum, for List(); cleared by Delete
  // or a new copy. True when it was not marked yet (report it once).
  bool MarkCorrupt(ChunkKey key);
  struct Listed {
    ChunkMeta meta;
    bool corrupt = false;
  };
  std::vector<Listed> List() const;

  uint64_t used_bytes() const;
  uint64_t chunk_count() const;
  const std::string& root() const { return root_; }

 private:
  friend class ChunkWriter;
  struct Entry {
    uint64_t size = 0;
    uint32_t crc32c = 0;
    bool corrupt = false;
  };
  std::string StemPath(ChunkKey key) const;
  // Called by writers when they finish or abort.
  void Install(const ChunkMeta& meta);
  void Release(ChunkKey key);
  bool IsStored(ChunkKey key) const;

  std::string root_;  // DIR/chunks
  mutable std::mutex mu_;
  std::unordered_map<ChunkKey, Entry, ChunkKeyHash> index_;
  std::unordered_set<ChunkKey, ChunkKeyHash> writing_;
  uint64_t used_ = 0;
};

}  // namespace dfs::filenode
