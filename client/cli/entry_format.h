// How dfs-cli shows one namespace entry: ls -l's mode column, local times,
// and the JSON fields stat and ls share.
//
// JSON conventions (every command): "type" is "file" or "dir"; times
// ("mtime", "ctime") are Unix milliseconds; "mode" is the permission bits
// as a number (0755 is 493); sizes are bytes (a directory's "size" is its
// number of entries, as the master reports it).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "client/dfs_client.h"

namespace dfs::cli {

// "file" or "dir".
const char* TypeName(const client::FileStatus& f);
// "drwxr-xr-x".
std::string ModeString(const client::FileStatus& f);
// Local time, "YYYY-MM-DD HH:MM" (with_seconds: ":SS" too).
std::string LocalTime(int64_t unix_ms, bool with_seconds = false);
// "/a" + "b" -> "/a/b"; "/" + "b" -> "/b".
std::string JoinPath(std::string_view dir, std::string_view name);
// The last component of an absolute path ("/" for "/").
std::string BaseName(std::string_view path);

// {"path","type","size","replication","mtime","ctime","checksum","owner",
//  "mode","inode","chunks":[{"id","version","size","checksum","replicas"}]}
nlohmann::json StatJson(const client::FileStatus& f);
// {"name","type","size"} and, with `long_format`, "mtime","owner","mode".
nlohmann::json EntryJson(const client::FileStatus& f, std::string_view name, bool long_format);

}  // namespace dfs::cli
