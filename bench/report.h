// dfs-bench's results: phases with op counts, bytes, time and latency
// percentiles, printed as a table or as the JSON document of DESIGN.md:
// {"workload","phases":[{"name","ops","bytes","seconds","ops_per_s",
//  "mib_per_s","p50_ms","p99_ms"}]} plus workload-specific "extra" fields.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace dfs::bench {

struct Phase {
  std::string name;
  uint64_t ops = 0;
  uint64_t errors = 0;
  uint64_t bytes = 0;
  double seconds = 0;
  std::vector<double> latencies_ms;  // one per op

  double Percentile(double p) const;
  nlohmann::json ToJson() const;
};

struct Report {
  std::string workload;
  std::vector<Phase> phases;
  nlohmann::json extra = nlohmann::json::object();

  void Print(bool json) const;
};

}  // namespace dfs::bench
