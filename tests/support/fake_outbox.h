// An Outbox that keeps what handlers send, for unit tests that drive a
// server's handlers without ZeroMQ. E is the envelope of the port it stands
// for; anything else sent to it fails the test.
#pragma once

#include <deque>
#include <optional>

#include <gtest/gtest.h>

#include "bus/outbox.h"

namespace dfs::test {

template <bus::Envelope E>
class FakeOutbox final : public bus::Outbox {
 public:
  Status Post(std::string_view route, const google::protobuf::MessageLite& envelope,
              std::vector<bus::Frame> payload) override {
    const auto* typed = dynamic_cast<const E*>(&envelope);
    EXPECT_NE(typed, nullptr) << "a " << envelope.GetTypeName() << " sent where only "
                              << E::default_instance().GetTypeName() << " belongs";
    if (typed == nullptr) return Status::ProtocolError("wrong envelope type");
    bus::Message<E> m;
    m.route = std::string(route);
    m.envelope = *typed;
    m.payload = std::move(payload);
    sent_.push_back(std::move(m));
    return Status::OK();
  }
  // The oldest message not taken yet.
  std::optional<bus::Message<E>> Take() {
    if (sent_.empty()) return std::nullopt;
    bus::Message<E> m = std::move(sent_.front());
    sent_.pop_front();
    return m;
  }
  size_t size() const { return sent_.size(); }

 private:
  std::deque<bus::Message<E>> sent_;
};

}  // namespace dfs::test
