// Liveness of heartbeating peers (zguide's "paranoid pirate"): any message
// from a peer counts as a beat; a peer silent for `dead_after` is dead until
// it beats again. Pure bookkeeping, no sockets, driven by the caller's clock
// so tests need no sleeps.
#pragma once

#include <algorithm>
#include <chrono>
#include <optional>
#include <unordered_map>
#include <vector>

namespace dfs::bus {

template <typename Key, typename Clock = std::chrono::steady_clock>
class LivenessTracker {
 public:
  using TimePoint = typename Clock::time_point;
  using Duration = typename Clock::duration;

  explicit LivenessTracker(Duration dead_after) : dead_after_(dead_after) {}

  // Returns true when the peer was unknown or dead: it has (re)appeared.
  bool Beat(const Key& key, TimePoint now) {
    auto [it, inserted] = peers_.try_emplace(key, Peer{now, true});
    bool came_alive = inserted || !it->second.alive;
    it->second = Peer{now, true};
    return came_alive;
  }

  // Marks peers silent past dead_after as dead; returns those that just died.
  std::vector<Key> Sweep(TimePoint now) {
    std::vector<Key> died;
    for (auto& [key, peer] : peers_) {
      if (peer.alive && now - peer.last_beat >= dead_after_) {
        peer.alive = false;
        died.push_back(key);
      }
    }
    return died;
  }

  bool IsAlive(const Key& key) const {
    auto it = peers_.find(key);
    return it != peers_.end() && it->second.alive;
  }
  std::optional<TimePoint> LastBeat(const Key& key) const {
    auto it = peers_.find(key);
    if (it == peers_.end()) return std::nullopt;
    return it->second.last_beat;
  }
  // When the next live peer would die if it stays silent (the poll timeout).
  std::optional<TimePoint> NextDeadline() const {
    std::optional<TimePoint> next;
    for (const auto& [key, peer] : peers_) {
      if (!peer.alive) continue;
      TimePoint d = peer.last_beat + dead_after_;
      if (!next || d < *next) next = d;
    }
    return next;
  }
  void Forget(const Key& key) { peers_.erase(key); }
  Duration dead_after() const { return dead_after_; }

 private:
  struct Peer {
    TimePoint last_beat;
    bool alive;
  };
  Duration dead_after_;
  std::unordered_map<Key, Peer> peers_;
};

}  // namespace dfs::bus
