// The node's write pipeline driven with a fake outbox, on a real chunk
// store, as the last node of a pipeline (no downstream, no sockets): what it
// answers upstream and what it stores.
#include "filenode/write_pipeline.h"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/checksum.h"
#include "tests/support/fake_outbox.h"
#include "tests/unit/file_test_util.h"

namespace dfs::filenode {
namespace {

using namespace std::chrono_literals;
using Clock = WritePipeline::Clock;

class WritePipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::TestDir("write-pipeline");
    ChunkStoreOptions so;
    so.volume_prepare = 0;
    store_ = std::make_unique<ChunkStore>(dir_, so);
    ASSERT_TRUE(store_->Scan());
    pipeline_ = std::make_unique<WritePipeline>(ctx_, upstream_, *store_, "n1", PipelineOptions{},
                                                [this](StoredEvent e) { stored_.push_back(std::move(e)); });
    ASSERT_TRUE(pipeline_->Start().ok());
    pipeline_->AddTo(poller_);
  }
  void TearDown() override {
    pipeline_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  bus::Message<msg::DataEnvelope> Request(msg::DataEnvelope env, std::string_view payload = {}, bool with_payload = false) {
    bus::Message<msg::DataEnvelope> m;
    m.route = "upstream";
    m.envelope = std::move(env);
    m.envelope.set_request_id(++request_id_);
    if (with_payload) m.payload.push_back(bus::Frame::Copy(payload));
    return m;
  }

  // The next answer upstream, servicing the pipeline (its sync thread's
  // completions) until one comes or 10 s pass.
  std::optional<bus::Message<msg::DataEnvelope>> Answer() {
    const auto deadline = Clock::now() + 10s;
    while (upstream_.size() == 0 && Clock::now() < deadline) {
      auto waited = poller_.Wait(50ms);  // readable or not, Service looks
      (void)waited;
      pipeline_->Service(Clock::now());
    }
    return upstream_.Take();
  }

  bus::Message<msg::DataEnvelope> Whole(uint64_t id, std::string_view bytes, uint32_t crc) {
    msg::DataEnvelope env;
    auto* o = env.mutable_write_open_request();
    o->set_chunk_id(id);
    o->set_version(1);
    o->set_frame_size(static_cast<uint32_t>(bytes.size()));
    o->set_expected_size(bytes.size());
    o->set_whole(true);
    o->set_crc32c(crc);
    return Request(std::move(env), bytes, true);
  }

  std::string dir_;
  bus::Context ctx_;
  test::FakeOutbox<msg::DataEnvelope> upstream_;
  bus::Poller poller_;
  std::unique_ptr<ChunkStore> store_;
  std::unique_ptr<WritePipeline> pipeline_;
  std::vector<StoredEvent> stored_;
  uint64_t request_id_ = 0;
};

TEST_F(WritePipelineTest, AWholeChunkIsStoredThenAcknowledgedWithItsChecksum) {
  const std::string bytes(5000, 'w');
  pipeline_->Open(Whole(7, bytes, Crc32c(bytes)), Clock::now());
  auto a = Answer();
  ASSERT_TRUE(a);
  ASSERT_FALSE(a->envelope.has_error()) << a->envelope.error().message();
  EXPECT_EQ(a->route, "upstream");
  EXPECT_EQ(a->envelope.request_id(), request_id_);
  ASSERT_EQ(stored_.size(), 1u);
  EXPECT_EQ(stored_[0].local.size, bytes.size());
  EXPECT_EQ(stored_[0].local.crc32c, Crc32c(bytes));
  EXPECT_TRUE(store_->Locate(ChunkKey{7, 1}));
}

TEST_F(WritePipelineTest, AWholeChunkThatFailsItsChecksumIsRefusedAndNotStored) {
  const std::string bytes(5000, 'w');
  pipeline_->Open(Whole(8, bytes, Crc32c(bytes) ^ 1), Clock::now());
  auto a = Answer();
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->envelope.has_error());
  EXPECT_EQ(a->envelope.error().code(), static_cast<int>(Code::kCorruption));
  EXPECT_NE(a->envelope.error().message().find("fails its CRC32C"), std::string::npos);
  EXPECT_TRUE(stored_.empty());
  EXPECT_FALSE(store_->Locate(ChunkKey{8, 1}));
}

TEST_F(WritePipelineTest, FramesStreamInOrderAndTheCloseNamesTheStoredChecksum) {
  msg::DataEnvelope open;
  auto* o = open.mutable_write_open_request();
  o->set_chunk_id(9);
  o->set_version(1);
  o->set_frame_size(4096);
  o->set_expected_size(8192);
  pipeline_->Open(Request(open), Clock::now());
  auto opened = Answer();
  ASSERT_TRUE(opened);
  ASSERT_FALSE(opened->envelope.has_error()) << opened->envelope.error().message();
  const uint64_t stream = opened->envelope.write_open_response().stream_id();
  EXPECT_GT(opened->envelope.write_open_response().credit_frames(), 0u);

  const std::string a(4096, 'a'), b(4096, 'b');
  auto frame = [&](uint64_t offset, const std::string& bytes) {
    msg::DataEnvelope f;
    f.mutable_write_frame_request()->set_stream_id(stream);
    f.mutable_write_frame_request()->set_offset(offset);
    f.mutable_write_frame_request()->set_crc32c(Crc32c(bytes));
    bus::Message<msg::DataEnvelope> m = Request(std::move(f), bytes, true);
    pipeline_->Frame(m, Clock::now());
  };
  frame(0, a);
  auto acked = Answer();
  ASSERT_TRUE(acked);
  ASSERT_FALSE(acked->envelope.has_error()) << acked->envelope.error().message();
  frame(4096, b);
  ASSERT_TRUE(Answer());
  msg::DataEnvelope close;
  close.mutable_write_close_request()->set_stream_id(stream);
  close.mutable_write_close_request()->set_size(8192);
  close.mutable_write_close_request()->set_crc32c(Crc32c(a + b));
  pipeline_->Close(Request(close), Clock::now());
  auto closed = Answer();
  ASSERT_TRUE(closed);
  ASSERT_FALSE(closed->envelope.has_error()) << closed->envelope.error().message();
  ASSERT_EQ(closed->envelope.write_close_response().replicas_size(), 1);
  EXPECT_EQ(closed->envelope.write_close_response().replicas(0).crc32c(), Crc32c(a + b));
  EXPECT_TRUE(store_->Locate(ChunkKey{9, 1}));
}

TEST_F(WritePipelineTest, AFrameForNoOpenStreamIsAnErrorNotACrash) {
  msg::DataEnvelope f;
  f.mutable_write_frame_request()->set_stream_id(12345);
  f.mutable_write_frame_request()->set_offset(0);
  bus::Message<msg::DataEnvelope> m = Request(std::move(f), "x", true);
  pipeline_->Frame(m, Clock::now());
  auto a = Answer();
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->envelope.has_error());
  EXPECT_TRUE(stored_.empty());
}

}  // namespace
}  // namespace dfs::filenode
