#include "datapath/node_links.h"

#include "common/net.h"
#include "common/random_id.h"

namespace dfs::datapath {

Result<std::string> NodeEndpoint(const std::string& address) {
  if (address.starts_with("tcp://")) return address;
  DFS_ASSIGN_OR_RETURN(HostAndPort hp, ParseHostPort(address, 0));
  if (hp.port == 0) return Status::InvalidArgument("node address without a port: " + address);
  return TcpEndpoint(hp.host, hp.port);
}

NodeLinks::NodeLinks(bus::Context& context, std::string user)
    : context_(context), user_(std::move(user)), client_id_(RandomU64()), next_request_id_(RandomU64() >> 16 | 1) {}

Result<bus::Socket*> NodeLinks::Link(const std::string& address) {
  auto it = links_.find(address);
  if (it != links_.end()) return it->second.get();
  DFS_ASSIGN_OR_RETURN(std::string endpoint, NodeEndpoint(address));
  bus::SocketOptions o;
  // A client that gives up on a node must not hang at exit on its queue.
  o.linger_ms = 0;
  DFS_ASSIGN_OR_RETURN(bus::Socket s, bus::Socket::Create(context_, bus::SocketType::kDealer, o));
  DFS_RETURN_IF_ERROR(s.Connect(endpoint));
  auto [pos, inserted] = links_.emplace(address, std::make_unique<bus::Socket>(std::move(s)));
  return pos->second.get();
}

Result<uint64_t> NodeLinks::Send(const std::string& address, msg::DataEnvelope request,
                                 std::vector<bus::Frame> payload) {
  DFS_ASSIGN_OR_RETURN(bus::Socket * link, Link(address));
  const uint64_t id = next_request_id_++;
  request.set_request_id(id);
  request.set_client_id(client_id_);
  request.set_user(user_);
  DataMessage m;
  m.envelope = std::move(request);
  m.payload = std::move(payload);
  Status s = link->Send(std::move(m));
  if (!s.ok()) return s.Prepend("send to node " + address);
  return id;
}

Result<int> NodeLinks::Poll(std::chrono::milliseconds timeout, const ReplyHandler& on_reply, int also_fd) {
  bus::Poller poller;
  std::vector<std::pair<const std::string*, bus::Socket*>> order;
  for (auto& [address, socket] : links_) {
    poller.Add(*socket);
    order.emplace_back(&address, socket.get());
  }
  // After the sockets, so their indexes match `order`. With no socket and
  // no fd, the wait still paces the caller's loop.
  if (also_fd >= 0) poller.AddFd(also_fd);
  DFS_ASSIGN_OR_RETURN(int ready, poller.Wait(timeout));
  int handled = 0;
  if (ready <= 0) return handled;
  // Copies: a handler may Drop() a link (and free its address) mid-loop.
  std::vector<std::string> readable;
  for (size_t i = 0; i < order.size(); ++i) {
    if (poller.Readable(i)) readable.push_back(*order[i].first);
  }
  for (const std::string& address : readable) {
    auto it = links_.find(address);
    if (it == links_.end()) continue;
    bus::Socket* socket = it->second.get();
    // Bounded, so one busy node cannot starve the others' turn.
    DFS_ASSIGN_OR_RETURN(size_t n, bus::Drain<msg::DataEnvelope>(*socket, 64, [&](DataMessage& m) {
      on_reply(address, m);
      // The handler may have dropped the link (freeing its socket), or even
      // dialled the address again: go on only with the same socket.
      auto now_it = links_.find(address);
      return now_it != links_.end() && now_it->second.get() == socket;
    }));
    handled += static_cast<int>(n);
  }
  return handled;
}

std::vector<bus::Socket*> NodeLinks::sockets() {
  std::vector<bus::Socket*> out;
  out.reserve(links_.size());
  for (auto& [address, socket] : links_) out.push_back(socket.get());
  return out;
}

void NodeLinks::Drop(const std::string& address) { links_.erase(address); }

}  // namespace dfs::datapath
