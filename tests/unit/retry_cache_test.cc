#include "master/retry_cache.h"

#include <gtest/gtest.h>

namespace dfs::master {
namespace {

using namespace std::chrono_literals;
using Clock = RetryCache::Clock;

TEST(RetryCache, RetryWhilePendingJoinsAndAfterIsAnsweredFromCache) {
  RetryCache c(120s);
  auto t0 = Clock::time_point{} + 1000s;
  msg::Envelope reply;
  EXPECT_EQ(c.Begin({1, 10}, "route-a", t0, &reply), RetryCache::Lookup::kNew);
  EXPECT_EQ(c.Begin({1, 10}, "route-b", t0, &reply), RetryCache::Lookup::kPending);
  EXPECT_EQ(c.Begin({2, 10}, "route-c", t0, &reply), RetryCache::Lookup::kNew);  // other client
  msg::Envelope answer;
  answer.mutable_mkdir_response()->mutable_info()->set_path("/a");
  auto routes = c.Finish({1, 10}, answer);
  EXPECT_EQ(routes, (std::vector<std::string>{"route-a", "route-b"}));
  EXPECT_EQ(c.Begin({1, 10}, "route-d", t0 + 1s, &reply), RetryCache::Lookup::kDone);
  EXPECT_EQ(reply.mkdir_response().info().path(), "/a");
}

TEST(RetryCache, OldAnswersExpireButPendingOnesStay) {
  RetryCache c(10s);
  auto t0 = Clock::time_point{} + 1000s;
  msg::Envelope reply;
  c.Begin({1, 1}, "r", t0, &reply);  // stays pending
  c.RecordDone({1, 2}, msg::Envelope(), t0);
  EXPECT_EQ(c.Begin({1, 3}, "r", t0 + 60s, &reply), RetryCache::Lookup::kNew);
  EXPECT_EQ(c.Begin({1, 1}, "r2", t0 + 60s, &reply), RetryCache::Lookup::kPending);
}

}  // namespace
}  // namespace dfs::master
