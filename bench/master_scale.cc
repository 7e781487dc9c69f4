// dfs-bench master-scale: a real dfs-master (started here, in a temp folder)
// with M simulated nodes heartbeating at 1 Hz and N single-chunk files.
// Reports master RSS per file, mkdir ops/s with and without the nodes, the
// time to write a checkpoint (clean shutdown) and to restart from it.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "bench/meta_driver.h"
#include "bench/node_simulator.h"
#include "bench/workloads.h"

namespace dfs::bench {
namespace {

using Clock = std::chrono::steady_clock;

std::string FindMaster(const std::string& flag) {
  if (!flag.empty()) return flag;
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto candidate = self.parent_path().parent_path() / "master" / "dfs-master";
    if (std::filesystem::exists(candidate)) return candidate.string();
    candidate = self.parent_path() / "dfs-master";
    if (std::filesystem::exists(candidate)) return candidate.string();
  }
  return "dfs-master";
}

pid_t StartMaster(const std::string& bin, const std::string& dir) {
  std::filesystem::remove(dir + "/master.addr");
  pid_t pid = ::fork();
  if (pid == 0) {
    std::string log = dir + "/master.log";
    FILE* f = std::freopen(log.c_str(), "a", stderr);
    (void)f;
    ::execlp(bin.c_str(), bin.c_str(), "--dir", dir.c_str(), "--port", "0", "--dead-after", "60s",
             "--checkpoint-every", "1000000000", "--log-level", "warn",
             // Metadata only: no bytes move, so no replica reports arrive.
             "--unsafe-unverified-writes", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

// Waits for DIR/master.addr; returns the address or "" if the master died.
std::string WaitForAddress(pid_t pid, const std::string& dir) {
  for (int i = 0; i < 60000; ++i) {
    std::ifstream in(dir + "/master.addr");
    std::string addr;
    if (in >> addr && !addr.empty()) return addr;
    int ws = 0;
    if (::waitpid(pid, &ws, WNOHANG) == pid) return "";
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return "";
}

uint64_t RssBytes(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      uint64_t kb = 0;
      in >> kb;
      return kb * 1024;
    }
  }
  return 0;
}

}  // namespace

int RunMasterScale(const MasterScaleOptions& o, bool json) {
  const std::string bin = FindMaster(o.master_bin);
  std::string dir = o.dir;
  bool temp = dir.empty();
  if (temp) {
    char tmpl[] = "/tmp/dfs-master-scale-XXXXXX";
    dir = ::mkdtemp(tmpl);
  }
  auto fail = [&](const std::string& why) {
    std::fprintf(stderr, "dfs-bench: master-scale: %s (master log: %s/master.log)\n", why.c_str(), dir.c_str());
    return 1;
  };
  pid_t pid = StartMaster(bin, dir);
  std::string addr = WaitForAddress(pid, dir);
  if (addr.empty()) return fail("the master did not start (" + bin + ")");
  const uint64_t rss_empty = RssBytes(pid);

  Report report;
  report.workload = "master-scale";
  DriverOptions d;
  d.client.master = addr;
  d.client.name = "dfs-bench";
  d.clients = o.clients;
  d.depth = o.depth;
  auto setup = client::Client::Connect(d.client);
  if (!setup) return fail(setup.error().message());
  std::string error;
  const uint64_t per_mkdir = std::max<uint64_t>(1, o.mkdir_ops / static_cast<uint64_t>(o.clients));
  // Throughput with and without heartbeating nodes: three runs each after a
  // warm-up, compared by their medians (the machine is shared and noisy).
  int root_seq = 0;
  auto mkdir_phase = [&](const std::string& name) {
    std::string root = fmt::format("/m{}", root_seq++);
    for (int c = 0; c < o.clients; ++c) IgnoreError((*setup)->Mkdir(fmt::format("{}/c{}", root, c), true).status());
    return RunMetaPhase(name, d, per_mkdir, [&](int c, uint64_t i) {
      return client::MetaRequest{client::MetaOp::kMkdir, fmt::format("{}/c{}/d{}", root, c, i), ""};
    }, &error);
  };
  auto median_rate = [&](const std::string& name) {
    std::vector<double> rates;
    for (int run = 1; run <= 3; ++run) {
      Phase p = mkdir_phase(fmt::format("{}-{}", name, run));
      rates.push_back(p.seconds > 0 ? static_cast<double>(p.ops) / p.seconds : 0);
      report.phases.push_back(std::move(p));
    }
    std::sort(rates.begin(), rates.end());
    return rates[1];
  };
  (void)mkdir_phase("warm-up");
  const double without = median_rate("mkdir");

  NodeSimulator sim(addr, o.nodes);
  if (Status s = sim.Start(); !s.ok()) return fail(s.message());
  auto deadline = Clock::now() + std::chrono::seconds(60);
  size_t alive = 0;
  while (Clock::now() < deadline) {
    auto nodes = (*setup)->ListNodes();
    alive = 0;
    if (nodes) {
      for (const auto& n : *nodes) alive += n.alive ? 1 : 0;
    }
    if (alive >= static_cast<size_t>(o.nodes)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (alive < static_cast<size_t>(o.nodes)) return fail(fmt::format("only {} of {} nodes registered", alive, o.nodes));
  const double with = median_rate("mkdir+nodes");

  // The mkdir phases' directories go, so what the restarted master holds is
  // the files (and their thousand-per-directory parents) alone.
  for (int r = 0; r < root_seq; ++r) IgnoreError((*setup)->Remove(fmt::format("/m{}", r), true).status());

  // N single-chunk files, a thousand per directory.
  const uint64_t per_file = std::max<uint64_t>(1, o.files / static_cast<uint64_t>(o.clients));
  const uint64_t total = per_file * static_cast<uint64_t>(o.clients);
  for (uint64_t k = 0; k <= total / 1000; ++k) IgnoreError((*setup)->Mkdir(fmt::format("/f/d{}", k), true).status());
  const uint64_t rss_before = RssBytes(pid);
  report.phases.push_back(RunMetaPhase("create-1chunk", d, per_file, [&](int c, uint64_t i) {
    uint64_t g = static_cast<uint64_t>(c) * per_file + i;
    client::MetaRequest r{client::MetaOp::kCreateOneChunk, fmt::format("/f/d{}/f{}", g / 1000, g % 1000), ""};
    r.size = 1 << 20;
    r.replication = 3;
    return r;
  }, &error));
  const uint64_t rss_after = RssBytes(pid);
  sim.Stop();

  auto stop_start = Clock::now();
  ::kill(pid, SIGTERM);
  int ws = 0;
  ::waitpid(pid, &ws, 0);
  double checkpoint_s = std::chrono::duration<double>(Clock::now() - stop_start).count();
  std::error_code ec;
  uint64_t checkpoint_bytes = std::filesystem::file_size(dir + "/checkpoint", ec);

  auto restart_start = Clock::now();
  pid = StartMaster(bin, dir);
  addr = WaitForAddress(pid, dir);
  double restart_s = std::chrono::duration<double>(Clock::now() - restart_start).count();
  uint64_t files_after = 0;
  uint64_t rss_restarted = 0;
  if (!addr.empty()) {
    d.client.master = addr;
    if (auto c = client::Client::Connect(d.client)) {
      if (auto fs = (*c)->StatFs()) files_after = fs->files;
    }
    rss_restarted = RssBytes(pid);
    ::kill(pid, SIGTERM);
    ::waitpid(pid, &ws, 0);
  }
  report.extra["nodes"] = o.nodes;
  report.extra["files"] = total;
  report.extra["rss_before_files_bytes"] = rss_before;
  report.extra["rss_after_files_bytes"] = rss_after;
  // While serving: includes the retry cache's last minute of answers.
  report.extra["rss_per_file_live_bytes"] = total ? static_cast<double>(rss_after - rss_before) / total : 0;
  // After a restart from the checkpoint: the namespace alone, what bounds
  // how many files one master holds.
  report.extra["rss_empty_master_bytes"] = rss_empty;
  report.extra["rss_restarted_bytes"] = rss_restarted;
  report.extra["rss_per_file_bytes"] =
      total && rss_restarted > rss_empty ? static_cast<double>(rss_restarted - rss_empty) / total : 0;
  report.extra["mkdir_ops_per_s_median"] = without;
  report.extra["mkdir_with_nodes_ops_per_s_median"] = with;
  report.extra["mkdir_with_nodes_ratio"] = without > 0 ? with / without : 0;
  report.extra["heartbeats_sent"] = sim.heartbeats_sent();
  report.extra["heartbeat_replies"] = sim.replies();
  report.extra["checkpoint_seconds"] = checkpoint_s;
  report.extra["checkpoint_bytes"] = checkpoint_bytes;
  report.extra["restart_seconds"] = restart_s;
  report.extra["files_after_restart"] = files_after;
  report.Print(json);
  if (temp && error.empty()) std::filesystem::remove_all(dir, ec);
  if (!error.empty()) return fail(error);
  if (addr.empty()) return fail("the master did not restart");
  return 0;
}

}  // namespace dfs::bench
