#include "bus/liveness.h"

#include <gtest/gtest.h>

namespace dfs::bus {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(Liveness, PeerDiesAfterSilenceAndComesBackOnABeat) {
  LivenessTracker<std::string> t(5s);
  auto t0 = Clock::time_point{} + 100s;
  EXPECT_TRUE(t.Beat("a", t0));   // new
  EXPECT_FALSE(t.Beat("a", t0 + 1s));
  EXPECT_TRUE(t.Sweep(t0 + 5s).empty());
  EXPECT_EQ(t.NextDeadline(), t0 + 6s);
  auto died = t.Sweep(t0 + 6s);
  ASSERT_EQ(died.size(), 1u);
  EXPECT_EQ(died[0], "a");
  EXPECT_FALSE(t.IsAlive("a"));
  EXPECT_TRUE(t.Sweep(t0 + 7s).empty());  // reported once
  EXPECT_FALSE(t.NextDeadline());
  EXPECT_TRUE(t.Beat("a", t0 + 8s));      // back
  EXPECT_TRUE(t.IsAlive("a"));
}

}  // namespace
}  // namespace dfs::bus
