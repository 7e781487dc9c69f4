// The node's chunk store. Big chunks are files named only by id and version,
// each with a checksum file beside it (chunk_format.h); small ones are
// records in append-only volumes (volume_format.h, volume_store.h).
//
// A chunk is written through a ChunkWriter, in order. A chunk whose size is
// announced up front and small enough (at most the store's volume_max_chunk
// and the caller's buffer_limit) is *buffered*: kept in memory until it
// finishes, then appended to the active volume together with every other
// buffered chunk finishing at the same time, under one fdatasync (group
// commit: a small chunk costs no inode, no rename and no folder fsync).
// Any other chunk goes to temp files, pre-sized when its size is known;
// Finish() makes it durable (fdatasync both files, rename both into place,
// fsync the folder). Either way a chunk is visible to Read and the chunk
// report only once durable, and a crash at any point leaves either no chunk
// or a whole one: Scan() at start-up drops temp leftovers, any .chunk whose
// .meta is missing or does not match it, and a volume's torn tail.
//
// Reads verify the 64 KiB blocks they touch against the stored checksums and
// answer Corruption rather than a wrong byte, from a file or a volume alike.
//
// Compaction (Compact, chunk_compaction.cc; compaction.h, volume_store.h)
// copies a sealed volume's live records to the active volume, switches the
// index to each copy only once it is durable, and only if the chunk is
// still where it was read: under the store's lock the copies are written
// (not synced) and their keys claimed as writers claim them, so no writer
// of those chunks can start until the switch, and a delete meanwhile
// writes its tombstone for the copy (which is already in the volume, so
// the tombstone comes after it and a restart's scan keeps the chunk
// deleted). Reads that looked the chunk up before a switch and find its
// old volume gone look it up again.
//
// Thread-safety: ChunkStore is thread-safe (the index is behind a mutex), so
// writers Finish() on sync threads while the poll thread reads and deletes.
// One ChunkWriter is used by one thread at a time. The store must outlive
// its writers.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/env.h"
#include "common/status.h"
#include "filenode/chunk_format.h"
#include "filenode/compaction.h"
#include "filenode/trash.h"

namespace dfs::filenode {

class ChunkStore;
class VolumeStore;

struct ChunkStoreOptions {
  // Chunks of at most this many bytes go to volumes (when their writer's
  // buffer limit allows); 0 sends every chunk to files. Bigger ones are worth
  // their own file: a 64 MiB fdatasync dwarfs an inode and a rename.
  uint64_t volume_max_chunk = 1ull << 20;
  // A volume takes batches until the next would pass this; then a new one
  // starts. Start-up reads the last volume whole (it may be torn), so this
  // bounds that read, and compaction copies at most this much to free one.
  uint64_t volume_size = 256ull << 20;
  // Zeroed, synced space kept ahead of the active volume's end, so a batch's
  // fdatasync writes its data alone (volume_store.h, "Prepared space"); 0
  // (the default) appends to the end instead.
  uint64_t volume_prepare = 0;
  // Chunks in files: start each frame's writeback as it is written and drop
  // the pages from the page cache a little behind it and at finish (as
  // HDFS's drop-behind does). The page cache then holds what is read, not
  // what was written once, and the disk sees each writer's stream in order
  // rather than the flusher's interleaving of all of them: three nodes
  // writing one disk went from 760-1,350 to 1,950-2,200 MiB/s, in a fifth of
  // the kernel time, on the development VM (issue 4, session 7;
  // docs/architecture.md). false leaves the pages to the kernel.
  bool drop_behind = true;
  // Background compaction of volumes (compaction.h); Compact() runs it.
  CompactionOptions compaction;
  // Every file access (data, checksums, volumes, trash); nullptr:
  // Env::Default(). Must outlive the store. A FaultEnv here is how tests
  // make the disk fail.
  Env* env = nullptr;
};

class ChunkWriter {
 public:
  ~ChunkWriter();  // removes the temp files unless Finish() succeeded
  ChunkWriter(const ChunkWriter&) = delete;
  ChunkWriter& operator=(const ChunkWriter&) = delete;

  // Writes `data` at `offset`, which must equal size(): chunks are written in
  // order. A full disk is NoSpace; a buffered writer refuses bytes past the
  // size it announced. After any error the writer is aborted.
  Status Append(uint64_t offset, std::span<const std::byte> data);
  // Durable and visible, replacing an older copy of the same id and version.
  // A file: writes the .meta, fdatasyncs both files, renames both into place,
  // fsyncs the folder. Buffered: a group commit of this writer alone.
  Result<ChunkMeta> Finish();
  // Finishes many writers at once: the buffered ones of each store share
  // one volume append and one fdatasync (a failure fails all of them), the
  // others finish one by one. One result per writer, in order.
  static std::vector<Result<ChunkMeta>> FinishAll(std::span<ChunkWriter* const> writers);
  // Removes the temp files (or drops the buffer); idempotent.
  void Abort();

  ChunkKey key() const { return key_; }
  uint64_t size() const { return size_; }
  // CRC32C of everything appended so far.
  uint32_t crc32c() const { return crc_; }
  // Held in memory and bound for a volume (see ChunkStore).
  bool buffered() const { return buffered_; }

 private:
  friend class ChunkStore;
  ChunkWriter(ChunkStore& store, ChunkKey key, std::string stem_path, PendingReplace file, uint64_t allocated);
  ChunkWriter(ChunkStore& store, ChunkKey key, uint64_t capacity);
  Status Fail(Status s);
  // ChunkStoreOptions::drop_behind, for the bytes up to `end` just written.
  void DropBehind(uint64_t end);
  // The last partial block's checksum joins the table; once, at finish.
  void CloseBlocks();

  ChunkStore& store_;
  ChunkKey key_;
  std::string stem_path_;  // DIR/chunks/xx/<id>_<version>; files only
  std::optional<PendingReplace> file_;  // DIR/chunks/xx/<stem>.chunk.tmp; files only
  uint64_t allocated_ = 0;  // a file's reserved size, or a buffer's capacity
  uint64_t dropped_ = 0;    // drop_behind: pages before this were let go
  std::unique_ptr<std::byte[]> buffer_;  // buffered only; freed once committed
  bool buffered_ = false;
  uint64_t size_ = 0;
  uint32_t crc_ = 0;
  uint32_t block_crc_ = 0;          // of the block being filled
  std::vector<uint32_t> blocks_;    // finished blocks
  bool finished_ = false;
  bool aborted_ = false;
};

class ChunkStore {
 public:
  // Chunks live under `dir`/chunks, volumes under `dir`/chunks/volumes.
  explicit ChunkStore(std::string dir, ChunkStoreOptions options = {});
  ~ChunkStore();

  // Start-up: creates the folders, removes temp leftovers, drops (and logs)
  // every .chunk without a valid matching .meta and every .meta without its
  // .chunk, replays the volumes (see volume_store.h), and loads the index.
  // Returns every chunk stored.
  Result<std::vector<ChunkMeta>> Scan();

  // Starts writing a chunk. With 0 < expected_size <= min(buffer_limit,
  // volume_max_chunk) the writer is buffered: memory for expected_size
  // bytes, bound for a volume. Otherwise a file: expected_size > 0 reserves
  // the space up front (fallocate). Either way a disk that cannot take
  // expected_size is NoSpace here rather than mid-stream. Busy while another
  // writer holds the same id and version.
  Result<std::unique_ptr<ChunkWriter>> Create(ChunkKey key, uint64_t expected_size, uint64_t buffer_limit = 0);

  // The stored chunk's size and checksum; NotFound when absent.
  Result<ChunkMeta> Lookup(ChunkKey key) const;
  // Reads exactly out.size() bytes at `offset`, verifying every 64 KiB block
  // the range touches. A mismatch is Corruption naming the chunk and the
  // block's offset; `out` is then garbage and must not be sent. With `crc`,
  // also gives the CRC32C of `out` (combined from the blocks' own when the
  // range is whole blocks: the bytes are summed once, not twice).
  Status Read(ChunkKey key, uint64_t offset, std::span<std::byte> out, uint32_t* crc = nullptr) const;
  // Removes a stored chunk (not an open writer's temp files).
  Status Delete(ChunkKey key);
  // Waits until the files deleted so far have given their blocks back
  // (trash.h: they leave the store at once, their blocks a little later).
  void DrainTrash() { trash_.Drain(); }

  // Remembers that a chunk failed a checksum, for List(); cleared by Delete
  // or a new copy. True when it was not marked yet (report it once).
  bool MarkCorrupt(ChunkKey key);
  struct Listed {
    ChunkMeta meta;
    bool corrupt = false;
  };
  std::vector<Listed> List() const;

  // Where a stored chunk lives, for tests and tools: volume 0 is a file.
  struct Place {
    uint32_t volume = 0;
    uint64_t offset = 0;  // of its record in the volume
  };
  Result<Place> Locate(ChunkKey key) const;
  std::string VolumePath(uint32_t volume) const;

  // Bytes of the chunks stored (their sizes).
  uint64_t used_bytes() const;
  // Bytes the store takes on disk: chunk files, and volumes whole (dead
  // records and headers included) until compaction or collection frees them.
  uint64_t disk_bytes() const;
  uint64_t chunk_count() const;
  const std::string& root() const { return root_; }
  // Volumes, their bytes (dead records included), batches committed.
  struct VolumeStats {
    uint64_t volumes = 0;
    uint64_t bytes = 0;
    uint64_t commits = 0;
    uint64_t records = 0;
    uint64_t indexes_used = 0;  // sealed volumes the last Scan read from their index
    uint64_t prepared = 0;      // zeros written ahead of the active volume's end, ever
    uint64_t prepare_declined = 0;  // volumes left unprepared for lack of free space
    uint64_t live_bytes = 0;        // of live records, headers included
    uint64_t compactions = 0;       // volumes compacted
    uint64_t compacted_records = 0;  // records they moved
    uint64_t compacted_bytes = 0;    // bytes they moved
    uint64_t removed = 0;            // dead volumes unlinked (compacted or not)
    uint64_t reclaimed_bytes = 0;    // their bytes
  };
  VolumeStats volume_stats() const;

  // One bounded step of background compaction, on the sync worker's volume
  // thread between batches (it appends to volumes; see sync_worker.h):
  // retires an all-dead active volume, picks a volume worth compacting and
  // moves up to CompactionOptions::step bytes of its live records. Returns
  // how long to wait before the next call (the pace, or a pause when there
  // is nothing to do or the disk refused). Errors are logged, never thrown.
  std::chrono::nanoseconds Compact();
  // Chunks compaction found corrupt since the last call, each already
  // marked (MarkCorrupt), for the poll thread to report to the master.
  std::vector<ChunkMeta> TakeFoundCorrupt();
  // The disk failed under a write (an I/O error, not a full disk): from
  // then on Create refuses every chunk (Unavailable) and the node says so in
  // its heartbeat, so the master places no more chunks here. Reads and
  // deletions go on. Sticky until restart.
  bool disk_failed() const { return disk_failed_.load(std::memory_order_relaxed); }
  std::string disk_error() const;

 private:
  friend class ChunkWriter;
  struct Entry {
    uint64_t size = 0;
    uint32_t crc32c = 0;
    bool corrupt = false;
    uint32_t volume = 0;  // 0: a .chunk file; else the volume holding its record
    uint64_t offset = 0;  // of that record
  };
  std::string StemPath(ChunkKey key) const;
  Status ReadFileChunk(ChunkKey key, uint64_t size, uint64_t offset, std::span<std::byte> out, uint32_t* crc) const;
  Status ReadVolumeChunk(ChunkKey key, const Entry& e, uint64_t offset, std::span<std::byte> out,
                         uint32_t* crc) const;
  // The buffered writers' group commit (ChunkWriter::FinishAll).
  std::vector<Result<ChunkMeta>> CommitBuffered(std::span<ChunkWriter* const> writers);
  // A file copy is about to replace a copy in a volume: a synced tombstone
  // first, or a crash after the rename would bring the old copy back over it.
  // Returns the tombstone's volume, or 0 when no volume copy is stored.
  Result<uint32_t> BuryVolumeCopy(ChunkKey key);
  // Called by file writers when they finish; `tombstone_volume` is
  // BuryVolumeCopy's answer.
  void Install(const ChunkMeta& meta, uint32_t tombstone_volume);
  // Called by writers when they finish or abort; `buffered` is the memory
  // they had reserved against the disk's free space.
  void Release(ChunkKey key, uint64_t buffered = 0);
  bool IsStoredInFile(ChunkKey key) const;
  void RemoveChunkFiles(const std::string& stem);
  void RemoveQuietly(const std::string& path);
  // Records `s` as the disk failing when it is an I/O error; returns it.
  Status NoteWriteError(Status s);

  // Compaction (chunk_compaction.cc).
  struct CompactItem {
    ChunkKey key;
    uint64_t offset = 0;
    uint64_t size = 0;
  };
  // A chunk whose record is being copied (between the copy's write and the
  // switch to it); guarded by mu_.
  struct Moving {
    uint32_t from_volume = 0;
    uint64_t from_offset = 0;
    uint32_t to_volume = 0;
    uint64_t to_offset = 0;
    uint64_t size = 0;
    bool deleted = false;      // Delete came meanwhile: its tombstone names the copy
    uint32_t tomb_volume = 0;  // where that tombstone went (0: it failed)
  };
  // The volume being compacted; the volume thread's alone.
  struct Compaction {
    uint32_t volume = 0;
    uint64_t bytes = 0;  // its size when picked
    std::deque<CompactItem> todo;
    uint64_t moved_records = 0;
    uint64_t moved_bytes = 0;
    uint64_t corrupt = 0;  // records left in place
    std::chrono::steady_clock::time_point began{};
    std::chrono::steady_clock::time_point resume_at{};  // after an error
  };
  bool StartCompaction();
  // Moves the next step's records; the bytes moved.
  Result<uint64_t> CompactStep();
  void FinishCompaction();
  void AbandonCompaction(const Status& why);
  // A compaction got to `step`: the test hook, and the SIGKILL the options
  // may ask for (tests).
  void Reached(CompactionStep step) const;

  std::string root_;  // DIR/chunks
  ChunkStoreOptions options_;
  Env* const env_;
  Trash trash_;  // DIR/trash; before the volume store, which uses it
  std::unique_ptr<VolumeStore> volumes_;
  mutable std::mutex mu_;  // before the volume store's locks when both are held
  std::unordered_map<ChunkKey, Entry, ChunkKeyHash> index_;
  std::unordered_set<ChunkKey, ChunkKeyHash> writing_;
  uint64_t used_ = 0;
  uint64_t file_bytes_ = 0;  // of the chunks stored in files
  uint64_t buffered_reserved_ = 0;  // bytes of open buffered writers, not on disk yet
  std::unordered_map<ChunkKey, Moving, ChunkKeyHash> moving_;
  std::vector<ChunkMeta> found_corrupt_;  // guarded by mu_
  Compaction compaction_;
  // Volumes compacted that stayed (a corrupt record, a pin that came late):
  // not picked again. The volume thread's alone.
  std::set<uint32_t> compacted_but_kept_;
  std::atomic<bool> disk_failed_{false};
  std::string disk_error_;  // guarded by mu_
};

}  // namespace dfs::filenode
