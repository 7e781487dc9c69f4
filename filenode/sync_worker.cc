#include "filenode/sync_worker.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

namespace dfs::filenode {

SyncWorker::SyncWorker() = default;

SyncWorker::~SyncWorker() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  jobs_.clear();
  if (fd_ >= 0) ::close(fd_);
}

Status SyncWorker::Start() {
  fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd_ < 0) return Status::FromErrno(errno, "eventfd");
  thread_ = std::thread([this] { Loop(); });
  return Status::OK();
}

void SyncWorker::Submit(uint64_t token, std::unique_ptr<ChunkWriter> writer) {
  {
    std::lock_guard lock(mu_);
    jobs_.emplace_back(token, std::move(writer));
  }
  cv_.notify_one();
}

std::vector<SyncWorker::Done> SyncWorker::Drain() {
  uint64_t count = 0;
  ssize_t n = ::read(fd_, &count, sizeof count);
  (void)n;  // EAGAIN only means nothing new
  std::lock_guard lock(mu_);
  return std::exchange(done_, {});
}

void SyncWorker::Loop() {
  for (;;) {
    std::pair<uint64_t, std::unique_ptr<ChunkWriter>> job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
      if (stop_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    Result<ChunkMeta> r = job.second->Finish();
    job.second.reset();
    {
      std::lock_guard lock(mu_);
      done_.push_back(Done{job.first, std::move(r)});
    }
    uint64_t one = 1;
    ssize_t n = ::write(fd_, &one, sizeof one);
    (void)n;  // the counter only saturates after 2^64 - 1 unread completions
  }
}

}  // namespace dfs::filenode
