// dfs-bench: throughput runs against a dfs cluster.
//   meta          metadata ops from C clients with 32 requests in flight each
//   master-scale  a private master with simulated nodes and N files
// (large and small, the data path workloads, arrive with issue 4.)
#include <CLI/CLI.hpp>

#include "bench/workloads.h"
#include "common/flags.h"
#include "common/logging.h"

int main(int argc, char** argv) {
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

  if (auto rc = dfs::ParseFlags(app, argc, argv, "dfs-bench")) return *rc;
  if (auto st = dfs::InitLogging("bench", "error"); !st.ok()) return 2;
  meta.client.master = dfs::client::DefaultMaster(master);
  meta.client.name = "dfs-bench";
  if (m->parsed()) return dfs::bench::RunMeta(meta, json);
  if (s->parsed()) return dfs::bench::RunMasterScale(scale, json);
  return 2;
}
