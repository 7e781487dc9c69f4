// Where a daemon runs: every thread of a dfs daemon on one CPU, or wherever
// the scheduler likes.
//
// Each message through ZeroMQ is handed between the daemon's event loop and
// libzmq's I/O thread, and each chunk between the loop and its sync lane.
// When those threads sit on different CPUs, every hand-off is a cross-CPU
// wake-up; on a virtual machine that wakes an idle vCPU, that is a trip
// through the hypervisor. With the daemon's threads on one CPU a hand-off is
// a switch on the same core (the thread-per-core layout of Seastar and
// ScyllaDB). The price: the loop and the I/O thread never run at once, which
// a large stream needs. So the master, which moves only small messages, is
// pinned (auto), and nodes are pinned only while no large chunk streams
// (adaptive; README.md).
//
// Daemons on one host spread over its CPUs: each claims the CPU the fewest
// other dfs daemons hold, through flock(2)ed files the kernel releases when
// the daemon exits however it exits.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace dfs {

// --cpu: "auto" (claim the least-held CPU), "all" (no pinning: the
// scheduler places every thread), a CPU number, or "adaptive": claimed and
// pinned like auto, and let go while the daemon carries large streams
// (AdaptivePin; a daemon that has none behaves as auto).
struct CpuChoice {
  enum class Kind { kAuto, kAll, kFixed, kAdaptive } kind = Kind::kAuto;
  int cpu = -1;
};
Result<CpuChoice> ParseCpuChoice(std::string_view text);

// Pins the calling thread, and so every thread it starts later, to the CPU
// `choice` names. Call it first thing in main, before any thread exists.
// Returns the CPU (-1 for kAll); the claim (for kAuto) lasts until exit.
// `lock_dir` holds the claim files ("" picks /dev/shm, else /tmp). An
// error for kAuto or kAdaptive (no claim file could be had) is worth a
// warning, not a refusal to start: the daemon runs unpinned.
Result<int> PlaceDaemon(const CpuChoice& choice, const std::string& lock_dir = "");

// PlaceDaemon for a daemon's main, from its checked --cpu value: prints the
// error (a fixed CPU) or the warning (a claim) naming `program` on stderr.
// Returns the CPU, -1 when unpinned, nullopt when the daemon must exit 1.
std::optional<int> PlaceDaemonForMain(std::string_view flag, const char* program);

// The CPUs this thread may run on now (call before PlaceDaemon to keep them).
std::vector<int> AllowedCpus();

// Moves every thread of this process between one CPU and a wider set: on
// `cpu` while pinned, on `wide` while not. Only a change costs system calls
// (one per thread); threads started meanwhile inherit their creator's set
// and are moved with the rest at the next change.
class AdaptivePin {
 public:
  AdaptivePin(int cpu, std::vector<int> wide) : cpu_(cpu), wide_(std::move(wide)) {}
  // Starts pinned (PlaceDaemon pinned the process).
  Status Set(bool pinned);
  bool pinned() const { return pinned_; }

 private:
  int cpu_;
  std::vector<int> wide_;
  bool pinned_ = true;
};

}  // namespace dfs
