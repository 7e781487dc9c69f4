#include "common/units.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace dfs {
namespace {

struct Split {
  double number;
  std::string suffix;
};

// Out-parameter rather than Result<Split>: GCC 12 warns (falsely) about a
// std::string moved out of std::expected here.
Status SplitNumber(std::string_view text, std::string_view what, Split& out) {
  auto bad = [&] {
    return Status::InvalidArgument(fmt::format("invalid {} '{}'", what, text));
  };
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == 0) return bad();
  double number = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + i, number);
  if (ec != std::errc() || ptr != text.data() + i || !std::isfinite(number)) return bad();
  out.number = number;
  out.suffix.clear();
  for (char c : text.substr(i)) out.suffix += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return Status::OK();
}

}  // namespace

Result<uint64_t> ParseSize(std::string_view text) {
  Split s;
  DFS_RETURN_IF_ERROR(SplitNumber(text, "size", s));
  double mult = 0;
  if (s.suffix.empty() || s.suffix == "b") mult = 1;
  else if (s.suffix == "k" || s.suffix == "kb" || s.suffix == "kib") mult = kKiB;
  else if (s.suffix == "m" || s.suffix == "mb" || s.suffix == "mib") mult = kMiB;
  else if (s.suffix == "g" || s.suffix == "gb" || s.suffix == "gib") mult = kGiB;
  else if (s.suffix == "t" || s.suffix == "tb" || s.suffix == "tib") mult = kTiB;
  else return Status::InvalidArgument(fmt::format("invalid size '{}': unknown unit '{}'", text, s.suffix));
  double bytes = s.number * mult;
  if (bytes > static_cast<double>(std::numeric_limits<uint64_t>::max() / 2)) {
    return Status::InvalidArgument(fmt::format("size '{}' is too large", text));
  }
  return static_cast<uint64_t>(bytes);
}

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  Split s;
  DFS_RETURN_IF_ERROR(SplitNumber(text, "duration", s));
  double mult = 0;
  if (s.suffix == "ms") mult = 1;
  else if (s.suffix.empty() || s.suffix == "s") mult = 1000;
  else if (s.suffix == "m" || s.suffix == "min") mult = 60'000;
  else if (s.suffix == "h") mult = 3'600'000;
  else return Status::InvalidArgument(fmt::format("invalid duration '{}': unknown unit '{}'", text, s.suffix));
  double ms = s.number * mult;
  if (ms > 1e15) return Status::InvalidArgument(fmt::format("duration '{}' is too long", text));
  return std::chrono::milliseconds(static_cast<int64_t>(ms));
}

std::string FormatSize(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < kKiB) return fmt::format("{} B", bytes);
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  return fmt::format("{:.1f} {}", v, kUnits[u]);
}

int64_t UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace dfs
