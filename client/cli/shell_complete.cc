#include "client/cli/shell_complete.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>

#include "client/cli/shell_words.h"
#include "client/dfs_client.h"

namespace dfs::cli {
namespace {

// The part of a typed path up to and including its last '/', and the rest:
// "a/b/fo" is ("a/b/", "fo").
std::pair<std::string, std::string> SplitDir(const std::string& typed) {
  const size_t slash = typed.rfind('/');
  if (slash == std::string::npos) return {"", typed};
  return {typed.substr(0, slash + 1), typed.substr(slash + 1)};
}

}  // namespace

Result<const std::vector<DirEntry>*> ListingCache::Get(const std::string& dir) {
  const auto now = Clock::now();
  auto it = entries_.find(dir);
  if (it != entries_.end() && now - it->second.fetched < ttl_) return &it->second.entries;
  DFS_ASSIGN_OR_RETURN(std::vector<DirEntry> listed, list_(dir));
  std::sort(listed.begin(), listed.end(), [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
  // Listings of other directories that went stale go with this one.
  std::erase_if(entries_, [&](const auto& e) { return now - e.second.fetched >= ttl_; });
  Entry& e = entries_[dir];
  e.fetched = now;
  e.entries = std::move(listed);
  return &e.entries;
}

std::string CommonPrefix(const std::vector<std::string>& words) {
  if (words.empty()) return "";
  std::string p = words.front();
  for (const auto& w : words) {
    size_t n = 0;
    while (n < p.size() && n < w.size() && p[n] == w[n]) ++n;
    p.resize(n);
  }
  return p;
}

Completer::Kind Completer::PositionalKind(CLI::App& command, size_t index) const {
  auto positionals = command.get_options([](const CLI::Option* o) { return o->get_positional(); });
  if (positionals.empty()) return command.get_prefix_command() ? Kind::kLocal : Kind::kNone;  // lls: ls's arguments
  const CLI::Option* p = nullptr;
  size_t at = 0;
  for (const CLI::Option* o : positionals) {
    const int n = o->get_items_expected_max();
    p = o;
    if (n > 1 || index < at + static_cast<size_t>(std::max(n, 1))) break;  // a list takes every word after
    at += static_cast<size_t>(std::max(n, 1));
    p = nullptr;
  }
  if (p == nullptr) return Kind::kNone;
  const std::string name = p->get_name(true);
  if (name == "LOCAL") return Kind::kLocal;
  if (name == "LOCAL_DIR") return Kind::kLocalDir;
  if (name == "DIR") return Kind::kRemoteDir;
  if (name == "COMMAND") return Kind::kCommand;
  if (name == "N") return Kind::kNone;
  return Kind::kRemote;
}

void Completer::Commands(const std::string& prefix, std::set<std::string>& out) const {
  for (CLI::App* c : tree_.get_subcommands({})) {
    if (c->get_group().empty()) continue;  // hidden (the seed's upload)
    if (c->get_name().starts_with(prefix)) out.insert(c->get_name());
  }
}

void Completer::Flags(CLI::App* command, const std::string& prefix, std::set<std::string>& out) const {
  CLI::App* app = command != nullptr ? command : &tree_;
  for (const CLI::Option* o : app->get_options()) {
    if (o->get_group().empty()) continue;
    for (const auto& l : o->get_lnames()) {
      if (("--" + l).starts_with(prefix)) out.insert("--" + l);
    }
    for (const auto& s : o->get_snames()) {
      if (("-" + s).starts_with(prefix)) out.insert("-" + s);
    }
  }
  if (std::string("--help").starts_with(prefix)) out.insert("--help");
}

void Completer::RemotePaths(const std::string& typed, bool dirs_only, std::set<std::string>& out) {
  const auto [dir, base] = SplitDir(typed);
  auto resolved = client::ResolvePath(dir.empty() ? "." : dir, cwd_());
  if (!resolved) return;
  auto listed = cache_.Get(*resolved);
  if (!listed) return;  // not a directory, gone, the master unreachable: nothing to offer
  const std::vector<DirEntry>& entries = **listed;
  // Sorted by name: the matches are one run, found by binary search, so a
  // directory of 10,000 entries costs a few comparisons beyond its listing.
  auto it = std::lower_bound(entries.begin(), entries.end(), base,
                             [](const DirEntry& e, const std::string& b) { return e.name < b; });
  for (; it != entries.end() && it->name.starts_with(base); ++it) {
    if (dirs_only && !it->dir) continue;
    out.insert(dir + it->name + (it->dir ? "/" : ""));
  }
}

void Completer::LocalPaths(const std::string& typed, bool dirs_only, std::set<std::string>& out) {
  const auto [dir, base] = SplitDir(typed);
  DIR* d = ::opendir(dir.empty() ? "." : dir.c_str());
  if (d == nullptr) return;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == ".." || !name.starts_with(base)) continue;
    if (base.empty() && name.starts_with('.')) continue;  // hidden files only when asked for, as ls shows them
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {
      struct stat st {};
      is_dir = ::stat((dir + name).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    }
    if (dirs_only && !is_dir) continue;
    out.insert(dir + name + (is_dir ? "/" : ""));
  }
  ::closedir(d);
}

Completion Completer::Complete(std::string_view line, size_t limit) {
  PartialLine p = SplitPartial(line);
  Completion c;
  c.word = p.current;
  c.word_start = p.current_start;
  std::set<std::string> found;
  // The options before the command (--json, -q), then the command.
  size_t i = 0;
  while (i < p.words.size() && p.words[i].starts_with('-')) ++i;
  if (i == p.words.size()) {
    if (c.word.starts_with('-')) Flags(nullptr, c.word, found);
    else Commands(c.word, found);
  } else {
    CLI::App* command = nullptr;
    for (CLI::App* s : tree_.get_subcommands({})) {
      if (s->get_name() == p.words[i]) command = s;
    }
    if (command == nullptr) return c;
    // Which positional the word is: skip flags, and the values of options
    // that take one (--parallel 8), written apart from their flag.
    size_t positional = 0;
    for (size_t w = i + 1; w < p.words.size(); ++w) {
      const std::string& word = p.words[w];
      if (word.starts_with('-') && word.size() > 1 && !command->get_prefix_command()) {
        if (word.find('=') != std::string::npos) continue;
        const CLI::Option* o = command->get_option_no_throw(word);
        if (o != nullptr && o->get_type_size_max() > 0) ++w;
        continue;
      }
      ++positional;
    }
    if (c.word.starts_with('-') && !command->get_prefix_command()) {
      Flags(command, c.word, found);
    } else {
      switch (PositionalKind(*command, positional)) {
        case Kind::kRemote: RemotePaths(c.word, false, found); c.remote = true; break;
        case Kind::kRemoteDir: RemotePaths(c.word, true, found); c.remote = true; break;
        case Kind::kLocal: LocalPaths(c.word, false, found); break;
        case Kind::kLocalDir: LocalPaths(c.word, true, found); break;
        case Kind::kCommand: Commands(c.word, found); break;
        case Kind::kNone: break;
      }
    }
  }
  for (auto& w : found) {
    if (c.candidates.size() == limit) {
      c.more = found.size() - limit;
      break;
    }
    c.candidates.push_back(w);
  }
  return c;
}

}  // namespace dfs::cli
