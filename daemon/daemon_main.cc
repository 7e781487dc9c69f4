#include "daemon/daemon_main.h"

#include <cstdio>

#include <spdlog/spdlog.h>

#include "common/flags.h"
#include "common/logging.h"
#include "common/net.h"
#include "common/signals.h"
#include "daemon/cpu_affinity.h"

namespace dfs {

CLI::Validator CpuFlag() {
  return ParsedFlag([](const std::string& v) { return ParseCpuChoice(v); }, "auto|all|N");
}

int RunDaemon(const DaemonRun& d, const std::function<Status()>& start, const std::function<Status(int)>& run) {
  if (!IsLoopbackHost(d.bind) && !d.insecure) {
    std::fprintf(stderr, "%s: refusing to bind %s without CURVE keys; use a loopback address or --insecure\n",
                 d.program, d.bind.c_str());
    return 2;
  }
  if (auto s = InitLogging(d.logger, d.log_level); !s.ok()) {
    std::fprintf(stderr, "%s: %s\n", d.program, s.message().c_str());
    return 2;
  }
  auto signals = ShutdownSignals::Install();
  if (!signals) {
    std::fprintf(stderr, "%s: %s\n", d.program, signals.error().message().c_str());
    return 1;
  }
  if (auto s = start(); !s.ok()) {
    std::fprintf(stderr, "%s: %s\n", d.program, s.message().c_str());
    return 1;
  }
  if (d.placed_cpu >= 0) spdlog::info("all threads on CPU {} (--cpu {})", d.placed_cpu, d.cpu);
  if (auto s = run(signals->fd()); !s.ok()) {
    spdlog::critical("{} failed: {}", d.logger, s.ToString());
    return 1;
  }
  spdlog::info("{} stopped", d.logger);
  return 0;
}

}  // namespace dfs
