#include "master/path.h"

#include <fmt/format.h>

namespace dfs::master {
namespace {

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 0x2) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and beyond U+10FFFF are not UTF-8.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

// Printable for a message: hostile bytes are escaped, long names cut.
std::string Shown(std::string_view s) {
  std::string out;
  for (char ch : s.substr(0, 80)) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7F) out += fmt::format("\\x{:02x}", c);
    else out += ch;
  }
  if (s.size() > 80) out += "...";
  return out;
}

}  // namespace

Status ValidateName(std::string_view name) {
  if (name.empty()) return Status::InvalidArgument("empty name");
  if (name == "." || name == "..") {
    return Status::InvalidArgument(fmt::format("invalid name '{}': '.' and '..' are not allowed", name));
  }
  if (name.size() > kMaxNameBytes) {
    return Status::InvalidArgument(
        fmt::format("name too long ({} bytes, limit {}): {}", name.size(), kMaxNameBytes, Shown(name)));
  }
  for (char ch : name) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '/') return Status::InvalidArgument(fmt::format("invalid name '{}': contains '/'", Shown(name)));
    // NUL ends C strings; other control bytes break every terminal that lists them.
    if (c < 0x20 || c == 0x7F) {
      return Status::InvalidArgument(fmt::format("invalid name '{}': contains a control character", Shown(name)));
    }
  }
  if (!ValidUtf8(name)) return Status::InvalidArgument(fmt::format("invalid name '{}': not UTF-8", Shown(name)));
  return Status::OK();
}

Result<std::vector<std::string_view>> SplitPath(std::string_view path) {
  if (path.empty()) return Status::InvalidArgument("empty path");
  if (path.size() > kMaxPathBytes) {
    return Status::InvalidArgument(fmt::format("path too long ({} bytes, limit {})", path.size(), kMaxPathBytes));
  }
  if (path.front() != '/') {
    return Status::InvalidArgument(fmt::format("path must be absolute: {}", Shown(path)));
  }
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) {
      std::string_view name = path.substr(i, j - i);
      if (auto s = ValidateName(name); !s.ok()) return s.Prepend(fmt::format("invalid path {}", Shown(path)));
      parts.push_back(name);
    }
    i = j;
  }
  return parts;
}

std::string JoinPath(const std::vector<std::string_view>& components, size_t count) {
  if (count == 0) return "/";
  std::string out;
  for (size_t i = 0; i < count && i < components.size(); ++i) {
    out += '/';
    out += components[i];
  }
  return out;
}

}  // namespace dfs::master
