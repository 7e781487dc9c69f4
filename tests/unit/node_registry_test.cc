#include "master/node_registry.h"

#include <gtest/gtest.h>

namespace dfs::master {
namespace {

using namespace std::chrono_literals;
using Clock = NodeRegistry::Clock;

msg::RegisterNodeRequest Reg(const std::string& id, uint64_t incarnation, const std::string& addr) {
  msg::RegisterNodeRequest r;
  r.set_node_id(id);
  r.set_incarnation(incarnation);
  r.set_address(addr);
  r.mutable_stats()->set_capacity(1000);
  return r;
}

msg::HeartbeatRequest Beat(const std::string& id, uint64_t incarnation, uint64_t used = 0) {
  msg::HeartbeatRequest h;
  h.set_node_id(id);
  h.set_incarnation(incarnation);
  h.mutable_stats()->set_used(used);
  return h;
}

TEST(NodeRegistry, ANodeWhoseDiskFailedIsAliveButNotPlaceable) {
  NodeRegistry r(5s);
  auto t0 = Clock::time_point{} + 1000s;
  r.Register(Reg("n1", 1, "h:1"), "route1", t0);
  r.Register(Reg("n2", 1, "h:2"), "route2", t0);
  auto failed = Beat("n1", 1);
  failed.mutable_stats()->set_disk_failed(true);
  failed.mutable_stats()->set_disk_error("write /d/chunks/x: Input/output error");
  EXPECT_TRUE(r.Heartbeat(failed, "route1", t0 + 1s));
  EXPECT_EQ(r.alive_count(), 2u);
  std::vector<std::string> placeable;
  r.ForEachPlaceable([&](const NodeRegistry::Node& n) { placeable.push_back(n.id); });
  EXPECT_EQ(placeable, std::vector<std::string>{"n2"});
  EXPECT_TRUE(r.Info(*r.Find("n1"), t0 + 1s).stats().disk_failed());
}

TEST(NodeRegistry, RegisterHeartbeatDieAndReturn) {
  NodeRegistry r(5s);
  auto t0 = Clock::time_point{} + 1000s;
  EXPECT_EQ(r.Register(Reg("n1", 1, "h:1"), "route1", t0), NodeRegistry::Change::kUp);
  EXPECT_EQ(r.Register(Reg("n1", 1, "h:1"), "route1", t0), NodeRegistry::Change::kNone);
  EXPECT_TRUE(r.Heartbeat(Beat("n1", 1, 42), "route2", t0 + 1s));
  EXPECT_EQ(r.Find("n1")->stats.used(), 42u);
  EXPECT_EQ(r.Find("n1")->route, "route2");
  EXPECT_TRUE(r.Sweep(t0 + 5s).empty());
  auto died = r.Sweep(t0 + 6s);
  ASSERT_EQ(died, std::vector<std::string>{"n1"});
  EXPECT_EQ(r.alive_count(), 0u);
  // A dead node's heartbeat is refused: it must register (and report) again.
  EXPECT_FALSE(r.Heartbeat(Beat("n1", 1), "route2", t0 + 7s));
  EXPECT_EQ(r.Register(Reg("n1", 1, "h:1"), "route3", t0 + 7s), NodeRegistry::Change::kUp);
  EXPECT_EQ(r.alive_count(), 1u);
}

TEST(NodeRegistry, NewIncarnationMustRegister) {
  NodeRegistry r(5s);
  auto t0 = Clock::time_point{} + 1000s;
  r.Register(Reg("n1", 1, "h:1"), "a", t0);
  EXPECT_FALSE(r.Heartbeat(Beat("n1", 2), "a", t0 + 1s));
  EXPECT_FALSE(r.Heartbeat(Beat("unknown", 1), "a", t0 + 1s));
  EXPECT_EQ(r.Register(Reg("n1", 2, "h:2"), "b", t0 + 1s), NodeRegistry::Change::kRestarted);
  EXPECT_EQ(r.Find("n1")->address, "h:2");
}

TEST(NodeRegistry, ListIsSortedAndShowsState) {
  NodeRegistry r(5s);
  auto t0 = Clock::time_point{} + 1000s;
  r.Register(Reg("b", 1, "h:2"), "x", t0);
  r.Register(Reg("a", 1, "h:1"), "y", t0 + 3s);
  r.Sweep(t0 + 5s);
  auto list = r.List(t0 + 5s);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id(), "a");
  EXPECT_EQ(list[0].state(), msg::NodeInfo::ALIVE);
  EXPECT_EQ(list[1].id(), "b");
  EXPECT_EQ(list[1].state(), msg::NodeInfo::DEAD);
  EXPECT_EQ(list[1].last_heartbeat_ms_ago(), 5000u);
  EXPECT_EQ(r.NextDeadline(), t0 + 8s);
}

}  // namespace
}  // namespace dfs::master
