// Volumes: append-only files that hold the node's small chunks as records
// (layout in volume_format.h), written in batches with one fdatasync each.
//
// Writes: Append() puts a whole batch at the end of the active volume with
// pwritev and makes it durable with ONE fdatasync (group commit); only then
// may the caller show the records to readers. A failed write or sync
// truncates the volume back to where the batch began and fails the whole
// batch. A failed fdatasync also seals the volume for good: after one, the
// kernel may have dropped the dirty pages and cleared the error, so a later
// fdatasync could succeed over lost data ("fsyncgate", PostgreSQL 2018). The
// next batch starts a new volume; so does one that would take the active
// volume past its size limit.
//
// Deletes append a tombstone that is not synced on its own: the next batch's
// fdatasync covers it, and a chunk that a crash brings back is reported,
// found to be an orphan and deleted again by the master.
//
// Space: each volume counts its live records and the later volumes holding
// records that shadow its dead ones (a put replaced or deleted by a record in
// a later volume). A sealed volume with no live records is unlinked once no
// earlier volume holds a record it shadows: removing it then changes no
// key's last record, so nothing deleted can come back. Known weak point:
// nothing compacts a volume that stays partly live, so the space of its dead
// records returns only with its last live chunk (and the chunk store's
// used_bytes counts live chunks, not that dead space).
//
// Prepared space: a thread keeps the active volume's next few MiB written
// with zeros and synced ahead of its end (`prepare` bytes, in segments of
// half that). A batch that lands there overwrites blocks the file already
// has, so its fdatasync writes the data alone: no block allocation, no size
// change, no inode: about half an append's latency and CPU per record, the
// zeros' own cost off the write's path (docs/architecture.md, "Measured
// figures behind the defaults"). (Zeros written by the batch's own thread
// were tried and were slower: the batch's fdatasync then also carried them.
// fallocate does not help: ext4's unwritten extents change at the first
// write.) The zeros live past the volume's end only: a seal cuts them, and
// start-up cuts a tail that is all zeros without calling it torn. Near a
// full disk (less than 32 segments free) nothing is prepared.
// Off by default: it doubles the bytes a small chunk costs the disk, and its
// whole-cluster gain did not hold up (it went both ways from one folder of
// the development VM's disk to another, and lost on a journaled ext4; the
// figures are in docs/architecture.md). The master's journal keeps it
// (master/journal.h): its zeros are a MiB per thousands of records, written
// while the writer is idle.
//
// Start-up (Scan): volumes in number order, records in offset order; the
// last record of a key decides. A sealed volume is read from its index (one
// small file; volume_format.h), or from its headers when the index is
// missing or does not match, and then indexed again. Data checksums are
// checked only in the last volume, the only one a crash can leave torn (a
// volume is synced before it is sealed): that keeps a start-up over 100k
// small chunks well under a second (0.18 s for 100k 64 KiB chunks, cold
// cache), where reading every byte would take seconds per GiB. Rot in a
// sealed volume, header or data, is found by reads, which verify the whole
// record header and every block they touch, as for chunk files. A torn
// tail of the last volume (a short or invalid record, or a put whose data
// fails its checksum with nothing valid after it) is truncated away; a put
// whose data fails its checksum before valid records is kept and reported
// corrupt. A damaged header met while reading headers is logged with its
// file and offset, and the scan searches forward for the next header that
// checks out: one bad sector costs the chunk it hit, not the rest of the
// volume. (A chunk whose own data holds a valid record image could then be
// misread as records; only after such damage.)
//
// Thread-safety: thread-safe. Append runs on one thread at a time (the sync
// worker's volume thread), while others append tombstones; Scan runs before
// any of that. The preparer writes zeros only past the active volume's end,
// through its own file descriptor (so a writeback error is reported to the
// batch's fdatasync as well as to its own); a batch that would reach a
// segment being written waits for it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "common/env.h"
#include "common/status.h"
#include "filenode/chunk_format.h"
#include "filenode/trash.h"
#include "filenode/volume_format.h"

namespace dfs::filenode {

class VolumeStore {
 public:
  struct Location {
    uint32_t volume = 0;
    uint64_t offset = 0;  // of the record's header
    friend bool operator==(const Location&, const Location&) = default;
  };
  // One chunk of a batch; the spans must stay valid during Append.
  struct Put {
    ChunkKey key;
    std::span<const std::byte> data;
    uint32_t crc32c = 0;
    std::span<const uint32_t> block_crcs;
  };
  // A chunk whose last record is a put.
  struct Found {
    ChunkKey key;
    Location at;
    uint64_t size = 0;
    uint32_t crc32c = 0;
    bool corrupt = false;  // its data failed its checksum during the scan
  };
  struct Stats {
    uint64_t volumes = 0;
    uint64_t bytes = 0;    // of every volume, dead records included
    uint64_t commits = 0;  // batches made durable (one fdatasync each)
    uint64_t records = 0;  // puts in those batches
    uint64_t indexes_used = 0;  // sealed volumes the last Scan read from their index
    uint64_t prepared = 0;      // bytes of zeros written ahead (all volumes, ever)
    uint64_t prepare_declined = 0;  // volumes not prepared for lack of free space
  };

  // Volumes live in `dir`; a batch starts a new one past `volume_size` bytes.
  // `prepare`: zeroed bytes kept ahead of the active volume's end (0: none).
  // `trash` takes dead volumes (trash.h); it must outlive the store.
  // Every file access goes through `env`, which must outlive the store.
  VolumeStore(std::string dir, uint64_t volume_size, uint64_t prepare, Trash& trash, Env* env);
  ~VolumeStore();
  VolumeStore(const VolumeStore&) = delete;
  VolumeStore& operator=(const VolumeStore&) = delete;

  // Creates the folder, replays every volume, truncates a torn tail, removes
  // dead volumes. Returns every chunk whose last record is a put.
  Result<std::vector<Found>> Scan();

  // Group commit: every put at the end of the active volume, then one
  // fdatasync. On success the records are durable and counted live (the
  // caller indexes them); on failure none of them is, and the error names
  // the volume and offset.
  Result<std::vector<Location>> Append(std::span<const Put> puts);
  // Appends a tombstone for the put at `target`; with `sync`, durable before
  // it returns. Returns the volume it went to (for Shadow).
  Result<uint32_t> AppendTombstone(ChunkKey key, Location target, bool sync);
  // A live record in `volume` is dead now, shadowed by a record in `by`.
  void Shadow(uint32_t volume, uint32_t by);
  // Unlinks sealed volumes that hold nothing live and shadow nothing left.
  void CollectGarbage();

  std::string Path(uint32_t volume) const;
  std::string IndexPath(uint32_t volume) const;
  const std::string& dir() const { return dir_; }
  Stats stats() const;

 private:
  // The active volume's open file; shared so a sync in flight outlives a seal.
  struct ActiveFile {
    std::unique_ptr<File> io;
    std::string path;
    std::atomic<bool> failed{false};  // an fdatasync failed: never trust it again
  };
  struct Volume {
    uint32_t number = 0;
    uint64_t end = 0;  // bytes of records: where the next one goes
    // [0, prepared) is allocated and durable: records, then synced zeros.
    uint64_t prepared = 0;
    // The preparer is writing zeros from preparing_from on.
    bool preparing = false;
    uint64_t preparing_from = 0;
    bool prepare_failed = false;  // it failed on this volume: no more tries
    uint64_t cuts = 0;            // truncations, so the preparer knows its zeros may be gone
    bool sealed = false;
    uint64_t live = 0;
    uint64_t pins = 0;                           // dead records of earlier volumes that this one shadows
    std::map<uint32_t, uint64_t> shadowed_into;  // later volume -> how many of our records it shadows
    std::shared_ptr<ActiveFile> file;                  // while active
    std::vector<IndexedRecord> records;          // while active: its index, once sealed
  };
  struct PendingIndex {
    uint32_t number = 0;
    uint64_t size = 0;
    std::vector<IndexedRecord> records;
  };

  // The volume the next `bytes` go to, rolling over when needed.
  Result<Volume*> ActiveLocked(uint64_t bytes);
  // The same, once no zeros are being written where `write` bytes go
  // (`bytes` is 0 for a tombstone: it never rolls over).
  Result<Volume*> WritableLocked(std::unique_lock<std::mutex>& lock, uint64_t bytes, uint64_t write);
  // The preparer thread, and whether it has work now.
  void PrepareLoop();
  bool PrepareWantedLocked() const;
  Result<Volume*> CreateVolumeLocked();
  void SealLocked(Volume& v);
  // Cuts a failed append off `v` through `file` (its file while active; a
  // concurrent seal may have dropped v.file already).
  void TruncateBackLocked(Volume& v, ActiveFile& file, uint64_t to);
  void ShadowLocked(uint32_t volume, uint32_t by);
  // The records of a sealed volume: from its index when that matches the
  // file, else from its headers (then the index is written for next time).
  // Start-up (volume_scan.cc).
  struct ScanState;
  Result<std::vector<IndexedRecord>> LoadSealed(uint32_t number, bool& from_index);
  Result<std::vector<uint32_t>> ListVolumes();
  // Reads volume `number` back (the last one whole, cutting a torn tail)
  // and folds its records into `scan`.
  Status LoadVolumeLocked(uint32_t number, bool is_last, ScanState& scan);
  // The last volume: open for appends, or sealed when full.
  Status OpenLastLocked(uint32_t number);
  // Indexes of volumes sealed by a roll-over, written outside the lock.
  void WritePendingIndexes();
  // fdatasync, one at a time; after a failure the file never syncs again.
  Status Sync(ActiveFile& file);

  const std::string dir_;
  const uint64_t volume_size_;
  const uint64_t prepare_;
  Trash& trash_;
  Env* const env_;
  mutable std::mutex mu_;
  std::condition_variable prepare_cv_;  // with mu_: work for the preparer, or a segment done
  bool stopping_ = false;
  uint64_t prepared_bytes_ = 0;
  uint64_t prepare_declined_ = 0;
  std::thread preparer_;
  std::map<uint32_t, Volume> volumes_;
  uint32_t active_ = 0;  // 0: none; the next append creates one
  uint32_t next_number_ = 1;
  std::set<uint32_t> maybe_dead_;  // volumes to check in CollectGarbage
  std::vector<PendingIndex> pending_indexes_;
  uint64_t indexes_used_ = 0;
  uint64_t commits_ = 0;
  uint64_t records_ = 0;
  std::mutex sync_mu_;  // after mu_ when both are held
  std::mutex gc_mu_;    // before mu_: one collection at a time, in order
};

}  // namespace dfs::filenode
