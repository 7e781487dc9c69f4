// The seed (FAHAD-FS) spelled commands as options: `--stat PATH`. DESIGN.md
// keeps those spellings as aliases of the subcommands, with the path in
// dfs first for both transfers (DESIGN.md's contract and issue 21; the
// seed's own client.py took -u LOCAL SERVER_DIR, and `upload` hints at the
// order when its LOCAL is missing but its REMOTE is a local file):
// `-u REMOTE LOCAL` uploads (the hidden `upload`, put with its arguments
// swapped), `-d REMOTE LOCAL` downloads (get), each into a directory under
// the file's own name when the destination is one. `-v [PATH]` opened the
// seed's viewer; here it is tree.
#include <algorithm>
#include <string_view>

#include "client/cli/commands.h"

namespace dfs::cli {
namespace {

struct Alias {
  std::string_view option;
  std::string_view command;
};
constexpr Alias kAliases[] = {
    {"--stat", "stat"},
    {"--mkdir", "mkdir"},
    {"--rm", "rm"},
    {"-u", "upload"},
    {"-d", "get"},
    {"-v", "tree"},
};

// dfs-cli's global options that take a value in the next word.
constexpr std::string_view kValueOptions[] = {"--master", "--timeout", "--log-level"};

// put's -r takes the replication (DESIGN.md's `put [-f] [-r N]`), yet
// `put -r DIR REMOTE` is what cp's users type for a tree: a -r of put or
// upload followed by a word that is not a number means --recursive.
std::vector<std::string> RewritePutRecursive(std::vector<std::string> out) {
  size_t i = 0;
  for (; i < out.size(); ++i) {
    std::string_view word = out[i];
    if (word == "--" || !word.starts_with("-")) break;
    if (std::find(std::begin(kValueOptions), std::end(kValueOptions), word) != std::end(kValueOptions)) ++i;
  }
  if (i >= out.size() || (out[i] != "put" && out[i] != "upload")) return out;
  for (size_t j = i + 1; j < out.size() && out[j] != "--"; ++j) {
    if (out[j] != "-r") continue;
    const bool number = j + 1 < out.size() && !out[j + 1].empty() &&
                        std::all_of(out[j + 1].begin(), out[j + 1].end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!number) out[j] = "--recursive";
    ++j;
  }
  return out;
}

std::vector<std::string> RewriteAliasesOnly(std::vector<std::string> out) {
  for (size_t i = 0; i < out.size(); ++i) {
    std::string_view word = out[i];
    if (word == "--" || !word.starts_with("-")) break;  // the subcommand (or its arguments) begin
    for (const Alias& a : kAliases) {
      if (word == a.option) {
        out[i] = std::string(a.command);
        return out;
      }
      // --stat=PATH
      if (word.size() > a.option.size() && word.starts_with(a.option) && word[a.option.size()] == '=') {
        std::string value(word.substr(a.option.size() + 1));
        out[i] = std::string(a.command);
        out.insert(out.begin() + static_cast<std::ptrdiff_t>(i) + 1, std::move(value));
        return out;
      }
    }
    for (std::string_view v : kValueOptions) {
      if (word == v) ++i;
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> RewriteSeedAliases(std::vector<std::string> words) {
  return RewritePutRecursive(RewriteAliasesOnly(std::move(words)));
}

std::vector<std::string> RewriteSeedAliases(int argc, char** argv) {
  std::vector<std::string> words(argv + std::min(argc, 1), argv + argc);
  words = RewriteSeedAliases(std::move(words));
  if (argc > 0) words.insert(words.begin(), argv[0]);
  return words;
}

}  // namespace dfs::cli
