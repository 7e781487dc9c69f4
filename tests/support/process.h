// Child processes for tests: start a daemon with its output in a log file,
// signal it, wait for it with a deadline; run a command and capture its
// output. Every Process kills its child (SIGKILL) when destroyed, so a failed
// assertion never leaves a daemon behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace dfs::test {

class Process {
 public:
  Process() = default;
  // Starts `argv` with stdout and stderr appended to `log_path`.
  static Process Start(const std::vector<std::string>& argv, const std::string& log_path);
  ~Process();
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;

  pid_t pid() const { return pid_; }
  bool running();
  void Signal(int sig);
  // Waits for exit; returns the exit status (128+signal when killed), or
  // nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  // SIGTERM, wait up to 10 s, then SIGKILL. Returns the exit status.
  int Stop();
  void Kill();

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

struct CommandResult {
  int exit_code = -1;  // 128+signal when killed; -1 when it had to be killed on timeout
  std::string out;
  std::string err;
};

// Runs `argv` to completion (killed after `timeout`), capturing its output.
CommandResult RunCommand(const std::vector<std::string>& argv,
                  std::chrono::milliseconds timeout = std::chrono::seconds(60),
                  const std::vector<std::string>& extra_env = {}, const std::string& stdin_data = "");

// Polls `condition` every 20 ms until it holds or `timeout` passes (Kudu's
// ASSERT_EVENTUALLY without the macro magic). Returns whether it held.
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

}  // namespace dfs::test
