// Text checks and quoting shared by the master (name validation) and the
// client (path resolution).
#pragma once

#include <string>
#include <string_view>

namespace dfs {

// Well-formed UTF-8: no overlong forms, surrogates or code points past U+10FFFF.
bool IsValidUtf8(std::string_view s);
// `s` fit for a one-line message: control bytes escaped as \xNN (and every
// byte >= 0x80 too when `s` is not UTF-8), cut after `max` bytes with "...".
std::string Printable(std::string_view s, size_t max = 120);

}  // namespace dfs
