// The command tree of dfs-cli, built once for a one-shot run and once per
// line in the shell (CLI11 leaves an option's variable as the last parse
// set it, so a tree is never parsed twice).
#include <spdlog/spdlog.h>

#include "client/cli/commands.h"
#include "common/flags.h"
#include "common/logging.h"

namespace dfs::cli {

std::unique_ptr<CLI::App> BuildApp(Context& ctx, bool one_shot) {
  auto app = std::make_unique<CLI::App>("dfs-cli: use a dfs cluster");
  if (one_shot) {
    app->add_option("--master", ctx.master_flag, "the master's HOST:PORT (default $DFS_MASTER, else 127.0.0.1:5550)");
  }
  app->add_flag("--json", ctx.out.json, "print one JSON document on stdout");
  app->add_flag("-q,--quiet", ctx.quiet, "no progress bars (they show only when stderr is a terminal)");
  if (one_shot) {
    app->add_option("--timeout", ctx.timeout_s, "seconds to wait for each answer from the master")
        ->check(CLI::Range(0.05, 3600.0))
        ->capture_default_str();
    app->add_option("--log-level", ctx.log_level, "library log lines on stderr: debug|info|warn|error|off")
        ->check([](const std::string& v) { return dfs::IsValidLogLevel(v) ? "" : "not a log level: " + v; })
        // Takes effect as parsed: the commands run within the parse.
        ->each([](const std::string& v) { spdlog::set_level(spdlog::level::from_str(v)); })
        ->capture_default_str();
    app->add_option("--cache-dir", ctx.cache_dir, "the file cache's folder (default $XDG_CACHE_HOME/dfs)");
    app->add_option("--cache-ttl", ctx.cache_ttl,
                    "serve a cached file with the master unreachable this long after it last confirmed it")
        ->check(DurationFlag())
        ->capture_default_str();
    app->add_option("--cache-size", ctx.cache_size, "bytes the cache keeps (least recently used go first)")
        ->check(SizeFlag())
        ->capture_default_str();
    app->add_flag("--no-cache", ctx.no_cache, "neither read from nor write to the file cache (also: DFS_NO_CACHE=1)");
  }
  app->require_subcommand(1);
  app->footer(
      "Transfers: put LOCAL REMOTE and get REMOTE LOCAL (cp's order); the seed's forms put the path\n"
      "in dfs first for both: -u REMOTE LOCAL (upload), -d REMOTE LOCAL (download), -v [PATH] (the\n"
      "viewer: tree), --stat PATH, --mkdir PATH, --rm PATH. Every command has --help with examples.\n"
      "Examples:\n"
      "  dfs-cli put ./img.jpg /photos/2026/     dfs-cli -u /photos/2026/ ./img.jpg\n"
      "  dfs-cli get /photos/2026/img.jpg .      dfs-cli -d /photos/2026/img.jpg .\n"
      "  dfs-cli ls -l /photos/2026              dfs-cli --json nodes");
  app->fallthrough();
  RegisterClusterCommands(*app, ctx);
  RegisterHealthCommands(*app, ctx);
  RegisterNamespaceCommands(*app, ctx);
  RegisterListingCommands(*app, ctx);
  RegisterTreeCommand(*app, ctx);
  RegisterUsageCommands(*app, ctx);
  RegisterDataCommands(*app, ctx);
  return app;
}

}  // namespace dfs::cli
