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
  files_.cv.notify_all();
  volumes_.cv.notify_all();
  if (files_.thread.joinable()) files_.thread.join();
  if (volumes_.thread.joinable()) volumes_.thread.join();
  files_.jobs.clear();
  volumes_.jobs.clear();
}

Status SyncWorker::Start() {
  fd_ = UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!fd_.valid()) return Status::FromErrno(errno, "eventfd");
  files_.thread = std::thread([this] { FileLoop(); });
  volumes_.thread = std::thread([this] { VolumeLoop(); });
  return Status::OK();
}

void SyncWorker::Submit(uint64_t token, std::unique_ptr<ChunkWriter> writer) {
  Lane& lane = writer->buffered() ? volumes_ : files_;
  {
    std::lock_guard lock(mu_);
    lane.jobs.emplace_back(token, std::move(writer));
  }
  lane.cv.notify_one();
}

std::vector<SyncWorker::Done> SyncWorker::Drain() {
  uint64_t count = 0;
  ssize_t n = ::read(fd_.get(), &count, sizeof count);
  (void)n;  // EAGAIN only means nothing new
  std::lock_guard lock(mu_);
  return std::exchange(done_, {});
}

std::deque<SyncWorker::Job> SyncWorker::Take(Lane& lane) {
  std::unique_lock lock(mu_);
  lane.cv.wait(lock, [&] { return stop_ || !lane.jobs.empty(); });
  if (stop_) return {};
  return std::exchange(lane.jobs, {});
}

void SyncWorker::Complete(std::vector<Done> done) {
  {
    std::lock_guard lock(mu_);
    for (auto& d : done) done_.push_back(std::move(d));
  }
  uint64_t one = 1;
  ssize_t n = ::write(fd_.get(), &one, sizeof one);
  (void)n;  // the counter only saturates after 2^64 - 1 unread completions
}

void SyncWorker::FileLoop() {
  for (;;) {
    std::deque<Job> jobs = Take(files_);
    if (jobs.empty()) return;
    for (auto& [token, writer] : jobs) {
      {
        std::lock_guard lock(mu_);
        if (stop_) return;  // the rest are destroyed with `jobs`
      }
      Result<ChunkMeta> r = writer->Finish();
      writer.reset();
      // Each as it is done: a file chunk need not wait for the next one's fsync.
      std::vector<Done> done;
      done.push_back(Done{token, std::move(r)});
      Complete(std::move(done));
    }
  }
}

void SyncWorker::VolumeLoop() {
  using Clock = std::chrono::steady_clock;
  Clock::time_point idle_due = Clock::now();
  for (;;) {
    std::deque<Job> jobs;
    {
      std::unique_lock lock(mu_);
      auto ready = [&] { return stop_ || !volumes_.jobs.empty(); };
      if (idle_work_) {
        volumes_.cv.wait_until(lock, idle_due, ready);
      } else {
        volumes_.cv.wait(lock, ready);
      }
      if (stop_) return;  // what is queued is destroyed with the worker
      jobs = std::exchange(volumes_.jobs, {});
    }
    if (!jobs.empty()) {
      std::vector<ChunkWriter*> writers;
      writers.reserve(jobs.size());
      for (auto& job : jobs) writers.push_back(job.second.get());
      std::vector<Result<ChunkMeta>> results = ChunkWriter::FinishAll(writers);
      std::vector<Done> done;
      done.reserve(jobs.size());
      for (size_t i = 0; i < jobs.size(); ++i) {
        jobs[i].second.reset();
        done.push_back(Done{jobs[i].first, std::move(results[i])});
      }
      Complete(std::move(done));
    }
    if (idle_work_ && Clock::now() >= idle_due) idle_due = Clock::now() + idle_work_();
  }
}

}  // namespace dfs::filenode
