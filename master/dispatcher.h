// The master's dispatcher: one table from (port, message type) to handler.
// A malformed message gets an error reply, a type the port does not serve a
// protocol error, and a mutation is admitted by the Catalog (retry cache,
// journal health) before its handler runs. Handlers get the decoded message
// and the Outbox of the port it came in on, never a socket.
//
// Not thread-safe: driven by the master's metadata thread.
#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

#include "bus/outbox.h"
#include "common/logging.h"
#include "master/catalog.h"

namespace dfs::master {

enum class Port { kClient, kNode };

class Dispatcher {
 public:
  using Clock = std::chrono::steady_clock;
  using Handler = std::function<void(const bus::Message&, bus::Outbox&, Clock::time_point)>;
  // A mutation changes the namespace or a write: it is journaled or at
  // least answered through the retry cache, so a retry gets the first answer.
  enum class Kind { kQuery, kMutation };

  explicit Dispatcher(Catalog& catalog) : catalog_(catalog) {}

  // `body` on `port` goes to `handler`. One handler per (port, body).
  void Add(Port port, msg::Envelope::BodyCase body, Kind kind, Handler handler);
  // Handles `m`, received on `port`; replies go to `out`.
  void Dispatch(Port port, const bus::Message& m, bus::Outbox& out, Clock::time_point now);

 private:
  struct Route {
    Kind kind;
    Handler handler;
  };
  const Route* Find(Port port, msg::Envelope::BodyCase body) const;
  void Refuse(Port port, const bus::Message& m, bus::Outbox& out, const Status& why);

  Catalog& catalog_;
  std::array<std::vector<std::optional<Route>>, 2> routes_;
  LogRateLimiter refuse_log_;
};

}  // namespace dfs::master
