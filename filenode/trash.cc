#include "filenode/trash.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/files.h"
#include "common/random_id.h"

namespace dfs::filenode {

Trash::Trash(std::string dir) : dir_(std::move(dir)), prefix_(RandomHex(4)) {}

Trash::~Trash() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status Trash::Start() {
  DFS_RETURN_IF_ERROR(CreateDirectories(dir_));
  std::error_code ec;
  std::deque<std::string> left;
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) left.push_back(e.path().string());
  if (ec) return Status::IOError(fmt::format("list {}: {}", dir_, ec.message()));
  if (!left.empty()) spdlog::info("chunk store: removing {} file(s) left in {}", left.size(), dir_);
  std::lock_guard lock(mu_);
  if (started_) return Status::OK();
  queue_.insert(queue_.end(), left.begin(), left.end());
  started_ = true;
  thread_ = std::thread([this] { Loop(); });
  return Status::OK();
}

Status Trash::Discard(const std::string& path) {
  std::string to;
  {
    std::lock_guard lock(mu_);
    if (started_) {
      to = fmt::format("{}/{}-{}-{}", dir_, prefix_, next_++, std::filesystem::path(path).filename().string());
    }
  }
  if (!to.empty()) {
    if (::rename(path.c_str(), to.c_str()) == 0) {
      {
        std::lock_guard lock(mu_);
        queue_.push_back(std::move(to));
      }
      cv_.notify_one();
      return Status::OK();
    }
    // ENOENT is also the trash folder gone from under us: never leave the
    // file in place for that.
    if (errno == ENOENT && ::access(path.c_str(), F_OK) != 0) return Status::NotFound(path + ": no such file");
    spdlog::warn("chunk store: cannot move {} to {}: {}; removing it in place", path, dir_, std::strerror(errno));
  }
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return Status::NotFound(path + ": no such file");
    return Status::FromErrno(errno, "remove " + path);
  }
  return Status::OK();
}

void Trash::Drain() {
  std::unique_lock lock(mu_);
  idle_.wait(lock, [&] { return !started_ || stop_ || (queue_.empty() && !busy_); });
}

void Trash::Loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (stop_) break;
    std::string path = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      spdlog::warn("chunk store: cannot remove {}: {}", path, std::strerror(errno));
    }
    lock.lock();
    busy_ = false;
    if (queue_.empty()) idle_.notify_all();
  }
  busy_ = false;
  idle_.notify_all();
}

}  // namespace dfs::filenode
