// tree [PATH]: the namespace below PATH drawn as tree(1) draws it, with a
// final "N directories, M files" line (PATH itself not counted).
//
// --json: {"tree":{"name","type","size","children":[...]},"directories","files"}
// where "name" is the resolved PATH at the top and bare names below, and
// only directories have "children".
#include <memory>
#include <string>

#include <fmt/format.h>

#include "client/cli/commands.h"
#include "client/cli/entry_format.h"

namespace dfs::cli {
namespace {

struct Counts {
  uint64_t directories = 0;
  uint64_t files = 0;
};

class TreeWalk {
 public:
  TreeWalk(Context& ctx, client::Client& c) : ctx_(ctx), client_(c) {}

  // Draws (or, with `json`, fills) the entries of `dir`. `prefix_` holds the
  // rails of the levels above; one string for the whole walk, because a tree
  // may be 2048 levels deep.
  void Walk(const std::string& dir, nlohmann::json* json) {
    auto entries = client_.List(dir);
    if (!entries) return ctx_.Fail(entries.error());  // keeps drawing the rest, as tree(1) does
    for (size_t i = 0; i < entries->size(); ++i) {
      const auto& e = (*entries)[i];
      const bool last = i + 1 == entries->size();
      (e.is_dir() ? counts_.directories : counts_.files)++;
      nlohmann::json* child = nullptr;
      if (json != nullptr) {
        json->push_back(EntryJson(e, e.path, false));
        child = &json->back();
      } else {
        std::printf("%s%s%s\n", prefix_.c_str(), last ? "└── " : "├── ", e.path.c_str());
      }
      if (!e.is_dir()) continue;
      const size_t keep = prefix_.size();
      prefix_ += last ? "    " : "│   ";
      nlohmann::json* children = nullptr;
      if (child != nullptr) {
        (*child)["children"] = nlohmann::json::array();
        children = &(*child)["children"];
      }
      Walk(JoinPath(dir, e.path), children);
      prefix_.resize(keep);
    }
  }

  const Counts& counts() const { return counts_; }

 private:
  Context& ctx_;
  client::Client& client_;
  std::string prefix_;
  Counts counts_;
};

std::string Plural(uint64_t n, const char* one, const char* many) {
  return fmt::format("{} {}", n, n == 1 ? one : many);
}

void Tree(Context& ctx, const std::string& path) {
  client::Client* c = ctx.Connect();
  if (c == nullptr) return;
  auto root = client::ResolvePath(path, c->working_directory());
  if (!root) return ctx.Fail(root.error());
  auto top = c->Stat(*root);
  if (!top) return ctx.Fail(top.error());
  TreeWalk walk(ctx, *c);
  nlohmann::json doc;
  if (ctx.out.json) {
    doc = EntryJson(*top, *root, false);
    if (top->is_dir()) {
      doc["children"] = nlohmann::json::array();
      walk.Walk(*root, &doc["children"]);
    }
  } else {
    std::printf("%s\n", path.c_str());
    if (top->is_dir()) walk.Walk(*root, nullptr);
  }
  Counts n = walk.counts();
  if (!top->is_dir()) n.files = 1;
  if (ctx.out.json) {
    return PrintJson({{"tree", std::move(doc)}, {"directories", n.directories}, {"files", n.files}});
  }
  std::printf("\n%s, %s\n", Plural(n.directories, "directory", "directories").c_str(),
              Plural(n.files, "file", "files").c_str());
}

}  // namespace

void RegisterTreeCommand(CLI::App& app, Context& ctx) {
  auto path = std::make_shared<std::string>("/");
  auto* cmd = app.add_subcommand("tree", "draw the namespace below a path, as tree(1) does");
  cmd->add_option("PATH", *path, "a directory in dfs")->capture_default_str();
  cmd->callback([&ctx, path] { Tree(ctx, *path); });
  Examples(cmd, {"dfs-cli tree /photos", "dfs-cli -v /photos      # the seed's viewer"});
}

}  // namespace dfs::cli
