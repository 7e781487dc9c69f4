// The on-disk format shared by the master's journal and checkpoint files
// (the role of leveldb's db/log_format.h). Everything is little-endian.
//
// File header (kFileHeaderSize = 20 bytes), first in every file:
//   [8  magic: "DFSJRNL1" (journal) or "DFSCKPT1" (checkpoint)]
//   [u64 generation]  the checkpoint generation the file belongs to: journal.G
//                     holds the mutations made after checkpoint G
//   [u32 masked CRC32C of the 16 bytes before it]
//
// Record (kRecordHeaderSize = 8 bytes + payload), repeated:
//   [u32 length of the payload]
//   [u32 masked CRC32C over the 4 length bytes followed by the payload]
//   [payload: `length` opaque bytes, a protobuf the caller owns]
// The CRC covers the length so a damaged length whose extent still fits in
// the file fails the check on its own, without relying on the payload's CRC
// happening to disagree. It is masked (leveldb's rotate-and-add) because a
// CRC over bytes that embed CRCs is otherwise prone to degenerate matches.
//
// Checkpoint trailer (kTrailerSize = 16 bytes), last in a checkpoint only:
//   [u32 kTrailerMarker][u64 record count]
//   [u32 masked CRC32C of every byte of the file before this field]
// kTrailerMarker is larger than kMaxRecordSize, so it cannot be read as a
// record length. A checkpoint without a valid trailer at its very end is
// incomplete and is refused.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/checksum.h"

namespace dfs::master::journal_format {

inline constexpr std::string_view kJournalMagic = "DFSJRNL1";
inline constexpr std::string_view kCheckpointMagic = "DFSCKPT1";
inline constexpr size_t kMagicSize = 8;
inline constexpr size_t kFileHeaderSize = kMagicSize + 8 + 4;
inline constexpr size_t kRecordHeaderSize = 8;
inline constexpr size_t kTrailerSize = 4 + 8 + 4;

// The largest payload accepted. A namespace mutation is small: even a 1 TiB
// file of 64 MiB chunks lists 16 Ki chunks, about 1 MiB of protobuf. 64 MiB
// leaves room for that and for bulky checkpoint records while bounding what a
// damaged length field can make replay read, and stays far from u32's limit.
inline constexpr uint32_t kMaxRecordSize = 64u << 20;
inline constexpr uint32_t kTrailerMarker = 0xFFFFFFFFu;
static_assert(kTrailerMarker > kMaxRecordSize);

// File names inside the master's folder: journal.<generation> (decimal),
// checkpoint, and "<name>.tmp" while a file is being created.
inline constexpr std::string_view kJournalPrefix = "journal.";
inline constexpr std::string_view kCheckpointName = "checkpoint";
inline constexpr std::string_view kTmpSuffix = ".tmp";

// leveldb's mask (util/crc32c.h): rotate right by 15 bits and add a constant.
inline constexpr uint32_t kMaskDelta = 0xa282ead8u;
inline uint32_t MaskCrc(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kMaskDelta; }

inline void EncodeFixed32(char* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
inline void EncodeFixed64(char* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
inline uint32_t DecodeFixed32(const char* in) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}
inline uint64_t DecodeFixed64(const char* in) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

// The masked CRC stored in a record header for `payload`.
inline uint32_t RecordCrc(std::string_view payload) {
  char len[4];
  EncodeFixed32(len, static_cast<uint32_t>(payload.size()));
  return MaskCrc(Crc32c(payload, Crc32c(std::string_view(len, 4))));
}

// Writes the 8-byte record header for `payload` to `out`.
// REQUIRES: payload.size() <= kMaxRecordSize.
inline void EncodeRecordHeader(char* out, std::string_view payload) {
  EncodeFixed32(out, static_cast<uint32_t>(payload.size()));
  EncodeFixed32(out + 4, RecordCrc(payload));
}

// Writes the 20-byte file header to `out`.
inline void EncodeFileHeader(char* out, std::string_view magic, uint64_t generation) {
  magic.copy(out, kMagicSize);
  EncodeFixed64(out + kMagicSize, generation);
  EncodeFixed32(out + 16, MaskCrc(Crc32c(std::string_view(out, 16))));
}

enum class HeaderCheck { kOk, kShort, kBadMagic, kBadCrc };
// Checks the file header at the start of `data` against `magic`.
inline HeaderCheck CheckFileHeader(std::string_view data, std::string_view magic, uint64_t* generation) {
  if (data.size() < kFileHeaderSize) return HeaderCheck::kShort;
  if (data.substr(0, kMagicSize) != magic) return HeaderCheck::kBadMagic;
  if (DecodeFixed32(data.data() + 16) != MaskCrc(Crc32c(data.substr(0, 16)))) return HeaderCheck::kBadCrc;
  *generation = DecodeFixed64(data.data() + kMagicSize);
  return HeaderCheck::kOk;
}

enum class RecordCheck {
  kOk,
  kShortHeader,   // fewer than 8 bytes left
  kTooLong,       // declared length > kMaxRecordSize
  kShortPayload,  // declared extent passes the end of `data`
  kBadCrc,
};
struct RecordView {
  RecordCheck check = RecordCheck::kShortHeader;
  uint32_t length = 0;       // the declared length, whatever `check` says
  std::string_view payload;  // set when check == kOk
};

// Parses the record starting at `offset` of `data` without reading past it.
inline RecordView CheckRecordAt(std::string_view data, size_t offset) {
  RecordView r;
  if (offset > data.size() || data.size() - offset < kRecordHeaderSize) return r;
  r.length = DecodeFixed32(data.data() + offset);
  if (r.length > kMaxRecordSize) {
    r.check = RecordCheck::kTooLong;
    return r;
  }
  if (data.size() - offset - kRecordHeaderSize < r.length) {
    r.check = RecordCheck::kShortPayload;
    return r;
  }
  std::string_view payload = data.substr(offset + kRecordHeaderSize, r.length);
  if (DecodeFixed32(data.data() + offset + 4) != RecordCrc(payload)) {
    r.check = RecordCheck::kBadCrc;
    return r;
  }
  r.check = RecordCheck::kOk;
  r.payload = payload;
  return r;
}

}  // namespace dfs::master::journal_format
