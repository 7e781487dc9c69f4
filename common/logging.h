// Logging setup shared by every binary: one named spdlog logger per process
// component, to stderr, with a level from --log-level. Lines carry ids as
// fixed keys in the text ("node=… req=…"): Debian's spdlog 1.10 has no MDC.
#pragma once

#include <string_view>

#include <spdlog/spdlog.h>

#include "common/status.h"

namespace dfs {

// Makes `component` ("master", "node", "cli") the default logger.
// level: trace|debug|info|warn|error|critical|off.
Status InitLogging(std::string_view component, std::string_view level);

// Checks a --log-level value without touching any logger (for CLI validation).
bool IsValidLogLevel(std::string_view level);

}  // namespace dfs

#include <chrono>
#include <cstdint>

namespace dfs {

// Lets one line through per `period` and counts what it held back, for
// failures that can repeat thousands of times a second (Kudu's
// KLOG_EVERY_N_SECS): `if (auto n = limiter.Allow()) log("… ({} similar)", *n - 1)`.
class LogRateLimiter {
 public:
  explicit LogRateLimiter(std::chrono::milliseconds period = std::chrono::seconds(1)) : period_(period) {}
  // The number of events since the last line let through (>= 1), or 0 to stay quiet.
  uint64_t Allow() {
    ++pending_;
    auto now = std::chrono::steady_clock::now();
    if (now - last_ < period_) return 0;
    last_ = now;
    uint64_t n = pending_;
    pending_ = 0;
    return n;
  }

 private:
  std::chrono::milliseconds period_;
  std::chrono::steady_clock::time_point last_{};
  uint64_t pending_ = 0;
};

}  // namespace dfs
