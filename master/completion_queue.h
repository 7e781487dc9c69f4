// Completions from the journal's writer thread back to the metadata thread:
// a mutex-guarded list plus an eventfd the metadata thread's poll loop waits
// on. No socket crosses threads; the writer thread only pushes.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#include "common/env.h"
#include "common/status.h"

namespace dfs::master {

class CompletionQueue {
 public:
  CompletionQueue() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  CompletionQueue(const CompletionQueue&) = delete;
  CompletionQueue& operator=(const CompletionQueue&) = delete;

  bool ok() const { return fd_.valid(); }
  int fd() const { return fd_.get(); }

  // Any thread.
  void Push(uint64_t token, Status status) {
    {
      std::lock_guard lock(mu_);
      items_.emplace_back(token, std::move(status));
    }
    uint64_t one = 1;
    ssize_t n = ::write(fd_.get(), &one, sizeof one);
    (void)n;  // the counter only saturates after 2^64 - 1 unread pushes
  }

  // Metadata thread: everything pushed so far, in push order.
  std::vector<std::pair<uint64_t, Status>> Drain() {
    uint64_t count = 0;
    ssize_t n = ::read(fd_.get(), &count, sizeof count);
    (void)n;  // EAGAIN just means nothing new
    std::lock_guard lock(mu_);
    return std::exchange(items_, {});
  }

 private:
  UniqueFd fd_;
  std::mutex mu_;
  std::vector<std::pair<uint64_t, Status>> items_;
};

}  // namespace dfs::master
