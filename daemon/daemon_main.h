// What dfs-master and dfs-node share between their flags and their server:
// the --cpu flag, refusing a public address without keys, logging, the
// shutdown signals, and Start/Run with one line on stderr for a failure.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include "common/status.h"

namespace dfs {

// --cpu auto|all|adaptive|N (daemon/cpu_affinity.h).
CLI::Validator CpuFlag();

struct DaemonRun {
  const char* program = "";  // "dfs-master": the prefix of its stderr lines
  const char* logger = "";   // "master": the spdlog logger's name
  std::string log_level = "info";
  std::string bind;          // refused unless loopback, or `insecure`
  bool insecure = false;
  std::string cpu;           // the --cpu choice, logged once running
  int placed_cpu = -1;       // where PlaceDaemonForMain put the threads, -1: nowhere
};

// Runs a daemon whose flags are parsed and threads placed: `start` binds and
// recovers, `run` serves until the signalfd it is given is readable. Returns
// main's exit status: 2 for a usage error (an address or log level refused),
// 1 when starting or serving failed, 0 after a clean stop.
int RunDaemon(const DaemonRun& d, const std::function<Status()>& start, const std::function<Status(int)>& run);

}  // namespace dfs
