// The master's catalog: the namespace, the journal that makes each mutation
// durable before it is answered, start-up recovery (checkpoint + replay),
// background checkpoints, and the retry cache that answers a retried
// mutation with its first answer.
//
// A mutation is applied in memory when it arrives and answered once its
// journal record is durable (group commit in the JournalWriter's thread; the
// completion comes back through a CompletionQueue the poll loop watches), so
// a concurrent reader may see it up to one sync before its writer is told. If
// the journal then fails the catalog refuses every further mutation and the
// master stops (see JournalWriter): the mutation may or may not survive, as
// with any request whose answer was lost.
//
// Not thread-safe: driven by the master's metadata thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bus/outbox.h"
#include "master/ports.h"
#include "common/env.h"
#include "master/completion_queue.h"
#include "master/journal.h"
#include "master/namespace.h"
#include "master/retry_cache.h"

namespace dfs::master {

class Catalog {
 public:
  using Clock = std::chrono::steady_clock;
  using Key = RetryCache::Key;
  // Fills a mutation's answer from what applying it did.
  using Fill = std::function<void(const ApplyResult&, msg::ClientEnvelope&)>;
  // Told of each path whose contents a mutation changed (FileEvent).
  using Changed = std::function<void(const std::string& path)>;

  struct Options {
    std::string dir;
    // A background checkpoint starts after this many journal records.
    uint64_t checkpoint_every_records = 1'000'000;
    // The retry cache's memory bound (RetryCache explains the default).
    size_t retry_cache_bytes = RetryCache::kDefaultByteBudget;
    // Journal and checkpoint file access; nullptr: Env::Default().
    Env* env = nullptr;
    // Fault injection, off when 0 (MasterOptions has the flags): the
    // checkpoint writer exits after this many entries; the master exits once
    // this journal record is durable, before it is answered.
    uint64_t fault_crash_during_checkpoint = 0;
    uint64_t fault_crash_after_journal_append = 0;
  };

  // Answers to mutations go to `clients`, the master's client port.
  Catalog(Options options, bus::Outbox& clients);
  ~Catalog();
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  // Start-up: checkpoint + journal replay, then the journal opened for append.
  Status Open();
  // Flushes the journal and writes a checkpoint (clean shutdown).
  Status Close();
  // Readable when journal completions are waiting for OnCompletions.
  int completion_fd() const { return completions_.fd(); }
  // Sends the answers whose records became durable. An error means the
  // journal failed and the master must stop.
  Status OnCompletions();
  // Retry-cache expiry and checkpoint scheduling.
  void Tick(Clock::time_point now);

  const Namespace& ns() const { return ns_; }
  JournalStats journal_stats() const;

  // Admits mutation `m`: true when it is new and the caller must answer it
  // (Answer, AnswerError, Mutate or Commit). False when it was answered
  // already: from the retry cache, by joining the original still in flight,
  // or with an error because the journal failed.
  bool Admit(const ClientMessage& m, Clock::time_point now);
  // A journal record stamped with the request's client, request id and user.
  msg::JournalRecord NewRecord(const ClientMessage& m) const;
  // Applies `record`; on success journals it and answers `key` once durable
  // with the reply `fill` makes; on error answers now. Returns the chunks no
  // file references any more (the caller releases them from the nodes).
  std::vector<uint64_t> Mutate(const Key& key, msg::JournalRecord record, const Fill& fill);
  // Applies `record`, which is no request of its own (a chunk-id block), and
  // answers `key` with `reply` once it is durable.
  void Commit(const Key& key, msg::JournalRecord record, msg::ClientEnvelope reply);
  void Answer(const Key& key, const msg::ClientEnvelope& reply);
  void AnswerError(const Key& key, const Status& error);
  // Called as each overwrite, delete or rename is applied (before it is
  // durable: for dropping cached copies, earlier is only safer).
  void set_on_change(Changed on_change) { on_change_ = std::move(on_change); }

 private:
  struct Pending {
    Key key;
    msg::ClientEnvelope reply;
  };

  void Journal(const msg::JournalRecord& record, Pending pending);
  // Fills a compact cached answer's FileInfo from the namespace as it is now.
  void Redescribe(msg::ClientEnvelope& reply) const;
  void StartCheckpoint();
  void ReapCheckpoint();

  void TellChanged(const msg::JournalRecord& record, const ApplyResult& result) const;

  Options options_;
  bus::Outbox& clients_;
  Changed on_change_;
  Namespace ns_;
  RetryCache retry_cache_{std::chrono::seconds(60), options_.retry_cache_bytes};
  CompletionQueue completions_;
  std::unique_ptr<JournalWriter> journal_;
  uint64_t next_token_ = 1;
  std::map<uint64_t, Pending> pending_;
  Status journal_failed_;
  // Background checkpoint (a forked child writing a snapshot).
  pid_t checkpoint_pid_ = -1;
  uint64_t checkpoint_generation_ = 0;
  uint64_t records_at_last_checkpoint_ = 0;
};

}  // namespace dfs::master
