// The node's credit pool and bytes-per-second meter.
#include <gtest/gtest.h>

#include "filenode/flow_accounting.h"

namespace dfs::filenode {
namespace {

using namespace std::chrono_literals;

TEST(CreditPool, NeverGrantsMoreThanItHas) {
  CreditPool pool(8 << 20);
  EXPECT_TRUE(pool.Reserve(6 << 20));
  EXPECT_FALSE(pool.Reserve(3 << 20));
  EXPECT_EQ(pool.in_use(), 6u << 20);
  EXPECT_TRUE(pool.Reserve(2 << 20));
  EXPECT_EQ(pool.left(), 0u);
  pool.Release(6 << 20);
  EXPECT_EQ(pool.left(), 6u << 20);
  pool.Release(100 << 20);  // more than taken: clamps, never wraps
  EXPECT_EQ(pool.in_use(), 0u);
}

TEST(RateMeter, AveragesWholeSecondsOverTheWindow) {
  RateMeter m;
  RateMeter::Clock::time_point t0{std::chrono::seconds(1000)};
  for (int s = 0; s < 5; ++s) m.Add(100, t0 + std::chrono::seconds(s));
  // At t0+5 s the five full seconds 0..4 hold 100 each.
  EXPECT_EQ(m.PerSecond(t0 + 5s), 100u);
  m.Add(1'000'000, t0 + 5s + 500ms);  // the current second is not counted yet
  EXPECT_EQ(m.PerSecond(t0 + 5s + 900ms), 100u);
  EXPECT_EQ(m.PerSecond(t0 + 6s), (400 + 1'000'000) / 5u);
  // Long silence empties the window.
  EXPECT_EQ(m.PerSecond(t0 + 60s), 0u);
}

}  // namespace
}  // namespace dfs::filenode
