#include "master/retry_cache.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

namespace dfs::master {
namespace {

using namespace std::chrono_literals;
using Clock = RetryCache::Clock;

// A compact mkdir answer, as the namespace service stores it.
msg::ClientEnvelope MkdirAnswer(const std::string& path) {
  msg::ClientEnvelope e;
  e.mutable_mkdir_response()->mutable_info()->set_path(path);
  e.mutable_mkdir_response()->mutable_info()->set_type(msg::FileInfo::DIRECTORY);
  return e;
}

// Begin + Finish: one answered mutation.
void Answer(RetryCache& c, RetryCache::Key key, const std::string& path, Clock::time_point now) {
  msg::ClientEnvelope unused;
  ASSERT_EQ(c.Begin(key, "route", now, &unused), RetryCache::Lookup::kNew);
  ASSERT_EQ(c.Finish(key, MkdirAnswer(path)), (std::vector<std::string>{"route"}));
}

TEST(RetryCache, RetryWhilePendingJoinsAndAfterIsAnsweredFromCache) {
  RetryCache c(120s);
  auto t0 = Clock::time_point{} + 1000s;
  msg::ClientEnvelope reply;
  EXPECT_EQ(c.Begin({1, 10}, "route-a", t0, &reply), RetryCache::Lookup::kNew);
  EXPECT_EQ(c.Begin({1, 10}, "route-b", t0, &reply), RetryCache::Lookup::kPending);
  EXPECT_EQ(c.Begin({2, 10}, "route-c", t0, &reply), RetryCache::Lookup::kNew);  // other client
  msg::ClientEnvelope answer;
  answer.mutable_mkdir_response()->mutable_info()->set_path("/a");
  auto routes = c.Finish({1, 10}, answer);
  EXPECT_EQ(routes, (std::vector<std::string>{"route-a", "route-b"}));
  EXPECT_EQ(c.Begin({1, 10}, "route-d", t0 + 1s, &reply), RetryCache::Lookup::kDone);
  EXPECT_EQ(reply.mkdir_response().info().path(), "/a");
}

TEST(RetryCache, OldAnswersExpireButPendingOnesStay) {
  RetryCache c(10s);
  auto t0 = Clock::time_point{} + 1000s;
  msg::ClientEnvelope reply;
  c.Begin({1, 1}, "r", t0, &reply);  // stays pending
  c.RecordDone({1, 2}, msg::ClientEnvelope(), t0);
  EXPECT_EQ(c.Begin({1, 3}, "r", t0 + 60s, &reply), RetryCache::Lookup::kNew);
  EXPECT_EQ(c.Begin({1, 1}, "r2", t0 + 60s, &reply), RetryCache::Lookup::kPending);
}

TEST(RetryCache, AnOldPendingEntryDoesNotHoldBackTheExpiryOfLaterAnswers) {
  RetryCache c(10s);
  auto t0 = Clock::time_point{} + 1000s;
  msg::ClientEnvelope reply;
  ASSERT_EQ(c.Begin({1, 1}, "r", t0, &reply), RetryCache::Lookup::kNew);  // stays pending
  for (uint64_t i = 2; i < 100; ++i) Answer(c, {1, i}, "/d", t0 + 1s);
  EXPECT_EQ(c.size(), 99u);
  c.Expire(t0 + 60s);
  EXPECT_EQ(c.size(), 1u);
  EXPECT_FALSE(c.Answered({1, 2}));
  EXPECT_EQ(c.Begin({1, 1}, "r2", t0 + 60s, &reply), RetryCache::Lookup::kPending);
  EXPECT_EQ(c.Finish({1, 1}, MkdirAnswer("/p")), (std::vector<std::string>{"r", "r2"}));
}

TEST(RetryCache, TheByteBoundIsRespectedAndEveryAnswerAccounted) {
  constexpr size_t kBudget = 256 << 10;
  RetryCache c(60s, kBudget);
  auto t0 = Clock::time_point{} + 1000s;
  EXPECT_LE(c.bytes(), 1024u);  // empty: nothing allocated yet
  size_t peak = 0;
  for (uint64_t i = 0; i < 20'000; ++i) {
    Answer(c, {7, i}, fmt::format("/some/directory/with/a/longish/name/d{}", i), t0);
    ASSERT_LE(c.bytes(), kBudget) << "after answer " << i;
    peak = std::max(peak, c.bytes());
    // What is held is paid for: each answer's record (28 B + ~45 B of
    // answer) and its index bucket (25 B) count in bytes().
    ASSERT_GE(c.bytes(), c.size() * (28 + 40 + 25));
  }
  EXPECT_GT(peak, kBudget * 3 / 4);  // the budget is used, not a fraction of it
  EXPECT_GT(c.evicted(), 10'000u);
  EXPECT_LT(c.size(), 4'000u);
  EXPECT_GT(c.size(), 1'000u);
  EXPECT_EQ(c.evicted() + c.size(), 20'000u);
}

TEST(RetryCache, EvictionDropsTheOldestDoneAnswersFirst) {
  RetryCache c(60s, 64 << 10);
  auto t0 = Clock::time_point{} + 1000s;
  constexpr uint64_t kN = 5'000;
  for (uint64_t i = 0; i < kN; ++i) Answer(c, {3, i}, fmt::format("/d{}", i), t0 + std::chrono::milliseconds(i));
  ASSERT_GT(c.evicted(), 0u);
  // What is left is a suffix: every answer after the oldest kept one, none before.
  uint64_t first_kept = kN;
  for (uint64_t i = 0; i < kN; ++i) {
    if (c.Answered({3, i})) {
      first_kept = i;
      break;
    }
  }
  ASSERT_LT(first_kept, kN);
  EXPECT_GT(first_kept, 0u);
  for (uint64_t i = first_kept; i < kN; ++i) ASSERT_TRUE(c.Answered({3, i})) << i;
  EXPECT_EQ(c.size(), kN - first_kept);
  EXPECT_EQ(c.evicted(), first_kept);
  // The order is the order of the answers, not of the requests: what is
  // held is always a suffix of the answers' order.
  RetryCache d(60s, 64 << 10);
  msg::ClientEnvelope unused;
  std::vector<uint64_t> order;
  auto held_is_a_suffix = [&] {
    bool held_before = false;
    for (uint64_t id : order) {
      const bool held = d.Answered({4, id});
      if (held_before && !held) return false;
      held_before = held_before || held;
    }
    return true;
  };
  ASSERT_EQ(d.Begin({4, 0}, "slow", t0, &unused), RetryCache::Lookup::kNew);
  for (uint64_t i = 1; i < 100; ++i) {
    Answer(d, {4, i}, "/d", t0);
    order.push_back(i);
  }
  d.Finish({4, 0}, MkdirAnswer("/slow"));
  order.push_back(0);
  for (uint64_t next = 100; d.Answered({4, 0}); ++next) {
    Answer(d, {4, next}, "/d", t0);
    order.push_back(next);
    ASSERT_TRUE(held_is_a_suffix()) << "after " << next;
  }
  for (uint64_t i = 1; i < 100; ++i) EXPECT_FALSE(d.Answered({4, i})) << i;
  EXPECT_TRUE(d.Answered({4, order.back()}));
}

TEST(RetryCache, PendingEntriesSurviveEviction) {
  constexpr size_t kBudget = 64 << 10;
  RetryCache c(60s, kBudget);
  auto t0 = Clock::time_point{} + 1000s;
  msg::ClientEnvelope reply;
  for (uint64_t i = 0; i < 10; ++i) ASSERT_EQ(c.Begin({9, i}, "first", t0, &reply), RetryCache::Lookup::kNew);
  for (uint64_t i = 100; i < 10'000; ++i) Answer(c, {8, i}, fmt::format("/d{}", i), t0 + 1s);
  ASSERT_GT(c.evicted(), 9'000u);
  EXPECT_LE(c.bytes(), kBudget);
  EXPECT_EQ(c.pending(), 10u);
  for (uint64_t i = 0; i < 10; ++i) {
    EXPECT_EQ(c.Begin({9, i}, "retry", t0 + 2s, &reply), RetryCache::Lookup::kPending);
    EXPECT_EQ(c.Finish({9, i}, MkdirAnswer(fmt::format("/p{}", i))), (std::vector<std::string>{"first", "retry"}));
    EXPECT_EQ(c.Begin({9, i}, "again", t0 + 3s, &reply), RetryCache::Lookup::kDone);
    EXPECT_EQ(reply.mkdir_response().info().path(), fmt::format("/p{}", i));
  }
  // Not even past the ttl: a requester still owed an answer gets it.
  ASSERT_EQ(c.Begin({9, 99}, "late", t0, &reply), RetryCache::Lookup::kNew);
  c.Expire(t0 + 3600s);
  EXPECT_EQ(c.Begin({9, 99}, "later", t0 + 3600s, &reply), RetryCache::Lookup::kPending);
  EXPECT_EQ(c.size(), 1u);
}

TEST(RetryCache, ARetryWithinTheBoundGetsItsFirstAnswer) {
  RetryCache c(60s, 1 << 20);
  auto t0 = Clock::time_point{} + 1000s;
  constexpr uint64_t kN = 5'000;  // ~100 B each: half the budget
  for (uint64_t i = 0; i < kN; ++i) Answer(c, {5, i}, fmt::format("/dir/f{}", i), t0);
  // Retried answers replayed from the journal share the bound.
  for (uint64_t i = kN; i < kN + 100; ++i) c.RecordDone({5, i}, MkdirAnswer(fmt::format("/dir/f{}", i)), t0);
  EXPECT_EQ(c.evicted(), 0u);
  EXPECT_EQ(c.size(), kN + 100);
  msg::ClientEnvelope reply;
  for (uint64_t i = 0; i < kN + 100; ++i) {
    ASSERT_EQ(c.Begin({5, i}, "retry", t0 + 30s, &reply), RetryCache::Lookup::kDone) << i;
    ASSERT_EQ(reply.mkdir_response().info().path(), fmt::format("/dir/f{}", i));
  }
  // A later answer to the same key replaces the first.
  c.RecordDone({5, 0}, MkdirAnswer("/replaced"), t0 + 30s);
  ASSERT_EQ(c.Begin({5, 0}, "retry", t0 + 30s, &reply), RetryCache::Lookup::kDone);
  EXPECT_EQ(reply.mkdir_response().info().path(), "/replaced");
  EXPECT_EQ(c.size(), kN + 100);
}

// What master-scale's files cost: a create, a chunk allocation (three
// nodes) and a completion per file, each answer as the service stores it.
TEST(RetryCache, ARealisticAnswerCostsAboutAHundredBytes) {
  RetryCache c;
  auto t0 = Clock::time_point{} + 1000s;
  constexpr uint64_t kFiles = 100'000;
  for (uint64_t f = 0; f < kFiles; ++f) {
    msg::ClientEnvelope create;
    auto* cr = create.mutable_create_file_response();
    cr->set_lease_id(1'000'000 + f);
    cr->set_lease_ms(30'000);
    cr->set_replication(3);
    cr->set_chunk_size(64 << 20);
    c.RecordDone({1, 3 * f}, create, t0);
    msg::ClientEnvelope allocate;
    auto* a = allocate.mutable_allocate_chunk_response();
    a->set_chunk_id(3'000'000 + f);
    a->set_version(1);
    for (uint64_t n = 0; n < 3; ++n) {
      auto* node = a->add_pipeline();
      node->set_id(fmt::format("sim-{:05}", (f + n) % 1000));
      node->set_address(fmt::format("127.0.0.1:{}", 20000 + (f + n) % 1000));
    }
    c.RecordDone({1, 3 * f + 1}, allocate, t0);
    c.RecordDone({1, 3 * f + 2}, MkdirAnswer(fmt::format("/f/d{}/f{}", f / 1000, f % 1000)), t0);
  }
  ASSERT_EQ(c.size(), 3 * kFiles);
  ASSERT_EQ(c.evicted(), 0u);
  const double per_answer = static_cast<double>(c.bytes()) / static_cast<double>(c.size());
  std::printf("%.1f B per answer, %.1f MiB for %zu answers\n", per_answer, c.bytes() / 1048576.0, c.size());
  EXPECT_LT(per_answer, 130);
}

TEST(RetryCache, AnAnswerLargerThanABlockIsKept) {
  RetryCache c(60s, 1 << 20);
  auto t0 = Clock::time_point{} + 1000s;
  const std::string big(100'000, 'x');
  Answer(c, {1, 1}, big, t0);
  Answer(c, {1, 2}, "/small", t0);
  msg::ClientEnvelope reply;
  ASSERT_EQ(c.Begin({1, 1}, "retry", t0, &reply), RetryCache::Lookup::kDone);
  EXPECT_EQ(reply.mkdir_response().info().path(), big);
  ASSERT_EQ(c.Begin({1, 2}, "retry", t0, &reply), RetryCache::Lookup::kDone);
  EXPECT_EQ(reply.mkdir_response().info().path(), "/small");
  EXPECT_LE(c.bytes(), c.byte_budget());
  // Larger than the whole budget: dropped at once, the bound holds.
  const std::string huge(2 << 20, 'y');
  Answer(c, {1, 3}, huge, t0);
  EXPECT_FALSE(c.Answered({1, 3}));
  EXPECT_LE(c.bytes(), c.byte_budget());
}

}  // namespace
}  // namespace dfs::master
