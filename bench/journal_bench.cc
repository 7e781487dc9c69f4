// Group commit in the master's journal: producers append 100-byte records
// and each waits for its record to be durable, as a client waits for its
// reply. Reports records/s and records per fdatasync.
//
//   journal_bench [--benchmark_filter=...]      (DFS_BENCH_DIR picks the disk;
//                                                 default: the current folder)
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include "master/journal.h"

namespace dfs::master {
namespace {

constexpr size_t kRecordSize = 100;
// Per producer per iteration: enough syncs that thread start-up is noise.
constexpr int kRecordsPerProducer = 200;

std::string BenchDir() {
  const char* base = std::getenv("DFS_BENCH_DIR");
  std::string dir = std::string(base != nullptr ? base : ".") + "/dfs-journal-bench-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

void Report(benchmark::State& state, const JournalWriter& writer, const std::string& dir) {
  JournalStats s = writer.stats();
  state.counters["records/s"] = benchmark::Counter(static_cast<double>(s.records), benchmark::Counter::kIsRate);
  state.counters["records/sync"] = s.syncs ? static_cast<double>(s.records) / static_cast<double>(s.syncs) : 0;
  state.counters["max_batch"] = static_cast<double>(s.max_batch_records);
  state.SetItemsProcessed(static_cast<int64_t>(s.records));
  std::filesystem::remove_all(dir);
}

// N producer threads, each appending and waiting for durability in a loop.
void BM_GroupCommitProducers(benchmark::State& state) {
  const int producers = static_cast<int>(state.range(0));
  std::string dir = BenchDir();
  auto writer = JournalWriter::Open({.dir = dir, .generation = 0});
  if (!writer) {
    state.SkipWithError(writer.error().ToString().c_str());
    return;
  }
  const std::string record(kRecordSize, 'r');
  for (auto _ : state) {
    std::vector<std::thread> threads;
    for (int t = 0; t < producers; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < kRecordsPerProducer; ++i) {
          if (!(*writer)->AppendAndSync(record).ok()) std::abort();
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  if (!(*writer)->Stop().ok()) state.SkipWithError("journal failed");
  Report(state, **writer, dir);
}
BENCHMARK(BM_GroupCommitProducers)->Arg(1)->Arg(4)->Arg(16)->UseRealTime()->Unit(benchmark::kMillisecond);

// The master's own pattern: one metadata thread that never blocks, keeping
// up to `window` appends in flight and counting completions as they come.
void BM_GroupCommitPipelined(benchmark::State& state) {
  const int64_t window = state.range(0);
  std::string dir = BenchDir();
  auto writer = JournalWriter::Open({.dir = dir, .generation = 0});
  if (!writer) {
    state.SkipWithError(writer.error().ToString().c_str());
    return;
  }
  const std::string record(kRecordSize, 'r');
  std::mutex mu;
  std::condition_variable cv;
  int64_t in_flight = 0;
  auto done = [&](Status s) {
    if (!s.ok()) std::abort();
    std::lock_guard lock(mu);
    --in_flight;
    cv.notify_one();
  };
  for (auto _ : state) {
    for (int i = 0; i < kRecordsPerProducer * 16; ++i) {
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return in_flight < window; });
        ++in_flight;
      }
      (*writer)->Append(record, done);
    }
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return in_flight == 0; });
  }
  if (!(*writer)->Stop().ok()) state.SkipWithError("journal failed");
  Report(state, **writer, dir);
}
BENCHMARK(BM_GroupCommitPipelined)->Arg(1)->Arg(64)->Arg(1024)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace dfs::master

BENCHMARK_MAIN();
