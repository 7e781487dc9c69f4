// Finishes chunks off the poll thread: a 64 MiB fdatasync takes tens of
// milliseconds, and the poll thread carries every other stream meanwhile.
// Completions come back through a list and an eventfd the poll loop waits on
// (like master/completion_queue.h); no socket crosses threads.
//
// Two lanes, each with its own thread, so a big file's fsync never holds up
// small chunks:
//   - file chunks finish one by one (fdatasync, rename, folder fsync);
//   - buffered chunks (ChunkWriter::buffered) finish as a group commit: the
//     lane takes every one queued, appends them all to a volume and syncs
//     once. Chunks that arrive during a sync form the next batch, so the
//     batch grows with the load and one fdatasync serves them all.
//     Between batches the lane runs its idle work, if any (the chunk
//     store's compaction, which appends to volumes too and so belongs on
//     this thread): once it is due, at most once after each batch, so under
//     load batches and idle work alternate and a batch waits for one step.
//
// Thread-safety: Submit and Drain belong to the poll thread; a lane's thread
// owns a writer from Submit until its completion is pushed.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
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
  // Stops after the work in hand; queued writers are destroyed (their temp
  // files removed, their buffers dropped), since nobody is left to answer
  // their senders.
  ~SyncWorker();
  SyncWorker(const SyncWorker&) = delete;
  SyncWorker& operator=(const SyncWorker&) = delete;

  // Work for the volume lane (see above): called when the time it last
  // returned has passed; returns how long until it wants to run again. Set
  // before Start.
  using IdleWork = std::function<std::chrono::nanoseconds()>;
  void SetIdleWork(IdleWork work) { idle_work_ = std::move(work); }

  Status Start();
  // Readable when Drain has something.
  int fd() const { return fd_.get(); }
  void Submit(uint64_t token, std::unique_ptr<ChunkWriter> writer);
  std::vector<Done> Drain();

 private:
  using Job = std::pair<uint64_t, std::unique_ptr<ChunkWriter>>;
  struct Lane {
    std::condition_variable cv;
    std::deque<Job> jobs;
    std::thread thread;
  };
  // Waits for jobs and takes all of them; empty when stopping.
  std::deque<Job> Take(Lane& lane);
  void FileLoop();
  void VolumeLoop();
  void Complete(std::vector<Done> done);

  UniqueFd fd_;
  std::mutex mu_;
  Lane files_;
  Lane volumes_;
  std::vector<Done> done_;
  bool stop_ = false;
  IdleWork idle_work_;
};

}  // namespace dfs::filenode
