// Answers to recent mutations, keyed by (client id, request id), so a request
// retried after a lost reply is answered again instead of applied twice (a
// retried mkdir must not fail with "file exists"). A retry that arrives while
// the original still waits for its journal sync joins it and gets the same
// answer.
//
// BOUNDED BY MEMORY. Answers live `ttl` (clients give up long before) and
// within a byte budget, which counts everything the cache holds: the answer
// log's blocks, the hash index's buckets and the pending entries. Over the
// budget, done answers are dropped oldest first (in the order they were
// answered), like HDFS's retry cache, which is capped at a small share of the
// NameNode heap. A pending entry (a requester still owed an answer) is never
// dropped, by the bound or the ttl: the pending ones are as many as the
// mutations in flight, a few thousand at most, so they cannot outgrow it.
//
// WHAT HITTING THE BOUND COSTS: a retry of a mutation whose answer was
// dropped is applied again, as if the cache did not exist: a retried mkdir
// answers "exists", a retried delete or rename "not found", a retried create
// "busy" (its own first lease holds the path until it lapses), a retried
// chunk allocation places a second chunk (the first is freed with the
// lease). The
// answers dropped are the oldest, so this happens only if a retry comes later
// than `byte_budget / (bytes per answer * mutations per second)`; with the
// default budget and ~120 B per answer that is 9 s at 60,000 mutations/s,
// against a client's patience of 2 s (1 s x 2 attempts). Each
// drop before the ttl is counted (`evicted()`) and logged at most once a
// minute.
//
// LAYOUT (~70 B + the compact answer per entry, no heap allocation each):
// done answers are records appended to a log of blocks, in answer order:
// [client id][request id][time][length][serialized answer]; the log is the
// time order (expiry and eviction pop its head) and the index maps a key to
// its record. Pending entries sit in their own small map with the routes
// waiting for them (the first inline); once answered, nothing of them stays
// but the record.
//
// Not thread-safe: owned by the metadata thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "client_master.pb.h"

namespace dfs::master {

class RetryCache {
 public:
  using Clock = std::chrono::steady_clock;
  struct Key {
    uint64_t client_id;
    uint64_t request_id;
    bool operator==(const Key&) const = default;
    template <typename H>
    friend H AbslHashValue(H h, const Key& k) {
      return H::combine(std::move(h), k.client_id, k.request_id);
    }
  };

  // 64 MiB. A retry comes within a client's patience (1 s x 2 attempts), so
  // the cache needs the answers of a few seconds at the master's peak rate.
  // An answer costs ~120 B here (a chunk allocation naming three nodes ~165,
  // a create, a mkdir or a completion ~95, index bucket included), so 64 MiB
  // hold ~550,000 answers: 9 s at this master's peak of ~60,000 mutations/s
  // (master-scale: 20,000 one-chunk files/s, three mutations each), over 4x
  // the clients' patience. It is ~4 % of what a master with 10 M files needs
  // (~1.5 GiB, docs/architecture.md), near HDFS's default share of the
  // NameNode heap for its retry cache
  // (dfs.namenode.retrycache.heap.percent = 0.03). --retry-cache-size sets it.
  static constexpr size_t kDefaultByteBudget = size_t{64} << 20;

  // Clients give up on a request after a few seconds (timeout x attempts);
  // a minute covers any retry with room to spare.
  explicit RetryCache(std::chrono::seconds ttl = std::chrono::seconds(60), size_t byte_budget = kDefaultByteBudget);
  RetryCache(const RetryCache&) = delete;
  RetryCache& operator=(const RetryCache&) = delete;

  enum class Lookup { kNew, kPending, kDone };
  // kNew: the caller handles the request (and must later call Finish).
  // kPending: `route` will get the answer when it is ready.
  // kDone: `*reply` is the earlier answer.
  Lookup Begin(const Key& key, const std::string& route, Clock::time_point now, msg::ClientEnvelope* reply);
  // Stores the answer; returns every route waiting for it (first one included).
  std::vector<std::string> Finish(const Key& key, const msg::ClientEnvelope& reply);
  // For journal replay: a mutation known to have been applied.
  void RecordDone(const Key& key, msg::ClientEnvelope reply, Clock::time_point now);
  // Entries held, pending and done.
  size_t size() const { return pending_.size() + index_.size(); }
  // Drops answers older than the ttl (also done on every Begin).
  void Expire(Clock::time_point now);

  // Memory held, as counted against the budget (never above it while there
  // is a done answer left to drop).
  size_t bytes() const;
  size_t byte_budget() const { return budget_; }
  size_t pending() const { return pending_.size(); }
  // Whether a done answer for `key` is held.
  bool Answered(const Key& key) const { return index_.contains(key); }
  // Done answers dropped by the byte bound before their ttl, since start.
  uint64_t evicted() const { return evicted_; }

 private:
  struct Pending {
    Clock::time_point begun;
    std::string route;              // the requester
    std::vector<std::string> more;  // retries that joined it (rare)
  };
  // A record's place: block sequence number << 20 | offset in the block.
  using Where = uint64_t;
  struct Block {
    std::unique_ptr<char[]> data;
    uint32_t capacity = 0;
    uint32_t used = 0;
  };

  static size_t HeapOf(const Pending& p);
  const char* At(Where w) const;
  void Append(const Key& key, Clock::time_point t, const msg::ClientEnvelope& reply);
  // The oldest record in the log (live or replaced), or nullptr.
  const char* Oldest();
  // Drops the oldest record; `budget` says why (counted and logged).
  void DropOldest(bool budget);
  void EnforceBudget();

  std::chrono::seconds ttl_;
  size_t budget_;
  uint32_t block_size_;
  absl::flat_hash_map<Key, Pending> pending_;
  size_t pending_heap_ = 0;  // routes' heap memory beyond pending_'s buckets
  absl::flat_hash_map<Key, Where> index_;
  std::deque<Block> blocks_;  // the log, oldest first
  uint64_t first_block_ = 0;  // sequence number of blocks_.front()
  uint32_t head_ = 0;         // offset of the oldest record in blocks_.front()
  size_t block_bytes_ = 0;
  Clock::time_point now_{};
  uint64_t evicted_ = 0;
  uint64_t evicted_logged_ = 0;
  Clock::time_point logged_at_{};
};

}  // namespace dfs::master
