// The PipelineWriter (the client's puts, the node's replica copies) driven
// through its NodeSender seam: a fake that records each request and answers
// as nodes would, so the writer's side of the chunk stream protocol
// (messages/data.proto, WRITE) is checked without sockets: credit,
// cumulative acknowledgements, the close, the three-way checksum, stalls,
// and the fanned-out whole-chunk write.
#include "datapath/pipeline_writer.h"

#include <deque>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace dfs::datapath {
namespace {

using namespace std::chrono_literals;
using Clock = PipelineWriter::Clock;

// Records what the writer sends; request ids count up from 100.
class FakeNodes final : public NodeSender {
 public:
  struct Sent {
    std::string address;
    uint64_t id;
    msg::DataEnvelope envelope;
    std::vector<bus::Frame> payload;
  };

  Result<uint64_t> Send(const std::string& address, msg::DataEnvelope request,
                        std::vector<bus::Frame> payload) override {
    if (refuse) return Status::Unavailable("send to node " + address + ": queue full");
    const uint64_t id = next_id_++;
    sent.push_back({address, id, std::move(request), std::move(payload)});
    return id;
  }

  // The oldest request not taken yet.
  Sent Take() {
    EXPECT_FALSE(sent.empty()) << "the writer sent nothing";
    if (sent.empty()) return {};
    Sent s = std::move(sent.front());
    sent.pop_front();
    return s;
  }

  std::deque<Sent> sent;
  bool refuse = false;

 private:
  uint64_t next_id_ = 100;
};

// An answer to request `id`.
DataMessage Answer(uint64_t id, msg::DataEnvelope body = {}) {
  DataMessage m;
  m.envelope = std::move(body);
  m.envelope.set_request_id(id);
  return m;
}

DataMessage OpenAnswer(uint64_t id, uint64_t stream, uint32_t credit) {
  msg::DataEnvelope e;
  e.mutable_write_open_response()->set_stream_id(stream);
  e.mutable_write_open_response()->set_credit_frames(credit);
  return Answer(id, std::move(e));
}

DataMessage AckAnswer(uint64_t id, uint64_t stream, uint64_t offset) {
  msg::DataEnvelope e;
  e.mutable_write_frame_response()->set_stream_id(stream);
  e.mutable_write_frame_response()->set_offset(offset);
  return Answer(id, std::move(e));
}

DataMessage CloseAnswer(uint64_t id, const std::vector<std::string>& nodes, uint64_t size, uint32_t crc) {
  msg::DataEnvelope e;
  auto* r = e.mutable_write_close_response();
  for (const auto& n : nodes) {
    auto* rep = r->add_replicas();
    rep->set_node_id(n);
    rep->set_size(size);
    rep->set_crc32c(crc);
  }
  return Answer(id, std::move(e));
}

DataMessage ErrorAnswer(uint64_t id, const Status& s) {
  msg::DataEnvelope e;
  *e.mutable_error() = bus::ToProto(s);
  return Answer(id, std::move(e));
}

ChunkPlacement ThreeNodes() {
  return ChunkPlacement{42, 1, {{"n1", "h1:1"}, {"n2", "h2:2"}, {"n3", "h3:3"}}};
}

class PipelineWriterTest : public ::testing::Test {
 protected:
  PipelineWriter::Config config_{.frame_size = 4, .stall_timeout = 5s};
  FakeNodes nodes_;
  Clock::time_point now_ = Clock::now();
};

TEST_F(PipelineWriterTest, StreamsWithinCreditClosesAndChecksEveryReplica) {
  PipelineWriter w(nodes_, ThreeNodes(), 10, config_);
  w.Start(now_);
  auto open = nodes_.Take();
  EXPECT_EQ(open.address, "h1:1");
  ASSERT_TRUE(open.envelope.has_write_open_request());
  const auto& o = open.envelope.write_open_request();
  EXPECT_EQ(o.chunk_id(), 42u);
  EXPECT_EQ(o.expected_size(), 10u);
  ASSERT_EQ(o.downstream_size(), 2);  // the rest of the pipeline, in order
  EXPECT_EQ(o.downstream(0).id(), "n2");
  EXPECT_EQ(o.downstream(1).address(), "h3:3");
  EXPECT_FALSE(w.CanSend());  // no credit before the open is answered

  w.OnReply(OpenAnswer(open.id, 7, 2), now_);
  ASSERT_TRUE(w.CanSend());
  w.SendFrame(bus::Frame::Copy(std::string_view("abcd")), 0xA, now_);
  w.SendFrame(bus::Frame::Copy(std::string_view("efgh")), 0xB, now_);
  EXPECT_FALSE(w.CanSend()) << "two frames out on a credit of two";
  auto f1 = nodes_.Take();
  auto f2 = nodes_.Take();
  EXPECT_EQ(f1.envelope.write_frame_request().stream_id(), 7u);
  EXPECT_EQ(f1.envelope.write_frame_request().offset(), 0u);
  EXPECT_EQ(f2.envelope.write_frame_request().offset(), 4u);
  ASSERT_EQ(f2.payload.size(), 1u);
  EXPECT_EQ(f2.payload[0].view(), "efgh");

  // One cumulative acknowledgement returns the credit of both frames.
  w.OnReply(AckAnswer(f2.id, 7, 4), now_);
  ASSERT_TRUE(w.CanSend());
  w.SendFrame(bus::Frame::Copy(std::string_view("ij")), 0xC, now_);
  auto f3 = nodes_.Take();
  w.Finish(10, 0xFEED, now_);
  EXPECT_TRUE(nodes_.sent.empty()) << "closed before the last frame was acknowledged";
  w.OnReply(AckAnswer(f3.id, 7, 8), now_);
  auto close = nodes_.Take();
  ASSERT_TRUE(close.envelope.has_write_close_request());
  EXPECT_EQ(close.envelope.write_close_request().size(), 10u);
  EXPECT_EQ(close.envelope.write_close_request().crc32c(), 0xFEEDu);
  EXPECT_EQ(w.state(), PipelineWriter::State::kClosing);

  w.OnReply(CloseAnswer(close.id, {"n1", "n2", "n3"}, 10, 0xFEED), now_);
  EXPECT_EQ(w.state(), PipelineWriter::State::kStored) << w.failure().ToString();
  EXPECT_EQ(w.replicas(), (std::vector<std::string>{"n1", "n2", "n3"}));
}

TEST_F(PipelineWriterTest, AReplicaThatStoredOtherBytesFailsTheChunkAndIsSuspect) {
  PipelineWriter w(nodes_, ThreeNodes(), 4, config_);
  w.Start(now_);
  w.OnReply(OpenAnswer(nodes_.Take().id, 1, 4), now_);
  w.SendFrame(bus::Frame::Copy(std::string_view("abcd")), 0x1, now_);
  w.OnReply(AckAnswer(nodes_.Take().id, 1, 0), now_);
  w.Finish(4, 0x1234, now_);
  auto close = nodes_.Take();
  msg::DataEnvelope e;
  auto* r = e.mutable_write_close_response();
  for (const char* n : {"n1", "n2", "n3"}) {
    auto* rep = r->add_replicas();
    rep->set_node_id(n);
    rep->set_size(4);
    rep->set_crc32c(std::string_view(n) == "n2" ? 0xBAD : 0x1234);
  }
  w.OnReply(Answer(close.id, std::move(e)), now_);
  ASSERT_TRUE(w.failed());
  EXPECT_EQ(w.failure().code(), Code::kCorruption);
  EXPECT_NE(w.failure().message().find("node n2 stored"), std::string::npos) << w.failure().message();
  EXPECT_EQ(w.suspects(), (std::vector<std::string>{"n2"}));
}

TEST_F(PipelineWriterTest, ANodesErrorFailsTheChunkBlamingTheNodeItNames) {
  PipelineWriter w(nodes_, ThreeNodes(), 4, config_);
  w.Start(now_);
  w.OnReply(ErrorAnswer(nodes_.Take().id, Status::IOError("node n3 (h3:3) stopped answering")), now_);
  ASSERT_TRUE(w.failed());
  EXPECT_NE(w.failure().message().find("stopped answering"), std::string::npos);
  EXPECT_EQ(w.suspects(), (std::vector<std::string>{"n3"}));

  // Busy is a healthy node out of credit: nobody is blamed.
  PipelineWriter busy(nodes_, ThreeNodes(), 4, config_);
  busy.Start(now_);
  busy.OnReply(ErrorAnswer(nodes_.Take().id, Status::Busy("node n1: no credit left")), now_);
  ASSERT_TRUE(busy.failed());
  EXPECT_TRUE(busy.suspects().empty());
}

TEST_F(PipelineWriterTest, ASilentPipelineFailsAfterTheStallTimeout) {
  PipelineWriter w(nodes_, ThreeNodes(), 4, config_);
  w.Start(now_);
  (void)nodes_.Take();
  EXPECT_EQ(w.deadline(), now_ + 5s);
  w.Tick(now_ + 4s);
  EXPECT_FALSE(w.failed());
  w.Tick(now_ + 5s);
  ASSERT_TRUE(w.failed());
  EXPECT_EQ(w.failure().code(), Code::kTimedOut);
  EXPECT_NE(w.failure().message().find("opening the pipeline"), std::string::npos) << w.failure().message();
  // A late answer changes nothing, and an abort names no stream never opened.
  w.OnReply(OpenAnswer(100, 1, 4), now_ + 6s);
  EXPECT_TRUE(w.failed());
  w.Abort();
  EXPECT_TRUE(nodes_.sent.empty());
}

TEST_F(PipelineWriterTest, AnAbortAfterTheOpenTellsTheFirstNodeToDropTheStream) {
  PipelineWriter w(nodes_, ThreeNodes(), 8, config_);
  w.Start(now_);
  w.OnReply(OpenAnswer(nodes_.Take().id, 9, 4), now_);
  w.FailThrough("n2");
  ASSERT_TRUE(w.failed());
  EXPECT_EQ(w.suspects(), (std::vector<std::string>{"n2"}));
  w.Abort();
  auto abort = nodes_.Take();
  EXPECT_EQ(abort.address, "h1:1");
  EXPECT_EQ(abort.envelope.write_abort_request().stream_id(), 9u);
}

TEST_F(PipelineWriterTest, AFannedOutWholeChunkGoesToEveryNodeAndWaitsForEach) {
  PipelineWriter w(nodes_, ThreeNodes(), 5, config_);
  w.StartWhole(bus::Frame::Copy(std::string_view("hello")), 0x55, now_, /*fan_out=*/true);
  ASSERT_EQ(nodes_.sent.size(), 3u);
  std::vector<uint64_t> ids;
  for (const char* address : {"h1:1", "h2:2", "h3:3"}) {
    auto s = nodes_.Take();
    EXPECT_EQ(s.address, address);
    const auto& o = s.envelope.write_open_request();
    EXPECT_TRUE(o.whole());
    EXPECT_EQ(o.crc32c(), 0x55u);
    EXPECT_EQ(o.downstream_size(), 0) << "fanned out, each node stores its copy alone";
    ASSERT_EQ(s.payload.size(), 1u);
    EXPECT_EQ(s.payload[0].view(), "hello");
    ids.push_back(s.id);
  }
  w.OnReply(CloseAnswer(ids[0], {"n1"}, 5, 0x55), now_);
  w.OnReply(CloseAnswer(ids[2], {"n3"}, 5, 0x55), now_);
  EXPECT_EQ(w.state(), PipelineWriter::State::kClosing);
  // The silent node is the one suspected when the wait runs out.
  w.Tick(now_ + 5s);
  ASSERT_TRUE(w.failed());
  EXPECT_EQ(w.suspects(), (std::vector<std::string>{"n2"}));

  PipelineWriter ok(nodes_, ThreeNodes(), 5, config_);
  ok.StartWhole(bus::Frame::Copy(std::string_view("hello")), 0x55, now_, /*fan_out=*/true);
  std::vector<uint64_t> ok_ids;
  for (int i = 0; i < 3; ++i) ok_ids.push_back(nodes_.Take().id);
  const char* names[] = {"n1", "n2", "n3"};
  for (int i = 0; i < 3; ++i) ok.OnReply(CloseAnswer(ok_ids[i], {names[i]}, 5, 0x55), now_);
  EXPECT_EQ(ok.state(), PipelineWriter::State::kStored) << ok.failure().ToString();
}

TEST_F(PipelineWriterTest, ASendThatFailsFailsTheChunk) {
  nodes_.refuse = true;
  PipelineWriter w(nodes_, ThreeNodes(), 4, config_);
  w.Start(now_);
  ASSERT_TRUE(w.failed());
  EXPECT_EQ(w.failure().code(), Code::kUnavailable);
  EXPECT_NE(w.failure().message().find("queue full"), std::string::npos);
}

}  // namespace
}  // namespace dfs::datapath
