#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/checksum.h"
#include "daemon/cpu_affinity.h"
#include "common/crc32c_combine.h"
#include "common/files.h"
#include "common/net.h"
#include "common/status.h"
#include "common/units.h"

namespace dfs {
namespace {

std::string TempDir(const std::string& name) {
  std::string dir = ::testing::TempDir() + "dfs-common-" + name + "-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  return dir;
}

TEST(Units, ParsesSizesUsersType) {
  EXPECT_EQ(*ParseSize("0"), 0u);
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("64K"), 64 * kKiB);
  EXPECT_EQ(*ParseSize("64M"), 64 * kMiB);
  EXPECT_EQ(*ParseSize("64MiB"), 64 * kMiB);
  EXPECT_EQ(*ParseSize("1g"), kGiB);
  EXPECT_EQ(*ParseSize("1.5G"), kGiB + kGiB / 2);
  EXPECT_FALSE(ParseSize(""));
  EXPECT_FALSE(ParseSize("M"));
  EXPECT_FALSE(ParseSize("-1"));
  EXPECT_FALSE(ParseSize("12Q"));
  EXPECT_FALSE(ParseSize("99999999999999999999T"));
  EXPECT_EQ(ParseSize("12Q").error().code(), Code::kInvalidArgument);
}

TEST(Units, ParsesDurations) {
  EXPECT_EQ(ParseDuration("5s")->count(), 5000);
  EXPECT_EQ(ParseDuration("5")->count(), 5000);
  EXPECT_EQ(ParseDuration("250ms")->count(), 250);
  EXPECT_EQ(ParseDuration("2m")->count(), 120000);
  EXPECT_FALSE(ParseDuration("soon"));
}

TEST(Units, FormatsSizes) {
  EXPECT_EQ(FormatSize(10), "10 B");
  EXPECT_EQ(FormatSize(64 * kMiB), "64.0 MiB");
  EXPECT_EQ(FormatSize(kGiB + kGiB / 2), "1.5 GiB");
}

TEST(Checksum, Crc32cMatchesTheStandardCheckValue) {
  // RFC 3720 (iSCSI) check value for "123456789".
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
  // Continuation equals one pass.
  EXPECT_EQ(Crc32c("6789", Crc32c("12345")), Crc32c("123456789"));
}

TEST(Checksum, CombinedCrcsEqualTheCrcOfTheWhole) {
  std::string all(200000, '\0');
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<char>(i * 131 + (i >> 7));
  auto crc = [](std::string_view s) { return Crc32c(std::as_bytes(std::span(s.data(), s.size()))); };
  const std::string_view v(all);
  for (size_t cut : {size_t{0}, size_t{1}, size_t{65536}, size_t{131071}, all.size()}) {
    EXPECT_EQ(Crc32cCombine(crc(v.substr(0, cut)), crc(v.substr(cut)), all.size() - cut), crc(v)) << cut;
  }
}

TEST(Net, ParsesHostPort) {
  auto a = ParseHostPort("127.0.0.1:5550", 1);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 5550);
  EXPECT_EQ(ParseHostPort("localhost", 7)->port, 7);
  EXPECT_EQ(ParseHostPort("[::1]:80", 1)->host, "::1");
  EXPECT_EQ(ParseHostPort("tcp://h:9", 1)->port, 9);
  EXPECT_FALSE(ParseHostPort("h:99999", 1));
  EXPECT_FALSE(ParseHostPort(":80", 1));
  EXPECT_FALSE(ParseHostPort("::1:80", 1));
  EXPECT_EQ(HostPort("::1", 5), "[::1]:5");
  EXPECT_EQ(*PortOfEndpoint("tcp://127.0.0.1:41234"), 41234);
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_FALSE(IsLoopbackHost("10.0.0.1"));
}

TEST(Status, ResultCarriesValueOrError) {
  auto f = [](bool ok) -> Result<int> {
    if (!ok) return Status::NotFound("no such file or directory: /a");
    return 7;
  };
  EXPECT_EQ(*f(true), 7);
  EXPECT_EQ(f(false).error().code(), Code::kNotFound);
  EXPECT_EQ(f(false).error().message(), "no such file or directory: /a");
  EXPECT_EQ(Status::IOError("x").Prepend("ctx").message(), "ctx: x");
  EXPECT_EQ(Status::FromErrno(ENOSPC, "/d").code(), Code::kNoSpace);
}

TEST(Files, DirLockRefusesASecondHolderAndNamesTheFirst) {
  std::string dir = TempDir("lock");
  auto first = DirLock::Acquire(dir, "dfs-test");
  ASSERT_TRUE(first) << first.error().ToString();
  // flock is per open file description, so a second open in this process
  // conflicts exactly as another process would; check from a child too.
  auto second = DirLock::Acquire(dir, "dfs-other");
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), Code::kBusy);
  EXPECT_NE(second.error().message().find("in use by another process (dfs-test pid"), std::string::npos)
      << second.error().message();
  pid_t pid = fork();
  if (pid == 0) _exit(DirLock::Acquire(dir, "child") ? 0 : 3);
  int ws = 0;
  waitpid(pid, &ws, 0);
  EXPECT_EQ(WEXITSTATUS(ws), 3);
  std::filesystem::remove_all(dir);
}

TEST(Files, DirLockIsReleasedWhenTheHolderGoes) {
  std::string dir = TempDir("relock");
  { auto first = DirLock::Acquire(dir, "a"); ASSERT_TRUE(first); }
  EXPECT_TRUE(DirLock::Acquire(dir, "b"));
  std::filesystem::remove_all(dir);
}

TEST(CpuAffinity, ParsesTheCpuFlag) {
  EXPECT_EQ(ParseCpuChoice("auto")->kind, CpuChoice::Kind::kAuto);
  EXPECT_EQ(ParseCpuChoice("all")->kind, CpuChoice::Kind::kAll);
  EXPECT_EQ(ParseCpuChoice("adaptive")->kind, CpuChoice::Kind::kAdaptive);
  auto fixed = ParseCpuChoice("1");
  ASSERT_TRUE(fixed);
  EXPECT_EQ(fixed->kind, CpuChoice::Kind::kFixed);
  EXPECT_EQ(fixed->cpu, 1);
  for (const char* bad : {"", "-1", "x", "1x", "99999", "auto "}) {
    auto r = ParseCpuChoice(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message().find("expected auto, adaptive, all or a CPU number"), std::string::npos);
  }
}

// One daemon: claims through `dir`, tells the parent its CPU and whether all
// of its threads may run there alone, and holds the claim until `go` closes.
pid_t PlacedChild(const std::string& dir, int report_fd, const int go[2]) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  close(go[1]);  // only the parent may hold the write end, or EOF never comes
  const int go_fd = go[0];
  auto cpu = PlaceDaemon(CpuChoice{}, dir);
  int out[2] = {cpu ? *cpu : -2, 0};
  cpu_set_t set;
  CPU_ZERO(&set);
  if (cpu && sched_getaffinity(0, sizeof set, &set) == 0) out[1] = CPU_COUNT(&set) == 1 && CPU_ISSET(*cpu, &set);
  if (write(report_fd, out, sizeof out) != sizeof out) _exit(4);
  char c;
  (void)!read(go_fd, &c, 1);  // EOF: the parent let go
  _exit(0);
}

TEST(CpuAffinity, DaemonsSpreadOverTheCpusAndGiveThemBackWhenTheyExit) {
  cpu_set_t allowed;
  ASSERT_EQ(sched_getaffinity(0, sizeof allowed, &allowed), 0);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
  }
  if (cpus.size() < 2) GTEST_SKIP() << "one CPU: nothing to spread over";
  const std::string dir = TempDir("cpus");
  std::filesystem::create_directories(dir);
  int report[2], go[2];
  ASSERT_EQ(pipe(report), 0);
  ASSERT_EQ(pipe(go), 0);
  // Two daemons per CPU, one after another: each CPU ends with exactly two.
  const size_t daemons = 2 * cpus.size();
  std::vector<pid_t> kids;
  std::map<int, int> per_cpu;
  for (size_t i = 0; i < daemons; ++i) {
    kids.push_back(PlacedChild(dir, report[1], go));
    int got[2] = {0, 0};
    ASSERT_EQ(read(report[0], got, sizeof got), static_cast<ssize_t>(sizeof got));
    ASSERT_GE(got[0], 0) << "daemon " << i << " was not placed";
    EXPECT_EQ(got[1], 1) << "daemon " << i << " may run elsewhere than CPU " << got[0];
    ++per_cpu[got[0]];
  }
  for (int c : cpus) EXPECT_EQ(per_cpu[c], 2) << "CPU " << c;
  close(go[1]);  // every child exits, and its claim with it
  for (pid_t k : kids) {
    int ws = 0;
    waitpid(k, &ws, 0);
    EXPECT_EQ(WEXITSTATUS(ws), 0);
  }
  // All claims given back: the next daemon takes the first CPU again.
  close(go[0]);
  ASSERT_EQ(pipe(go), 0);
  pid_t again = PlacedChild(dir, report[1], go);
  int got[2] = {0, 0};
  ASSERT_EQ(read(report[0], got, sizeof got), static_cast<ssize_t>(sizeof got));
  EXPECT_EQ(got[0], cpus[0]);
  close(go[1]);
  waitpid(again, nullptr, 0);
  close(go[0]);
  close(report[0]);
  close(report[1]);
  std::filesystem::remove_all(dir);
}

// Whether thread `tid` may run on `cpus` CPUs, `cpu` among them.
bool ThreadOn(pid_t tid, int cpus, int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  return sched_getaffinity(tid, sizeof set, &set) == 0 && CPU_COUNT(&set) == cpus && CPU_ISSET(cpu, &set);
}

TEST(CpuAffinity, AnAdaptivePinMovesEveryThreadBetweenOneCpuAndAll) {
  const std::vector<int> wide = AllowedCpus();
  if (wide.size() < 2) GTEST_SKIP() << "one CPU: nothing to move between";
  const std::string dir = TempDir("adaptive");
  std::filesystem::create_directories(dir);
  pid_t pid = fork();
  if (pid == 0) {
    auto cpu = PlaceDaemon(CpuChoice{CpuChoice::Kind::kAdaptive, -1}, dir);
    if (!cpu) _exit(3);
    int stop[2];
    if (pipe(stop) != 0) _exit(4);
    std::atomic<pid_t> helper_tid{0};
    std::thread helper([&] {  // started pinned, as a daemon's threads are
      helper_tid = gettid();
      char c;
      (void)!read(stop[0], &c, 1);
    });
    while (helper_tid == 0) std::this_thread::yield();
    // The two threads this test knows (a sanitizer may run more of its own).
    const pid_t main_tid = gettid(), other = helper_tid;
    const int all = static_cast<int>(wide.size());
    auto both = [&](int cpus) { return ThreadOn(main_tid, cpus, *cpu) && ThreadOn(other, cpus, *cpu); };
    AdaptivePin pin(*cpu, wide);
    int rc = both(1) ? 0 : 5;
    if (rc == 0 && (!pin.Set(false).ok() || !both(all))) rc = 7;
    if (rc == 0 && (!pin.Set(true).ok() || !both(1))) rc = 9;
    close(stop[1]);
    helper.join();
    _exit(rc);
  }
  int ws = 0;
  waitpid(pid, &ws, 0);
  EXPECT_EQ(WEXITSTATUS(ws), 0) << "3: not placed, 5: not pinned at first, 7: not spread, 9: not pinned again";
  std::filesystem::remove_all(dir);
}

TEST(CpuAffinity, AClaimThatCannotBeMadeIsAnErrorNamingTheFile) {
  if (AllowedCpus().size() < 2) GTEST_SKIP() << "one CPU: nothing is claimed";
  pid_t pid = fork();
  if (pid == 0) {  // in a child: were it placed, the test process would stay pinned
    auto r = PlaceDaemon(CpuChoice{}, "/proc/no-such-dir");
    _exit(!r && r.error().message().find("/proc/no-such-dir/dfs-cpu-") != std::string::npos ? 0 : 3);
  }
  int ws = 0;
  waitpid(pid, &ws, 0);
  EXPECT_EQ(WEXITSTATUS(ws), 0);
}

TEST(CpuAffinity, AFixedCpuOutsideTheAllowedSetIsAClearError) {
  pid_t pid = fork();
  if (pid == 0) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    if (sched_setaffinity(0, sizeof one, &one) != 0) _exit(5);
    auto r = PlaceDaemon(CpuChoice{CpuChoice::Kind::kFixed, 1});
    _exit(!r && r.error().message() == "--cpu 1: this process may not run there" ? 0 : 3);
  }
  int ws = 0;
  waitpid(pid, &ws, 0);
  EXPECT_EQ(WEXITSTATUS(ws), 0);
}

}  // namespace
}  // namespace dfs
