#include "client/cli/entry_format.h"

#include <ctime>

namespace dfs::cli {

const char* TypeName(const client::FileStatus& f) { return f.is_dir() ? "dir" : "file"; }

std::string ModeString(const client::FileStatus& f) {
  std::string s = f.is_dir() ? "d" : "-";
  static constexpr char kRwx[] = {'r', 'w', 'x'};
  for (int bit = 8; bit >= 0; --bit) s += (f.mode >> bit) & 1u ? kRwx[(8 - bit) % 3] : '-';
  return s;
}

std::string LocalTime(int64_t unix_ms, bool with_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  if (localtime_r(&t, &tm) == nullptr) return "?";
  char buf[32];
  size_t n = std::strftime(buf, sizeof buf, with_seconds ? "%Y-%m-%d %H:%M:%S" : "%Y-%m-%d %H:%M", &tm);
  return std::string(buf, n);
}

std::string JoinPath(std::string_view dir, std::string_view name) {
  std::string out(dir);
  if (out.empty() || out.back() != '/') out += '/';
  out += name;
  return out;
}

std::string BaseName(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos || path.size() == 1) return std::string(path);
  return std::string(path.substr(slash + 1));
}

nlohmann::json StatJson(const client::FileStatus& f) {
  nlohmann::json chunks = nlohmann::json::array();
  for (const auto& c : f.chunks) {
    chunks.push_back({{"id", c.id},
                      {"version", c.version},
                      {"size", c.size},
                      {"checksum", c.checksum},
                      {"replicas", c.replicas}});
  }
  return {{"path", f.path},
          {"type", TypeName(f)},
          {"size", f.size},
          {"replication", f.replication},
          {"mtime", f.mtime_ms},
          {"ctime", f.ctime_ms},
          {"checksum", f.checksum},
          {"owner", f.owner},
          {"mode", f.mode},
          {"inode", f.inode},
          {"chunks", std::move(chunks)}};
}

nlohmann::json EntryJson(const client::FileStatus& f, std::string_view name, bool long_format) {
  nlohmann::json e = {{"name", name}, {"type", TypeName(f)}, {"size", f.size}};
  if (long_format) {
    e["mtime"] = f.mtime_ms;
    e["owner"] = f.owner;
    e["mode"] = f.mode;
  }
  return e;
}

}  // namespace dfs::cli
