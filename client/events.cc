// Client::WatchEvents / EventWatch: a SUB socket on the master's PUB port
// (messages/events.proto). The socket has a ZeroMQ context of its own, so a
// watch and its Client can be destroyed in any order (a context waits for
// its sockets to close before it goes).
#include <fmt/format.h>

#include "bus/socket.h"
#include "client/client_impl.h"
#include "events.pb.h"

namespace dfs::client {

struct EventWatch::Impl {
  std::unique_ptr<bus::Context> context;
  std::optional<bus::Socket> socket;
  std::string endpoint;
};

EventWatch::EventWatch(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

EventWatch::~EventWatch() {
  impl_->socket.reset();  // before its context
}

Result<std::unique_ptr<EventWatch>> Client::WatchEvents(std::string_view prefix) {
  if (impl_->event_port == 0) return Status::Unavailable("the master did not say which port it publishes events on");
  auto impl = std::make_unique<EventWatch::Impl>();
  impl->context = std::make_unique<bus::Context>();
  impl->endpoint = TcpEndpoint(impl_->master.host, static_cast<uint16_t>(impl_->event_port));
  bus::SocketOptions so;
  so.linger_ms = 0;
  DFS_ASSIGN_OR_RETURN(bus::Socket s, bus::Socket::Create(*impl->context, bus::SocketType::kSub, so));
  DFS_RETURN_IF_ERROR(s.Connect(impl->endpoint));
  DFS_RETURN_IF_ERROR(s.Subscribe(prefix));
  impl->socket.emplace(std::move(s));
  return std::make_unique<EventWatch>(std::move(impl));
}

Result<std::vector<ClusterEvent>> EventWatch::Take() {
  std::vector<ClusterEvent> out;
  for (;;) {
    DFS_ASSIGN_OR_RETURN(auto m, impl_->socket->TryReceive<msg::EventEnvelope>());
    if (!m) break;
    if (!m->defect.ok() || !m->envelope.has_event()) continue;  // another version's event: not ours to show
    const msg::Event& e = m->envelope.event();
    ClusterEvent c;
    c.topic = e.topic();
    c.sequence = e.sequence();
    c.unix_ms = e.unix_ms();
    if (e.has_node()) {
      c.node_id = e.node().id();
      c.node_address = e.node().address();
    }
    if (e.has_chunk()) c.chunk_id = e.chunk().chunk_id();
    if (e.has_file()) c.path = e.file().path();
    out.push_back(std::move(c));
  }
  return out;
}

Result<std::vector<int>> EventWatch::Wait(std::span<const int> fds, std::chrono::milliseconds timeout) {
  bus::Poller poller;
  poller.Add(*impl_->socket);
  std::vector<size_t> index;
  for (int fd : fds) index.push_back(poller.AddFd(fd));
  DFS_ASSIGN_OR_RETURN(int ready, poller.Wait(timeout));
  std::vector<int> out;
  if (ready == 0) return out;
  for (size_t i = 0; i < fds.size(); ++i) {
    if (poller.Readable(index[i])) out.push_back(fds[i]);
  }
  return out;
}

}  // namespace dfs::client
