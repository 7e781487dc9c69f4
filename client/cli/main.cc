// dfs-cli: the command line of dfs. Exit status: 0 success, 1 the operation
// failed (one line on stderr), 2 usage error. With no command on a
// terminal (or `dfs-cli shell`) it is an interactive shell (shell.h).
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "client/cli/commands.h"
#include "client/cli/shell.h"
#include "common/flags.h"
#include "common/logging.h"

int main(int argc, char** argv) {
  dfs::client::KeepDataBuffersInHeap();
  dfs::cli::Context ctx;
  std::unique_ptr<CLI::App> app = dfs::cli::BuildApp(ctx, /*one_shot=*/true);
  dfs::cli::ShellOptions shell;
  bool run_shell = false;
  dfs::cli::RegisterShellCommand(*app, shell, run_shell);
  app->require_subcommand(0, 1);
  // Keep the library's logs (reconnects, retries) off the user's terminal
  // unless asked for: they are not the one-line error a failure prints.
  if (auto s = dfs::InitLogging("cli", "error"); !s.ok()) return 2;
  std::signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> args = dfs::cli::RewriteSeedAliases(argc, argv);
  std::vector<char*> args_c;
  for (auto& a : args) args_c.push_back(a.data());
  args_c.push_back(nullptr);
  if (auto rc = dfs::ParseFlags(*app, static_cast<int>(args.size()), args_c.data(), "dfs-cli")) return *rc;
  if (app->get_subcommands().empty()) {
    // No command: the shell on a terminal; a script that forgot its command
    // gets a usage error rather than a shell waiting on its stdin.
    if (::isatty(STDIN_FILENO) != 1) {
      std::fprintf(stderr, "dfs-cli: a command is required (see --help; `dfs-cli shell` reads commands from stdin)\n");
      return 2;
    }
    run_shell = true;
  }
  if (run_shell) return dfs::cli::RunShell(ctx, shell);
  std::fflush(stdout);
  if (std::ferror(stdout) && !dfs::cli::StdoutReaderGone()) {
    std::fprintf(stderr, "dfs-cli: cannot write to standard output\n");
    return 1;
  }
  return ctx.exit_code;
}
