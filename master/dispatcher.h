// The master's dispatcher: one table per port from message type to handler.
// Each port decodes its own envelope (ports.h), so a port cannot even name
// another port's messages; a malformed message gets an error reply, a type
// the port does not serve a protocol error, and a mutation is admitted by
// the Catalog (retry cache, journal health) before its handler runs.
// Handlers get the decoded message and the Outbox of the port it came in
// on, never a socket.
//
// Not thread-safe: driven by the master's metadata thread.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

#include "bus/outbox.h"
#include "master/ports.h"
#include "common/logging.h"
#include "master/catalog.h"

namespace dfs::master {

class Dispatcher {
 public:
  using Clock = std::chrono::steady_clock;
  template <class E>
  using Handler = std::function<void(const bus::Message<E>&, bus::Outbox&, Clock::time_point)>;
  // A mutation changes the namespace or a write: it is journaled or at
  // least answered through the retry cache, so a retry gets the first answer.
  enum class Kind { kQuery, kMutation };

  explicit Dispatcher(Catalog& catalog) : catalog_(catalog) {}

  // `body` on the client port goes to `handler`. One handler per message type.
  void Add(msg::ClientEnvelope::BodyCase body, Kind kind, Handler<msg::ClientEnvelope> handler);
  // `body` on the node port: reports and heartbeats, never a mutation.
  void Add(msg::NodeEnvelope::BodyCase body, Handler<msg::NodeEnvelope> handler);

  // Handles `m`, received on its port; replies go to `out`.
  void Dispatch(const ClientMessage& m, bus::Outbox& out, Clock::time_point now);
  void Dispatch(const NodeMessage& m, bus::Outbox& out, Clock::time_point now);

 private:
  template <class E>
  struct Route {
    Kind kind;
    Handler<E> handler;
  };
  template <class E>
  using Table = std::vector<std::optional<Route<E>>>;

  template <class E>
  static void Put(Table<E>& table, typename E::BodyCase body, Route<E> route);
  // The route for `m`, or null after refusing it.
  template <class E>
  const Route<E>* Find(std::string_view port, const Table<E>& table, const bus::Message<E>& m, bus::Outbox& out);
  template <class E>
  void Refuse(std::string_view port, const bus::Message<E>& m, bus::Outbox& out, const Status& why);

  Catalog& catalog_;
  Table<msg::ClientEnvelope> client_routes_;
  Table<msg::NodeEnvelope> node_routes_;
  LogRateLimiter refuse_log_;
};

}  // namespace dfs::master
