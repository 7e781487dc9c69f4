// dfs-cli's interactive shell (`dfs-cli shell`, and dfs-cli with no command
// on a terminal): every dfs-cli command, parsed by the same CLI11 tree the
// one-shot CLI builds (BuildApp), with remote paths relative to a current
// directory (the Client's working directory), plus the builtins cd, pwd,
// lcd, lpwd, lls, help and exit. On a terminal: libedit line editing,
// history, Tab completion, Ctrl-C to cancel a transfer or clear the line,
// Ctrl-D to leave, and a notice when a node goes down or comes back (the
// master's PUB events). From a pipe or a file: one command per line, no
// prompt; -e stops at the first failure with its exit status.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "client/cli/commands.h"

namespace dfs::cli {

struct ShellOptions {
  bool exit_on_error = false;  // -e
  std::string script;          // commands from this file instead of stdin
};

// Adds `shell` to dfs-cli's commands; choosing it sets `run`.
void RegisterShellCommand(CLI::App& app, ShellOptions& options, bool& run);

// Runs the shell on `ctx` (connecting first). Returns the exit status: the
// last command's; with -e, the first failure's; 130 when Ctrl-C stopped a
// script.
int RunShell(Context& ctx, const ShellOptions& options);

// Where the history is kept: $DFS_HISTORY if set (empty: none), else
// $XDG_STATE_HOME/dfs/history, with XDG_STATE_HOME defaulting to
// ~/.local/state (the XDG base directory rule for state such as history).
std::string HistoryPath();

}  // namespace dfs::cli
