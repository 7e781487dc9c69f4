// Commands that read the namespace entry by entry: ls and stat.
//
// ls --json: {"entries":[{"name","type","size"}]}, plus "mtime","owner",
// "mode" with -l. With -R the entries of every directory below PATH follow
// in the order the human listing shows them (a directory's entries, then
// each subdirectory's, depth first), and each entry also carries "path",
// its absolute path, since names alone repeat across directories.
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "client/cli/commands.h"
#include "client/cli/entry_format.h"
#include "common/units.h"

namespace dfs::cli {
namespace {

struct LsArgs {
  std::string path = ".";  // the working directory: / outside the shell
  bool long_format = false;
  bool recursive = false;
};

std::string Shown(const client::FileStatus& f, std::string_view name) {
  std::string s(name);
  if (f.is_dir() && s != "/") s += '/';
  return s;
}

// One directory's entries (or a lone file), human form.
void PrintEntries(const std::vector<client::FileStatus>& entries, const std::vector<std::string>& names,
                  bool long_format) {
  if (!long_format) {
    for (size_t i = 0; i < entries.size(); ++i) std::printf("%s\n", Shown(entries[i], names[i]).c_str());
    return;
  }
  // Sizes in binary units (exact bytes: --json or stat); a directory's
  // "size" is its number of entries, which is no size, so it shows "-".
  std::vector<std::string> sizes;
  size_t owner_w = 0, size_w = 0;
  for (const auto& e : entries) {
    sizes.push_back(e.is_dir() ? "-" : FormatSize(e.size));
    owner_w = std::max(owner_w, e.owner.size());
    size_w = std::max(size_w, sizes.back().size());
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    std::printf("%s\n", fmt::format("{} {:<{}} {:>{}} {} {}", ModeString(e), e.owner, owner_w, sizes[i], size_w,
                                     LocalTime(e.mtime_ms), Shown(e, names[i]))
                            .c_str());
  }
}

std::vector<std::string> Names(const std::vector<client::FileStatus>& entries) {
  std::vector<std::string> names;
  names.reserve(entries.size());
  for (const auto& e : entries) names.push_back(e.path);
  return names;
}

void Ls(Context& ctx, const LsArgs& a) {
  client::Client* c = ctx.Connect();
  if (c == nullptr) return;
  auto root = client::ResolvePath(a.path, c->working_directory());
  if (!root) return ctx.Fail(root.error());
  nlohmann::json json_entries = nlohmann::json::array();

  // The master lists a file as one entry under its bare name, which looks
  // like a directory holding one file; stat tells them apart, and ls shows a
  // file under the name it was given, as ls(1) does.
  auto top = c->Stat(*root);
  if (!top) return ctx.Fail(top.error());
  if (!top->is_dir()) {
    if (ctx.out.json) {
      auto e = EntryJson(*top, a.path, a.long_format);
      if (a.recursive) e["path"] = *root;
      return PrintJson({{"entries", nlohmann::json::array({e})}});
    }
    return PrintEntries({*top}, {a.path}, a.long_format);
  }

  // -R walks depth first with an explicit stack: paths may be 4096 bytes,
  // so a tree can be 2048 levels deep.
  std::vector<std::string> pending{*root};
  bool first_block = true;
  const bool names_only = !a.long_format && !ctx.out.json;
  while (!pending.empty()) {
    std::string dir = std::move(pending.back());
    pending.pop_back();
    if (names_only) {
      // Names alone: one buffer from the master, one write to stdout.
      auto names = c->ListNames(dir);
      if (!names) {
        ctx.Fail(names.error());
        continue;
      }
      std::string out;
      if (a.recursive) out = fmt::format("{}{}:\n", first_block ? "" : "\n", dir);
      out.reserve(out.size() + names->bytes.size() + names->size());
      for (size_t i = 0; i < names->size(); ++i) {
        out += names->name(i);
        if (names->dirs[i]) out += '/';
        out += '\n';
      }
      std::fwrite(out.data(), 1, out.size(), stdout);
      first_block = false;
      if (!a.recursive) break;
      for (size_t i = names->size(); i-- > 0;) {
        if (names->dirs[i]) pending.push_back(JoinPath(dir, names->name(i)));
      }
      continue;
    }
    auto listed = c->List(dir);
    if (!listed) {
      ctx.Fail(listed.error());  // e.g. removed meanwhile; the rest is still worth showing
      continue;
    }
    const auto& entries = *listed;
    if (ctx.out.json) {
      for (const auto& e : entries) {
        auto j = EntryJson(e, e.path, a.long_format);
        if (a.recursive) j["path"] = JoinPath(dir, e.path);
        json_entries.push_back(std::move(j));
      }
    } else {
      if (a.recursive) std::printf("%s%s:\n", first_block ? "" : "\n", dir.c_str());
      PrintEntries(entries, Names(entries), a.long_format);
    }
    first_block = false;
    if (!a.recursive) break;
    for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
      if (it->is_dir()) pending.push_back(JoinPath(dir, it->path));
    }
  }
  if (ctx.out.json) PrintJson({{"entries", std::move(json_entries)}});
}

void Stat(Context& ctx, const std::string& path) {
  client::Client* c = ctx.Connect();
  if (c == nullptr) return;
  auto r = c->Stat(path, /*with_chunks=*/true);
  if (!r) return ctx.Fail(r.error());
  const auto& f = *r;
  if (ctx.out.json) return PrintJson(StatJson(f));

  std::vector<std::pair<std::string, std::string>> rows{
      {"path", f.path},
      {"type", f.is_dir() ? "directory" : "file"},
      {"inode", std::to_string(f.inode)},
      {"size", f.is_dir() ? fmt::format("{} entries", f.size)
                          : fmt::format("{} ({} bytes)", FormatSize(f.size), f.size)},
      {"mode", fmt::format("{} ({:04o})", ModeString(f), f.mode)},
      {"owner", f.owner},
      {"modified", LocalTime(f.mtime_ms, true)},
      {"changed", LocalTime(f.ctime_ms, true)},
  };
  if (!f.is_dir()) {
    rows.emplace_back("replication", std::to_string(f.replication));
    rows.emplace_back("checksum", fmt::format("{:08x} (CRC32C)", f.checksum));
    rows.emplace_back("chunks", std::to_string(f.chunks.size()));
  }
  for (const auto& [k, v] : rows) std::printf("%s\n", fmt::format("{:>11}: {}", k, v).c_str());
  if (f.chunks.empty()) return;
  std::vector<std::vector<std::string>> table{{"#", "ID", "VERSION", "SIZE", "CRC32C", "REPLICAS"}};
  for (size_t i = 0; i < f.chunks.size(); ++i) {
    const auto& ch = f.chunks[i];
    table.push_back({std::to_string(i), std::to_string(ch.id), std::to_string(ch.version), FormatSize(ch.size),
                     fmt::format("{:08x}", ch.checksum),
                     ch.replicas.empty() ? "(none reported)" : fmt::format("{}", fmt::join(ch.replicas, ","))});
  }
  std::string text = FormatTable(table, {0, 1, 2, 3});
  // Indented under the block above.
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    std::printf("  %s\n", text.substr(start, nl - start).c_str());
    start = nl + 1;
  }
}

}  // namespace

void RegisterListingCommands(CLI::App& app, Context& ctx) {
  auto ls = std::make_shared<LsArgs>();
  auto* cmd = app.add_subcommand("ls", "list a directory (names sorted; directories end in '/')");
  cmd->add_option("PATH", ls->path, "the directory (or file) to list")->capture_default_str();
  cmd->add_flag("-l", ls->long_format, "long format: mode, owner, size, modification time, name");
  cmd->add_flag("-R,--recursive", ls->recursive, "list every directory below PATH too");
  cmd->callback([&ctx, ls] { Ls(ctx, *ls); });
  Examples(cmd, {"dfs-cli ls -l /photos/2026", "dfs-cli --json ls -R / | jq -r '.entries[].path'"});

  auto stat_path = std::make_shared<std::string>();
  auto* st = app.add_subcommand("stat", "show one file or directory, with its chunks and their replicas");
  st->add_option("PATH", *stat_path, "a path in dfs")->required();
  st->callback([&ctx, stat_path] { Stat(ctx, *stat_path); });
  Examples(st, {"dfs-cli stat /photos/2026/img.jpg", "dfs-cli --stat /photos/2026/img.jpg   # the seed's form"});
}

}  // namespace dfs::cli
