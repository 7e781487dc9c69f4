// The on-disk form of a chunk: names and the checksum file beside it.
//
//   DIR/chunks/<id % 256 as two hex digits>/<id>_<version>.chunk   the bytes
//   DIR/chunks/<id % 256 as two hex digits>/<id>_<version>.meta    checksums
//
// A .meta file, little-endian:
//   u32 magic "DFSM"  u32 format (1)  u64 chunk id  u32 version
//   u32 block size    u64 chunk size  u32 CRC32C of the whole chunk
//   u32 block count   u32 CRC32C of each block, in order
//   u32 CRC32C of everything before it (a torn or damaged .meta is detected)
// Blocks are 64 KiB so a ranged read verifies only the blocks it touches;
// the last block may be short. The per-block table costs 4 bytes per 64 KiB
// (1/16384 of the data).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace dfs::filenode {

inline constexpr uint32_t kChunkBlockSize = 64 * 1024;
inline constexpr uint32_t kMetaMagic = 0x4d534644;  // "DFSM" read as little-endian
inline constexpr uint32_t kMetaFormat = 1;
inline constexpr size_t kMetaHeaderSize = 40;

struct ChunkKey {
  uint64_t id = 0;
  uint32_t version = 0;
  friend bool operator==(const ChunkKey&, const ChunkKey&) = default;
  friend auto operator<=>(const ChunkKey&, const ChunkKey&) = default;
};

struct ChunkKeyHash {
  size_t operator()(const ChunkKey& k) const { return k.id * 0x9e3779b97f4a7c15ULL ^ k.version; }
};

// "chunk 12 v3", the way every log line and error names a chunk.
std::string ChunkName(ChunkKey key);

// What the store knows about one stored chunk (the chunk report's entry).
struct ChunkMeta {
  ChunkKey key;
  uint64_t size = 0;
  uint32_t crc32c = 0;
};

// "0c" for id 12; the subfolder under DIR/chunks.
std::string ShardName(uint64_t chunk_id);
// "<id>_<version>" — the file stem, without folder or extension.
std::string ChunkStem(ChunkKey key);
// Parses "<id>_<version>.chunk" (or .meta, with `ext`) back into a key.
std::optional<ChunkKey> ParseChunkFileName(std::string_view name, std::string_view ext);

inline uint64_t BlockCount(uint64_t size) { return (size + kChunkBlockSize - 1) / kChunkBlockSize; }

// The whole .meta file for a chunk with these block checksums.
std::string EncodeMeta(const ChunkMeta& meta, const std::vector<uint32_t>& block_crcs);

// A parsed fixed header (the first kMetaHeaderSize bytes).
struct MetaHeader {
  ChunkMeta meta;
  uint32_t block_count = 0;
};
// Checks magic, format and block size; `what` names the file in errors.
Result<MetaHeader> DecodeMetaHeader(std::string_view bytes, std::string_view what);
// A whole .meta file: the header, the trailing checksum and the table length.
Result<MetaHeader> ValidateMeta(std::string_view bytes, std::string_view what);
// Offset of block `i`'s checksum inside a .meta file.
inline uint64_t MetaBlockCrcOffset(uint64_t i) { return kMetaHeaderSize + 4 * i; }

// Little-endian fields, for the .meta and volume record layouts.
uint32_t LoadLe32(const char* p);
uint64_t LoadLe64(const char* p);
void PutLe32(std::string& out, uint32_t v);
void PutLe64(std::string& out, uint64_t v);

}  // namespace dfs::filenode
