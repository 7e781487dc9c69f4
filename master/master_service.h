// The master's request handling without sockets: the catalog, the chunk
// manager, the write coordinator and the namespace requests, wired into the
// dispatcher's table. MasterServer owns the sockets and feeds it decoded
// messages; unit tests feed it with fake outboxes.
//
// Not thread-safe: driven by the master's metadata thread.
#pragma once

#include <chrono>
#include <memory>

#include "bus/outbox.h"
#include "common/env.h"
#include "master/catalog.h"
#include "master/chunk_manager.h"
#include "master/dispatcher.h"
#include "master/namespace_requests.h"
#include "master/node_registry.h"
#include "master/options.h"
#include "master/write_coordinator.h"

namespace dfs::master {

class MasterService {
 public:
  using Clock = std::chrono::steady_clock;

  // Mutations are answered on `clients` (the client port) once durable; the
  // journal and checkpoints go through `env` (a fault-injecting one in tests).
  MasterService(const MasterOptions& options, const NodeRegistry& registry, bus::Outbox& clients,
                Env* env = Env::Default());
  ~MasterService();

  // Recovers the namespace and fills the dispatcher's table.
  Status Open();
  // Flushes the journal and writes a checkpoint (clean shutdown).
  Status Close() { return catalog_.Close(); }
  // file.changed events (Catalog::set_on_change).
  void set_on_change(Catalog::Changed on_change) { catalog_.set_on_change(std::move(on_change)); }

  int completion_fd() const { return catalog_.completion_fd(); }
  // Answers mutations whose records became durable; an error means the
  // journal failed and the master must stop.
  Status OnCompletions() { return catalog_.OnCompletions(); }
  // Housekeeping: leases, parked completions, retry cache, checkpoints.
  void Tick(Clock::time_point now);

  // Where MasterServer adds the handlers it keeps (hello, node membership).
  Dispatcher& dispatcher() { return dispatcher_; }
  ChunkManager& chunks() { return chunks_; }
  const Catalog& catalog() const { return catalog_; }

 private:
  void AddHandlers();

  const MasterOptions& options_;
  const NodeRegistry& registry_;
  Catalog catalog_;
  ChunkManager chunks_;
  Dispatcher dispatcher_;
  // Made once the catalog is open (chunk ids continue from its state).
  std::unique_ptr<WriteCoordinator> writes_;
  std::unique_ptr<NamespaceRequests> namespace_;
};

}  // namespace dfs::master
