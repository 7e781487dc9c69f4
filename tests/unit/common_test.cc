#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "common/checksum.h"
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

TEST(Files, WriteFileDurablyReplacesAtomically) {
  std::string dir = TempDir("write");
  ASSERT_TRUE(CreateDirectories(dir).ok());
  ASSERT_TRUE(WriteFileDurably(dir + "/f", "one").ok());
  ASSERT_TRUE(WriteFileDurably(dir + "/f", "two").ok());
  EXPECT_EQ(*ReadFile(dir + "/f"), "two");
  EXPECT_FALSE(std::filesystem::exists(dir + "/f.tmp"));
  EXPECT_EQ(ReadFile(dir + "/missing").error().code(), Code::kNotFound);
  std::filesystem::remove_all(dir);
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

}  // namespace
}  // namespace dfs
