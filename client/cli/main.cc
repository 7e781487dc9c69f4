// dfs-cli: the command line of dfs. Exit status: 0 success, 1 the operation
// failed (one line on stderr), 2 usage error.
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "client/cli/commands.h"
#include "common/flags.h"
#include "common/logging.h"
#include "common/signals.h"

int main(int argc, char** argv) {
  dfs::client::KeepDataBuffersInHeap();
  dfs::cli::Context ctx;
  CLI::App app{"dfs-cli: use a dfs cluster"};
  app.add_option("--master", ctx.master_flag, "the master's HOST:PORT (default $DFS_MASTER, else 127.0.0.1:5550)");
  app.add_flag("--json", ctx.out.json, "print one JSON document on stdout");
  app.add_flag("-q,--quiet", ctx.quiet, "no progress bars (they show only when stderr is a terminal)");
  app.add_option("--timeout", ctx.timeout_s, "seconds to wait for each answer from the master")
      ->check(CLI::Range(0.05, 3600.0))
      ->capture_default_str();
  std::string log_level = "error";
  app.add_option("--log-level", log_level, "library log lines on stderr: debug|info|warn|error|off")
      ->check([](const std::string& v) { return dfs::IsValidLogLevel(v) ? "" : "not a log level: " + v; })
      // Takes effect as parsed: the commands run within the parse.
      ->each([](const std::string& v) { spdlog::set_level(spdlog::level::from_str(v)); })
      ->capture_default_str();
  app.require_subcommand(1);
  app.footer(
      "Transfers: put LOCAL REMOTE and get REMOTE LOCAL (cp's order); the seed's forms put the path\n"
      "in dfs first for both: -u REMOTE LOCAL (upload), -d REMOTE LOCAL (download), -v [PATH] (the\n"
      "viewer: tree), --stat PATH, --mkdir PATH, --rm PATH. Every command has --help with examples.\n"
      "Examples:\n"
      "  dfs-cli put ./img.jpg /photos/2026/     dfs-cli -u /photos/2026/ ./img.jpg\n"
      "  dfs-cli get /photos/2026/img.jpg .      dfs-cli -d /photos/2026/img.jpg .\n"
      "  dfs-cli ls -l /photos/2026              dfs-cli --json nodes");
  app.fallthrough();
  dfs::cli::RegisterClusterCommands(app, ctx);
  dfs::cli::RegisterHealthCommands(app, ctx);
  dfs::cli::RegisterNamespaceCommands(app, ctx);
  dfs::cli::RegisterListingCommands(app, ctx);
  dfs::cli::RegisterTreeCommand(app, ctx);
  dfs::cli::RegisterUsageCommands(app, ctx);
  dfs::cli::RegisterDataCommands(app, ctx);
  // Keep the library's logs (reconnects, retries) off the user's terminal
  // unless asked for: they are not the one-line error a failure prints.
  if (auto s = dfs::InitLogging("cli", "error"); !s.ok()) return 2;
  std::signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> args = dfs::cli::RewriteSeedAliases(argc, argv);
  std::vector<char*> args_c;
  for (auto& a : args) args_c.push_back(a.data());
  args_c.push_back(nullptr);
  if (auto rc = dfs::ParseFlags(app, static_cast<int>(args.size()), args_c.data(), "dfs-cli")) return *rc;
  std::fflush(stdout);
  if (std::ferror(stdout) && !dfs::cli::StdoutReaderGone()) {
    std::fprintf(stderr, "dfs-cli: cannot write to standard output\n");
    return 1;
  }
  return ctx.exit_code;
}
