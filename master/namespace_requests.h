// The master's namespace requests: mkdir, delete, rename and copy (mutations,
// journaled through the Catalog and answered once durable), and stat, list,
// du and df (queries, answered at once). Writes of file contents are the
// WriteCoordinator's.
//
// Not thread-safe: driven by the master's metadata thread.
#pragma once

#include "bus/outbox.h"
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
  void Mkdir(const bus::Message& m);
  void Delete(const bus::Message& m);
  void Rename(const bus::Message& m);
  void Copy(const bus::Message& m);

  // Queries: answered on `out` at once.
  void Stat(const bus::Message& m, bus::Outbox& out) const;
  void List(const bus::Message& m, bus::Outbox& out) const;
  void DiskUsage(const bus::Message& m, bus::Outbox& out) const;
  void StatFs(const bus::Message& m, bus::Outbox& out) const;

 private:
  Catalog& catalog_;
  ChunkManager& chunks_;
  const WriteCoordinator& writes_;
  const NodeRegistry& registry_;
};

}  // namespace dfs::master
