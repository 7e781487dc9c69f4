// Space: du (one subtree, from the master's namespace) and df (the whole
// cluster: node capacity and namespace totals).
//
// du --json: {"path","bytes","stored_bytes","files","directories"}
// df --json: {"capacity","used","available","nodes_alive","nodes_dead",
//             "files","directories","chunks"}      (sizes in bytes)
#include <memory>
#include <string>

#include <fmt/format.h>

#include "client/cli/commands.h"
#include "common/units.h"

namespace dfs::cli {
namespace {

void Du(Context& ctx, const std::string& path) {
  client::Client* c = ctx.Connect();
  if (c == nullptr) return;
  auto resolved = client::ResolvePath(path, c->working_directory());
  if (!resolved) return ctx.Fail(resolved.error());
  auto u = c->DiskUsage(*resolved);
  if (!u) return ctx.Fail(u.error());
  if (ctx.out.json) {
    return PrintJson({{"path", *resolved},
                      {"bytes", u->bytes},
                      {"stored_bytes", u->stored_bytes},
                      {"files", u->files},
                      {"directories", u->directories}});
  }
  std::fputs(FormatTable({{"SIZE", "STORED", "FILES", "DIRECTORIES", "PATH"},
                          {FormatSize(u->bytes), FormatSize(u->stored_bytes), std::to_string(u->files),
                           std::to_string(u->directories), *resolved}},
                         {0, 1, 2, 3})
                 .c_str(),
             stdout);
}

void Df(Context& ctx) {
  client::Client* c = ctx.Connect();
  if (c == nullptr) return;
  auto s = c->StatFs();
  if (!s) return ctx.Fail(s.error());
  if (ctx.out.json) {
    return PrintJson({{"capacity", s->capacity},
                      {"used", s->used},
                      {"available", s->available},
                      {"nodes_alive", s->nodes_alive},
                      {"nodes_dead", s->nodes_dead},
                      {"files", s->files},
                      {"directories", s->directories},
                      {"chunks", s->chunks}});
  }
  std::string use = s->capacity == 0 ? "-"
                                     : fmt::format("{:.0f}%", 100.0 * static_cast<double>(s->used) /
                                                                  static_cast<double>(s->capacity));
  std::string nodes = fmt::format("{} alive", s->nodes_alive);
  if (s->nodes_dead > 0) nodes += fmt::format(", {} dead", s->nodes_dead);
  std::fputs(FormatTable({{"CAPACITY", "USED", "AVAILABLE", "USE%", "NODES", "FILES", "DIRECTORIES", "CHUNKS"},
                          {FormatSize(s->capacity), FormatSize(s->used), FormatSize(s->available), use, nodes,
                           std::to_string(s->files), std::to_string(s->directories), std::to_string(s->chunks)}},
                         {0, 1, 2, 3, 5, 6, 7})
                 .c_str(),
             stdout);
}

}  // namespace

void RegisterUsageCommands(CLI::App& app, Context& ctx) {
  auto du_path = std::make_shared<std::string>(".");  // the working directory: / outside the shell
  auto* du = app.add_subcommand("du", "space used below a path: logical bytes, stored bytes, files, directories");
  du->add_option("PATH", *du_path, "a path in dfs")->capture_default_str();
  du->callback([&ctx, du_path] { Du(ctx, *du_path); });
  Examples(du, {"dfs-cli du /photos", "dfs-cli --json du / | jq .stored_bytes"});

  Examples(app.add_subcommand("df", "the cluster's space: capacity, used, available, nodes, files"),
           {"dfs-cli df", "dfs-cli --json df"})
      ->callback([&ctx] { Df(ctx); });
}

}  // namespace dfs::cli
