#include "master/dispatcher.h"

#include <cassert>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace dfs::master {
namespace {

std::string_view PortName(Port port) { return port == Port::kClient ? "client" : "node"; }

}  // namespace

void Dispatcher::Add(Port port, msg::Envelope::BodyCase body, Kind kind, Handler handler) {
  auto& table = routes_[static_cast<size_t>(port)];
  const auto index = static_cast<size_t>(body);
  if (table.size() <= index) table.resize(index + 1);
  assert(!table[index] && "one handler per port and message type");
  table[index] = Route{kind, std::move(handler)};
}

const Dispatcher::Route* Dispatcher::Find(Port port, msg::Envelope::BodyCase body) const {
  const auto& table = routes_[static_cast<size_t>(port)];
  const auto index = static_cast<size_t>(body);
  if (index >= table.size() || !table[index]) return nullptr;
  return &*table[index];
}

void Dispatcher::Refuse(Port port, const bus::Message& m, bus::Outbox& out, const Status& why) {
  if (auto n = refuse_log_.Allow()) {
    spdlog::warn("refused message on {} port: {} ({} similar)", PortName(port), why.message(), n - 1);
  }
  IgnoreError(bus::ReplyError(out, m, why));  // a peer that sends garbage may well be gone already
}

void Dispatcher::Dispatch(Port port, const bus::Message& m, bus::Outbox& out, Clock::time_point now) {
  if (!m.defect.ok()) return Refuse(port, m, out, m.defect);
  const Route* route = Find(port, m.envelope.body_case());
  if (route == nullptr) {
    return Refuse(port, m, out,
                  Status::ProtocolError(fmt::format("the master's {} port does not serve message type {}",
                                                    PortName(port), static_cast<int>(m.envelope.body_case()))));
  }
  if (route->kind == Kind::kMutation && !catalog_.Admit(m, now)) return;
  route->handler(m, out, now);
}

}  // namespace dfs::master
