#include "common/crc32c_combine.h"

#include <array>
#include <cstddef>

namespace dfs {
namespace {

constexpr uint32_t kPolyReflected = 0x82F63B78;

// a * b modulo the polynomial, in the reflected bit order CRC32C uses.
constexpr uint32_t MultModP(uint32_t a, uint32_t b) {
  uint32_t m = 1u << 31;
  uint32_t p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) == 0) break;
    }
    m >>= 1;
    b = (b & 1) ? (b >> 1) ^ kPolyReflected : b >> 1;
  }
  return p;
}

// kX2n[k] = x^(2^k) mod p.
constexpr std::array<uint32_t, 32> MakeX2nTable() {
  std::array<uint32_t, 32> t{};
  uint32_t p = 1u << 30;  // x^1
  t[0] = p;
  for (std::size_t k = 1; k < t.size(); ++k) t[k] = p = MultModP(p, p);
  return t;
}
constexpr std::array<uint32_t, 32> kX2n = MakeX2nTable();

// x^(n * 2^k) mod p.
uint32_t X2nModP(uint64_t n, unsigned k) {
  uint32_t p = 1u << 31;  // x^0
  while (n) {
    if (n & 1) p = MultModP(kX2n[k & 31], p);
    n >>= 1;
    ++k;
  }
  return p;
}

}  // namespace

uint32_t Crc32cCombine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b) {
  return MultModP(X2nModP(len_b, 3), crc_a) ^ crc_b;
}

}  // namespace dfs
