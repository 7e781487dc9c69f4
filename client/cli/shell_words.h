// The shell's words: a line split the way sh splits it (blanks separate
// words; '...' keeps everything, "..." keeps all but \" and \\, a backslash
// keeps the next character), and the word under the cursor for Tab. No
// variables, globs or pipes: a word is a name or a flag.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace dfs::cli {

// The words of `line`; InvalidArgument for an unterminated quote or a
// trailing backslash. A '#' at the start of a word begins a comment.
Result<std::vector<std::string>> SplitWords(std::string_view line);

// `line` up to the cursor, as Tab sees it: the finished words before the
// one being typed, and that one (unquoted) with where it starts in `line`.
// An open quote is fine here: it belongs to the word being typed.
struct PartialLine {
  std::vector<std::string> words;  // finished words
  std::string current;             // the word under the cursor, unquoted ("" after a blank)
  size_t current_start = 0;        // its first byte in `line` (quotes included)
};
PartialLine SplitPartial(std::string_view line);

// `word` as the shell would read it back as one word: unchanged when it
// has nothing special, else with a backslash before each special byte
// (blanks, quotes, backslashes, '#' at the start). A prefix of the result
// is the quoted form of a prefix of `word`, so Tab can insert a common
// prefix and extend it later.
std::string QuoteWord(std::string_view word);

}  // namespace dfs::cli
