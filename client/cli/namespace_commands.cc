// Commands that change the namespace: mkdir, rmdir, rm, mv, cp. Silent on
// success, as their POSIX namesakes are; with --json each prints what it
// did. Several paths: each is tried, every failure gets its line, and the
// exit status is 1 if any failed.
#include <memory>
#include <string>
#include <vector>

#include "client/cli/commands.h"
#include "client/cli/entry_format.h"

namespace dfs::cli {
namespace {

struct PathsArgs {
  std::vector<std::string> paths;
  bool flag = false;  // mkdir -p, rm -r
};

struct PairArgs {
  std::string source;
  std::string destination;
};

void Mkdir(Context& ctx, const PathsArgs& a) {
  client::Client* c = ctx.Connect();
  if (c == nullptr) return;
  nlohmann::json made = nlohmann::json::array();
  for (const auto& p : a.paths) {
    auto r = c->Mkdir(p, a.flag);
    if (!r) {
      ctx.Fail(r.error());
      continue;
    }
    made.push_back(StatJson(*r));
  }
  // {"directories":[stat document...]}: each directory named (made or, with -p, found).
  if (ctx.out.json) PrintJson({{"directories", std::move(made)}});
}

// rmdir (directory_only) and rm [-r].
void Remove(Context& ctx, const PathsArgs& a, bool directory_only) {
  client::Client* c = ctx.Connect();
  if (c == nullptr) return;
  nlohmann::json removed = nlohmann::json::array();
  for (const auto& p : a.paths) {
    auto r = directory_only ? c->Rmdir(p) : c->Remove(p, a.flag);
    if (!r && !directory_only && r.error().code() == Code::kIsADirectory) {
      // The master's words are the protocol's; the hint is this command's.
      auto resolved = client::ResolvePath(p, c->working_directory());
      ctx.Fail(Status(Code::kIsADirectory, "is a directory: " + (resolved ? *resolved : p) + " (use rm -r, or rmdir)"));
      continue;
    }
    if (!r) {
      ctx.Fail(r.error());
      continue;
    }
    auto resolved = client::ResolvePath(p, c->working_directory());
    if (client::FileCache* cache = ctx.Cache(); cache != nullptr && resolved) cache->DropUnder(*resolved);
    removed.push_back({{"path", resolved ? *resolved : p},
                       {"files", r->files},
                       {"directories", r->directories},
                       {"bytes", r->bytes}});
  }
  // {"removed":[{"path","files","directories","bytes"}]}
  if (ctx.out.json) PrintJson({{"removed", std::move(removed)}});
}

void Move(Context& ctx, const PairArgs& a) {
  client::Client* c = ctx.Connect();
  if (c == nullptr) return;
  auto r = c->Rename(a.source, a.destination);
  if (!r) return ctx.Fail(r.error());
  auto src = client::ResolvePath(a.source, c->working_directory());
  if (client::FileCache* cache = ctx.Cache(); cache != nullptr && src) {
    cache->DropUnder(*src);
    cache->DropUnder(*r);
  }
  if (ctx.out.json) {
    PrintJson({{"source", src ? *src : a.source}, {"path", *r}});  // path: where it is now
  }
}

void Copy(Context& ctx, const PairArgs& a) {
  client::Client* c = ctx.Connect();
  if (c == nullptr) return;
  auto r = c->Copy(a.source, a.destination);
  if (!r) return ctx.Fail(r.error());
  if (ctx.out.json) PrintJson(StatJson(*r));  // the new file, as stat shows it
}

CLI::App* PathsCommand(CLI::App& app, const char* name, const char* help, std::shared_ptr<PathsArgs> args) {
  auto* cmd = app.add_subcommand(name, help);
  cmd->add_option("PATH", args->paths, "a path in dfs (relative paths start at the working directory: / outside the shell)")->required();
  return cmd;
}

CLI::App* PairCommand(CLI::App& app, const char* name, const char* help, std::shared_ptr<PairArgs> args) {
  auto* cmd = app.add_subcommand(name, help);
  cmd->add_option("SRC", args->source, "what to move or copy")->required();
  cmd->add_option("DST", args->destination, "the new path, or an existing directory to put SRC into")
      ->required();
  return cmd;
}

}  // namespace

void RegisterNamespaceCommands(CLI::App& app, Context& ctx) {
  auto mkdir = std::make_shared<PathsArgs>();
  Examples(PathsCommand(app, "mkdir", "make directories", mkdir),
           {"dfs-cli mkdir -p /photos/2026", "dfs-cli --mkdir /photos      # the seed's form"})
      ->callback([&ctx, mkdir] { Mkdir(ctx, *mkdir); })
      ->add_flag("-p,--parents", mkdir->flag, "make missing parents too; an existing directory is no error");

  auto rmdir = std::make_shared<PathsArgs>();
  Examples(PathsCommand(app, "rmdir", "remove empty directories", rmdir), {"dfs-cli rmdir /photos/2026"})
      ->callback([&ctx, rmdir] { Remove(ctx, *rmdir, true); });

  auto rm = std::make_shared<PathsArgs>();
  Examples(PathsCommand(app, "rm", "remove files (and, with -r, directories and all below them)", rm),
           {"dfs-cli rm -r /photos/2025", "dfs-cli --rm /notes.txt      # the seed's form"})
      ->callback([&ctx, rm] { Remove(ctx, *rm, false); })
      ->add_flag("-r,-R,--recursive", rm->flag, "remove directories and everything in them");

  auto mv = std::make_shared<PairArgs>();
  Examples(PairCommand(app, "mv", "move or rename a file or directory", mv),
           {"dfs-cli mv /photos/img.jpg /photos/2026/"})
      ->callback([&ctx, mv] { Move(ctx, *mv); });

  auto cp = std::make_shared<PairArgs>();
  Examples(PairCommand(app, "cp", "copy a file (its chunks are shared until either copy is rewritten)", cp),
           {"dfs-cli cp /photos/2026/img.jpg /backup/img.jpg"})
      ->callback([&ctx, cp] { Copy(ctx, *cp); });
}

}  // namespace dfs::cli
