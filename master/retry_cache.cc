#include "master/retry_cache.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include <spdlog/spdlog.h>

namespace dfs::master {
namespace {

// A record: client id, request id, time (Clock ticks), answer length, answer.
constexpr size_t kClientAt = 0;
constexpr size_t kRequestAt = 8;
constexpr size_t kTimeAt = 16;
constexpr size_t kLengthAt = 24;
constexpr size_t kHeader = 28;
constexpr int kOffsetBits = 20;  // blocks of up to 64 KiB; a larger record has a block of its own, at 0

template <typename T>
T Load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename T>
void Store(char* p, T v) {
  std::memcpy(p, &v, sizeof v);
}

}  // namespace

RetryCache::RetryCache(std::chrono::seconds ttl, size_t byte_budget)
    : ttl_(ttl),
      budget_(byte_budget),
      // 64 blocks or more in a budget of 1 MiB or more (dfs-master's least),
      // so that dropping a block's worth of the oldest answers frees a small
      // share of it: 64 KiB blocks for the default.
      block_size_(static_cast<uint32_t>(std::clamp<size_t>(std::bit_floor(std::max<size_t>(byte_budget / 64, 1)),
                                                           size_t{1} << 10, size_t{64} << 10))) {}

size_t RetryCache::HeapOf(const Pending& p) {
  // std::string keeps up to 15 bytes inline.
  auto heap = [](const std::string& s) { return s.capacity() > 15 ? s.capacity() + 1 : 0; };
  size_t n = heap(p.route) + p.more.capacity() * sizeof(std::string);
  for (const auto& r : p.more) n += heap(r);
  return n;
}

size_t RetryCache::bytes() const {
  // absl's flat_hash_map holds one slot and one control byte per bucket.
  return block_bytes_ + index_.capacity() * (sizeof(std::pair<const Key, Where>) + 1) +
         pending_.capacity() * (sizeof(std::pair<const Key, Pending>) + 1) + pending_heap_ +
         blocks_.size() * sizeof(Block);
}

const char* RetryCache::At(Where w) const {
  const Block& b = blocks_[(w >> kOffsetBits) - first_block_];
  return b.data.get() + (w & ((Where{1} << kOffsetBits) - 1));
}

const char* RetryCache::Oldest() {
  while (!blocks_.empty() && head_ >= blocks_.front().used) {
    if (blocks_.size() == 1 && blocks_.front().capacity == block_size_) {
      // The log is empty: keep its block for what comes next.
      blocks_.front().used = 0;
      head_ = 0;
      return nullptr;
    }
    block_bytes_ -= blocks_.front().capacity;
    blocks_.pop_front();
    ++first_block_;
    head_ = 0;
  }
  return blocks_.empty() ? nullptr : blocks_.front().data.get() + head_;
}

void RetryCache::DropOldest(bool budget) {
  const char* p = Oldest();
  if (p == nullptr) return;
  const Key key{Load<uint64_t>(p + kClientAt), Load<uint64_t>(p + kRequestAt)};
  const Where here = (first_block_ << kOffsetBits) | head_;
  head_ += static_cast<uint32_t>(kHeader + Load<uint32_t>(p + kLengthAt));
  auto it = index_.find(key);
  if (it == index_.end() || it->second != here) return;  // replaced by a later answer
  index_.erase(it);
  const auto answered = Clock::time_point(Clock::duration(Load<int64_t>(p + kTimeAt)));
  if (!budget || now_ - answered > ttl_) return;
  ++evicted_;
  if (now_ - logged_at_ >= std::chrono::minutes(1) || evicted_logged_ == 0) {
    spdlog::warn(
        "retry cache at its bound ({:.1f} MiB): answers {:.1f} s old dropped before their ttl ({} s); a retry of one is applied "
        "again ({} dropped so far; --retry-cache-size raises the bound)",
        static_cast<double>(budget_) / (1 << 20), std::chrono::duration<double>(now_ - answered).count(), ttl_.count(), evicted_);
    logged_at_ = now_;
    evicted_logged_ = evicted_;
  }
}

void RetryCache::EnforceBudget() {
  // Dropping records frees memory a block at a time, when the oldest empties.
  while (bytes() > budget_ && Oldest() != nullptr) DropOldest(true);
}

void RetryCache::Append(const Key& key, Clock::time_point t, const msg::ClientEnvelope& reply) {
  const size_t length = reply.ByteSizeLong();
  const size_t need = kHeader + length;
  if (blocks_.empty() || blocks_.back().capacity - blocks_.back().used < need) {
    const auto capacity = static_cast<uint32_t>(std::max<size_t>(block_size_, need));
    blocks_.push_back(Block{std::make_unique_for_overwrite<char[]>(capacity), capacity, 0});
    block_bytes_ += capacity;
  }
  Block& b = blocks_.back();
  char* p = b.data.get() + b.used;
  Store(p + kClientAt, key.client_id);
  Store(p + kRequestAt, key.request_id);
  Store(p + kTimeAt, static_cast<int64_t>(t.time_since_epoch().count()));
  Store(p + kLengthAt, static_cast<uint32_t>(length));
  reply.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(p + kHeader));
  index_.insert_or_assign(key, ((first_block_ + blocks_.size() - 1) << kOffsetBits) | b.used);
  b.used += static_cast<uint32_t>(need);
  EnforceBudget();
}

void RetryCache::Expire(Clock::time_point now) {
  now_ = std::max(now_, now);
  while (const char* p = Oldest()) {
    const auto t = Clock::time_point(Clock::duration(Load<int64_t>(p + kTimeAt)));
    if (now - t <= ttl_) break;
    DropOldest(false);
  }
  EnforceBudget();
}

RetryCache::Lookup RetryCache::Begin(const Key& key, const std::string& route, Clock::time_point now,
                                     msg::ClientEnvelope* reply) {
  Expire(now);
  if (auto it = pending_.find(key); it != pending_.end()) {
    const size_t before = HeapOf(it->second);
    it->second.more.push_back(route);
    pending_heap_ += HeapOf(it->second) - before;
    return Lookup::kPending;
  }
  if (auto it = index_.find(key); it != index_.end()) {
    const char* p = At(it->second);
    if (!reply->ParseFromArray(p + kHeader, static_cast<int>(Load<uint32_t>(p + kLengthAt)))) reply->Clear();
    return Lookup::kDone;
  }
  auto it = pending_.try_emplace(key, Pending{now, route, {}}).first;
  pending_heap_ += HeapOf(it->second);
  EnforceBudget();
  return Lookup::kNew;
}

std::vector<std::string> RetryCache::Finish(const Key& key, const msg::ClientEnvelope& reply) {
  auto it = pending_.find(key);
  if (it == pending_.end()) {
    if (index_.contains(key)) Append(key, now_, reply);  // a second answer replaces the first
    return {};
  }
  Pending p = std::move(it->second);
  pending_heap_ -= HeapOf(p);
  pending_.erase(it);
  std::vector<std::string> routes;
  routes.reserve(1 + p.more.size());
  routes.push_back(std::move(p.route));
  for (auto& r : p.more) routes.push_back(std::move(r));
  // Timed from the request's arrival, as the ttl always was.
  Append(key, p.begun, reply);
  return routes;
}

void RetryCache::RecordDone(const Key& key, msg::ClientEnvelope reply, Clock::time_point now) {
  now_ = std::max(now_, now);
  // A pending one gets its answer from Finish.
  if (!pending_.contains(key)) Append(key, now, reply);
  Expire(now);
}

}  // namespace dfs::master
