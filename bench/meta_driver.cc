#include "bench/meta_driver.h"

#include <barrier>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>

namespace dfs::bench {

Phase RunMetaPhase(const std::string& name, const DriverOptions& options, uint64_t per_client,
                   const std::function<client::MetaRequest(int client, uint64_t i)>& make,
                   std::string* first_error) {
  using Clock = std::chrono::steady_clock;
  Phase phase;
  phase.name = name;
  std::mutex mu;
  std::barrier ready(options.clients + 1);
  Clock::time_point start;
  std::vector<std::thread> threads;
  for (int c = 0; c < options.clients; ++c) {
    threads.emplace_back([&, c] {
      auto pipe = client::MetaPipeline::Connect(options.client);
      ready.arrive_and_wait();
      if (!pipe) {
        std::lock_guard l(mu);
        if (first_error->empty()) *first_error = pipe.error().message();
        phase.errors += per_client;
        return;
      }
      std::vector<double> lat;
      lat.reserve(per_client);
      std::unordered_map<uint64_t, Clock::time_point> sent;
      uint64_t next = 0, errors = 0;
      std::string error;
      while (lat.size() + errors < per_client) {
        while (next < per_client && (*pipe)->in_flight() < static_cast<size_t>(options.depth)) {
          auto req = make(c, next);
          req.tag = next;
          sent[next] = Clock::now();
          if (Status s = (*pipe)->Submit(req); !s.ok()) {
            ++errors;
            if (error.empty()) error = s.message();
          }
          ++next;
        }
        auto done = (*pipe)->Wait(std::chrono::milliseconds(5000));
        if (!done || done->empty()) {
          errors += per_client - lat.size() - errors;
          if (error.empty()) error = done ? "timed out waiting for the master" : done.error().message();
          break;
        }
        auto now = Clock::now();
        for (const auto& d : *done) {
          if (!d.status.ok()) {
            ++errors;
            if (error.empty()) error = d.status.message();
            continue;
          }
          lat.push_back(std::chrono::duration<double, std::milli>(now - sent[d.tag]).count());
        }
      }
      std::lock_guard l(mu);
      phase.ops += lat.size();
      phase.errors += errors;
      phase.latencies_ms.insert(phase.latencies_ms.end(), lat.begin(), lat.end());
      if (!error.empty() && first_error->empty()) *first_error = error;
    });
  }
  start = Clock::now();
  ready.arrive_and_wait();
  start = Clock::now();
  for (auto& t : threads) t.join();
  phase.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return phase;
}

}  // namespace dfs::bench
