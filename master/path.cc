#include "master/path.h"

#include "common/text.h"

#include <fmt/format.h>

namespace dfs::master {

Status ValidateName(std::string_view name) {
  if (name.empty()) return Status::InvalidArgument("empty name");
  if (name == "." || name == "..") {
    return Status::InvalidArgument(fmt::format("invalid name '{}': '.' and '..' are not allowed", name));
  }
  if (name.size() > kMaxNameBytes) {
    return Status::InvalidArgument(
        fmt::format("name too long ({} bytes, limit {}): {}", name.size(), kMaxNameBytes, Printable(name, 80)));
  }
  for (char ch : name) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '/') return Status::InvalidArgument(fmt::format("invalid name '{}': contains '/'", Printable(name, 80)));
    // NUL ends C strings; other control bytes break every terminal that lists them.
    if (c < 0x20 || c == 0x7F) {
      return Status::InvalidArgument(fmt::format("invalid name '{}': contains a control character", Printable(name, 80)));
    }
  }
  if (!IsValidUtf8(name)) return Status::InvalidArgument(fmt::format("invalid name '{}': not UTF-8", Printable(name, 80)));
  return Status::OK();
}

Result<std::vector<std::string_view>> SplitPath(std::string_view path) {
  if (path.empty()) return Status::InvalidArgument("empty path");
  if (path.size() > kMaxPathBytes) {
    return Status::InvalidArgument(fmt::format("path too long ({} bytes, limit {})", path.size(), kMaxPathBytes));
  }
  if (path.front() != '/') {
    return Status::InvalidArgument(fmt::format("path must be absolute: {}", Printable(path, 80)));
  }
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) {
      std::string_view name = path.substr(i, j - i);
      if (auto s = ValidateName(name); !s.ok()) return s.Prepend(fmt::format("invalid path {}", Printable(path, 80)));
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
