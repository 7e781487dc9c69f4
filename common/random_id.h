#pragma once

#include <cstdint>
#include <string>

namespace dfs {

// A random 64-bit value from the OS entropy pool (ids, incarnations).
uint64_t RandomU64();
// `bytes` random bytes as lowercase hex.
std::string RandomHex(int bytes);

}  // namespace dfs
