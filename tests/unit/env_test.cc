// The disk I/O environment (common/env.h) and its fault-injecting wrapper
// (common/fault_env.h).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/env.h"
#include "common/fault_env.h"

namespace dfs {
namespace {

namespace fs = std::filesystem;

class EnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "dfs-env-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name() + "-" + std::to_string(::getpid());
    fs::remove_all(dir_);
    ASSERT_TRUE(env_->CreateDirs(dir_).ok());
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  static std::string Contents(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  Env* env_ = Env::Default();
  std::string dir_;
};

TEST_F(EnvTest, WriteFileDurablyReplacesAtomically) {
  ASSERT_TRUE(WriteFileDurably(env_, Path("f"), "one").ok());
  ASSERT_TRUE(WriteFileDurably(env_, Path("f"), "two").ok());
  EXPECT_EQ(*ReadWholeFile(env_, Path("f")), "two");
  EXPECT_FALSE(fs::exists(Path("f.tmp")));
  EXPECT_EQ(ReadWholeFile(env_, Path("missing")).error().code(), Code::kNotFound);
}

TEST_F(EnvTest, PositionalWritesAndReadsFinishTheJob) {
  auto f = env_->Open(Path("f"), OpenMode::kCreate);
  ASSERT_TRUE(f) << f.error().ToString();
  std::string a(100000, 'a'), b(3, 'b'), c(70000, 'c');
  std::vector<iovec> iov = {{a.data(), a.size()}, {b.data(), b.size()}, {c.data(), c.size()}};
  ASSERT_TRUE((*f)->PwritevAll(iov, 10).ok());
  ASSERT_TRUE((*f)->Sync().ok());
  EXPECT_EQ(*(*f)->Size(), 10 + a.size() + b.size() + c.size());
  std::string back(a.size() + b.size() + c.size() + 50, '\0');
  auto got = (*f)->PreadAll(back.data(), back.size(), 10);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, a.size() + b.size() + c.size());  // short only at the end of the file
  EXPECT_EQ(back.substr(0, *got), a + b + c);
  ASSERT_TRUE((*f)->Truncate(5).ok());
  EXPECT_EQ(*(*f)->Size(), 5u);
  EXPECT_EQ(env_->Open(Path("f"), OpenMode::kCreateNew).error().code(), Code::kAlreadyExists);
  EXPECT_EQ(env_->Open(Path("none"), OpenMode::kRead).error().code(), Code::kNotFound);
}

TEST_F(EnvTest, ListDirReportsErrorsInsteadOfThrowing) {
  ASSERT_TRUE(WriteFileDurably(env_, Path("x"), "1").ok());
  ASSERT_TRUE(env_->CreateDirs(Path("sub")).ok());
  auto names = env_->ListDir(dir_);
  ASSERT_TRUE(names) << names.error().ToString();
  std::sort(names->begin(), names->end());
  EXPECT_EQ(*names, (std::vector<std::string>{"sub", "x"}));
  EXPECT_EQ(env_->ListDir(Path("missing")).error().code(), Code::kNotFound);
  EXPECT_EQ(env_->ListDir(Path("x")).error().code(), Code::kNotADirectory);
  ASSERT_EQ(::chmod(Path("sub").c_str(), 0), 0);
  if (::geteuid() != 0) {  // root reads any folder
    auto denied = env_->ListDir(Path("sub"));
    ASSERT_FALSE(denied);
    EXPECT_EQ(denied.error().code(), Code::kPermissionDenied);
    EXPECT_NE(denied.error().message().find(Path("sub")), std::string::npos) << denied.error().message();
  }
  ::chmod(Path("sub").c_str(), 0755);
}

TEST_F(EnvTest, PendingReplaceRemovesItsTempUnlessRenamed) {
  {
    auto r = PendingReplace::Create(env_, Path("a"));
    ASSERT_TRUE(r);
    ASSERT_TRUE(r->file().Append("half").ok());
    EXPECT_TRUE(fs::exists(Path("a.tmp")));
  }  // dropped: as if the writer failed
  EXPECT_FALSE(fs::exists(Path("a.tmp")));
  EXPECT_FALSE(fs::exists(Path("a")));
  auto r = PendingReplace::Create(env_, Path("a"));
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->file().Append("whole").ok());
  ASSERT_TRUE(r->Commit().ok());
  EXPECT_EQ(Contents(Path("a")), "whole");
  EXPECT_FALSE(fs::exists(Path("a.tmp")));
}

TEST_F(EnvTest, DurableReplaceKeepsTheOldFileWhenFsyncFails) {
  ASSERT_TRUE(WriteFileDurably(env_, Path("f"), "old").ok());
  FaultEnv faulty(env_);
  faulty.FailSyncsAfter(0);
  Status s = WriteFileDurably(&faulty, Path("f"), "new");
  EXPECT_EQ(s.code(), Code::kIOError) << s.ToString();
  EXPECT_NE(s.message().find("injected"), std::string::npos) << s.message();
  EXPECT_EQ(Contents(Path("f")), "old");
  EXPECT_FALSE(fs::exists(Path("f.tmp")));
  EXPECT_EQ(faulty.faults(), 1u);
}

TEST_F(EnvTest, WritesFailAfterNAndTheDiskStaysFailed) {
  FaultEnv faulty(env_);
  faulty.FailWritesAfter(2);
  auto f = faulty.Open(Path("f"), OpenMode::kCreate);
  ASSERT_TRUE(f);
  EXPECT_TRUE((*f)->Append("1").ok());
  EXPECT_TRUE((*f)->Append("2").ok());
  Status third = (*f)->Append("3");
  EXPECT_EQ(third.code(), Code::kIOError) << third.ToString();
  EXPECT_EQ((*f)->PwriteAll("4", 1, 0).code(), Code::kIOError);
  EXPECT_EQ(faulty.Open(Path("g"), OpenMode::kCreate).error().code(), Code::kIOError);
  EXPECT_EQ(Contents(Path("f")), "12");
  // Reads still work.
  auto r = faulty.Open(Path("f"), OpenMode::kRead);
  ASSERT_TRUE(r);
  char buf[8];
  EXPECT_EQ(*(*r)->PreadAll(buf, sizeof buf, 0), 2u);
}

TEST_F(EnvTest, FullDiskIsNoSpace) {
  FaultEnv faulty(env_);
  faulty.FailWritesAfter(0, ENOSPC);
  auto f = faulty.Open(Path("f"), OpenMode::kCreate);
  ASSERT_TRUE(f);
  EXPECT_EQ((*f)->Append("x").code(), Code::kNoSpace);
}

TEST_F(EnvTest, FaultsHitOnlyPathsMatchingTheGlob) {
  FaultEnv faulty(env_);
  faulty.SetPathGlob("*/data/*");
  faulty.FailWritesAfter(0);
  faulty.FailSyncsAfter(0);
  ASSERT_TRUE(env_->CreateDirs(Path("data")).ok());
  EXPECT_TRUE(WriteFileDurably(&faulty, Path("meta"), "fine").ok());
  EXPECT_EQ(WriteFileDurably(&faulty, Path("data/chunk"), "bad").code(), Code::kIOError);
  EXPECT_EQ(faulty.writes(), 1u);  // only the matching one is counted
}

TEST_F(EnvTest, TornWriteLandsHalf) {
  FaultEnv faulty(env_);
  faulty.TearWriteAfter(1);
  auto f = faulty.Open(Path("f"), OpenMode::kCreate);
  ASSERT_TRUE(f);
  ASSERT_TRUE((*f)->Append("head").ok());
  EXPECT_EQ((*f)->Append("12345678").code(), Code::kIOError);
  EXPECT_EQ(Contents(Path("f")), "head1234");
  EXPECT_TRUE((*f)->Append("tail").ok());  // one write torn, not the disk dead
}

TEST_F(EnvTest, DropUnsyncedDataKeepsOnlyWhatWasSynced) {
  FaultEnv faulty(env_);
  auto f = faulty.Open(Path("synced"), OpenMode::kCreate);
  ASSERT_TRUE(f);
  ASSERT_TRUE((*f)->Append("durable").ok());
  ASSERT_TRUE((*f)->Sync().ok());
  ASSERT_TRUE((*f)->Append(" lost").ok());
  auto g = faulty.Open(Path("never"), OpenMode::kCreate);
  ASSERT_TRUE(g);
  ASSERT_TRUE((*g)->Append("gone").ok());
  // A file renamed after its sync keeps its synced size under the new name.
  auto h = faulty.Open(Path("h.tmp"), OpenMode::kCreate);
  ASSERT_TRUE(h);
  ASSERT_TRUE((*h)->Append("moved").ok());
  ASSERT_TRUE((*h)->Sync().ok());
  ASSERT_TRUE(faulty.Rename(Path("h.tmp"), Path("h")).ok());
  ASSERT_TRUE((*h)->Append(" more").ok());

  ASSERT_TRUE(faulty.DropUnsyncedData().ok());
  EXPECT_EQ(Contents(Path("synced")), "durable");
  EXPECT_EQ(Contents(Path("never")), "");
  EXPECT_EQ(Contents(Path("h")), "moved");
}

}  // namespace
}  // namespace dfs
