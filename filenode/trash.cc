#include "filenode/trash.h"

#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/random_id.h"

namespace dfs::filenode {

Trash::Trash(std::string dir, Env* env) : dir_(std::move(dir)), env_(env), prefix_(RandomHex(4)) {}

Trash::~Trash() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status Trash::Start() {
  DFS_RETURN_IF_ERROR(env_->CreateDirs(dir_));
  DFS_ASSIGN_OR_RETURN(std::vector<std::string> names, env_->ListDir(dir_));
  std::deque<std::string> left;
  for (const std::string& name : names) left.push_back(dir_ + "/" + name);
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
      to = fmt::format("{}/{}-{}-{}", dir_, prefix_, next_++, path.substr(path.rfind('/') + 1));
    }
  }
  if (!to.empty()) {
    Status moved = env_->Rename(path, to);
    if (moved.ok()) {
      {
        std::lock_guard lock(mu_);
        queue_.push_back(std::move(to));
      }
      cv_.notify_one();
      return Status::OK();
    }
    // ENOENT is also the trash folder gone from under us: never leave the
    // file in place for that.
    if (moved.code() == Code::kNotFound) {
      auto st = env_->Stat(path);
      if (!st && st.error().code() == Code::kNotFound) return Status::NotFound(path + ": no such file");
    }
    spdlog::warn("chunk store: cannot move {} to {}: {}; removing it in place", path, dir_, moved.message());
  }
  if (Status s = env_->Remove(path); !s.ok()) {
    if (s.code() == Code::kNotFound) return Status::NotFound(path + ": no such file");
    return s;
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
    if (Status s = env_->Remove(path); !s.ok() && s.code() != Code::kNotFound) {
      spdlog::warn("chunk store: {}", s.ToString());
    }
    lock.lock();
    busy_ = false;
    if (queue_.empty()) idle_.notify_all();
  }
  busy_ = false;
  idle_.notify_all();
}

}  // namespace dfs::filenode
