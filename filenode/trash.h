// Files leave the chunk store at once and give their blocks back later.
//
// Unlinking a 64 MiB chunk cost 20-25 ms on the development VM (issue 4,
// session 7; docs/architecture.md) (the blocks are freed, and
// discarded on a file system mounted with `discard`); a dead 256 MiB volume
// four times that. Done on the node's event loop, deleting a big file would
// stall every stream and read on the node for seconds and could cost it its
// heartbeats. So a file to remove is renamed into the trash folder (a rename
// touches no data blocks) and a thread of its own unlinks it there, as
// HDFS's DataNode deletes block files on its async disk service.
//
// The rename is what matters to the store: the name is free at once, so a
// chunk written again under the same name is never removed by a late unlink.
// The folder is on the store's file system (renames cannot cross them); what
// is left in it by a crash or a stop is removed after the next start.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "common/env.h"
#include "common/status.h"

namespace dfs::filenode {

class Trash {
 public:
  // `dir` must be on the same file system as the files discarded; every
  // file access goes through `env`, which must outlive the trash.
  Trash(std::string dir, Env* env);
  // Stops after the unlink in hand; what is still queued stays for the next
  // start.
  ~Trash();
  Trash(const Trash&) = delete;
  Trash& operator=(const Trash&) = delete;

  // Creates the folder, queues whatever an earlier run left in it and starts
  // the thread. Discard before Start removes files at once.
  Status Start();
  // Moves `path` into the trash and queues its unlink. NotFound when there
  // is no such file; when the rename fails otherwise, unlinks it now.
  Status Discard(const std::string& path);
  // Waits until every queued file is gone (ChunkStore::DrainTrash, for tests).
  void Drain();

 private:
  void Loop();

  const std::string dir_;
  Env* const env_;
  const std::string prefix_;  // this run's, so names never meet a leftover's
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_;
  std::deque<std::string> queue_;
  uint64_t next_ = 0;
  bool busy_ = false;
  bool stop_ = false;
  bool started_ = false;
  std::thread thread_;
};

}  // namespace dfs::filenode
