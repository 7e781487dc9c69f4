// SIGINT/SIGTERM as a file descriptor the poll loop waits on (signalfd), so a
// daemon stops between two messages with its sockets closed and files
// flushed, instead of in a signal handler.
#pragma once

#include "common/env.h"
#include "common/status.h"

namespace dfs {

class ShutdownSignals {
 public:
  // Blocks SIGINT, SIGTERM (and SIGPIPE, ignored) in the calling thread;
  // call it in main() before starting threads so they inherit the mask.
  static Result<ShutdownSignals> Install();
  ShutdownSignals(ShutdownSignals&& other) noexcept = default;
  ShutdownSignals(const ShutdownSignals&) = delete;

  // Readable when a signal is pending.
  int fd() const { return fd_.get(); }
  // Consumes one pending signal; returns its number or 0.
  int Take();

 private:
  explicit ShutdownSignals(int fd) : fd_(fd) {}
  UniqueFd fd_;
};

}  // namespace dfs
