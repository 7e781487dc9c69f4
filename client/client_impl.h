// Private to libdfs_client: the state behind Client, shared by the files
// that implement its methods (dfs_client.cc, namespace_client.cc, put.cc, get.cc, ...).
#pragma once

#include <memory>
#include <string>

#include "bus/request_client.h"
#include "client/dfs_client.h"
#include "client/node_links.h"
#include "common/net.h"

namespace dfs::client {

struct Client::Impl {
  ClientOptions options;
  HostAndPort master;
  std::string user;  // sent in every Envelope
  std::string cwd = "/";
  std::unique_ptr<bus::Context> context;
  std::unique_ptr<bus::RequestClient> rpc;
  ClusterInfo cluster;
  std::unique_ptr<NodeLinks> links;  // data connections, opened on first use

  NodeLinks& Links() {
    if (!links) links = std::make_unique<NodeLinks>(*context, user);
    return *links;
  }

  // One request/reply with the master; the bus retries with the same
  // request id. The master's error comes back as its Status.
  Result<bus::Message> Call(msg::Envelope request);
  Result<std::string> Resolve(std::string_view path) const { return ResolvePath(path, cwd); }
};

FileStatus FileStatusFromProto(const msg::FileInfo& info);

}  // namespace dfs::client
