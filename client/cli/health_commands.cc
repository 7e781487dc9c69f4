// Commands that change or show how the cluster keeps data whole: setrep,
// decommission, balancer (fsck and nodes are in cluster_commands.cc).
//
// balancer --json: {"holdoff","repair_queue","repairing","repaired","moving",
//   "moved","threshold","spread","nodes":[{"id","utilisation","chunks",
//   "state","copies_in","copies_out"}]}
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "client/cli/commands.h"
#include "common/units.h"

namespace dfs::cli {
namespace {

using Clock = std::chrono::steady_clock;

// Polls `done` every 200 ms, printing `progress` on stderr at most once a
// second (not with -q); false, with an error, on a failure of the query.
template <typename Done>
bool WaitUntil(Context& ctx, Done done) {
  auto last = Clock::now();
  for (;;) {
    std::string progress;
    auto r = done(&progress);
    if (!r) {
      ctx.Fail(r.error());
      return false;
    }
    if (*r) return true;
    if (!ctx.quiet && Clock::now() - last >= std::chrono::seconds(1)) {
      std::fprintf(stderr, "%s\n", progress.c_str());
      last = Clock::now();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

void SetRep(Context& ctx, uint32_t replication, const std::string& path, bool wait) {
  client::Client* c = ctx.Connect();
  if (c == nullptr) return;
  auto r = c->SetReplication(path, replication);
  if (!r) return ctx.Fail(r.error());
  if (ctx.out.json && !wait) {
    PrintJson({{"path", path}, {"replication", replication}, {"files", r->first}, {"chunks", r->second}});
    return;
  }
  if (!ctx.out.json) {
    std::printf("%s: replication %u for %llu files (%llu chunks to copy or trim)\n", path.c_str(), replication,
                static_cast<unsigned long long>(r->first), static_cast<unsigned long long>(r->second));
  }
  if (!wait) return;
  const bool ok = WaitUntil(ctx, [&](std::string* progress) -> Result<bool> {
    DFS_ASSIGN_OR_RETURN(auto f, c->Fsck(path, 0));
    *progress = fmt::format("{}: {} chunks short of replicas, {} being copied", path, f.under_replicated + f.missing,
                            f.repairing);
    return f.healthy();
  });
  if (!ok) return;
  if (ctx.out.json) {
    PrintJson({{"path", path}, {"replication", replication}, {"files", r->first}, {"chunks", r->second}});
  } else {
    std::printf("%s: every chunk at replication %u\n", path.c_str(), replication);
  }
}

void Decommission(Context& ctx, const std::string& node, bool cancel, bool wait) {
  client::Client* c = ctx.Connect();
  if (c == nullptr) return;
  auto id = c->Decommission(node, cancel);
  if (!id) return ctx.Fail(id.error());
  if (cancel) {
    std::printf("node %s: decommission cancelled; it takes new chunks again\n", id->c_str());
    return;
  }
  if (!wait) {
    std::printf("node %s: decommissioning; its chunks are being copied to other nodes (dfs-cli nodes shows when it "
                "is retired)\n",
                id->c_str());
    return;
  }
  const bool ok = WaitUntil(ctx, [&](std::string* progress) -> Result<bool> {
    DFS_ASSIGN_OR_RETURN(auto nodes, c->ListNodes());
    for (const auto& n : nodes) {
      if (n.id != *id) continue;
      if (!n.alive) return Status::Unavailable(fmt::format("node {} died while decommissioning", *id));
      *progress = fmt::format("node {}: decommissioning, {} chunks on it", *id, n.chunks);
      return n.retired;
    }
    return Status::NotFound(fmt::format("node {} is gone", *id));
  });
  if (ok) std::printf("node %s: retired; it may be stopped\n", id->c_str());
}

void Balancer(Context& ctx) {
  client::Client* c = ctx.Connect();
  if (c == nullptr) return;
  auto r = c->Balancer();
  if (!r) return ctx.Fail(r.error());
  if (ctx.out.json) {
    nlohmann::json nodes = nlohmann::json::array();
    for (const auto& n : r->nodes) {
      nodes.push_back({{"id", n.id},
                       {"utilisation", n.utilisation},
                       {"chunks", n.chunks},
                       {"state", n.state},
                       {"copies_in", n.copies_in},
                       {"copies_out", n.copies_out}});
    }
    PrintJson({{"holdoff", r->holdoff},
               {"repair_queue", r->repair_queue},
               {"repairing", r->repairing},
               {"repaired", r->repaired},
               {"moving", r->moving},
               {"moved", r->moved},
               {"threshold", r->threshold},
               {"spread", r->spread},
               {"nodes", nodes}});
    return;
  }
  std::printf("repair: %llu chunks queued, %llu copies under way, %llu done%s\n",
              static_cast<unsigned long long>(r->repair_queue), static_cast<unsigned long long>(r->repairing),
              static_cast<unsigned long long>(r->repaired), r->holdoff ? " (holding off: nodes still reporting)" : "");
  std::printf("balancer: %llu moves under way, %llu done; spread %.1f points (threshold %.0f %% of the mean)%s\n",
              static_cast<unsigned long long>(r->moving), static_cast<unsigned long long>(r->moved),
              100 * r->spread, 100 * r->threshold, r->threshold <= 0 ? ", off" : "");
  std::vector<std::vector<std::string>> rows{{"NODE", "STATE", "USED", "CHUNKS", "COPIES IN", "COPIES OUT"}};
  for (const auto& n : r->nodes) {
    rows.push_back({n.id, n.state, fmt::format("{:.1f} %", 100 * n.utilisation), std::to_string(n.chunks),
                    std::to_string(n.copies_in), std::to_string(n.copies_out)});
  }
  std::fputs(FormatTable(rows, {2, 3, 4, 5}).c_str(), stdout);
}

}  // namespace

void RegisterHealthCommands(CLI::App& app, Context& ctx) {
  struct SetRepArgs {
    uint32_t replication = 0;
    std::string path;
    bool wait = false;
  };
  auto s = std::make_shared<SetRepArgs>();
  auto* setrep = app.add_subcommand("setrep", "change the replication of a file or of every file under a folder");
  setrep->add_option("N", s->replication, "replicas wanted")
      ->required()
      ->check(CLI::Range(uint32_t{1}, limits::kMaxReplication));
  setrep->add_option("PATH", s->path, "a file or folder in dfs")->required();
  setrep->add_flag("-w,--wait", s->wait, "wait until every chunk has N replicas (progress on stderr)");
  setrep->callback([&ctx, s] { SetRep(ctx, s->replication, s->path, s->wait); });
  Examples(setrep, {"dfs-cli setrep 2 /logs", "dfs-cli setrep --wait 3 /photos/2026"});

  struct DecommissionArgs {
    std::string node;
    bool cancel = false;
    bool wait = false;
  };
  auto d = std::make_shared<DecommissionArgs>();
  auto* dec = app.add_subcommand(
      "decommission", "retire a node: it takes no new chunk and its chunks are copied away, then it may be stopped");
  dec->add_option("NODE", d->node, "the node's id or address (dfs-cli nodes)")->required();
  dec->add_flag("--cancel", d->cancel, "make it a normal node again");
  dec->add_flag("-w,--wait", d->wait, "wait until it is retired (progress on stderr)");
  dec->callback([&ctx, d] { Decommission(ctx, d->node, d->cancel, d->wait); });
  Examples(dec, {"dfs-cli decommission --wait 3f2a9c1b7d4e", "dfs-cli decommission --cancel 127.0.0.1:7001"});

  Examples(app.add_subcommand("balancer", "what repair and the balancer are doing: queue, copies, moves, node use"),
           {"dfs-cli balancer", "dfs-cli --json balancer | jq .moving"})
      ->callback([&ctx] { Balancer(ctx); });
}

}  // namespace dfs::cli
