// CRC32C (Castagnoli) through ISA-L: ~28 GiB/s on the development VM
// (DESIGN.md, "What this machine allows"), so checksumming every frame on the
// data path costs a few percent of a memcpy.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace dfs {

// Continues `crc` over `data`; start with 0.
uint32_t Crc32c(std::span<const std::byte> data, uint32_t crc = 0);
inline uint32_t Crc32c(std::string_view data, uint32_t crc = 0) {
  return Crc32c(std::as_bytes(std::span(data.data(), data.size())), crc);
}

}  // namespace dfs
