// dfs-bench meta: C clients, each keeping up to 32 requests in flight, run
// mkdir (or create), stat, list, rename and delete phases over their own
// directories.
#include "bench/workloads.h"

#include <fmt/format.h>

#include "bench/meta_driver.h"
#include "common/random_id.h"

namespace dfs::bench {

int RunMeta(const MetaOptions& o, bool json) {
  Report report;
  report.workload = "meta";
  DriverOptions d;
  d.client = o.client;
  d.clients = o.clients;
  d.depth = o.depth;
  const std::string base = "/bench-meta-" + RandomHex(4);
  auto setup = client::Client::Connect(o.client);
  if (!setup) {
    std::fprintf(stderr, "dfs-bench: %s\n", setup.error().message().c_str());
    return 1;
  }
  for (int c = 0; c < o.clients; ++c) {
    if (auto r = (*setup)->Mkdir(fmt::format("{}/c{}", base, c), true); !r) {
      std::fprintf(stderr, "dfs-bench: %s\n", r.error().message().c_str());
      return 1;
    }
  }
  const uint64_t per = std::max<uint64_t>(1, o.ops / static_cast<uint64_t>(o.clients));
  auto path = [&](const char* prefix, int c, uint64_t i) { return fmt::format("{}/c{}/{}{}", base, c, prefix, i); };
  using client::MetaOp;
  struct Step {
    std::string name;
    std::function<client::MetaRequest(int, uint64_t)> make;
  };
  std::vector<Step> steps = {
      {o.create ? "create" : "mkdir",
       [&](int c, uint64_t i) {
         return client::MetaRequest{o.create ? MetaOp::kCreateEmpty : MetaOp::kMkdir, path("d", c, i), ""};
       }},
      {"stat", [&](int c, uint64_t i) { return client::MetaRequest{MetaOp::kStat, path("d", c, i), ""}; }},
      {"list", [&](int c, uint64_t i) { return client::MetaRequest{MetaOp::kList, path("d", c, i), ""}; }},
      {"rename",
       [&](int c, uint64_t i) { return client::MetaRequest{MetaOp::kRename, path("d", c, i), path("r", c, i)}; }},
      {"delete",
       [&](int c, uint64_t i) {
         return client::MetaRequest{o.create ? MetaOp::kRemove : MetaOp::kRmdir, path("r", c, i), ""};
       }},
  };
  std::string error;
  for (const auto& s : steps) {
    report.phases.push_back(RunMetaPhase(s.name, d, per, s.make, &error));
    if (!error.empty()) break;
  }
  IgnoreError((*setup)->Remove(base, true).status());  // best effort cleanup
  report.extra["clients"] = o.clients;
  report.extra["in_flight_per_client"] = o.depth;
  report.Print(json);
  if (!error.empty()) {
    std::fprintf(stderr, "dfs-bench: %s\n", error.c_str());
    return 1;
  }
  return 0;
}

}  // namespace dfs::bench
