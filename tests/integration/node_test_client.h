// A bare client of a node's data port for the node tests: a DEALER that
// speaks data.proto directly (no libdfs_client), so each test can send
// exactly the frames it wants, good or bad.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "bus/socket.h"
#include "data.pb.h"
#include "common/checksum.h"
#include "common/net.h"
#include "tests/support/cluster.h"

namespace dfs::test {

using namespace std::chrono_literals;

inline std::string NodeHostPort(const MiniCluster& c, int i) {
  std::string text = MiniCluster::ReadText(c.node_dir(i) + "/node.addr");
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

inline msg::NodeAddress NodeAddressOf(const MiniCluster& c, int i) {
  msg::NodeAddress a;
  a.set_id(c.node_id(i));
  a.set_address(NodeHostPort(c, i));
  return a;
}

inline std::string RandomData(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  std::mt19937_64 rng(seed);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(s.data() + i, &v, 8);
  }
  for (; i < n; ++i) s[i] = static_cast<char>(rng());
  return s;
}

// Files under a node's chunk folder whose names end with `suffix`.
inline std::vector<std::string> ChunkFiles(const std::string& node_dir, const std::string& suffix) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::recursive_directory_iterator(node_dir + "/chunks", ec)) {
    std::string name = e.path().filename().string();
    if (e.is_regular_file() && name.ends_with(suffix)) out.push_back(e.path().string());
  }
  return out;
}

class NodeClient {
 public:
  NodeClient(bus::Context& ctx, const std::string& host_port) {
    auto s = bus::Socket::Create(ctx, bus::SocketType::kDealer, {});
    EXPECT_TRUE(s) << s.error().ToString();
    socket_ = std::make_unique<bus::Socket>(std::move(*s));
    auto hp = ParseHostPort(host_port, 0);
    EXPECT_TRUE(hp);
    EXPECT_TRUE(socket_->Connect(TcpEndpoint(hp->host, hp->port)).ok());
  }

  uint64_t Send(msg::DataEnvelope env, std::vector<bus::Frame> payload = {}) {
    uint64_t id = next_id_++;
    env.set_request_id(id);
    bus::Message<msg::DataEnvelope> m;
    m.envelope = std::move(env);
    m.payload = std::move(payload);
    Status s = socket_->Send(std::move(m));
    EXPECT_TRUE(s.ok()) << s.ToString();
    return id;
  }

  std::optional<bus::Message<msg::DataEnvelope>> Receive(std::chrono::milliseconds timeout) {
    auto r = socket_->Receive<msg::DataEnvelope>(timeout);
    if (!r || !*r) return std::nullopt;
    return std::move(**r);
  }

  // The answer to request `id`; other answers are dropped.
  std::optional<bus::Message<msg::DataEnvelope>> Await(uint64_t id, std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      auto m = Receive(left);
      if (m && m->envelope.request_id() == id) return m;
    }
  }

  std::optional<bus::Message<msg::DataEnvelope>> Call(msg::DataEnvelope env, std::vector<bus::Frame> payload = {},
                                   std::chrono::milliseconds timeout = 10s) {
    return Await(Send(std::move(env), std::move(payload)), timeout);
  }

  // Opens a write of chunk (id, version) through `downstream`.
  std::optional<bus::Message<msg::DataEnvelope>> Open(uint64_t id, uint32_t version, const std::vector<msg::NodeAddress>& downstream,
                                   uint32_t frame_size, uint64_t expected_size = 0) {
    msg::DataEnvelope env;
    auto* o = env.mutable_write_open_request();
    o->set_chunk_id(id);
    o->set_version(version);
    for (const auto& d : downstream) *o->add_downstream() = d;
    o->set_frame_size(frame_size);
    o->set_expected_size(expected_size);
    return Call(std::move(env));
  }

  // A whole chunk in its open (data.proto, WHOLE-CHUNK WRITE); `crc`
  // overrides the payload's true CRC32C. With `reported_upstream` the caller
  // poses as a node earlier in the pipeline that reports this replica.
  std::optional<bus::Message<msg::DataEnvelope>> WriteWhole(uint64_t id, uint32_t version,
                                         const std::vector<msg::NodeAddress>& downstream, std::string_view bytes,
                                         std::optional<uint32_t> crc = {}, bool reported_upstream = false) {
    msg::DataEnvelope env;
    auto* o = env.mutable_write_open_request();
    o->set_chunk_id(id);
    o->set_version(version);
    for (const auto& d : downstream) *o->add_downstream() = d;
    o->set_frame_size(static_cast<uint32_t>(bytes.size()));
    o->set_expected_size(bytes.size());
    o->set_whole(true);
    o->set_crc32c(crc ? *crc : Crc32c(bytes));
    o->set_reported_upstream(reported_upstream);
    std::vector<bus::Frame> payload;
    payload.push_back(bus::Frame::Copy(bytes));
    return Call(std::move(env), std::move(payload), 30s);
  }

  uint64_t SendFrame(uint64_t stream, uint64_t offset, std::string_view bytes, std::optional<uint32_t> crc = {}) {
    msg::DataEnvelope env;
    auto* f = env.mutable_write_frame_request();
    f->set_stream_id(stream);
    f->set_offset(offset);
    f->set_crc32c(crc ? *crc : Crc32c(bytes));
    std::vector<bus::Frame> payload;
    payload.push_back(bus::Frame::Copy(bytes));
    return Send(std::move(env), std::move(payload));
  }

  uint64_t SendClose(uint64_t stream, uint64_t size, uint32_t crc) {
    msg::DataEnvelope env;
    auto* c = env.mutable_write_close_request();
    c->set_stream_id(stream);
    c->set_size(size);
    c->set_crc32c(crc);
    return Send(std::move(env));
  }

  uint64_t SendAbort(uint64_t stream) {
    msg::DataEnvelope env;
    env.mutable_write_abort_request()->set_stream_id(stream);
    return Send(std::move(env));
  }

  std::optional<bus::Message<msg::DataEnvelope>> Read(uint64_t id, uint32_t version, uint64_t offset, uint32_t length) {
    msg::DataEnvelope env;
    auto* r = env.mutable_read_request();
    r->set_chunk_id(id);
    r->set_version(version);
    r->set_offset(offset);
    r->set_length(length);
    return Call(std::move(env));
  }

 private:
  std::unique_ptr<bus::Socket> socket_;
  uint64_t next_id_ = 1;
};

inline Status AnswerStatus(const std::optional<bus::Message<msg::DataEnvelope>>& m) {
  if (!m) return Status::TimedOut("no answer");
  if (m->envelope.has_error()) return bus::FromProto(m->envelope.error());
  return Status::OK();
}

struct WriteOutcome {
  Status status;
  uint32_t credit = 0;
  size_t max_in_flight = 0;
  std::vector<msg::ReplicaChecksum> replicas;
};

// Writes `data` as one chunk the way a client does: open, frames with up to
// `credit` unacknowledged, close.
inline WriteOutcome WriteChunk(NodeClient& c, uint64_t id, uint32_t version,
                               const std::vector<msg::NodeAddress>& downstream, std::string_view data,
                               uint32_t frame_size) {
  WriteOutcome out;
  auto open = c.Open(id, version, downstream, frame_size, data.size());
  if (out.status = AnswerStatus(open); !out.status.ok()) return out;
  const uint64_t stream = open->envelope.write_open_response().stream_id();
  out.credit = open->envelope.write_open_response().credit_frames();
  std::deque<uint64_t> in_flight;  // offsets
  uint64_t next = 0;
  while (next < data.size() || !in_flight.empty()) {
    while (next < data.size() && in_flight.size() < out.credit) {
      size_t n = std::min<size_t>(frame_size, data.size() - next);
      c.SendFrame(stream, next, data.substr(next, n));
      in_flight.push_back(next);
      next += n;
    }
    out.max_in_flight = std::max(out.max_in_flight, in_flight.size());
    auto ack = c.Receive(10s);
    if (out.status = AnswerStatus(ack); !out.status.ok()) return out;
    if (!ack->envelope.has_write_frame_response() ||
        ack->envelope.write_frame_response().offset() != in_flight.front()) {
      out.status = Status::ProtocolError("unexpected answer to a frame");
      return out;
    }
    in_flight.pop_front();
  }
  auto close = c.Await(c.SendClose(stream, data.size(), Crc32c(data)), 30s);
  if (out.status = AnswerStatus(close); !out.status.ok()) return out;
  const auto& r = close->envelope.write_close_response().replicas();
  out.replicas.assign(r.begin(), r.end());
  return out;
}

// Reads [offset, offset+length) in pieces of `piece` bytes.
inline Result<std::string> ReadChunk(NodeClient& c, uint64_t id, uint32_t version, uint64_t offset, uint64_t length,
                                     uint32_t piece) {
  std::string out;
  while (out.size() < length) {
    uint32_t want = static_cast<uint32_t>(std::min<uint64_t>(piece, length - out.size()));
    auto m = c.Read(id, version, offset + out.size(), want);
    DFS_RETURN_IF_ERROR(AnswerStatus(m));
    if (m->payload.size() != 1) return Status::ProtocolError("read answer without one payload frame");
    const auto& r = m->envelope.read_response();
    if (Crc32c(m->payload[0].view()) != r.crc32c()) return Status::Corruption("read frame fails its crc");
    if (m->payload[0].size() == 0) return Status::InvalidArgument("empty read before the end");
    out.append(m->payload[0].view());
  }
  return out;
}

}  // namespace dfs::test
