// dfs-bench: throughput runs against a dfs cluster.
//   meta          metadata ops from C clients with 32 requests in flight each
//   master-scale  a private master with simulated nodes and N files
//   large         one big file put from memory, then read back (MiB/s)
//   small         C writers put N small files, then C readers get them (files/s)
#include <CLI/CLI.hpp>

#include "bench/workloads.h"
#include "common/flags.h"
#include "common/logging.h"

int main(int argc, char** argv) {
  dfs::client::KeepDataBuffersInHeap();
  CLI::App app{"dfs-bench: throughput runs against a dfs cluster"};
  std::string master;
  bool json = false;
  app.add_option("--master", master, "the master's HOST:PORT (default $DFS_MASTER, else 127.0.0.1:5550)");
  app.add_flag("--json", json, "one JSON document on stdout");
  app.require_subcommand(1);

  dfs::bench::MetaOptions meta;
  auto* m = app.add_subcommand("meta", "mkdir/create, stat, list, rename, delete phases");
  m->add_option("--ops", meta.ops, "operations per phase (all clients)")->capture_default_str();
  m->add_option("--clients", meta.clients, "client threads")->check(CLI::Range(1, 256))->capture_default_str();
  m->add_option("--depth", meta.depth, "requests in flight per client")->check(CLI::Range(1, 4096))->capture_default_str();
  m->add_flag("--create", meta.create, "empty files instead of directories");

  dfs::bench::MasterScaleOptions scale;
  auto* s = app.add_subcommand("master-scale", "a private master, M simulated nodes, N one-chunk files");
  s->add_option("--files", scale.files, "files to create")->capture_default_str();
  s->add_option("--nodes", scale.nodes, "simulated nodes")->check(CLI::Range(0, 100000))->capture_default_str();
  s->add_option("--mkdir-ops", scale.mkdir_ops, "mkdir ops per throughput phase")->capture_default_str();
  s->add_option("--clients", scale.clients, "client threads")->check(CLI::Range(1, 256))->capture_default_str();
  s->add_option("--master-bin", scale.master_bin, "dfs-master to run (default: from the build tree, else PATH)");
  s->add_option("--dir", scale.dir, "the master's folder (default: a temp folder, removed after)");

  dfs::bench::LargeOptions large;
  std::string large_size = "1G", large_chunk;
  auto* l = app.add_subcommand("large", "put one file from memory, then get it back and check it");
  l->add_option("--size", large_size, "file size, e.g. 1G")->check(dfs::SizeFlag())->capture_default_str();
  l->add_option("--replication,-r", large.replication, "copies of each chunk (default: the cluster's)")
      ->check(CLI::Range(1, 16));
  l->add_option("--chunk-size", large_chunk, "bytes per chunk (default: the cluster's)")->check(dfs::SizeFlag());
  l->add_option("--parallel", large.parallel, "chunks in flight")->check(CLI::Range(1, 64))->capture_default_str();
  l->add_flag("--drop-caches", large.drop_caches, "sync and drop the page cache before the get (root only)");
  l->add_flag("--verify-bytes", large.verify_bytes, "compare every byte read, on top of the CRC checks");
  l->add_flag("--keep", large.keep, "leave the file in dfs");

  dfs::bench::SmallOptions small;
  std::string small_size = "4K";
  auto* sm = app.add_subcommand("small", "C writers put N small files, then C readers get them");
  sm->add_option("--files", small.files, "files in all")->capture_default_str();
  sm->add_option("--size", small_size, "bytes per file, e.g. 4K")->check(dfs::SizeFlag())->capture_default_str();
  sm->add_option("--clients", small.clients, "client threads")->check(CLI::Range(1, 256))->capture_default_str();
  sm->add_option("--replication,-r", small.replication, "copies of each chunk (default: the cluster's)")
      ->check(CLI::Range(1, 16));
  sm->add_flag("--chain", small.chain, "send each file node to node down its pipeline (put --chain)");
  sm->add_flag("--drop-caches", small.drop_caches, "sync and drop the page cache before the gets (root only)");

  if (auto rc = dfs::ParseFlags(app, argc, argv, "dfs-bench")) return *rc;
  if (auto st = dfs::InitLogging("bench", "error"); !st.ok()) return 2;
  meta.client.master = dfs::client::DefaultMaster(master);
  meta.client.name = "dfs-bench";
  if (m->parsed()) return dfs::bench::RunMeta(meta, json);
  if (s->parsed()) return dfs::bench::RunMasterScale(scale, json);
  large.client = meta.client;
  small.client = meta.client;
  // A data op waits on fsyncs down a pipeline: give the master's answers
  // (CompleteWrite waits for the nodes' reports) more room than a mkdir.
  large.client.timeout = small.client.timeout = std::chrono::milliseconds(5000);
  if (l->parsed()) {
    large.size = *dfs::ParseSize(large_size);
    if (!large_chunk.empty()) large.chunk_size = *dfs::ParseSize(large_chunk);
    return dfs::bench::RunLarge(large, json);
  }
  if (sm->parsed()) {
    small.size = *dfs::ParseSize(small_size);
    return dfs::bench::RunSmall(small, json);
  }
  return 2;
}
