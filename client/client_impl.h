// Private to libdfs_client: the state behind Client, shared by the files
// that implement its methods (dfs_client.cc, namespace_client.cc, put.cc, get.cc, ...).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "bus/request_client.h"
#include "client_master.pb.h"
#include "client/dfs_client.h"
#include "datapath/node_links.h"
#include "common/net.h"

namespace dfs::client {

using datapath::DataMessage;
using datapath::NodeLinks;
using datapath::NodeSender;

// What the master's client port carries (messages/client_master.proto).
using MasterMessage = bus::Message<msg::ClientEnvelope>;

struct Client::Impl {
  ClientOptions options;
  HostAndPort master;
  std::string user;  // sent in every Envelope
  std::string cwd = "/";
  uint32_t event_port = 0;  // the master's PUB port, from hello
  const std::atomic<bool>* interrupt = nullptr;  // Client::set_interrupt
  std::unique_ptr<bus::Context> context;
  std::unique_ptr<bus::RequestClient<msg::ClientEnvelope>> rpc;
  ClusterInfo cluster;
  std::unique_ptr<NodeLinks> links;  // data connections, opened on first use
  // Small writes (WriteOptions::small) in a row, and the spare lease the
  // last one's completion brought, for the next one with the same options.
  int small_run = 0;
  std::pair<uint32_t, uint64_t> small_options;  // the run's replication and chunk size, as asked
  struct Spare {
    WriteLease lease;
    uint32_t replication = 0;   // as the write that asked for it asked
    uint64_t chunk_size = 0;
    std::chrono::steady_clock::time_point use_by;  // half its lease time: it is never renewed
  };
  std::optional<Spare> spare;

  NodeLinks& Links() {
    if (!links) links = std::make_unique<NodeLinks>(*context, user);
    return *links;
  }

  // One request/reply with the master; the bus retries with the same
  // request id. The master's error comes back as its Status.
  Result<MasterMessage> Call(msg::ClientEnvelope request);
  Result<std::string> Resolve(std::string_view path) const { return ResolvePath(path, cwd); }
  // Cancelled once the caller's interrupt flag is set; transfers check it
  // at every turn of their loop (a signal wakes their poll at once).
  Status CheckInterrupt() const {
    if (interrupt != nullptr && interrupt->load(std::memory_order_relaxed)) return Status::Cancelled("interrupted");
    return Status::OK();
  }
};

FileStatus FileStatusFromProto(const msg::FileInfo& info);

}  // namespace dfs::client
