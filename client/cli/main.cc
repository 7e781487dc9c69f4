// dfs-cli: the command line of dfs. Exit status: 0 success, 1 the operation
// failed (one line on stderr), 2 usage error.
#include <csignal>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "client/cli/commands.h"
#include "common/flags.h"
#include "common/logging.h"
#include "common/signals.h"

int main(int argc, char** argv) {
  dfs::cli::Context ctx;
  CLI::App app{"dfs-cli: use a dfs cluster"};
  app.add_option("--master", ctx.master_flag, "the master's HOST:PORT (default $DFS_MASTER, else 127.0.0.1:5550)");
  app.add_flag("--json", ctx.out.json, "print one JSON document on stdout");
  app.add_option("--timeout", ctx.timeout_s, "seconds to wait for each answer from the master")
      ->check(CLI::Range(0.05, 3600.0))
      ->capture_default_str();
  app.require_subcommand(1);
  app.fallthrough();
  dfs::cli::RegisterClusterCommands(app, ctx);
  // Keep the library's logs (reconnects, retries) off the user's terminal.
  if (auto s = dfs::InitLogging("cli", "error"); !s.ok()) return 2;
  std::signal(SIGPIPE, SIG_IGN);
  if (auto rc = dfs::ParseFlags(app, argc, argv, "dfs-cli")) return *rc;
  std::fflush(stdout);
  if (std::ferror(stdout)) {
    std::fprintf(stderr, "dfs-cli: cannot write to standard output\n");
    return 1;
  }
  return ctx.exit_code;
}
