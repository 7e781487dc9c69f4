#include "bench/report.h"

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>

namespace dfs::bench {

double Phase::Percentile(double p) const {
  if (latencies_ms.empty()) return 0;
  std::vector<double> v = latencies_ms;
  size_t k = std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

nlohmann::json Phase::ToJson() const {
  double s = seconds > 0 ? seconds : 1e-9;
  return {{"name", name},
          {"ops", ops},
          {"errors", errors},
          {"bytes", bytes},
          {"seconds", seconds},
          {"ops_per_s", static_cast<double>(ops) / s},
          {"mib_per_s", static_cast<double>(bytes) / s / (1024.0 * 1024.0)},
          {"p50_ms", Percentile(50)},
          {"p99_ms", Percentile(99)}};
}

void Report::Print(bool json) const {
  if (json) {
    nlohmann::json doc{{"workload", workload}, {"phases", nlohmann::json::array()}};
    for (const auto& p : phases) doc["phases"].push_back(p.ToJson());
    for (const auto& [k, v] : extra.items()) doc[k] = v;
    std::printf("%s\n", doc.dump().c_str());
    return;
  }
  std::printf("%s\n", workload.c_str());
  std::printf("  %-14s %10s %8s %10s %12s %10s %9s %9s\n", "phase", "ops", "errors", "seconds", "ops/s", "MiB/s",
              "p50 ms", "p99 ms");
  for (const auto& p : phases) {
    auto j = p.ToJson();
    std::printf("  %-14s %10lu %8lu %10.3f %12.0f %10.1f %9.3f %9.3f\n", p.name.c_str(),
                static_cast<unsigned long>(p.ops), static_cast<unsigned long>(p.errors), p.seconds,
                j["ops_per_s"].get<double>(), j["mib_per_s"].get<double>(), p.Percentile(50), p.Percentile(99));
  }
  for (const auto& [k, v] : extra.items()) std::printf("  %s: %s\n", k.c_str(), v.dump().c_str());
}

}  // namespace dfs::bench
