#include "master/retry_cache.h"

namespace dfs::master {

void RetryCache::Expire(Clock::time_point now) {
  while (!order_.empty() && (now - order_.front().first > ttl_ || entries_.size() > max_entries_)) {
    auto it = entries_.find(order_.front().second);
    // A pending entry is never dropped: its requester is still owed an answer.
    if (it != entries_.end() && !it->second.done) break;
    if (it != entries_.end()) entries_.erase(it);
    order_.pop_front();
  }
}

RetryCache::Lookup RetryCache::Begin(const Key& key, const std::string& route, Clock::time_point now,
                                     msg::Envelope* reply) {
  Expire(now);
  auto [it, inserted] = entries_.try_emplace(key);
  if (inserted) {
    it->second.waiting.push_back(route);
    order_.emplace_back(now, key);
    return Lookup::kNew;
  }
  if (it->second.done) {
    if (!reply->ParseFromString(it->second.reply)) reply->Clear();
    return Lookup::kDone;
  }
  it->second.waiting.push_back(route);
  return Lookup::kPending;
}

std::vector<std::string> RetryCache::Finish(const Key& key, const msg::Envelope& reply) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return {};
  it->second.done = true;
  it->second.reply = reply.SerializeAsString();
  return std::move(it->second.waiting);
}

void RetryCache::RecordDone(const Key& key, msg::Envelope reply, Clock::time_point now) {
  auto [it, inserted] = entries_.try_emplace(key);
  it->second.done = true;
  it->second.reply = reply.SerializeAsString();
  if (inserted) order_.emplace_back(now, key);
  Expire(now);
}

}  // namespace dfs::master
