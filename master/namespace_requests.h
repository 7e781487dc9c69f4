// The master's namespace requests: mkdir, delete, rename and copy (mutations,
// journaled through the Catalog and answered once durable), and stat, list,
// du and df (queries, answered at once). Writes of file contents are the
// WriteCoordinator's.
//
// Not thread-safe: driven by the master's metadata thread.
#pragma once

#include "bus/outbox.h"
#include "master/ports.h"
#include "master/catalog.h"
#include "master/chunk_manager.h"
#include "master/node_registry.h"
#include "master/write_coordinator.h"

namespace dfs::master {

class NamespaceRequests {
 public:
  NamespaceRequests(Catalog& catalog, ChunkManager& chunks, const WriteCoordinator& writes,
                    const NodeRegistry& registry)
      : catalog_(catalog), chunks_(chunks), writes_(writes), registry_(registry) {}

  // Mutations (admitted by the catalog; answered through it).
  void Mkdir(const ClientMessage& m);
  void Delete(const ClientMessage& m);
  void Rename(const ClientMessage& m);
  void Copy(const ClientMessage& m);
  // setrep: journaled; the chunk manager then copies or trims.
  void SetReplication(const ClientMessage& m);

  // Queries: answered on `out` at once.
  void Stat(const ClientMessage& m, bus::Outbox& out) const;
  void List(const ClientMessage& m, bus::Outbox& out) const;
  void DiskUsage(const ClientMessage& m, bus::Outbox& out) const;
  void StatFs(const ClientMessage& m, bus::Outbox& out) const;

 private:
  Catalog& catalog_;
  ChunkManager& chunks_;
  const WriteCoordinator& writes_;
  const NodeRegistry& registry_;
};

}  // namespace dfs::master
