// Tab completion for the shell: command names and flags from the same
// CLI11 tree the commands are parsed with, remote paths from the master
// (through a short-lived listing cache), local paths from this machine.
// What a word is comes from the command's grammar: a positional named
// LOCAL (put's source, get's destination) or a builtin's local argument
// (lcd, lls) is a local path; every other positional is a path in dfs.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/status.h"

namespace dfs::cli {

struct DirEntry {
  std::string name;
  bool dir = false;
};

// A directory's entries by absolute path, cached for `ttl`: a second Tab
// in the same directory is answered without asking the master. Not
// thread-safe (the shell's one thread).
class ListingCache {
 public:
  using Clock = std::chrono::steady_clock;
  using ListFn = std::function<Result<std::vector<DirEntry>>(const std::string& dir)>;
  ListingCache(ListFn list, std::chrono::milliseconds ttl) : list_(std::move(list)), ttl_(ttl) {}

  // Sorted by name; the master's error (not a directory, not found) as is.
  Result<const std::vector<DirEntry>*> Get(const std::string& dir);
  // After a command: anything it changed is seen at the next Tab.
  void Clear() { entries_.clear(); }

 private:
  struct Entry {
    Clock::time_point fetched;
    std::vector<DirEntry> entries;
  };
  ListFn list_;
  std::chrono::milliseconds ttl_;
  std::map<std::string, Entry> entries_;
};

struct Completion {
  // Whole words (unquoted) that may replace the word under the cursor;
  // a directory ends in '/'. Sorted, no duplicates.
  std::vector<std::string> candidates;
  size_t word_start = 0;   // where the word under the cursor starts in the line
  std::string word;        // that word, unquoted
  bool remote = false;     // candidates are paths in dfs
  size_t more = 0;         // candidates left out past the limit
};

class Completer {
 public:
  // `tree`: the commands (and the shell's builtins) as parsed. `cwd`: the
  // shell's remote directory at the time of a call.
  Completer(CLI::App& tree, ListingCache& cache, std::function<std::string()> cwd)
      : tree_(tree), cache_(cache), cwd_(std::move(cwd)) {}

  // Candidates for the word that ends at the end of `line` (the line up to
  // the cursor). At most `limit` candidates (Completion::more says how many
  // more there were).
  Completion Complete(std::string_view line, size_t limit = 1000);

  // What kind of word the `index`th positional of `command` is.
  enum class Kind { kRemote, kRemoteDir, kLocal, kLocalDir, kCommand, kNone };
  Kind PositionalKind(CLI::App& command, size_t index) const;

 private:
  void Commands(const std::string& prefix, std::set<std::string>& out) const;
  void Flags(CLI::App* command, const std::string& prefix, std::set<std::string>& out) const;
  void RemotePaths(const std::string& prefix, bool dirs_only, std::set<std::string>& out);
  static void LocalPaths(const std::string& prefix, bool dirs_only, std::set<std::string>& out);

  CLI::App& tree_;
  ListingCache& cache_;
  std::function<std::string()> cwd_;
};

// The longest prefix all of `words` share ("" for none).
std::string CommonPrefix(const std::vector<std::string>& words);

}  // namespace dfs::cli
