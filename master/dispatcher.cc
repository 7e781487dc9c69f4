#include "master/dispatcher.h"

#include <cassert>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace dfs::master {

template <class E>
void Dispatcher::Put(Table<E>& table, typename E::BodyCase body, Route<E> route) {
  const auto index = static_cast<size_t>(body);
  if (table.size() <= index) table.resize(index + 1);
  assert(!table[index] && "one handler per port and message type");
  table[index] = std::move(route);
}

void Dispatcher::Add(msg::ClientEnvelope::BodyCase body, Kind kind, Handler<msg::ClientEnvelope> handler) {
  Put(client_routes_, body, {kind, std::move(handler)});
}

void Dispatcher::Add(msg::NodeEnvelope::BodyCase body, Handler<msg::NodeEnvelope> handler) {
  Put(node_routes_, body, {Kind::kQuery, std::move(handler)});
}

template <class E>
void Dispatcher::Refuse(std::string_view port, const bus::Message<E>& m, bus::Outbox& out, const Status& why) {
  if (auto n = refuse_log_.Allow()) {
    spdlog::warn("refused message on {} port: {} ({} similar)", port, why.message(), n - 1);
  }
  IgnoreError(bus::ReplyError(out, m, why));  // a peer that sends garbage may well be gone already
}

template <class E>
const Dispatcher::Route<E>* Dispatcher::Find(std::string_view port, const Table<E>& table, const bus::Message<E>& m,
                                             bus::Outbox& out) {
  if (!m.defect.ok()) {
    Refuse(port, m, out, m.defect);
    return nullptr;
  }
  const auto index = static_cast<size_t>(m.envelope.body_case());
  if (index < table.size() && table[index]) return &*table[index];
  // Body 0: the envelope parsed but held none of this port's messages (another
  // port's, or a newer protocol's).
  Refuse(port, m, out,
         Status::ProtocolError(index == 0 ? fmt::format("the master's {} port got a message it does not know "
                                                        "(another port's, or a newer protocol's)",
                                                        port)
                                          : fmt::format("the master's {} port does not serve message type {}",
                                                        port, index)));
  return nullptr;
}

void Dispatcher::Dispatch(const ClientMessage& m, bus::Outbox& out, Clock::time_point now) {
  const auto* route = Find("client", client_routes_, m, out);
  if (route == nullptr) return;
  if (route->kind == Kind::kMutation && !catalog_.Admit(m, now)) return;
  route->handler(m, out, now);
}

void Dispatcher::Dispatch(const NodeMessage& m, bus::Outbox& out, Clock::time_point now) {
  if (const auto* route = Find("node", node_routes_, m, out)) route->handler(m, out, now);
}

}  // namespace dfs::master
