#include "filenode/scrubber.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "common/units.h"

namespace dfs::filenode {

Scrubber::Scrubber(ChunkStore& store, std::string node_id, Config config,
                   std::function<void(const ChunkMeta&)> corrupt)
    : store_(store), node_id_(std::move(node_id)), config_(config), corrupt_(std::move(corrupt)) {
  if (config_.step == 0) config_.step = 256 << 10;
  // Start-up, recovery and the first writes go first.
  free_at_ = Clock::now() + std::min<Clock::duration>(config_.interval, std::chrono::minutes(1));
}

void Scrubber::StartPass(Clock::time_point now) {
  todo_.clear();
  for (const auto& c : store_.List()) {
    if (!c.corrupt) todo_.push_back(c.meta);  // a known bad one waits for its delete
  }
  // Oldest chunk ids first: a stable order, so a restarted node goes over
  // the same ground in the same order.
  std::sort(todo_.begin(), todo_.end(), [](const ChunkMeta& a, const ChunkMeta& b) { return a.key < b.key; });
  next_ = 0;
  offset_ = 0;
  pass_started_ = now;
  pass_bytes_ = 0;
  pass_corrupt_ = 0;
}

uint64_t Scrubber::Step() {
  const ChunkMeta& c = todo_[next_];
  const uint64_t length = std::min<uint64_t>(config_.step, c.size - offset_);
  buffer_.resize(length);
  uint32_t crc = 0;
  Status s = length == 0 ? Status::OK() : store_.Read(c.key, offset_, std::span<std::byte>(buffer_.data(), length), &crc);
  offset_ += length;
  bool done = offset_ >= c.size;
  if (!s.ok()) {
    done = true;
    if (s.code() == Code::kCorruption) {
      spdlog::error("node={} scrub: {}", node_id_, s.message());
      ++stats_.corrupt;
      ++pass_corrupt_;
      if (store_.MarkCorrupt(c.key)) corrupt_(c);
    }
    // NotFound: deleted since the pass began. Other errors: the read path
    // reports the disk's failure on its own.
  } else if (done) {
    ++stats_.chunks;
  }
  if (done) {
    ++next_;
    offset_ = 0;
  }
  stats_.bytes += length;
  pass_bytes_ += length;
  return length;
}

void Scrubber::Service(Clock::time_point now) {
  if (config_.rate == 0) return;
  // At most a few steps a turn, so the poll loop is never held for long.
  for (int steps = 0; steps < 8 && now >= free_at_; ++steps) {
    if (next_ >= todo_.size()) {
      if (!todo_.empty()) {
        ++stats_.passes;
        const auto took = now - pass_started_;
        // Short passes (a small store, a test's fast pace) would flood the log.
        const auto level = pass_corrupt_ > 0 || took >= std::chrono::minutes(1) ? spdlog::level::info
                                                                                 : spdlog::level::debug;
        spdlog::log(level, "node={} scrub pass {} done: {} chunks, {} in {:.1f}s, {} corrupt", node_id_,
                    stats_.passes, todo_.size(), FormatSize(pass_bytes_),
                    std::chrono::duration<double>(took).count(), pass_corrupt_);
        todo_.clear();
        const auto next = pass_started_ + config_.interval;
        if (now < next) {
          free_at_ = next;
          return;
        }
      }
      StartPass(now);
      if (todo_.empty()) {
        free_at_ = now + std::min<Clock::duration>(config_.interval, std::chrono::seconds(10));  // nothing stored yet
        return;
      }
    }
    const uint64_t bytes = Step();
    // At least a microsecond a step, so an empty chunk cannot spin.
    const auto cost = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
        static_cast<double>(std::max<uint64_t>(bytes, 1)) / static_cast<double>(config_.rate)));
    free_at_ = std::max(free_at_, now) + std::max<Clock::duration>(cost, std::chrono::microseconds(1));
  }
}

Scrubber::Clock::time_point Scrubber::NextWake(Clock::time_point now) const {
  if (config_.rate == 0) return now + std::chrono::hours(1);
  return std::max(now, free_at_);
}

}  // namespace dfs::filenode
