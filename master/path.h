// Path validation, done once at the master (DESIGN.md): absolute, UTF-8, no
// NUL or control characters, no "." or ".." components, a component at most
// 255 bytes, the whole path at most 4096. Repeated and trailing slashes are
// tolerated, as POSIX does. Clients may resolve relative paths and ".."
// before sending.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace dfs::master {

inline constexpr size_t kMaxPathBytes = 4096;
inline constexpr size_t kMaxNameBytes = 255;

// The components of `path`; empty for "/".
Result<std::vector<std::string_view>> SplitPath(std::string_view path);
// "/a/b" from components.
std::string JoinPath(const std::vector<std::string_view>& components, size_t count);
// A name fit for one component (used for names a client sends alone).
Status ValidateName(std::string_view name);

}  // namespace dfs::master
