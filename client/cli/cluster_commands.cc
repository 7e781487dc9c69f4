// Commands about the cluster itself: nodes, fsck (df, which mixes node
// space and namespace totals, is in usage_commands.cc).
//
// fsck --json: {"path","healthy","files","chunks","bytes","under_replicated",
//   "missing","repairing","repair_queue","repaired","holdoff","truncated",
//   "unhealthy":[{"path","chunks":[{"id","index","live","wanted","repairing"}]}]}
#include <memory>
#include <map>
#include <string>

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
                     {"state", n.state()},
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
    rows.push_back({n.id, n.address, n.state(), n.disk_failed ? "failed" : "ok",
                    FormatSize(n.capacity), FormatSize(n.used),
                    FormatSize(n.available), std::to_string(n.chunks), Ago(n.last_heartbeat_ms_ago) + " ago"});
  }
  std::fputs(FormatTable(rows, {4, 5, 6, 7, 8}).c_str(), stdout);
  std::printf("%zu nodes, %zu alive\n", nodes->size(), alive);
  for (const auto& n : *nodes) {
    if (n.disk_failed) std::printf("node %s: disk failed: %s\n", n.id.c_str(), n.disk_error.c_str());
  }
}

void Fsck(Context& ctx, const std::string& path, bool verbose) {
  client::Client* c = ctx.Connect();
  if (c == nullptr) return;
  auto resolved = client::ResolvePath(path, c->working_directory());
  if (!resolved) return ctx.Fail(resolved.error());
  auto r = c->Fsck(*resolved);
  if (!r) return ctx.Fail(r.error());
  if (!r->healthy()) ctx.exit_code = 1;
  if (ctx.out.json) {
    nlohmann::json files = nlohmann::json::array();
    nlohmann::json problems = nlohmann::json::array();  // DESIGN.md's flat form
    for (const auto& f : r->unhealthy) {
      nlohmann::json chunks = nlohmann::json::array();
      for (const auto& ch : f.chunks) {
        chunks.push_back({{"id", ch.id},
                          {"index", ch.index},
                          {"live", ch.live},
                          {"wanted", ch.wanted},
                          {"repairing", ch.repairing},
                          {"corrupt", ch.corrupt},
                          {"issue", ch.issue()}});
        problems.push_back({{"path", f.path}, {"chunk", ch.id}, {"index", ch.index}, {"issue", ch.issue()}});
      }
      files.push_back({{"path", f.path}, {"chunks", chunks}});
    }
    PrintJson({{"path", *resolved},
               {"healthy", r->healthy()},
               {"files", r->files},
               {"chunks", r->chunks},
               {"bytes", r->bytes},
               {"under_replicated", r->under_replicated},
               {"over_replicated", r->over_replicated},
               {"missing", r->missing},
               {"corrupt", r->corrupt},
               {"repairing", r->repairing},
               {"repair_queue", r->repair_queue},
               {"repaired", r->repaired},
               {"holdoff", r->holdoff},
               {"truncated", r->truncated},
               {"unhealthy", files},
               {"problems", problems}});
    return;
  }
  std::printf("%s: %llu files, %llu chunks, %s\n", resolved->c_str(), static_cast<unsigned long long>(r->files),
              static_cast<unsigned long long>(r->chunks), FormatSize(r->bytes).c_str());
  for (const auto& f : r->unhealthy) {
    if (!verbose) {
      std::map<std::string, size_t> issues;
      for (const auto& ch : f.chunks) ++issues[ch.issue()];
      std::string what;
      for (const auto& [issue, n] : issues) what += fmt::format("{}{} {}", what.empty() ? "" : ", ", n, issue);
      std::printf("  %s: chunks %s\n", f.path.c_str(), what.c_str());
      continue;
    }
    for (const auto& ch : f.chunks) {
      std::string issue = ch.issue();
      if (issue == "missing") issue = "MISSING";
      std::printf("  %s: chunk %u (id %llu): %s, %u of %u replicas live%s%s\n", f.path.c_str(), ch.index,
                  static_cast<unsigned long long>(ch.id), issue.c_str(), ch.live, ch.wanted,
                  ch.corrupt > 0 ? fmt::format(", {} corrupt (not served)", ch.corrupt).c_str() : "",
                  ch.repairing ? ", copy under way" : "");
    }
  }
  if (r->truncated) std::printf("  (more files are unhealthy than listed)\n");
  if (r->healthy()) {
    std::printf("HEALTHY\n");
  } else {
    std::printf("UNHEALTHY: %llu chunks under-replicated, %llu missing (no live replica); %llu being copied\n",
                static_cast<unsigned long long>(r->under_replicated), static_cast<unsigned long long>(r->missing),
                static_cast<unsigned long long>(r->repairing));
  }
  if (r->over_replicated > 0 || r->corrupt > 0) {
    std::printf("%llu chunks over-replicated (the surplus is trimmed), %llu with a corrupt replica (never served; "
                "replaced, then deleted)\n",
                static_cast<unsigned long long>(r->over_replicated), static_cast<unsigned long long>(r->corrupt));
  }
  if (r->holdoff) std::printf("repair waits for the nodes' reports (the master started moments ago)\n");
  std::printf("repair: %llu chunks queued or copying in the cluster, %llu copies done since the master started\n",
              static_cast<unsigned long long>(r->repair_queue), static_cast<unsigned long long>(r->repaired));
}

}  // namespace

void RegisterClusterCommands(CLI::App& app, Context& ctx) {
  auto fsck_path = std::make_shared<std::string>(".");  // the working directory: / outside the shell
  auto fsck_verbose = std::make_shared<bool>(false);
  auto* fsck = app.add_subcommand(
      "fsck", "chunk health below a path: under-replicated and missing chunks; exit status 1 when unhealthy");
  fsck->add_option("PATH", *fsck_path, "a file or folder in dfs")->capture_default_str();
  fsck->add_flag("-v,--verbose", *fsck_verbose, "list every unhealthy chunk, not only the files");
  fsck->callback([&ctx, fsck_path, fsck_verbose] { Fsck(ctx, *fsck_path, *fsck_verbose); });
  Examples(fsck, {"dfs-cli fsck", "dfs-cli fsck -v /photos", "dfs-cli --json fsck / | jq .under_replicated"});

  Examples(app.add_subcommand("nodes", "list file nodes: address, state, space, chunks"),
           {"dfs-cli nodes", "dfs-cli --json nodes | jq '.nodes[] | select(.state == \"dead\") | .id'"})
      ->callback([&ctx] { Nodes(ctx); });
}

}  // namespace dfs::cli
