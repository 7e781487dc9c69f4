// tree [PATH] (and the seed's -v): the namespace below PATH drawn as
// tree(1) draws it, each file with its size, replication and chunk count,
// and a mark on files with chunks short of live replicas (from the master's
// fsck of PATH), then "N directories, M files" (PATH itself not counted).
// --depth N stops N levels down. Marks are coloured on a terminal only, and
// never with NO_COLOR set (no-color.org).
//
// --json: {"tree":{"name","type","size","replication","chunks",
// "under_replicated","missing","children":[...]},"directories","files",
// "unhealthy_files"} where "name" is the resolved PATH at the top and bare
// names below; only directories have "children", only files the counts,
// and only unhealthy files "under_replicated"/"missing" (chunks).
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "client/cli/commands.h"
#include "client/cli/entry_format.h"
#include "common/units.h"

namespace dfs::cli {
namespace {

struct Counts {
  uint64_t directories = 0;
  uint64_t files = 0;
};

// Chunks of one file short of live replicas.
struct Health {
  uint32_t under = 0;    // some live replicas, fewer than wanted
  uint32_t missing = 0;  // none
};

class TreeWalk {
 public:
  TreeWalk(Context& ctx, client::Client& c, std::map<std::string, Health> health, int max_depth, bool colour)
      : ctx_(ctx), client_(c), health_(std::move(health)), max_depth_(max_depth), colour_(colour) {}

  // " (1.0 GiB, r3, 16 chunks)" and the health mark of a file.
  std::string Details(const client::FileStatus& f, const std::string& path) const {
    std::string out = fmt::format("  ({}, r{}, {} chunk{})", FormatSize(f.size), f.replication, f.chunk_count,
                                  f.chunk_count == 1 ? "" : "s");
    auto it = health_.find(path);
    if (it == health_.end()) return out;
    const Health& h = it->second;
    if (h.missing > 0) out += Paint(fmt::format("  [{} MISSING]", Plural(h.missing)), "31");  // red
    if (h.under > 0) out += Paint(fmt::format("  [{} under-replicated]", Plural(h.under)), "33");  // yellow
    return out;
  }
  void AddHealth(const std::string& path, nlohmann::json& e) const {
    auto it = health_.find(path);
    if (it == health_.end()) return;
    e["under_replicated"] = it->second.under;
    e["missing"] = it->second.missing;
  }

  // Draws (or, with `json`, fills) the entries of `dir`. `prefix_` holds the
  // rails of the levels above; one string for the whole walk, because a tree
  // may be 2048 levels deep.
  void Walk(const std::string& dir, nlohmann::json* json, int depth = 1) {
    if (max_depth_ > 0 && depth > max_depth_) return;
    auto entries = client_.List(dir);
    if (!entries) return ctx_.Fail(entries.error());  // keeps drawing the rest, as tree(1) does
    for (size_t i = 0; i < entries->size(); ++i) {
      const auto& e = (*entries)[i];
      const bool last = i + 1 == entries->size();
      (e.is_dir() ? counts_.directories : counts_.files)++;
      nlohmann::json* child = nullptr;
      const std::string full = JoinPath(dir, e.path);
      if (json != nullptr) {
        json->push_back(EntryJson(e, e.path, false));
        child = &json->back();
        if (!e.is_dir()) {
          (*child)["replication"] = e.replication;
          (*child)["chunks"] = e.chunk_count;
          AddHealth(full, *child);
        }
      } else {
        std::printf("%s%s%s%s\n", prefix_.c_str(), last ? "└── " : "├── ", e.path.c_str(),
                    e.is_dir() ? "" : Details(e, full).c_str());
      }
      if (!e.is_dir()) continue;
      const size_t keep = prefix_.size();
      prefix_ += last ? "    " : "│   ";
      nlohmann::json* children = nullptr;
      if (child != nullptr) {
        (*child)["children"] = nlohmann::json::array();
        children = &(*child)["children"];
      }
      Walk(full, children, depth + 1);
      prefix_.resize(keep);
    }
  }

  const Counts& counts() const { return counts_; }

 private:
  static std::string Plural(uint32_t chunks) { return fmt::format("{} chunk{}", chunks, chunks == 1 ? "" : "s"); }
  std::string Paint(const std::string& text, const char* sgr) const {
    return colour_ ? fmt::format("\033[{}m{}\033[0m", sgr, text) : text;
  }

  Context& ctx_;
  client::Client& client_;
  std::map<std::string, Health> health_;
  int max_depth_;
  bool colour_;
  std::string prefix_;
  Counts counts_;
};

std::string Plural(uint64_t n, const char* one, const char* many) {
  return fmt::format("{} {}", n, n == 1 ? one : many);
}

// Files below `root` with chunks short of live replicas, by full path. The
// master lists at most `limit` of them; past that the rest go unmarked.
std::map<std::string, Health> HealthOf(client::Client& c, const std::string& root) {
  std::map<std::string, Health> out;
  auto r = c.Fsck(root, 100000);
  if (!r) return out;  // the tree is still worth drawing
  for (const auto& f : r->unhealthy) {
    for (const auto& ch : f.chunks) {
      if (ch.live >= ch.wanted) continue;  // over-replicated, or a corrupt copy replaced already: no risk
      Health& h = out[f.path];
      (ch.live == 0 ? h.missing : h.under)++;
    }
  }
  return out;
}

void Tree(Context& ctx, const std::string& path, int depth) {
  client::Client* c = ctx.Connect();
  if (c == nullptr) return;
  auto root = client::ResolvePath(path, c->working_directory());
  if (!root) return ctx.Fail(root.error());
  auto top = c->Stat(*root);
  if (!top) return ctx.Fail(top.error());
  const char* no_color = std::getenv("NO_COLOR");
  const bool colour = !ctx.out.json && ::isatty(STDOUT_FILENO) == 1 && (no_color == nullptr || *no_color == '\0');
  auto health = HealthOf(*c, *root);
  const size_t unhealthy = health.size();
  TreeWalk walk(ctx, *c, std::move(health), depth, colour);
  nlohmann::json doc;
  if (ctx.out.json) {
    doc = EntryJson(*top, *root, false);
    if (!top->is_dir()) {
      doc["replication"] = top->replication;
      doc["chunks"] = top->chunk_count;
      walk.AddHealth(*root, doc);
    }
    if (top->is_dir()) {
      doc["children"] = nlohmann::json::array();
      walk.Walk(*root, &doc["children"]);
    }
  } else {
    // As typed, as tree(1) shows it; the default (".") as the directory it is.
    const std::string& label = path == "." ? *root : path;
    std::printf("%s%s\n", label.c_str(), top->is_dir() ? "" : walk.Details(*top, *root).c_str());
    if (top->is_dir()) walk.Walk(*root, nullptr);
  }
  Counts n = walk.counts();
  if (!top->is_dir()) n.files = 1;
  if (ctx.out.json) {
    return PrintJson({{"tree", std::move(doc)},
                      {"directories", n.directories},
                      {"files", n.files},
                      {"unhealthy_files", unhealthy}});
  }
  std::printf("\n%s, %s", Plural(n.directories, "directory", "directories").c_str(),
              Plural(n.files, "file", "files").c_str());
  if (unhealthy > 0) {
    std::printf(", %s with chunks short of replicas (dfs-cli fsck -v)", Plural(unhealthy, "file", "files").c_str());
  }
  std::printf("\n");
}

}  // namespace

void RegisterTreeCommand(CLI::App& app, Context& ctx) {
  auto path = std::make_shared<std::string>(".");  // the working directory: / outside the shell
  auto depth = std::make_shared<int>(0);
  auto* cmd = app.add_subcommand(
      "tree", "draw the namespace below a path, as tree(1) does: sizes, replication, chunks, health marks");
  cmd->add_option("PATH", *path, "a directory in dfs")->capture_default_str();
  cmd->add_option("-L,--depth", *depth, "levels to descend (0: all)")->check(CLI::Range(0, 1 << 20));
  cmd->callback([&ctx, path, depth] { Tree(ctx, *path, *depth); });
  Examples(cmd, {"dfs-cli tree /photos", "dfs-cli tree --depth 1 /", "dfs-cli -v /photos      # the seed's viewer"});
}

}  // namespace dfs::cli
