// Client-side path handling: relative paths, "." and "..", the user name.
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include <fmt/format.h>

#include "client/dfs_client.h"

namespace dfs::client {
namespace {

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1Fu) : len == 3 ? (c & 0x0Fu) : (c & 0x07u);
    for (size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 0x2) return false;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

// A path fit for a one-line message: bytes that are not printable ASCII are
// escaped, long paths cut.
std::string Shown(std::string_view s) {
  std::string out;
  for (char ch : s.substr(0, 120)) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7F) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += ch;
    }
  }
  if (s.size() > 120) out += "...";
  return out;
}

}  // namespace

std::string LocalUserName() {
  // getpwuid_r: the library may be used from several threads (one Client each).
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (getpwuid_r(geteuid(), &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr &&
      found->pw_name != nullptr && *found->pw_name != '\0') {
    return found->pw_name;
  }
  if (const char* env = std::getenv("USER"); env != nullptr && *env != '\0') return env;
  return fmt::format("uid{}", geteuid());
}

Result<std::string> ResolvePath(std::string_view path, std::string_view cwd) {
  if (path.empty()) return Status::InvalidArgument("empty path");
  // Checked here, not only at the master: a proto3 string must be UTF-8, so
  // such a request would not even parse there.
  if (!ValidUtf8(path)) return Status::InvalidArgument(fmt::format("invalid path {}: not UTF-8", Shown(path)));
  std::vector<std::string_view> parts;
  auto walk = [&parts](std::string_view p) {
    size_t i = 0;
    while (i < p.size()) {
      size_t j = p.find('/', i);
      if (j == std::string_view::npos) j = p.size();
      std::string_view name = p.substr(i, j - i);
      if (name == "..") {
        if (!parts.empty()) parts.pop_back();
      } else if (!name.empty() && name != ".") {
        parts.push_back(name);
      }
      i = j + 1;
    }
  };
  if (path.front() != '/') {
    if (cwd.empty() || cwd.front() != '/') {
      return Status::InvalidArgument(fmt::format("working directory is not absolute: {}", Shown(cwd)));
    }
    walk(cwd);
  }
  walk(path);
  if (parts.empty()) return std::string("/");
  std::string out;
  out.reserve(path.size() + cwd.size());
  for (std::string_view p : parts) {
    out += '/';
    out += p;
  }
  return out;
}

}  // namespace dfs::client
