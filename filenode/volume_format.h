// The on-disk form of a volume: small chunks appended as records to a few
// large files, so a small chunk costs no inode, no rename and no folder
// fsync, and a batch of them shares one fdatasync (Haystack, SeaweedFS).
//
//   DIR/chunks/volumes/<number, 8 digits>.vol   records back to back
//
// A record, little-endian (no padding, no file header):
//   u32 magic "DFSV"     u16 format (1)     u16 type (1 put, 2 tombstone)
//   u64 chunk id         u32 version        u32 data size
//   u32 CRC32C of the data                  u32 block count
//   u32 target volume    u64 target offset  (tombstone: the put it deletes)
//   u32 CRC32C of each 64 KiB block of the data, in order
//   u32 CRC32C of every header byte before it
//   the data
// A put's block count is the number of 64 KiB blocks (the last may be
// short); its target fields are 0. A tombstone has no data, no blocks and
// a zero CRC; it names the record it deletes by place, not only by key, so
// a tombstone that lands after a newer put of the same key (a delete racing
// a rewrite) deletes only the old copy.
//
// Volumes are numbered upwards and never renumbered; at start-up records are
// replayed in (volume, offset) order and the last record of a key decides.
// The header checksum makes every header self-validating: a scan that meets
// a damaged header searches forward for the next magic whose header checks
// out, so one bad sector loses one chunk, not the rest of the volume.
//
//   DIR/chunks/volumes/<number, 8 digits>.idx   a sealed volume's records
//
// An index lets a start-up read one small file per sealed volume instead of
// one header per record: on a cold disk 100k scattered header reads take
// seconds (5.7 s measured here for 100k 64 KiB chunks), one 5 MB read does
// not. Little-endian:
//   u32 magic "DFSX"   u32 format (1)   u32 volume number   u32 0
//   u64 the volume's size in bytes      u64 record count
//   per record: u64 its offset, then its fixed header (kRecordFixedSize bytes)
//   u32 CRC32C of everything before it
// It is written (temp file, fsync, rename) when a volume is sealed, or by a
// scan that found none, and used only when it matches the volume's size;
// anything else about it is a reason to rebuild it from the headers. The
// headers stay the truth: every read checks its record's whole header.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "filenode/chunk_format.h"

namespace dfs::filenode {

inline constexpr uint32_t kVolumeMagic = 0x56534644;  // "DFSV" read as little-endian
inline constexpr uint16_t kVolumeFormat = 1;
inline constexpr size_t kRecordFixedSize = 44;
inline constexpr uint32_t kIndexMagic = 0x58534644;  // "DFSX"
inline constexpr uint32_t kIndexFormat = 1;
inline constexpr size_t kIndexHeaderSize = 32;
inline constexpr size_t kIndexEntrySize = 8 + kRecordFixedSize;
// A record's data is at most this big: it bounds a header to 4 KiB of block
// checksums and a scan's read-ahead buffer. Chunks bigger than this are
// files, where a 64 MiB fdatasync is worth its own folder entry anyway.
inline constexpr uint64_t kMaxVolumeChunk = 64ull << 20;

enum class RecordType : uint16_t { kPut = 1, kTombstone = 2 };

struct RecordHeader {
  RecordType type = RecordType::kPut;
  ChunkKey key;
  uint32_t size = 0;
  uint32_t crc32c = 0;
  uint32_t block_count = 0;
  uint32_t target_volume = 0;
  uint64_t target_offset = 0;
};

inline uint64_t RecordHeaderSizeForBlocks(uint64_t block_count) { return kRecordFixedSize + 4 * block_count + 4; }
// The header of a put of `data_size` bytes; the data follows it.
inline uint64_t RecordHeaderSize(uint64_t data_size) { return RecordHeaderSizeForBlocks(BlockCount(data_size)); }
inline uint64_t RecordBlockCrcOffset(uint64_t i) { return kRecordFixedSize + 4 * i; }

// Appends a record's fixed part (the first kRecordFixedSize bytes) to `out`.
void EncodeRecordFixed(std::string& out, const RecordHeader& h);
// Appends a put's header (data not included) to `out`.
void EncodePutHeader(std::string& out, ChunkKey key, uint32_t size, uint32_t crc32c,
                     std::span<const uint32_t> block_crcs);
// Appends a whole tombstone record to `out`.
void EncodeTombstone(std::string& out, ChunkKey key, uint32_t target_volume, uint64_t target_offset);

// The fixed part (the first kRecordFixedSize bytes): magic, format, type and
// sizes that agree with each other. `what` names the file and offset.
Result<RecordHeader> DecodeRecordFixed(std::string_view bytes, std::string_view what);
// A whole header (RecordHeaderSizeForBlocks(block_count) bytes or more),
// including its checksum.
Result<RecordHeader> DecodeRecordHeader(std::string_view bytes, std::string_view what);

// A record as an index lists it.
struct IndexedRecord {
  uint64_t offset = 0;
  RecordHeader h;
};
std::string EncodeVolumeIndex(uint32_t number, uint64_t volume_size, std::span<const IndexedRecord> records);
// The records of volume `number`, if the index is whole and describes a
// volume of `volume_size` bytes; `what` names the index file in errors.
Result<std::vector<IndexedRecord>> DecodeVolumeIndex(std::string_view bytes, uint32_t number, uint64_t volume_size,
                                                     std::string_view what);

// "00000012.vol" and "00000012.idx" for 12, and back.
std::string VolumeFileName(uint32_t number);
std::optional<uint32_t> ParseVolumeFileName(std::string_view name);
std::string VolumeIndexName(uint32_t number);
std::optional<uint32_t> ParseVolumeIndexName(std::string_view name);

}  // namespace dfs::filenode
