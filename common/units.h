// Sizes and durations as users type them: "64M", "1G", "4096", "5s", "250ms".
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace dfs {

inline constexpr uint64_t kKiB = 1024;
inline constexpr uint64_t kMiB = 1024 * kKiB;
inline constexpr uint64_t kGiB = 1024 * kMiB;
inline constexpr uint64_t kTiB = 1024 * kGiB;

// Binary units: K/KiB/KB all mean 1024. An empty suffix means bytes.
Result<uint64_t> ParseSize(std::string_view text);
// ms, s, m, h; a bare number means seconds.
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);
// The wall clock in milliseconds since 1970 (journal records, events).
int64_t UnixMillis();
// "1.5 GiB", "64 MiB", "10 B".
std::string FormatSize(uint64_t bytes);

}  // namespace dfs
