#include "filenode/downstream_links.h"

#include <spdlog/spdlog.h>

#include "common/net.h"

namespace dfs::filenode {

Result<std::string> DownstreamLinks::Endpoint(const std::string& address) {
  std::string_view a = address;
  if (a.starts_with("tcp://")) a.remove_prefix(6);
  DFS_ASSIGN_OR_RETURN(HostAndPort hp, ParseHostPort(a, 0));
  if (hp.port == 0) return Status::InvalidArgument("downstream node address without a port: " + address);
  return TcpEndpoint(hp.host, hp.port);
}

Result<bus::Socket*> DownstreamLinks::Get(const std::string& endpoint, Clock::time_point now) {
  auto it = links_.find(endpoint);
  if (it == links_.end()) {
    bus::SocketOptions o;
    DFS_ASSIGN_OR_RETURN(bus::Socket s, bus::Socket::Create(ctx_, bus::SocketType::kDealer, o));
    DFS_RETURN_IF_ERROR(s.Connect(endpoint));
    SPDLOG_DEBUG("downstream link to {} opened", endpoint);
    it = links_.emplace(endpoint, Entry{std::make_unique<bus::Socket>(std::move(s)), now}).first;
  }
  it->second.last_used = now;
  return it->second.socket.get();
}

void DownstreamLinks::Drop(const std::string& endpoint) { links_.erase(endpoint); }

void DownstreamLinks::DropIdle(Clock::time_point now, std::chrono::milliseconds idle) {
  std::erase_if(links_, [&](const auto& kv) { return now - kv.second.last_used > idle; });
}

std::vector<DownstreamLinks::Link> DownstreamLinks::links() {
  std::vector<Link> out;
  out.reserve(links_.size());
  for (auto& [endpoint, e] : links_) out.push_back(Link{endpoint, e.socket.get()});
  return out;
}

}  // namespace dfs::filenode
