// dfs-master: flags in, MasterServer out.
#include <cstdio>

#include <CLI/CLI.hpp>

#include "common/flags.h"
#include "common/limits.h"
#include "common/units.h"
#include "daemon/cpu_affinity.h"
#include "daemon/daemon_main.h"
#include "master/master_server.h"

int main(int argc, char** argv) {
  dfs::master::MasterOptions o;
  std::string chunk_size = "64M", dead_after = "5s";
  static_assert(dfs::limits::kDefaultChunkSize == 64 * dfs::kMiB, "the --chunk-size default shown below");
  CLI::App app{"dfs-master: the namespace and chunk map of a dfs cluster"};
  app.add_option("--dir", o.dir, "data folder (journal, checkpoint, master.addr)")->required();
  app.add_option("--bind", o.bind, "address to bind")->capture_default_str();
  app.add_option("--port", o.port, "client port; 0 picks free ports for all three")->capture_default_str();
  app.add_option("--event-port", o.event_port, "event PUB port (default PORT+1)");
  app.add_option("--node-port", o.node_port, "node control port (default PORT+2)");
  app.add_option("--replication", o.replication, "default replication factor")
      ->check(CLI::Range(uint32_t{1}, dfs::limits::kMaxReplication))
      ->capture_default_str();
  app.add_option("--chunk-size", chunk_size, "default chunk size")
      ->check(dfs::SizeFlag())
      ->check(dfs::SizeInRange(dfs::limits::kMinChunkSize, dfs::limits::kMaxChunkSize))
      ->capture_default_str();
  app.add_option("--dead-after", dead_after, "a node silent this long is dead")
      ->check(dfs::DurationFlag())
      ->capture_default_str();
  std::string lease_time = "30s";
  app.add_option("--lease-time", lease_time, "a writer silent this long loses its lease")
      ->check(dfs::DurationFlag())
      ->capture_default_str();
  std::string free_grace = "30s";
  app.add_option("--free-grace", free_grace,
                 "a deleted or overwritten file's chunks stay on the nodes this long, for readers that started "
                 "before")
      ->check(dfs::DurationFlag())
      ->capture_default_str();
  app.add_option("--min-replicas", o.min_replicas,
                 "a chunk is written to fewer nodes than its replication when no more can take it, if at least this "
                 "many (repair restores the rest)")
      ->check(CLI::Range(uint32_t{1}, dfs::limits::kMaxReplication))
      ->capture_default_str();
  app.add_option("--repair-writes-per-node", o.repair_writes_per_node,
                 "re-replication: copies one node may receive at once (each a credit-paced stream)")
      ->check(CLI::Range(uint32_t{1}, uint32_t{64}))
      ->capture_default_str();
  app.add_option("--repair-writes-per-busy-node", o.repair_writes_per_busy_node,
                 "re-replication: the same for a node clients are writing to now (their writes come first)")
      ->check(CLI::Range(uint32_t{1}, uint32_t{64}))
      ->capture_default_str();
  app.add_option("--repair-reads-per-node", o.repair_reads_per_node,
                 "re-replication: copies one node may send at once")
      ->check(CLI::Range(uint32_t{1}, uint32_t{64}))
      ->capture_default_str();
  app.add_option("--repair-max-copies", o.repair_max_copies, "re-replication: copies under way in the cluster")
      ->check(CLI::Range(uint32_t{1}, uint32_t{100000}))
      ->capture_default_str();
  std::string repair_holdoff = "10s";
  app.add_option("--repair-holdoff", repair_holdoff,
                 "after a start, repair nothing this long: the nodes first report what they hold")
      ->check(dfs::DurationFlag())
      ->capture_default_str();
  app.add_option("--balance-threshold", o.balance_threshold,
                 "the balancer moves chunks while a node's utilisation is further than this fraction of the mean "
                 "from it (0.1: 10 %), and more than one percentage point; 0: off")
      ->check(CLI::Range(0.0, 10.0))
      ->capture_default_str();
  app.add_option("--checkpoint-every", o.checkpoint_every_records, "journal records between background checkpoints")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40))
      ->capture_default_str();
  std::string retry_cache_size;
  app.add_option("--retry-cache-size", retry_cache_size,
                 "memory for answers to recent mutations, so a retried one is not applied twice (default " +
                     dfs::FormatSize(o.retry_cache_bytes) + ")")
      ->check(dfs::SizeFlag())
      ->check(dfs::SizeInRange(dfs::kMiB, dfs::kTiB));
  app.add_flag("--unsafe-unverified-writes", o.unverified_writes,
               "UNSAFE (benchmarks, tests): complete writes without the replicas' checksum reports");
  dfs::AddDiskFaultFlags(app, o.disk_faults);
  app.add_option("--unsafe-fault-crash-during-checkpoint", o.fault_crash_during_checkpoint,
                 "UNSAFE (tests): the checkpoint writer exits (status 85) after N entries")
      ->check(dfs::CountFlag());
  app.add_option("--unsafe-fault-crash-after-journal-append", o.fault_crash_after_journal_append,
                 "UNSAFE (tests): exit (status 85) once journal record N is durable, before it is acknowledged")
      ->check(dfs::CountFlag());
  app.add_option("--log-level", o.log_level, "trace|debug|info|warn|error")->capture_default_str();
  // Pinned by default: the master moves only small messages, each handed
  // between its loop and libzmq's I/O thread (daemon/cpu_affinity.h).
  std::string cpu = "auto";
  app.add_option("--cpu", cpu,
                 "CPU for all of this daemon's threads: auto (the one the fewest other dfs daemons here hold), "
                 "all (let the scheduler place them), or a number")
      ->check(dfs::CpuFlag())
      ->capture_default_str();
  app.add_flag("--insecure", o.insecure, "allow a non-loopback --bind without CURVE keys");
  if (auto rc = dfs::ParseFlags(app, argc, argv, "dfs-master")) return *rc;
  // Before any thread exists, so every thread (libzmq's too) inherits it.
  const std::optional<int> placed_cpu = dfs::PlaceDaemonForMain(cpu, "dfs-master");
  if (!placed_cpu) return 1;
  o.chunk_size = *dfs::ParseSize(chunk_size);
  o.dead_after = *dfs::ParseDuration(dead_after);
  o.lease_time = *dfs::ParseDuration(lease_time);
  o.repair_holdoff = *dfs::ParseDuration(repair_holdoff);
  o.free_grace = *dfs::ParseDuration(free_grace);
  if (!retry_cache_size.empty()) o.retry_cache_bytes = *dfs::ParseSize(retry_cache_size);
  if (o.dead_after < std::chrono::milliseconds(500)) {
    std::fprintf(stderr, "dfs-master: --dead-after must be at least 500ms\n");
    return 2;
  }
  dfs::master::MasterServer server(o);
  return dfs::RunDaemon({.program = "dfs-master",
                         .logger = "master",
                         .log_level = o.log_level,
                         .bind = o.bind,
                         .insecure = o.insecure,
                         .cpu = cpu,
                         .placed_cpu = *placed_cpu},
                        [&] { return server.Start(); }, [&](int stop_fd) { return server.Run(stop_fd); });
}
