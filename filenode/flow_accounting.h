// Small bookkeeping for the data path: the credit pool every write stream
// draws from, and recent bytes per second for heartbeats. Poll thread only.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

namespace dfs::filenode {

// Bytes the node has promised to buffer for its write streams: a stream
// holds credit_frames x frame_size from open until close or abort. Its use
// is in every heartbeat, so placement can steer away from a busy node.
class CreditPool {
 public:
  explicit CreditPool(uint64_t size) : size_(size) {}
  uint64_t size() const { return size_; }
  uint64_t in_use() const { return in_use_; }
  uint64_t left() const { return size_ - in_use_; }
  // False (and nothing taken) when fewer than `bytes` are left.
  bool Reserve(uint64_t bytes) {
    if (bytes > left()) return false;
    in_use_ += bytes;
    return true;
  }
  void Release(uint64_t bytes) { in_use_ -= bytes <= in_use_ ? bytes : in_use_; }

 private:
  uint64_t size_;
  uint64_t in_use_ = 0;
};

// Bytes per second averaged over the last few whole seconds.
class RateMeter {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr int kWindowSeconds = 5;

  void Add(uint64_t bytes, Clock::time_point now) {
    int64_t s = Advance(now);
    buckets_[static_cast<size_t>(s % kSlots)] += bytes;
  }
  // The current second is still filling, so it is left out.
  uint64_t PerSecond(Clock::time_point now) {
    int64_t s = Advance(now);
    uint64_t sum = 0;
    for (int64_t i = s - kWindowSeconds; i < s; ++i) {
      if (i >= 0) sum += buckets_[static_cast<size_t>(i % kSlots)];
    }
    return sum / kWindowSeconds;
  }

 private:
  static constexpr int64_t kSlots = kWindowSeconds + 1;
  int64_t Advance(Clock::time_point now) {
    int64_t s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    if (current_ < 0 || s - current_ >= kSlots) {
      buckets_.fill(0);
    } else {
      for (int64_t i = current_ + 1; i <= s; ++i) buckets_[static_cast<size_t>(i % kSlots)] = 0;
    }
    if (s > current_) current_ = s;
    return current_;
  }

  std::array<uint64_t, kSlots> buckets_{};
  int64_t current_ = -1;
};

}  // namespace dfs::filenode
