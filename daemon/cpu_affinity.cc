#include "daemon/cpu_affinity.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include <fmt/format.h>

namespace dfs {

Result<CpuChoice> ParseCpuChoice(std::string_view text) {
  if (text == "auto") return CpuChoice{CpuChoice::Kind::kAuto, -1};
  if (text == "all") return CpuChoice{CpuChoice::Kind::kAll, -1};
  if (text == "adaptive") return CpuChoice{CpuChoice::Kind::kAdaptive, -1};
  int cpu = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), cpu);
  if (ec != std::errc() || end != text.data() + text.size() || cpu < 0 || cpu >= CPU_SETSIZE) {
    return Status::InvalidArgument(fmt::format("expected auto, adaptive, all or a CPU number, not '{}'", text));
  }
  return CpuChoice{CpuChoice::Kind::kFixed, cpu};
}

namespace {

Status Pin(int cpu) {
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  if (::sched_setaffinity(0, sizeof one, &one) != 0) {
    return Status::FromErrno(errno, fmt::format("cannot run on CPU {}", cpu));
  }
  return Status::OK();
}

// Claim files: DIR/dfs-cpu-<cpu>.<slot>.lock. The first free slot-0 file
// goes to the first daemon, and so on: with D daemons on C CPUs, no CPU
// holds more than ceil(D / C). A claim is an flock on an open descriptor,
// kept open (and so held) for the life of the process, dropped by the
// kernel when it exits however it exits.
Result<int> Claim(const std::vector<int>& cpus, const std::string& dir) {
  for (int slot = 0; slot < 1024; ++slot) {
    for (int cpu : cpus) {
      const std::string path = fmt::format("{}/dfs-cpu-{}.{}.lock", dir, cpu, slot);
      // Read-only: a file another user created (mode 0644) still takes a lock.
      int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0666);
      if (fd < 0) return Status::FromErrno(errno, "open " + path);
      ::fchmod(fd, 0666);  // best effort: later daemons of other users may share it
      if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return cpu;  // fd deliberately kept
      const int err = errno;
      ::close(fd);
      if (err != EWOULDBLOCK) return Status::FromErrno(err, "flock " + path);
    }
  }
  return Status::Unavailable("every CPU is claimed 1024 times over");
}

}  // namespace

std::vector<int> AllowedCpus() {
  std::vector<int> out;
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (::sched_getaffinity(0, sizeof allowed, &allowed) != 0) return out;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &allowed)) out.push_back(c);
  }
  return out;
}

Status AdaptivePin::Set(bool pinned) {
  if (pinned == pinned_) return Status::OK();
  cpu_set_t set;
  CPU_ZERO(&set);
  if (pinned) {
    CPU_SET(cpu_, &set);
  } else {
    for (int c : wide_) CPU_SET(c, &set);
  }
  std::error_code ec;
  for (const auto& t : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    const pid_t tid = static_cast<pid_t>(std::strtol(t.path().filename().c_str(), nullptr, 10));
    // A thread that ended meanwhile (ESRCH) has nowhere to run anyway.
    if (::sched_setaffinity(tid, sizeof set, &set) != 0 && errno != ESRCH) {
      return Status::FromErrno(errno, fmt::format("cannot move thread {}", tid));
    }
  }
  if (ec) return Status::IOError("cannot list /proc/self/task: " + ec.message());
  pinned_ = pinned;
  return Status::OK();
}

Result<int> PlaceDaemon(const CpuChoice& choice, const std::string& lock_dir) {
  if (choice.kind == CpuChoice::Kind::kAll) return -1;
  const std::vector<int> cpus = AllowedCpus();
  if (choice.kind == CpuChoice::Kind::kFixed) {
    if (std::find(cpus.begin(), cpus.end(), choice.cpu) == cpus.end()) {
      return Status::InvalidArgument(fmt::format("--cpu {}: this process may not run there", choice.cpu));
    }
    DFS_RETURN_IF_ERROR(Pin(choice.cpu));
    return choice.cpu;
  }
  if (cpus.size() <= 1) return cpus.empty() ? -1 : cpus[0];  // nothing to choose
  std::string dir = lock_dir;
  if (dir.empty()) dir = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  DFS_ASSIGN_OR_RETURN(int cpu, Claim(cpus, dir));
  DFS_RETURN_IF_ERROR(Pin(cpu));
  return cpu;
}

std::optional<int> PlaceDaemonForMain(std::string_view flag, const char* program) {
  auto choice = ParseCpuChoice(flag);
  if (!choice) {
    std::fprintf(stderr, "%s: --cpu: %s\n", program, choice.error().message().c_str());
    return std::nullopt;
  }
  auto placed = PlaceDaemon(*choice);
  if (placed) return *placed;
  if (choice->kind == CpuChoice::Kind::kFixed) {
    std::fprintf(stderr, "%s: %s\n", program, placed.error().message().c_str());
    return std::nullopt;
  }
  std::fprintf(stderr, "%s: warning: %s; threads left to the scheduler\n", program, placed.error().message().c_str());
  return -1;
}

}  // namespace dfs
