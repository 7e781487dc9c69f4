#include "client/cli/shell_words.h"

namespace dfs::cli {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// The one scanner behind SplitWords and SplitPartial.
struct Scan {
  std::vector<std::string> words;
  std::string current;
  size_t current_start = 0;
  bool in_word = false;
  char quote = 0;         // '\'' or '"' while inside quotes
  bool escaped = false;   // the last byte was a backslash (outside single quotes)
  bool comment = false;

  void Run(std::string_view line) {
    for (size_t i = 0; i < line.size() && !comment; ++i) {
      const char c = line[i];
      if (escaped) {
        escaped = false;
        // Inside "...", a backslash escapes only " and \ (as sh does).
        if (quote == '"' && c != '"' && c != '\\') current += '\\';
        current += c;
        continue;
      }
      if (quote == '\'') {
        if (c == '\'') quote = 0;
        else current += c;
        continue;
      }
      if (quote == '"') {
        if (c == '"') quote = 0;
        else if (c == '\\') escaped = true;
        else current += c;
        continue;
      }
      if (IsBlank(c)) {
        Finish();
        continue;
      }
      if (!in_word) {
        if (c == '#') {
          comment = true;
          continue;
        }
        in_word = true;
        current_start = i;
      }
      if (c == '\\') escaped = true;
      else if (c == '\'' || c == '"') quote = c;
      else current += c;
    }
  }
  void Finish() {
    if (!in_word) return;
    words.push_back(std::move(current));
    current.clear();
    in_word = false;
  }
};

}  // namespace

Result<std::vector<std::string>> SplitWords(std::string_view line) {
  Scan s;
  s.Run(line);
  if (s.quote != 0) return Status::InvalidArgument(std::string("unterminated ") + s.quote + " quote");
  if (s.escaped) return Status::InvalidArgument("a backslash at the end of the line");
  s.Finish();
  return std::move(s.words);
}

PartialLine SplitPartial(std::string_view line) {
  Scan s;
  s.Run(line);
  PartialLine p;
  p.words = std::move(s.words);
  if (s.in_word) {
    p.current = std::move(s.current);
    p.current_start = s.current_start;
  } else {
    p.current_start = line.size();
  }
  return p;
}

std::string QuoteWord(std::string_view word) {
  std::string out;
  for (size_t i = 0; i < word.size(); ++i) {
    const char c = word[i];
    if (IsBlank(c) || c == '\'' || c == '"' || c == '\\' || (i == 0 && c == '#')) out += '\\';
    out += c;
  }
  return out;
}

}  // namespace dfs::cli
