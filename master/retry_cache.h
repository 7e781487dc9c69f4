// Answers to recent mutations, keyed by (client id, request id), so a request
// retried after a lost reply is answered again instead of applied twice (a
// retried mkdir must not fail with "file exists"). A retry that arrives while
// the original still waits for its journal sync joins it and gets the same
// answer.
//
// Entries live `ttl` (clients give up long before) and at most `max_entries`.
// Not thread-safe: owned by the metadata thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "envelope.pb.h"

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

  // Clients give up on a request after a few seconds (timeout x attempts);
  // a minute covers any retry with room to spare.
  explicit RetryCache(std::chrono::seconds ttl = std::chrono::seconds(60), size_t max_entries = 1 << 21)
      : ttl_(ttl), max_entries_(max_entries) {}

  enum class Lookup { kNew, kPending, kDone };
  // kNew: the caller handles the request (and must later call Finish).
  // kPending: `route` will get the answer when it is ready.
  // kDone: `*reply` is the earlier answer.
  Lookup Begin(const Key& key, const std::string& route, Clock::time_point now, msg::Envelope* reply);
  // Stores the answer; returns every route waiting for it (first one included).
  std::vector<std::string> Finish(const Key& key, const msg::Envelope& reply);
  // For journal replay: a mutation known to have been applied.
  void RecordDone(const Key& key, msg::Envelope reply, Clock::time_point now);
  size_t size() const { return entries_.size(); }
  // Drops answers older than the ttl (also done on every Begin).
  void Expire(Clock::time_point now);

 private:
  struct Entry {
    bool done = false;
    std::string reply;  // serialized: a fraction of a parsed Envelope's memory
    std::vector<std::string> waiting;
  };

  std::chrono::seconds ttl_;
  size_t max_entries_;
  absl::flat_hash_map<Key, Entry> entries_;
  std::deque<std::pair<Clock::time_point, Key>> order_;
};

}  // namespace dfs::master
