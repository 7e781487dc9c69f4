// dfs-node: flags in, NodeServer out.
#include <malloc.h>

#include <cstdio>

#include <CLI/CLI.hpp>

#include "common/flags.h"
#include "common/net.h"
#include "daemon/cpu_affinity.h"
#include "daemon/daemon_main.h"
#include "filenode/node_server.h"
#include "filenode/volume_format.h"

namespace {

// Flags that are parsed into text first: sizes and durations, and --cpu.
struct FlagText {
  std::string capacity;
  std::string reserve;
  std::string max_write_rate;
  std::string scrub_rate;
  std::string scrub_interval;
  std::string credit_pool;
  std::string upstream_silence;
  std::string downstream_timeout;
  std::string volume_max_chunk;
  std::string volume_prepare;
  std::string volume_size;
  std::string compact_rate;
  std::string kill_during_compaction;
  // On one CPU while only small messages flow, spread while large chunks
  // stream: those need the event loop and libzmq's I/O thread running at
  // once (daemon/cpu_affinity.h).
  std::string cpu = "adaptive";
};

void AddFlags(CLI::App& app, dfs::filenode::NodeOptions& o, FlagText& t) {
  app.add_option("--dir", o.dir, "data folder (chunks, node.id, node.addr)")->required();
  app.add_option("--master", o.master, "the master's HOST:PORT")->required();
  app.add_option("--bind", o.bind, "address to bind")->capture_default_str();
  app.add_option("--port", o.port, "data port; 0 picks a free one")->capture_default_str();
  app.add_option("--advertise", o.advertise, "host others dial (default: --bind)");
  app.add_option("--capacity", t.capacity, "bytes to offer (default: the disk's size)")->check(dfs::SizeFlag());
  app.add_option("--reserve", t.reserve, "space to keep free on the disk; no chunk is placed into it (e.g. 10G)")
      ->check(dfs::SizeFlag());
  app.add_option("--max-write-rate", t.max_write_rate,
                 "bytes per second written into chunks at most, clients' and copies' alike (e.g. 100M); the "
                 "slower acknowledgements steer new chunks to other nodes (default: no cap)")
      ->check(dfs::SizeFlag());
  app.add_option("--scrub-rate", t.scrub_rate,
                 "bytes per second the scrubber re-reads and verifies in the background; 0: off (default 4M)")
      ->check(dfs::SizeFlag());
  app.add_option("--scrub-interval", t.scrub_interval,
                 "a scrub pass over every chunk starts this long after the one before began (default 1h)")
      ->check(dfs::DurationFlag());
  app.add_option("--credit-pool", t.credit_pool, "bytes of write frames buffered for all streams (default 256M)")
      ->check(dfs::SizeFlag());
  app.add_option("--stream-idle-timeout", t.upstream_silence, "abort a write whose sender is silent this long (30s)")
      ->check(dfs::DurationFlag());
  app.add_option("--downstream-timeout", t.downstream_timeout,
                 "fail writes whose next node answers nothing this long (3s)")
      ->check(dfs::DurationFlag());
  app.add_option("--volume-max-chunk", t.volume_max_chunk,
                 "chunks up to this size share volume files and fsyncs; 0: every chunk in its own file (1M)")
      ->check(dfs::SizeFlag());
  app.add_option("--volume-prepare", t.volume_prepare,
                 "synced zeros kept ahead of the volume being written, so its syncs write data only, at twice "
                 "the bytes written (e.g. 8M); 0: none (the default)")
      ->check(dfs::SizeFlag());
  app.add_option("--volume-size", t.volume_size,
                 "a volume file takes small chunks until it would pass this size; then a new one starts (256M)")
      ->check(dfs::SizeFlag());
  app.add_option("--compact-threshold", o.compaction.threshold,
                 "compact a full volume once more than this fraction of its bytes is dead (deleted or replaced "
                 "chunks): its live chunks are copied to the volume being written and it is removed; 0: never")
      ->check(CLI::Range(0.0, 0.99))
      ->capture_default_str();
  app.add_option("--compact-rate", t.compact_rate,
                 "bytes per second compaction copies at most, between clients' writes (default 32M)")
      ->check(dfs::SizeFlag());
  app.add_option("--unsafe-fault-kill-during-compaction", t.kill_during_compaction,
                 "UNSAFE (tests): SIGKILL the node the first time a compaction reaches this step: read, written, "
                 "synced, switched, repinned or unlinked");
  app.add_flag("--keep-written-pages", o.keep_written_pages,
               "leave a big chunk's pages in the page cache once written (default: write them out as they come "
               "and drop them, so the cache keeps what is read and writers do not crowd each other)");
  dfs::AddDiskFaultFlags(app, o.disk_faults);
  app.add_option("--log-level", o.log_level, "trace|debug|info|warn|error")->capture_default_str();
  app.add_option("--cpu", t.cpu,
                 "CPU for all of this daemon's threads: all (let the scheduler place them), auto (the one the "
                 "fewest other dfs daemons here hold: small files faster, large ones slower), adaptive (as auto, "
                 "spread over all CPUs while large chunks stream), or a number")
      ->check(dfs::CpuFlag())
      ->capture_default_str();
  app.add_flag("--insecure", o.insecure, "allow a non-loopback --bind without CURVE keys");
}

// The text flags into `o`; false (after one line on stderr) for a usage error.
bool ApplyFlags(const FlagText& t, dfs::filenode::NodeOptions& o) {
  if (!t.capacity.empty()) o.capacity = *dfs::ParseSize(t.capacity);
  if (!t.reserve.empty()) o.reserve = *dfs::ParseSize(t.reserve);
  if (!t.max_write_rate.empty()) o.max_write_rate = *dfs::ParseSize(t.max_write_rate);
  if (!t.scrub_rate.empty()) o.scrub_rate = *dfs::ParseSize(t.scrub_rate);
  if (!t.scrub_interval.empty()) o.scrub_interval = *dfs::ParseDuration(t.scrub_interval);
  if (!t.credit_pool.empty()) o.credit_pool = *dfs::ParseSize(t.credit_pool);
  if (!t.upstream_silence.empty()) o.upstream_silence = *dfs::ParseDuration(t.upstream_silence);
  if (!t.downstream_timeout.empty()) o.downstream_timeout = *dfs::ParseDuration(t.downstream_timeout);
  if (!t.volume_max_chunk.empty()) o.volume_max_chunk = *dfs::ParseSize(t.volume_max_chunk);
  if (!t.volume_prepare.empty()) o.volume_prepare = *dfs::ParseSize(t.volume_prepare);
  if (!t.volume_size.empty()) o.volume_size = *dfs::ParseSize(t.volume_size);
  if (!t.compact_rate.empty()) o.compaction.rate = *dfs::ParseSize(t.compact_rate);
  if (!t.kill_during_compaction.empty()) {
    auto step = dfs::filenode::ParseCompactionStep(t.kill_during_compaction);
    if (!step || *step == dfs::filenode::CompactionStep::kNone) {
      std::fprintf(stderr,
                   "dfs-node: --unsafe-fault-kill-during-compaction: no step '%s' (read, written, synced, switched, "
                   "repinned, unlinked)\n",
                   t.kill_during_compaction.c_str());
      return false;
    }
    o.compaction.kill_at = *step;
  }
  if (o.volume_size < (64u << 10)) {
    std::fprintf(stderr, "dfs-node: --volume-size is at least 64K\n");
    return false;
  }
  if (o.compaction.rate == 0) {
    std::fprintf(stderr, "dfs-node: --compact-rate must be more than 0 (--compact-threshold 0 turns compaction off)\n");
    return false;
  }
  if (o.volume_max_chunk > dfs::filenode::kMaxVolumeChunk) {
    std::fprintf(stderr, "dfs-node: --volume-max-chunk is at most %llu bytes (64M)\n",
                 static_cast<unsigned long long>(dfs::filenode::kMaxVolumeChunk));
    return false;
  }
  if (o.credit_pool == 0) {
    std::fprintf(stderr, "dfs-node: --credit-pool must be at least one frame\n");
    return false;
  }
  if (auto m = dfs::ParseHostPort(o.master, 5550); !m) {
    std::fprintf(stderr, "dfs-node: --master: %s\n", m.error().message().c_str());
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  // Received frames (1 MiB) are malloc'd by ZeroMQ. Above glibc's mmap
  // threshold (128 KiB until frees adapt it) each would be a fresh mmap,
  // page-faulted in and unmapped again; below it freed frames are reused.
  // The credit pool bounds how many are alive at once.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  dfs::filenode::NodeOptions o;
  FlagText t;
  CLI::App app{"dfs-node: stores chunks of a dfs cluster on local disk"};
  AddFlags(app, o, t);
  if (auto rc = dfs::ParseFlags(app, argc, argv, "dfs-node")) return *rc;
  // Before any thread exists, so every thread (libzmq's too) inherits it.
  o.wide_cpus = dfs::AllowedCpus();
  const std::optional<int> placed_cpu = dfs::PlaceDaemonForMain(t.cpu, "dfs-node");
  if (!placed_cpu) return 1;
  if (t.cpu == "adaptive") o.adaptive_cpu = *placed_cpu;
  if (!ApplyFlags(t, o)) return 2;
  dfs::filenode::NodeServer server(o);
  return dfs::RunDaemon({.program = "dfs-node",
                         .logger = "node",
                         .log_level = o.log_level,
                         .bind = o.bind,
                         .insecure = o.insecure,
                         .cpu = t.cpu,
                         .placed_cpu = *placed_cpu},
                        [&] { return server.Start(); }, [&](int stop_fd) { return server.Run(stop_fd); });
}
