// dfs-node: flags in, NodeServer out.
#include <malloc.h>

#include <cstdio>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "common/cpu_affinity.h"
#include "common/flags.h"
#include "common/logging.h"
#include "common/net.h"
#include "common/signals.h"
#include "filenode/node_server.h"
#include "filenode/volume_format.h"

int main(int argc, char** argv) {
  // Received frames (1 MiB) are malloc'd by ZeroMQ. Above glibc's mmap
  // threshold (128 KiB until frees adapt it) each would be a fresh mmap,
  // page-faulted in and unmapped again; below it freed frames are reused.
  // The credit pool bounds how many are alive at once.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  dfs::filenode::NodeOptions o;
  std::string capacity;
  std::string credit_pool;
  std::string upstream_silence;
  std::string downstream_timeout;
  std::string volume_max_chunk;
  std::string volume_prepare;
  CLI::App app{"dfs-node: stores chunks of a dfs cluster on local disk"};
  app.add_option("--dir", o.dir, "data folder (chunks, node.id, node.addr)")->required();
  app.add_option("--master", o.master, "the master's HOST:PORT")->required();
  app.add_option("--bind", o.bind, "address to bind")->capture_default_str();
  app.add_option("--port", o.port, "data port; 0 picks a free one")->capture_default_str();
  app.add_option("--advertise", o.advertise, "host others dial (default: --bind)");
  app.add_option("--capacity", capacity, "bytes to offer (default: the disk's size)")->check(dfs::SizeFlag());
  app.add_option("--credit-pool", credit_pool, "bytes of write frames buffered for all streams (default 256M)")
      ->check(dfs::SizeFlag());
  app.add_option("--stream-idle-timeout", upstream_silence, "abort a write whose sender is silent this long (30s)")
      ->check(dfs::DurationFlag());
  app.add_option("--downstream-timeout", downstream_timeout,
                 "fail writes whose next node answers nothing this long (3s)")
      ->check(dfs::DurationFlag());
  app.add_option("--volume-max-chunk", volume_max_chunk,
                 "chunks up to this size share volume files and fsyncs; 0: every chunk in its own file (1M)")
      ->check(dfs::SizeFlag());
  app.add_option("--volume-prepare", volume_prepare,
                 "synced zeros kept ahead of the volume being written, so its syncs write data only, at twice "
                 "the bytes written (e.g. 8M); 0: none (the default)")
      ->check(dfs::SizeFlag());
  app.add_flag("--keep-written-pages", o.keep_written_pages,
               "leave a big chunk's pages in the page cache once written (default: write them out as they come "
               "and drop them, so the cache keeps what is read and writers do not crowd each other)");
  dfs::AddDiskFaultFlags(app, o.disk_faults);
  app.add_option("--log-level", o.log_level, "trace|debug|info|warn|error")->capture_default_str();
  // On one CPU while only small messages flow, spread while large chunks
  // stream: those need the event loop and libzmq's I/O thread running at
  // once (common/cpu_affinity.h).
  std::string cpu = "adaptive";
  app.add_option("--cpu", cpu,
                 "CPU for all of this daemon's threads: all (let the scheduler place them), auto (the one the "
                 "fewest other dfs daemons here hold: small files faster, large ones slower), adaptive (as auto, "
                 "spread over all CPUs while large chunks stream), or a number")
      ->check(dfs::CpuFlag())
      ->capture_default_str();
  app.add_flag("--insecure", o.insecure, "allow a non-loopback --bind without CURVE keys");
  if (auto rc = dfs::ParseFlags(app, argc, argv, "dfs-node")) return *rc;
  // Before any thread exists, so every thread (libzmq's too) inherits it.
  o.wide_cpus = dfs::AllowedCpus();
  const std::optional<int> placed_cpu = dfs::PlaceDaemonForMain(cpu, "dfs-node");
  if (!placed_cpu) return 1;
  if (cpu == "adaptive") o.adaptive_cpu = *placed_cpu;
  if (!capacity.empty()) o.capacity = *dfs::ParseSize(capacity);
  if (!credit_pool.empty()) o.credit_pool = *dfs::ParseSize(credit_pool);
  if (!upstream_silence.empty()) o.upstream_silence = *dfs::ParseDuration(upstream_silence);
  if (!downstream_timeout.empty()) o.downstream_timeout = *dfs::ParseDuration(downstream_timeout);
  if (!volume_max_chunk.empty()) o.volume_max_chunk = *dfs::ParseSize(volume_max_chunk);
  if (!volume_prepare.empty()) o.volume_prepare = *dfs::ParseSize(volume_prepare);
  if (o.volume_max_chunk > dfs::filenode::kMaxVolumeChunk) {
    std::fprintf(stderr, "dfs-node: --volume-max-chunk is at most %llu bytes (64M)\n",
                 static_cast<unsigned long long>(dfs::filenode::kMaxVolumeChunk));
    return 2;
  }
  if (o.credit_pool == 0) {
    std::fprintf(stderr, "dfs-node: --credit-pool must be at least one frame\n");
    return 2;
  }
  if (auto m = dfs::ParseHostPort(o.master, 5550); !m) {
    std::fprintf(stderr, "dfs-node: --master: %s\n", m.error().message().c_str());
    return 2;
  }
  if (!dfs::IsLoopbackHost(o.bind) && !o.insecure) {
    std::fprintf(stderr,
                 "dfs-node: refusing to bind %s without CURVE keys; use a loopback address or --insecure\n",
                 o.bind.c_str());
    return 2;
  }
  if (auto s = dfs::InitLogging("node", o.log_level); !s.ok()) {
    std::fprintf(stderr, "dfs-node: %s\n", s.message().c_str());
    return 2;
  }
  auto signals = dfs::ShutdownSignals::Install();
  if (!signals) {
    std::fprintf(stderr, "dfs-node: %s\n", signals.error().message().c_str());
    return 1;
  }
  dfs::filenode::NodeServer server(o);
  if (auto s = server.Start(); !s.ok()) {
    std::fprintf(stderr, "dfs-node: %s\n", s.message().c_str());
    return 1;
  }
  if (*placed_cpu >= 0) spdlog::info("all threads on CPU {} (--cpu {})", *placed_cpu, cpu);
  if (auto s = server.Run(signals->fd()); !s.ok()) {
    spdlog::critical("node failed: {}", s.ToString());
    return 1;
  }
  spdlog::info("node stopped");
  return 0;
}
