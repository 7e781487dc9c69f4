// CRC32C of a concatenation from the CRCs of its parts (zlib's
// crc32_combine, for the Castagnoli polynomial): chunks are written and read
// in parallel and out of order, yet the whole file's checksum is one CRC.
#pragma once

#include <cstdint>

namespace dfs {

// CRC32C(A || B) given CRC32C(A), CRC32C(B) and B's length. O(log len_b).
uint32_t Crc32cCombine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

}  // namespace dfs
