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
// Space: each volume counts its live records and bytes, and the later
// volumes holding records that shadow its dead ones (a put replaced or
// deleted by a record in a later volume); the later volume keeps a list of
// those dead records ("pins", 32 bytes each, until the earlier volume goes).
// A sealed volume with no live records is unlinked once no earlier volume
// holds a record it shadows: removing it then changes no key's last record,
// so nothing deleted can come back. An active volume whose records all died
// is sealed and unlinked the same way when the node is idle
// (RetireDeadActive), so deleted chunks give their space back without
// waiting for the volume to fill.
//
// Compaction (ChunkStore::Compact drives it, one bounded step at a time on
// the volume thread; filenode/compaction.h has the knobs): a sealed volume
// whose dead bytes pass a threshold has its live records read and checked
// (ReadPut), appended to the active volume through the group-commit path in
// two halves (Write, then Commit's fdatasync) and, once durable, switched to
// in the chunk index by Shadow(old record -> new volume); then the dead
// records it still keeps dead in earlier volumes get tombstones of their own
// in the active volume (Repin, synced) and it is unlinked by CollectGarbage.
// Every step leaves the volumes a Scan reads right: a copy is a later put of
// the same key with the same bytes, so before the switch and after it the
// last record of each key is still the one that should be; a pin's new
// tombstone names its record by place, so it deletes nothing else.
// The ChunkStore guards the copies against deletes racing them (a chunk
// deleted mid-move gets a tombstone naming its copy; chunk_store.h).
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
// Thread-safety: thread-safe. Append (and Write/Commit, compaction's
// ReadPut/Repin/RetireDeadActive) runs on one thread at a time (the sync
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
#include <optional>
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
  struct ActiveFile;

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
    uint64_t live_bytes = 0;  // of live records (headers and data)
    uint64_t commits = 0;  // batches made durable (one fdatasync each)
    uint64_t records = 0;  // puts in those batches
    uint64_t indexes_used = 0;  // sealed volumes the last Scan read from their index
    uint64_t prepared = 0;      // bytes of zeros written ahead (all volumes, ever)
    uint64_t prepare_declined = 0;  // volumes not prepared for lack of free space
    uint64_t compactions = 0;        // compactions run to their end
    uint64_t compacted_records = 0;  // records moved by compaction
    uint64_t compacted_bytes = 0;    // their bytes (headers and data)
    uint64_t repinned = 0;           // tombstones written for pins of compacted volumes
    uint64_t removed = 0;            // dead volumes unlinked
    uint64_t reclaimed_bytes = 0;    // their bytes
  };
  // What compaction would gain from a sealed volume (PickForCompaction).
  struct Candidate {
    uint32_t volume = 0;
    uint64_t bytes = 0;       // the file's
    uint64_t live = 0;        // live records
    uint64_t live_bytes = 0;  // their bytes, which a compaction copies
    uint64_t pins = 0;        // dead records elsewhere it keeps dead (a tombstone each)
  };
  // A put read back whole and checked (ReadPut).
  struct Record {
    std::vector<std::byte> data;
    uint32_t crc32c = 0;
    std::vector<uint32_t> block_crcs;
  };
  // A batch written but not yet durable (Write, then Commit).
  class Batch {
   public:
    const std::vector<Location>& at() const { return at_; }
    uint64_t bytes() const { return bytes_; }

   private:
    friend class VolumeStore;
    std::shared_ptr<ActiveFile> file_;  // kept open across a seal
    uint32_t volume_ = 0;
    uint64_t start_ = 0;
    uint64_t bytes_ = 0;
    std::vector<Location> at_;
    bool done_ = false;
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
  // Append in two halves, for a caller that must act between them
  // (compaction records its copies under its own lock): Write puts the
  // batch at the end of the active volume and counts it live, not yet
  // durable, never visible to readers; Commit makes it durable (one
  // fdatasync), or cuts it off again and uncounts it. Every Write must be
  // Committed before the next one. Without `may_roll_over` the batch goes
  // into the active volume even past its size limit (after MakeRoom, a
  // Write under a caller's lock then neither syncs nor creates a file).
  Result<Batch> Write(std::span<const Put> puts, bool may_roll_over = true);
  Status Commit(Batch& batch);
  // Rolls the active volume over now when `bytes` more would not fit.
  Status MakeRoom(uint64_t bytes);
  // Appends a tombstone for the put at `target`; with `sync`, durable before
  // it returns. Returns the volume it went to (for Shadow).
  Result<uint32_t> AppendTombstone(ChunkKey key, Location target, bool sync);
  // A delete: appends a tombstone for the put of `key` at `target` (`size`
  // bytes of data; not synced, as AppendTombstone without `sync`) and
  // counts the put dead, shadowed by it, in one step, so no collection can
  // take the tombstone's volume between the two. Without a tombstone (an
  // error) the put is dead to this process all the same.
  Result<uint32_t> Bury(ChunkKey key, Location target, uint64_t size);
  // The live put of `key` at `dead` (`size` bytes of data) is dead now,
  // shadowed by a record in volume `by` (a later put of the key, or a
  // tombstone naming it; `by` == dead.volume when nothing on disk kills it).
  void Shadow(ChunkKey key, Location dead, uint64_t size, uint32_t by);
  // Unlinks sealed volumes that hold nothing live and shadow nothing left.
  void CollectGarbage();
  // Seals the active volume when it holds nothing live and shadows nothing
  // in earlier volumes, so CollectGarbage unlinks it (its space back without
  // waiting for it to fill). For an idle moment: it syncs the volume.
  void RetireDeadActive();

  // Compaction (volume_compaction.cc). The sealed volume with the most dead
  // bytes, if those are more than `threshold` of its bytes and at least
  // `min_dead` (the bytes its pins will take again are not counted dead).
  // Volumes in `skip` are not picked.
  std::optional<Candidate> PickForCompaction(double threshold, uint64_t min_dead,
                                             const std::set<uint32_t>& skip = {}) const;
  // The records of sealed volume `volume`, in offset order: from its index
  // file, or its headers when the index is missing or does not match.
  Result<std::vector<IndexedRecord>> SealedRecords(uint32_t volume);
  // The put of `key` at `at` in `file` (a volume opened for reading), read
  // whole and checked like a read checks it: the header and its checksum,
  // the key and size, every block's CRC32C and the whole chunk's.
  // Corruption names the volume and offset.
  static Result<Record> ReadPut(File& file, Location at, ChunkKey key, uint64_t size);
  // Moves what `volume` (sealed) keeps dead in earlier volumes to the active
  // volume: a tombstone for each such record, appended and synced, and only
  // then the pins moved, so CollectGarbage may unlink `volume`.
  Status Repin(uint32_t volume);
  // A compaction of one volume is done: `records` records (`bytes` bytes) moved.
  void NoteCompaction(uint64_t records, uint64_t bytes);

  std::string Path(uint32_t volume) const;
  std::string IndexPath(uint32_t volume) const;
  // The bytes of a put of `size` bytes of data, header included.
  static uint64_t PutBytes(uint64_t size) { return RecordHeaderSize(size) + size; }
  const std::string& dir() const { return dir_; }
  Stats stats() const;

 private:
  // The active volume's open file; shared so a sync in flight outlives a seal.
  struct ActiveFile {
    std::unique_ptr<File> io;
    std::string path;
    std::atomic<bool> failed{false};  // an fdatasync failed: never trust it again
  };
  // A dead record of an earlier volume that a record in this one shadows.
  struct Pin {
    ChunkKey key;
    Location at;
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
    uint64_t live_bytes = 0;                     // of the live records, headers included
    uint64_t pins = 0;                           // dead records of earlier volumes that this one shadows
    std::vector<Pin> pinned;                     // which (may list records of volumes gone since)
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
  void ShadowLocked(ChunkKey key, Location dead, uint64_t size, uint32_t by);
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
  uint64_t compactions_ = 0;
  uint64_t compacted_records_ = 0;
  uint64_t compacted_bytes_ = 0;
  uint64_t repinned_ = 0;
  uint64_t removed_ = 0;
  uint64_t reclaimed_bytes_ = 0;
  std::mutex sync_mu_;  // after mu_ when both are held
  std::mutex gc_mu_;    // before mu_: one collection at a time, in order
};

}  // namespace dfs::filenode
