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
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"
#include "filenode/chunk_format.h"

namespace dfs::filenode {

inline constexpr uint32_t kVolumeMagic = 0x56534644;  // "DFSV" read as little-endian
inline constexpr uint16_t kVolumeFormat = 1;
inline constexpr size_t kRecordFixedSize = 44;
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

// "00000012.vol" for 12, and back.
std::string VolumeFileName(uint32_t number);
std::optional<uint32_t> ParseVolumeFileName(std::string_view name);

}  // namespace dfs::filenode
