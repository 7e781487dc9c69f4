// An Outbox that keeps what handlers send, for unit tests that drive a
// server's handlers without ZeroMQ.
#pragma once

#include <deque>
#include <optional>

#include "bus/outbox.h"

namespace dfs::test {

class FakeOutbox final : public bus::Outbox {
 public:
  Status Send(bus::Message message) override {
    sent_.push_back(std::move(message));
    return Status::OK();
  }
  // The oldest message not taken yet.
  std::optional<bus::Message> Take() {
    if (sent_.empty()) return std::nullopt;
    bus::Message m = std::move(sent_.front());
    sent_.pop_front();
    return m;
  }
  size_t size() const { return sent_.size(); }

 private:
  std::deque<bus::Message> sent_;
};

}  // namespace dfs::test
