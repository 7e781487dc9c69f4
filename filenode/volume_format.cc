#include "filenode/volume_format.h"

#include <charconv>

#include <fmt/format.h>

#include "common/checksum.h"

namespace dfs::filenode {
void EncodeRecordFixed(std::string& out, const RecordHeader& h) {
  PutLe32(out, kVolumeMagic);
  PutLe32(out, kVolumeFormat | (uint32_t{static_cast<uint16_t>(h.type)} << 16));
  PutLe64(out, h.key.id);
  PutLe32(out, h.key.version);
  PutLe32(out, h.size);
  PutLe32(out, h.crc32c);
  PutLe32(out, h.block_count);
  PutLe32(out, h.target_volume);
  PutLe64(out, h.target_offset);
}

void EncodePutHeader(std::string& out, ChunkKey key, uint32_t size, uint32_t crc32c,
                     std::span<const uint32_t> block_crcs) {
  const size_t start = out.size();
  EncodeRecordFixed(out, RecordHeader{RecordType::kPut, key, size, crc32c,
                                      static_cast<uint32_t>(block_crcs.size()), 0, 0});
  for (uint32_t crc : block_crcs) PutLe32(out, crc);
  PutLe32(out, Crc32c(std::string_view(out).substr(start)));
}

void EncodeTombstone(std::string& out, ChunkKey key, uint32_t target_volume, uint64_t target_offset) {
  const size_t start = out.size();
  EncodeRecordFixed(out, RecordHeader{RecordType::kTombstone, key, 0, 0, 0, target_volume, target_offset});
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

std::string EncodeVolumeIndex(uint32_t number, uint64_t volume_size, std::span<const IndexedRecord> records) {
  std::string out;
  out.reserve(kIndexHeaderSize + records.size() * kIndexEntrySize + 4);
  PutLe32(out, kIndexMagic);
  PutLe32(out, kIndexFormat);
  PutLe32(out, number);
  PutLe32(out, 0);
  PutLe64(out, volume_size);
  PutLe64(out, records.size());
  for (const IndexedRecord& r : records) {
    PutLe64(out, r.offset);
    EncodeRecordFixed(out, r.h);
  }
  PutLe32(out, Crc32c(out));
  return out;
}

Result<std::vector<IndexedRecord>> DecodeVolumeIndex(std::string_view bytes, uint32_t number, uint64_t volume_size,
                                                     std::string_view what) {
  if (bytes.size() < kIndexHeaderSize + 4 || LoadLe32(bytes.data()) != kIndexMagic ||
      LoadLe32(bytes.data() + 4) != kIndexFormat) {
    return Status::Corruption(fmt::format("{}: not a volume index", what));
  }
  const uint64_t count = LoadLe64(bytes.data() + 24);
  if (count > (bytes.size() - kIndexHeaderSize - 4) / kIndexEntrySize ||
      bytes.size() != kIndexHeaderSize + count * kIndexEntrySize + 4) {
    return Status::Corruption(fmt::format("{}: {} bytes cannot hold {} records", what, bytes.size(), count));
  }
  if (Crc32c(bytes.substr(0, bytes.size() - 4)) != LoadLe32(bytes.data() + bytes.size() - 4)) {
    return Status::Corruption(fmt::format("{}: the index fails its checksum", what));
  }
  if (LoadLe32(bytes.data() + 8) != number || LoadLe64(bytes.data() + 16) != volume_size) {
    return Status::Corruption(fmt::format("{}: describes volume {} of {} bytes, not volume {} of {}", what,
                                          LoadLe32(bytes.data() + 8), LoadLe64(bytes.data() + 16), number,
                                          volume_size));
  }
  std::vector<IndexedRecord> out;
  out.reserve(count);
  uint64_t next = 0;  // records are in offset order and do not overlap
  for (uint64_t i = 0; i < count; ++i) {
    const char* e = bytes.data() + kIndexHeaderSize + i * kIndexEntrySize;
    IndexedRecord r;
    r.offset = LoadLe64(e);
    DFS_ASSIGN_OR_RETURN(r.h, DecodeRecordFixed(std::string_view(e + 8, kRecordFixedSize), what));
    const uint64_t length = RecordHeaderSizeForBlocks(r.h.block_count) + r.h.size;
    if (r.offset < next || r.offset > volume_size || length > volume_size - r.offset) {
      return Status::Corruption(fmt::format("{}: record {} at offset {} is out of place", what, i, r.offset));
    }
    next = r.offset + length;
    out.push_back(r);
  }
  return out;
}

namespace {

std::optional<uint32_t> ParseNumbered(std::string_view name, std::string_view ext) {
  if (!name.ends_with(ext)) return std::nullopt;
  const char* end = name.data() + name.size() - ext.size();
  uint32_t n = 0;
  auto r = std::from_chars(name.data(), end, n);
  if (r.ec != std::errc() || r.ptr != end || n == 0) return std::nullopt;
  // Only the canonical spelling, so no volume has two names.
  if (fmt::format("{:08d}{}", n, ext) != name) return std::nullopt;
  return n;
}

}  // namespace

std::string VolumeFileName(uint32_t number) { return fmt::format("{:08d}.vol", number); }
std::optional<uint32_t> ParseVolumeFileName(std::string_view name) { return ParseNumbered(name, ".vol"); }
std::string VolumeIndexName(uint32_t number) { return fmt::format("{:08d}.idx", number); }
std::optional<uint32_t> ParseVolumeIndexName(std::string_view name) { return ParseNumbered(name, ".idx"); }

}  // namespace dfs::filenode
