// Client-side path handling: relative paths, "." and "..", the user name.
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include <fmt/format.h>

#include "client/dfs_client.h"
#include "common/text.h"

namespace dfs::client {

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
  if (!IsValidUtf8(path)) return Status::InvalidArgument(fmt::format("invalid path {}: not UTF-8", Printable(path)));
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
      return Status::InvalidArgument(fmt::format("working directory is not absolute: {}", Printable(cwd)));
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
