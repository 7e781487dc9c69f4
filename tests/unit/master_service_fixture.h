// A MasterService with a real journal in a temporary folder, three
// registered nodes and fake outboxes: the master's handlers driven as the
// server would drive them, with no sockets (write_coordinator_test.cc,
// repairer_test.cc).
#pragma once

#include <poll.h>

#include <chrono>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "file_test_util.h"
#include "master/master_service.h"
#include "tests/support/fake_outbox.h"

namespace dfs::master {

using namespace std::chrono_literals;
using Clock = MasterService::Clock;

constexpr uint64_t kClient = 77;

class MasterServiceTest : public ::testing::Test {
 protected:
  // Tests that need other options set them in their own SetUp, then call this.
  void SetUp() override {
    options_.dir = test::TestDir("master-service");
    options_.lease_time = 30s;
    service_ = std::make_unique<MasterService>(options_, registry_, clients_);
    ASSERT_TRUE(service_->Open().ok());
    for (int i = 1; i <= 3; ++i) AddNode("n" + std::to_string(i));
  }
  void TearDown() override {
    if (service_) {
      EXPECT_TRUE(service_->Close().ok());
    }
  }

  // Registers node `id` (again, to change what it has free).
  void AddNode(const std::string& id, uint64_t available = 100ull << 30) {
    msg::RegisterNodeRequest r;
    r.set_node_id(id);
    r.set_incarnation(1);
    r.set_address("tcp://127.0.0.1:1/" + id);
    r.mutable_stats()->set_capacity(100ull << 30);
    r.mutable_stats()->set_available(available);
    r.mutable_stats()->set_credit_pool(256 << 20);
    registry_.Register(r, "route-" + id, now_);
  }

  // Sends `body` from the client with request id `id` (a retry reuses one).
  void Client(msg::ClientEnvelope body, uint64_t id) {
    ClientMessage m;
    m.route = "client-route";
    m.envelope = std::move(body);
    m.envelope.set_client_id(kClient);
    m.envelope.set_request_id(id);
    m.envelope.set_user("tester");
    service_->dispatcher().Dispatch(m, clients_, now_);
  }

  // Node `node` reports `chunk` stored with `crc` and `size`.
  void Report(const std::string& node, uint64_t chunk, uint32_t crc, uint64_t size) {
    NodeMessage m;
    m.route = "route-" + node;
    auto* r = m.envelope.mutable_chunk_report_request();
    r->set_node_id(node);
    r->set_incarnation(1);
    auto* s = r->add_stored();
    s->set_chunk_id(chunk);
    s->set_version(kChunkVersion);
    s->set_size(size);
    s->set_crc32c(crc);
    service_->dispatcher().Dispatch(m, nodes_, now_);
  }

  // The next answer to the client, once the journal has made it durable.
  msg::ClientEnvelope Answer() {
    for (int i = 0; i < 100 && clients_.size() == 0; ++i) {
      pollfd p{service_->completion_fd(), POLLIN, 0};
      ::poll(&p, 1, 50);
      EXPECT_TRUE(service_->OnCompletions().ok());
    }
    auto m = clients_.Take();
    if (!m) {
      ADD_FAILURE() << "no answer to the client";
      return {};
    }
    EXPECT_EQ(m->route, "client-route");
    return m->envelope;
  }

  msg::CreateFileResponse Create(const std::string& path, uint64_t id, uint32_t replication = 3) {
    msg::ClientEnvelope e;
    auto* c = e.mutable_create_file_request();
    c->set_path(path);
    c->set_replication(replication);
    c->set_allocate_first(true);
    Client(e, id);
    msg::ClientEnvelope a = Answer();
    EXPECT_FALSE(a.has_error()) << a.error().message();
    return a.create_file_response();
  }

  msg::ClientEnvelope Complete(const msg::CreateFileResponse& lease, uint32_t crc, uint64_t size) {
    msg::ClientEnvelope e;
    auto* c = e.mutable_complete_file_request();
    c->set_lease_id(lease.lease_id());
    c->set_size(size);
    c->set_checksum(crc);
    auto* ci = c->add_chunks();
    ci->set_id(lease.first_chunk().chunk_id());
    ci->set_version(lease.first_chunk().version());
    ci->set_size(size);
    ci->set_checksum(crc);
    for (const auto& n : lease.first_chunk().pipeline()) ci->add_replicas(n.id());
    return e;
  }

  bool Exists(const std::string& path) { return service_->catalog().ns().Lookup(path).has_value(); }

  MasterOptions options_;
  NodeRegistry registry_{5s};
  test::FakeOutbox<msg::ClientEnvelope> clients_;
  test::FakeOutbox<msg::NodeEnvelope> nodes_;
  std::unique_ptr<MasterService> service_;
  Clock::time_point now_ = Clock::now();
};

}  // namespace dfs::master
