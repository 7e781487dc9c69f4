#include "common/random_id.h"

#include <random>

#include <fmt/format.h>

namespace dfs {

uint64_t RandomU64() {
  static thread_local std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

std::string RandomHex(int bytes) {
  std::string out;
  while (static_cast<int>(out.size()) < bytes * 2) out += fmt::format("{:016x}", RandomU64());
  out.resize(static_cast<size_t>(bytes) * 2);
  return out;
}

}  // namespace dfs
