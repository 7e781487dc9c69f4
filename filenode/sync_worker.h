// Finishes chunks (fdatasync, rename, folder fsync) off the poll thread: a
// 64 MiB fdatasync takes tens of milliseconds, and the poll thread carries
// every other stream meanwhile. Completions come back through a list and an
// eventfd the poll loop waits on (like master/completion_queue.h); no socket
// crosses threads.
//
// Thread-safety: Submit and Drain belong to the poll thread; the worker
// thread owns a writer from Submit until its completion is pushed.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "filenode/chunk_store.h"

namespace dfs::filenode {

class SyncWorker {
 public:
  struct Done {
    uint64_t token;
    Result<ChunkMeta> result;
  };

  SyncWorker();
  // Stops after the job in hand; queued writers are destroyed (their temp
  // files removed), since nobody is left to answer their senders.
  ~SyncWorker();
  SyncWorker(const SyncWorker&) = delete;
  SyncWorker& operator=(const SyncWorker&) = delete;

  Status Start();
  // Readable when Drain has something.
  int fd() const { return fd_; }
  void Submit(uint64_t token, std::unique_ptr<ChunkWriter> writer);
  std::vector<Done> Drain();

 private:
  void Loop();

  int fd_ = -1;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<uint64_t, std::unique_ptr<ChunkWriter>>> jobs_;
  std::vector<Done> done_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace dfs::filenode
