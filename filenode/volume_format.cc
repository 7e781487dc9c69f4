#include "filenode/volume_format.h"

#include <charconv>

#include <fmt/format.h>

#include "common/checksum.h"

namespace dfs::filenode {
namespace {

void PutFixed(std::string& out, RecordType type, ChunkKey key, uint32_t size, uint32_t crc32c, uint32_t blocks,
              uint32_t target_volume, uint64_t target_offset) {
  PutLe32(out, kVolumeMagic);
  const uint32_t format_and_type = kVolumeFormat | (uint32_t{static_cast<uint16_t>(type)} << 16);
  PutLe32(out, format_and_type);
  PutLe64(out, key.id);
  PutLe32(out, key.version);
  PutLe32(out, size);
  PutLe32(out, crc32c);
  PutLe32(out, blocks);
  PutLe32(out, target_volume);
  PutLe64(out, target_offset);
}

}  // namespace

void EncodePutHeader(std::string& out, ChunkKey key, uint32_t size, uint32_t crc32c,
                     std::span<const uint32_t> block_crcs) {
  const size_t start = out.size();
  PutFixed(out, RecordType::kPut, key, size, crc32c, static_cast<uint32_t>(block_crcs.size()), 0, 0);
  for (uint32_t crc : block_crcs) PutLe32(out, crc);
  PutLe32(out, Crc32c(std::string_view(out).substr(start)));
}

void EncodeTombstone(std::string& out, ChunkKey key, uint32_t target_volume, uint64_t target_offset) {
  const size_t start = out.size();
  PutFixed(out, RecordType::kTombstone, key, 0, 0, 0, target_volume, target_offset);
  PutLe32(out, Crc32c(std::string_view(out).substr(start)));
}

Result<RecordHeader> DecodeRecordFixed(std::string_view bytes, std::string_view what) {
  if (bytes.size() < kRecordFixedSize) {
    return Status::Corruption(fmt::format("{}: {} bytes is too short for a record header", what, bytes.size()));
  }
  const char* p = bytes.data();
  if (LoadLe32(p) != kVolumeMagic) return Status::Corruption(fmt::format("{}: no record starts here", what));
  const uint32_t format_and_type = LoadLe32(p + 4);
  if ((format_and_type & 0xffff) != kVolumeFormat) {
    return Status::Corruption(fmt::format("{}: unknown record format {}", what, format_and_type & 0xffff));
  }
  RecordHeader h;
  const uint32_t type = format_and_type >> 16;
  h.key.id = LoadLe64(p + 8);
  h.key.version = LoadLe32(p + 16);
  h.size = LoadLe32(p + 20);
  h.crc32c = LoadLe32(p + 24);
  h.block_count = LoadLe32(p + 28);
  h.target_volume = LoadLe32(p + 32);
  h.target_offset = LoadLe64(p + 36);
  if (type == static_cast<uint32_t>(RecordType::kPut)) {
    h.type = RecordType::kPut;
    if (h.size > kMaxVolumeChunk || h.block_count != BlockCount(h.size) || h.target_volume != 0 ||
        h.target_offset != 0) {
      return Status::Corruption(fmt::format("{}: a put of {} bytes with {} block checksums does not add up", what,
                                            h.size, h.block_count));
    }
  } else if (type == static_cast<uint32_t>(RecordType::kTombstone)) {
    h.type = RecordType::kTombstone;
    if (h.size != 0 || h.crc32c != 0 || h.block_count != 0 || h.target_volume == 0) {
      return Status::Corruption(fmt::format("{}: a tombstone with data or without a target", what));
    }
  } else {
    return Status::Corruption(fmt::format("{}: unknown record type {}", what, type));
  }
  return h;
}

Result<RecordHeader> DecodeRecordHeader(std::string_view bytes, std::string_view what) {
  DFS_ASSIGN_OR_RETURN(RecordHeader h, DecodeRecordFixed(bytes, what));
  const uint64_t size = RecordHeaderSizeForBlocks(h.block_count);
  if (bytes.size() < size) {
    return Status::Corruption(fmt::format("{}: the record header is cut short at {} of {} bytes", what,
                                          bytes.size(), size));
  }
  if (Crc32c(bytes.substr(0, size - 4)) != LoadLe32(bytes.data() + size - 4)) {
    return Status::Corruption(fmt::format("{}: the record header fails its checksum", what));
  }
  return h;
}

std::string VolumeFileName(uint32_t number) { return fmt::format("{:08d}.vol", number); }

std::optional<uint32_t> ParseVolumeFileName(std::string_view name) {
  if (!name.ends_with(".vol")) return std::nullopt;
  const char* end = name.data() + name.size() - 4;
  uint32_t n = 0;
  auto r = std::from_chars(name.data(), end, n);
  if (r.ec != std::errc() || r.ptr != end || n == 0) return std::nullopt;
  // Only the canonical spelling, so no volume has two names.
  if (VolumeFileName(n) != name) return std::nullopt;
  return n;
}

}  // namespace dfs::filenode
