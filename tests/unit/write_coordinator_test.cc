// The master's write path driven through its dispatcher with fake outboxes:
// leases, placement, the three-way check at completion, parked completions,
// retries, and lease expiry, with a real journal in a temporary folder and no
// sockets.
#include "master/master_service.h"

#include <poll.h>

#include <set>

#include <gtest/gtest.h>

#include "bus/socket.h"
#include "master_service_fixture.h"

namespace dfs::master {
namespace {

using namespace std::chrono_literals;
using WriteCoordinatorTest = MasterServiceTest;

TEST_F(WriteCoordinatorTest, CreatePlacesTheFirstChunkOnDistinctLiveNodes) {
  auto lease = Create("/a", 1);
  EXPECT_NE(lease.lease_id(), 0u);
  EXPECT_EQ(lease.replication(), 3u);
  ASSERT_EQ(lease.first_chunk().pipeline_size(), 3);
  std::set<std::string> ids;
  for (const auto& n : lease.first_chunk().pipeline()) ids.insert(n.id());
  EXPECT_EQ(ids.size(), 3u);
  // The path is held: a second writer is told so.
  msg::ClientEnvelope e;
  e.mutable_create_file_request()->set_path("/a");
  Client(e, 2);
  msg::ClientEnvelope busy = Answer();
  ASSERT_TRUE(busy.has_error());
  EXPECT_EQ(busy.error().code(), static_cast<int>(Code::kBusy));
  EXPECT_NE(busy.error().message().find("being written"), std::string::npos);
}

TEST_F(WriteCoordinatorTest, ReplicationOverTheLimitIsRefused) {
  msg::ClientEnvelope e;
  e.mutable_create_file_request()->set_path("/r");
  e.mutable_create_file_request()->set_replication(17);
  Client(e, 1);
  msg::ClientEnvelope a = Answer();
  ASSERT_TRUE(a.has_error());
  EXPECT_NE(a.error().message().find("replication 17 is out of range"), std::string::npos) << a.error().message();
}

TEST_F(WriteCoordinatorTest, CompletionWaitsForEveryReplicaThenInstalls) {
  auto lease = Create("/f", 1);
  const uint64_t chunk = lease.first_chunk().chunk_id();
  Client(Complete(lease, 0xabcd, 100), 2);
  // Parked: no replica has reported yet.
  EXPECT_EQ(clients_.size(), 0u);
  EXPECT_FALSE(Exists("/f"));
  Report(lease.first_chunk().pipeline(0).id(), chunk, 0xabcd, 100);
  Report(lease.first_chunk().pipeline(1).id(), chunk, 0xabcd, 100);
  EXPECT_EQ(clients_.size(), 0u);
  Report(lease.first_chunk().pipeline(2).id(), chunk, 0xabcd, 100);
  msg::ClientEnvelope done = Answer();
  ASSERT_FALSE(done.has_error()) << done.error().message();
  EXPECT_EQ(done.complete_file_response().info().path(), "/f");
  EXPECT_EQ(done.complete_file_response().info().size(), 100u);
  EXPECT_TRUE(Exists("/f"));
  // Incremental reports that need no answer get none.
  EXPECT_EQ(nodes_.size(), 0u);
}

TEST_F(WriteCoordinatorTest, ARetriedCompletionGetsTheFirstAnswer) {
  auto lease = Create("/f", 1);
  for (const auto& n : lease.first_chunk().pipeline()) Report(n.id(), lease.first_chunk().chunk_id(), 7, 10);
  Client(Complete(lease, 7, 10), 2);
  msg::ClientEnvelope first = Answer();
  ASSERT_FALSE(first.has_error()) << first.error().message();
  Client(Complete(lease, 7, 10), 2);  // the same request id: a retry
  msg::ClientEnvelope again = Answer();
  ASSERT_FALSE(again.has_error()) << again.error().message();
  EXPECT_EQ(again.complete_file_response().info().path(), "/f");
  EXPECT_EQ(again.request_id(), 2u);
  // A new request on the spent lease is refused.
  Client(Complete(lease, 7, 10), 3);
  msg::ClientEnvelope late = Answer();
  ASSERT_TRUE(late.has_error());
  EXPECT_EQ(late.error().code(), static_cast<int>(Code::kNotFound));
}

TEST_F(WriteCoordinatorTest, AReplicaThatStoredOtherBytesFailsTheWriteAndFreesThePath) {
  auto lease = Create("/bad", 1);
  const uint64_t chunk = lease.first_chunk().chunk_id();
  Report(lease.first_chunk().pipeline(0).id(), chunk, 1, 10);
  Report(lease.first_chunk().pipeline(1).id(), chunk, 2, 10);  // disagrees with the client
  Report(lease.first_chunk().pipeline(2).id(), chunk, 1, 10);
  Client(Complete(lease, 1, 10), 2);
  msg::ClientEnvelope a = Answer();
  ASSERT_TRUE(a.has_error());
  EXPECT_EQ(a.error().code(), static_cast<int>(Code::kCorruption));
  EXPECT_FALSE(Exists("/bad"));
  Create("/bad", 3);  // the lease is gone: the path can be written again
}

TEST_F(WriteCoordinatorTest, AParkedCompletionGivesUpAtItsDeadline) {
  auto lease = Create("/slow", 1);
  Report(lease.first_chunk().pipeline(0).id(), lease.first_chunk().chunk_id(), 5, 10);
  Client(Complete(lease, 5, 10), 2);
  EXPECT_EQ(clients_.size(), 0u);
  now_ += 3s;  // past the 2.5 s report wait
  service_->Tick(now_);
  msg::ClientEnvelope a = Answer();
  ASSERT_TRUE(a.has_error());
  EXPECT_EQ(a.error().code(), static_cast<int>(Code::kUnavailable));
  EXPECT_NE(a.error().message().find("in time"), std::string::npos) << a.error().message();
  EXPECT_FALSE(Exists("/slow"));
}

TEST_F(WriteCoordinatorTest, AnExpiredLeaseFreesThePathUnlessRenewed) {
  auto lease = Create("/l", 1);
  now_ += 20s;
  msg::ClientEnvelope renew;
  renew.mutable_renew_lease_request()->add_lease_ids(lease.lease_id());
  Client(renew, 2);
  msg::ClientEnvelope r = Answer();
  ASSERT_FALSE(r.has_error());
  EXPECT_EQ(r.renew_lease_response().expired_size(), 0);
  now_ += 20s;  // 40 s after the create, 20 s after the renewal
  service_->Tick(now_);
  msg::ClientEnvelope rename;
  rename.mutable_rename_request()->set_source("/l");
  rename.mutable_rename_request()->set_destination("/m");
  Client(rename, 3);
  msg::ClientEnvelope busy = Answer();
  ASSERT_TRUE(busy.has_error());
  EXPECT_EQ(busy.error().code(), static_cast<int>(Code::kBusy));
  now_ += 11s;
  service_->Tick(now_);
  Create("/l", 4);  // lapsed: another writer may take it
}

// Each port decodes its own envelope: a node's chunk report sent to the
// client port parses as a client envelope with no body it knows, and is
// refused as such, never handled.
TEST_F(WriteCoordinatorTest, APortServesOnlyItsOwnMessages) {
  msg::NodeEnvelope report;
  report.set_protocol_major(bus::kProtocolMajor);
  report.set_request_id(9);
  report.mutable_chunk_report_request()->set_node_id("n1");
  bus::RawMessage raw;
  raw.route = "client-route";
  raw.header = bus::Frame::Copy(report.SerializeAsString());
  ClientMessage m = bus::Decode<msg::ClientEnvelope>(std::move(raw));
  ASSERT_TRUE(m.defect.ok()) << m.defect.ToString();
  EXPECT_EQ(m.envelope.body_case(), msg::ClientEnvelope::BODY_NOT_SET);
  service_->dispatcher().Dispatch(m, clients_, now_);
  auto reply = clients_.Take();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->envelope.request_id(), 9u);
  ASSERT_TRUE(reply->envelope.has_error());
  EXPECT_EQ(reply->envelope.error().code(), static_cast<int>(Code::kProtocolError));
  EXPECT_NE(reply->envelope.error().message().find("client port got a message it does not know"), std::string::npos)
      << reply->envelope.error().message();
  EXPECT_EQ(nodes_.size(), 0u);
}

}  // namespace
}  // namespace dfs::master
