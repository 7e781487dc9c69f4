// Commands about the cluster itself: nodes (fsck arrives with issues 3-5;
// df, which mixes node space and namespace totals, is in usage_commands.cc).
#include <fmt/format.h>

#include "client/cli/commands.h"
#include "common/units.h"

namespace dfs::cli {
namespace {

std::string Ago(uint64_t ms) {
  if (ms < 1000) return fmt::format("{}ms", ms);
  if (ms < 120'000) return fmt::format("{:.1f}s", ms / 1000.0);
  return fmt::format("{}m", ms / 60'000);
}

void Nodes(Context& ctx) {
  client::Client* c = ctx.Connect();
  if (c == nullptr) return;
  auto nodes = c->ListNodes();
  if (!nodes) return ctx.Fail(nodes.error());
  if (ctx.out.json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& n : *nodes) {
      arr.push_back({{"id", n.id},
                     {"address", n.address},
                     {"state", n.alive ? "alive" : "dead"},
                     {"capacity", n.capacity},
                     {"used", n.used},
                     {"available", n.available},
                     {"chunks", n.chunks},
                     {"streams_open", n.streams_open},
                     {"credit_in_use", n.credit_in_use},
                     {"last_heartbeat_ms_ago", n.last_heartbeat_ms_ago},
                     {"disk_failed", n.disk_failed},
                     {"disk_error", n.disk_error}});
    }
    PrintJson({{"nodes", arr}});
    return;
  }
  std::vector<std::vector<std::string>> rows{
      {"ID", "ADDRESS", "STATE", "DISK", "CAPACITY", "USED", "AVAILABLE", "CHUNKS", "LAST SEEN"}};
  size_t alive = 0;
  for (const auto& n : *nodes) {
    alive += n.alive ? 1 : 0;
    rows.push_back({n.id, n.address, n.alive ? "alive" : "dead", n.disk_failed ? "failed" : "ok",
                    FormatSize(n.capacity), FormatSize(n.used),
                    FormatSize(n.available), std::to_string(n.chunks), Ago(n.last_heartbeat_ms_ago) + " ago"});
  }
  std::fputs(FormatTable(rows, {4, 5, 6, 7, 8}).c_str(), stdout);
  std::printf("%zu nodes, %zu alive\n", nodes->size(), alive);
  for (const auto& n : *nodes) {
    if (n.disk_failed) std::printf("node %s: disk failed: %s\n", n.id.c_str(), n.disk_error.c_str());
  }
}

}  // namespace

void RegisterClusterCommands(CLI::App& app, Context& ctx) {
  Examples(app.add_subcommand("nodes", "list file nodes: address, state, space, chunks"),
           {"dfs-cli nodes", "dfs-cli --json nodes | jq '.nodes[] | select(.state == \"dead\") | .id'"})
      ->callback([&ctx] { Nodes(ctx); });
}

}  // namespace dfs::cli
