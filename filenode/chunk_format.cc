#include "filenode/chunk_format.h"

#include <charconv>

#include <fmt/format.h>

#include "common/checksum.h"

namespace dfs::filenode {

void PutLe32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutLe64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t LoadLe64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

uint32_t LoadLe32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string ChunkName(ChunkKey key) { return fmt::format("chunk {} v{}", key.id, key.version); }

std::string ShardName(uint64_t chunk_id) { return fmt::format("{:02x}", chunk_id % 256); }

std::string ChunkStem(ChunkKey key) { return fmt::format("{}_{}", key.id, key.version); }

std::optional<ChunkKey> ParseChunkFileName(std::string_view name, std::string_view ext) {
  if (name.size() <= ext.size() || !name.ends_with(ext)) return std::nullopt;
  name.remove_suffix(ext.size());
  size_t sep = name.find('_');
  if (sep == std::string_view::npos || sep == 0 || sep + 1 == name.size()) return std::nullopt;
  ChunkKey key;
  const char* end = name.data() + sep;
  auto r1 = std::from_chars(name.data(), end, key.id);
  if (r1.ec != std::errc() || r1.ptr != end) return std::nullopt;
  end = name.data() + name.size();
  auto r2 = std::from_chars(name.data() + sep + 1, end, key.version);
  if (r2.ec != std::errc() || r2.ptr != end) return std::nullopt;
  // Only the canonical spelling: "012_3" would be a second name for 12 v3.
  if (ChunkStem(key) != name) return std::nullopt;
  return key;
}

std::string EncodeMeta(const ChunkMeta& meta, const std::vector<uint32_t>& block_crcs) {
  std::string out;
  out.reserve(MetaBlockCrcOffset(block_crcs.size()) + 4);
  PutLe32(out, kMetaMagic);
  PutLe32(out, kMetaFormat);
  PutLe64(out, meta.key.id);
  PutLe32(out, meta.key.version);
  PutLe32(out, kChunkBlockSize);
  PutLe64(out, meta.size);
  PutLe32(out, meta.crc32c);
  PutLe32(out, static_cast<uint32_t>(block_crcs.size()));
  for (uint32_t crc : block_crcs) PutLe32(out, crc);
  PutLe32(out, Crc32c(out));
  return out;
}

Result<MetaHeader> DecodeMetaHeader(std::string_view bytes, std::string_view what) {
  if (bytes.size() < kMetaHeaderSize) {
    return Status::Corruption(fmt::format("{}: {} bytes is too short for a chunk header", what, bytes.size()));
  }
  const char* p = bytes.data();
  if (LoadLe32(p) != kMetaMagic) return Status::Corruption(fmt::format("{}: not a chunk meta file", what));
  if (LoadLe32(p + 4) != kMetaFormat) {
    return Status::Corruption(fmt::format("{}: unknown meta format {}", what, LoadLe32(p + 4)));
  }
  MetaHeader h;
  h.meta.key.id = LoadLe64(p + 8);
  h.meta.key.version = LoadLe32(p + 16);
  if (LoadLe32(p + 20) != kChunkBlockSize) {
    return Status::Corruption(fmt::format("{}: block size {} is not {}", what, LoadLe32(p + 20), kChunkBlockSize));
  }
  h.meta.size = LoadLe64(p + 24);
  h.meta.crc32c = LoadLe32(p + 32);
  h.block_count = LoadLe32(p + 36);
  if (h.block_count != BlockCount(h.meta.size)) {
    return Status::Corruption(
        fmt::format("{}: {} block checksums for {} bytes", what, h.block_count, h.meta.size));
  }
  return h;
}

Result<MetaHeader> ValidateMeta(std::string_view bytes, std::string_view what) {
  DFS_ASSIGN_OR_RETURN(MetaHeader h, DecodeMetaHeader(bytes, what));
  uint64_t expected = MetaBlockCrcOffset(h.block_count) + 4;
  if (bytes.size() != expected) {
    return Status::Corruption(fmt::format("{}: {} bytes, expected {}", what, bytes.size(), expected));
  }
  uint32_t stored = LoadLe32(bytes.data() + expected - 4);
  if (Crc32c(bytes.substr(0, expected - 4)) != stored) {
    return Status::Corruption(fmt::format("{}: checksum of the meta file does not match", what));
  }
  return h;
}

}  // namespace dfs::filenode
