// The namespace as pure logic: every operation and error a user can hit,
// replay determinism, shared chunks, and checkpoint export/import.
#include "master/namespace.h"

#include <gtest/gtest.h>

#include "master/path.h"

namespace dfs::master {
namespace {

class NamespaceTest : public ::testing::Test {
 protected:
  Status Mkdir(const std::string& path, bool parents = false) {
    msg::JournalRecord r = Rec();
    r.mutable_mkdir()->set_path(path);
    r.mutable_mkdir()->set_parents(parents);
    r.mutable_mkdir()->set_first_inode(ns_.next_inode());
    return Apply(r);
  }
  Status Rm(const std::string& path, bool recursive = false, bool dir = false) {
    msg::JournalRecord r = Rec();
    r.mutable_delete_()->set_path(path);
    r.mutable_delete_()->set_recursive(recursive);
    r.mutable_delete_()->set_directory(dir);
    return Apply(r);
  }
  Status Mv(const std::string& a, const std::string& b) {
    msg::JournalRecord r = Rec();
    r.mutable_rename()->set_source(a);
    r.mutable_rename()->set_destination(b);
    return Apply(r);
  }
  Status Cp(const std::string& a, const std::string& b) {
    msg::JournalRecord r = Rec();
    r.mutable_copy()->set_source(a);
    r.mutable_copy()->set_destination(b);
    r.mutable_copy()->set_inode(ns_.next_inode());
    return Apply(r);
  }
  Status Put(const std::string& path, std::vector<uint64_t> chunk_ids, bool overwrite = false) {
    msg::JournalRecord r = Rec();
    auto* op = r.mutable_install_file();
    op->set_path(path);
    op->set_inode(ns_.next_inode());
    op->set_replication(3);
    op->set_overwrite(overwrite);
    uint64_t size = 0;
    for (uint64_t id : chunk_ids) {
      auto* c = op->add_chunks();
      c->set_id(id);
      c->set_size(100);
      size += 100;
    }
    op->set_size(size);
    return Apply(r);
  }
  Status Apply(const msg::JournalRecord& r) {
    last_ = ApplyResult{};
    Status s = ns_.Apply(r, &last_);
    if (s.ok() && last_.changed) log_.push_back(r);
    return s;
  }
  msg::JournalRecord Rec() {
    msg::JournalRecord r;
    r.set_unix_ms(++clock_);
    r.set_user("alice");
    return r;
  }
  std::vector<std::string> Names(const std::string& dir) {
    std::vector<std::string> out;
    auto n = ns_.Lookup(dir);
    EXPECT_TRUE(n);
    for (const Inode* child : *(*n)->children) out.emplace_back(child->name.view());
    return out;
  }

  Namespace ns_;
  ApplyResult last_;
  std::vector<msg::JournalRecord> log_;
  int64_t clock_ = 1000;
};

TEST_F(NamespaceTest, MkdirAndItsErrors) {
  EXPECT_TRUE(Mkdir("/a").ok());
  Status s = Mkdir("/a");
  EXPECT_EQ(s.code(), Code::kAlreadyExists);
  EXPECT_EQ(s.message(), "file exists: /a");
  s = Mkdir("/x/y");
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(s.message(), "no such file or directory: /x");
  EXPECT_TRUE(Mkdir("/x/y/z", true).ok());
  EXPECT_TRUE(Mkdir("/x/y/z", true).ok());
  EXPECT_FALSE(last_.changed);
  EXPECT_TRUE(Mkdir("/", true).ok());
  EXPECT_EQ(Mkdir("/").code(), Code::kAlreadyExists);
  ASSERT_TRUE(Put("/f", {1}).ok());
  s = Mkdir("/f/g", true);
  EXPECT_EQ(s.code(), Code::kNotADirectory);
  EXPECT_EQ(s.message(), "not a directory: /f");
  EXPECT_EQ(Mkdir("/f").code(), Code::kAlreadyExists);
  EXPECT_EQ(ns_.directory_count(), 5u);  // / a x y z
  EXPECT_EQ((*ns_.Lookup("/x/y"))->owner, (*ns_.Lookup("/a"))->owner);
  EXPECT_EQ(ns_.OwnerName((*ns_.Lookup("/a"))->owner), "alice");
}

TEST_F(NamespaceTest, RemoveRules) {
  ASSERT_TRUE(Mkdir("/d/e", true).ok());
  ASSERT_TRUE(Put("/d/e/f", {1, 2}).ok());
  Status s = Rm("/d", false, true);
  EXPECT_EQ(s.code(), Code::kNotEmpty);
  EXPECT_EQ(s.message(), "directory not empty: /d");
  EXPECT_EQ(Rm("/d/e/f", false, true).code(), Code::kNotADirectory);
  EXPECT_EQ(Rm("/d").code(), Code::kIsADirectory);
  EXPECT_EQ(Rm("/").code(), Code::kInvalidArgument);
  EXPECT_EQ(Rm("/nope").code(), Code::kNotFound);
  ASSERT_TRUE(Rm("/d", true).ok());
  EXPECT_EQ(last_.files, 1u);
  EXPECT_EQ(last_.directories, 2u);
  EXPECT_EQ(last_.bytes, 200u);
  EXPECT_EQ(last_.freed_chunks, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(ns_.file_count(), 0u);
  EXPECT_EQ(ns_.directory_count(), 1u);
  EXPECT_EQ(ns_.chunk_count(), 0u);
}

TEST_F(NamespaceTest, RenameLikeMv) {
  ASSERT_TRUE(Mkdir("/a/b", true).ok());
  ASSERT_TRUE(Mkdir("/t").ok());
  ASSERT_TRUE(Put("/a/f", {1}).ok());
  ASSERT_TRUE(Mv("/a/f", "/a/g").ok());
  EXPECT_EQ(Names("/a"), (std::vector<std::string>{"b", "g"}));
  ASSERT_TRUE(Mv("/a/g", "/t").ok());  // into an existing directory
  EXPECT_EQ(last_.path, "/t/g");
  ASSERT_TRUE(Mv("/a", "/t").ok());
  EXPECT_EQ(last_.path, "/t/a");
  EXPECT_TRUE(ns_.Lookup("/t/a/b"));
  Status s = Mv("/t", "/t/a/b");
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("into its own subtree"), std::string::npos) << s.message();
  EXPECT_EQ(Mv("/t", "/t").code(), Code::kInvalidArgument);
  EXPECT_EQ(Mv("/missing", "/x").code(), Code::kNotFound);
  EXPECT_EQ(Mv("/t/g", "/nowhere/x").code(), Code::kNotFound);
  // A file moved onto a file replaces it, and the replaced chunks go.
  ASSERT_TRUE(Put("/t/h", {2}).ok());
  ASSERT_TRUE(Mv("/t/g", "/t/h").ok());
  EXPECT_EQ(last_.freed_chunks, std::vector<uint64_t>{2});
  EXPECT_EQ((*ns_.Lookup("/t/h"))->chunks[0], 1u);
}

TEST_F(NamespaceTest, CopySharesChunksUntilTheLastReferenceGoes) {
  ASSERT_TRUE(Put("/f", {7, 8}).ok());
  ASSERT_TRUE(Cp("/f", "/g").ok());
  EXPECT_EQ(ns_.chunk_count(), 2u);
  EXPECT_EQ(Cp("/f", "/g").code(), Code::kAlreadyExists);
  EXPECT_EQ(Cp("/missing", "/h").code(), Code::kNotFound);
  ASSERT_TRUE(Mkdir("/d").ok());
  EXPECT_EQ(Cp("/d", "/e").code(), Code::kIsADirectory);
  ASSERT_TRUE(Cp("/f", "/d").ok());
  EXPECT_EQ(last_.path, "/d/f");
  ASSERT_TRUE(Rm("/f").ok());
  EXPECT_TRUE(last_.freed_chunks.empty());
  ASSERT_TRUE(Rm("/g").ok());
  EXPECT_TRUE(last_.freed_chunks.empty());
  // Rewriting the last copy (a new version) frees the old chunks.
  ASSERT_TRUE(Put("/d/f", {9}, /*overwrite=*/true).ok());
  EXPECT_EQ(last_.freed_chunks, (std::vector<uint64_t>{7, 8}));
  EXPECT_EQ(ns_.chunk_count(), 1u);
}

TEST_F(NamespaceTest, InstallRespectsOverwriteAndDirectories) {
  ASSERT_TRUE(Put("/f", {1}).ok());
  Status s = Put("/f", {2});
  EXPECT_EQ(s.code(), Code::kAlreadyExists);
  // The protocol's words; dfs-cli adds "(use -f to overwrite)".
  EXPECT_EQ(s.message(), "file exists: /f");
  ASSERT_TRUE(Mkdir("/d").ok());
  EXPECT_EQ(Put("/d", {3}, true).code(), Code::kIsADirectory);
  EXPECT_EQ(Put("/nope/f", {3}).code(), Code::kNotFound);
}

TEST_F(NamespaceTest, ReplayRebuildsTheSameTree) {
  ASSERT_TRUE(Mkdir("/a/b/c", true).ok());
  ASSERT_TRUE(Put("/a/f", {1}).ok());
  ASSERT_TRUE(Cp("/a/f", "/a/b/f2").ok());
  ASSERT_TRUE(Mv("/a/b", "/b").ok());
  ASSERT_TRUE(Rm("/a/f").ok());
  Namespace replayed;
  for (const auto& r : log_) ASSERT_TRUE(replayed.Apply(r, nullptr).ok());
  EXPECT_EQ(replayed.file_count(), ns_.file_count());
  EXPECT_EQ(replayed.directory_count(), ns_.directory_count());
  EXPECT_EQ(replayed.next_inode(), ns_.next_inode());
  EXPECT_EQ((*replayed.Lookup("/b/f2"))->id, (*ns_.Lookup("/b/f2"))->id);
  EXPECT_EQ((*replayed.Lookup("/b/c"))->mtime_ms, (*ns_.Lookup("/b/c"))->mtime_ms);
}

TEST_F(NamespaceTest, CheckpointRoundTripKeepsSharing) {
  ASSERT_TRUE(Mkdir("/a/b", true).ok());
  ASSERT_TRUE(Put("/a/b/f", {5, 6}).ok());
  ASSERT_TRUE(Cp("/a/b/f", "/g").ok());
  std::vector<msg::CheckpointEntry> entries;
  ASSERT_TRUE(ns_.Export([&](const msg::CheckpointEntry& e) {
                   entries.push_back(e);
                   return Status::OK();
                 }).ok());
  Namespace loaded;
  for (const auto& e : entries) ASSERT_TRUE(loaded.Import(e).ok());
  EXPECT_EQ(loaded.file_count(), 2u);
  EXPECT_EQ(loaded.directory_count(), 3u);
  EXPECT_EQ(loaded.chunk_count(), 2u);
  EXPECT_EQ(loaded.next_inode(), ns_.next_inode());
  EXPECT_EQ(loaded.OwnerName((*loaded.Lookup("/g"))->owner), "alice");
  // Shared chunks survive the round trip: removing one copy frees nothing.
  msg::JournalRecord r;
  r.mutable_delete_()->set_path("/g");
  ApplyResult a;
  ASSERT_TRUE(loaded.Apply(r, &a).ok());
  EXPECT_TRUE(a.freed_chunks.empty());
}

TEST(Path, HostileNamesAreRefusedClearly) {
  EXPECT_TRUE(SplitPath("/a//b/").has_value());
  EXPECT_EQ(SplitPath("/a//b/")->size(), 2u);
  EXPECT_EQ(SplitPath("relative").error().code(), Code::kInvalidArgument);
  EXPECT_FALSE(SplitPath(""));
  EXPECT_FALSE(SplitPath("/a/../b"));
  EXPECT_FALSE(SplitPath("/a/./b"));
  EXPECT_FALSE(SplitPath(std::string("/a\0b", 4)));
  EXPECT_FALSE(SplitPath("/a\x01"));
  EXPECT_FALSE(SplitPath("/bad\xff\xfe"));
  EXPECT_FALSE(SplitPath("/overlong\xc0\xaf"));
  EXPECT_FALSE(SplitPath("/" + std::string(256, 'n')));
  EXPECT_TRUE(SplitPath("/" + std::string(255, 'n')));
  std::string deep;
  while (deep.size() <= 4096) deep += "/abcdefgh";
  auto r = SplitPath(deep);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("path too long"), std::string::npos);
  EXPECT_TRUE(SplitPath("/caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac"));  // café/日本
  EXPECT_NE(SplitPath("/a/..").error().message().find("'.' and '..'"), std::string::npos);
}

}  // namespace
}  // namespace dfs::master

namespace dfs::master {
namespace {

TEST(ChunkList, InlineOneThenHeap) {
  ChunkList l;
  EXPECT_TRUE(l.empty());
  l.push_back(7);
  EXPECT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0], 7u);
  for (uint64_t i = 8; i < 100; ++i) l.push_back(i);
  ASSERT_EQ(l.size(), 93u);
  uint64_t want = 7;
  for (uint64_t id : l) EXPECT_EQ(id, want++);
  ChunkList copy = l;
  ChunkList moved = std::move(l);
  EXPECT_EQ(copy.size(), 93u);
  EXPECT_EQ(moved[92], 99u);
  EXPECT_TRUE(l.empty());  // NOLINT: moved-from is empty by contract
  ChunkList one;
  one.push_back(1);
  one = moved;
  EXPECT_EQ(one.size(), 93u);
  static_assert(sizeof(ChunkList) == 8);
}

// Ids the inline word cannot hold (0, and 2^63 and over) go to the heap, alone
// or after an inline one; reserve keeps what is there.
TEST(ChunkList, IdsTheWordCannotHold) {
  for (uint64_t odd : {uint64_t{0}, uint64_t{1} << 63, ~uint64_t{0}}) {
    ChunkList l;
    l.push_back(odd);
    ASSERT_EQ(l.size(), 1u);
    EXPECT_EQ(l[0], odd);
    l.push_back(5);
    ASSERT_EQ(l.size(), 2u);
    EXPECT_EQ(l[0], odd);
    EXPECT_EQ(l[1], 5u);
    ChunkList m;
    m.push_back(3);
    m.push_back(odd);
    EXPECT_EQ(m[0], 3u);
    EXPECT_EQ(m[1], odd);
    ChunkList copy = m;
    EXPECT_EQ(copy[1], odd);
  }
  ChunkList r;
  r.push_back(9);
  r.reserve(10);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0], 9u);
  r.clear();
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.begin(), r.end());
}

// Names up to 15 bytes inline, longer ones on the heap; assigning a view of
// the name itself (rename keeps a name) works both ways.
TEST(InodeName, InlineHeapAndSelfAssign) {
  InodeName n;
  EXPECT_EQ(n.view(), "");
  n.assign("short");
  EXPECT_EQ(n.view(), "short");
  n.assign("exactly-15bytes");
  EXPECT_EQ(n.view(), "exactly-15bytes");
  const std::string long_name(255, 'x');
  n.assign(long_name);
  EXPECT_EQ(n.view(), long_name);
  n.assign(n.view());
  EXPECT_EQ(n.view(), long_name);
  n.assign(n.view().substr(0, 200));
  EXPECT_EQ(n.view(), std::string(200, 'x'));
  n.assign(n.view().substr(190));
  EXPECT_EQ(n.view(), std::string(10, 'x'));
  n.assign(n.view());
  EXPECT_EQ(n.view(), std::string(10, 'x'));
  n.assign(std::string(16, 'y'));
  EXPECT_EQ(n.view(), std::string(16, 'y'));
  static_assert(sizeof(InodeName) == 16);
}

// A long name survives a rename to a short one and back, and lookups order
// inline and heap names together.
TEST_F(NamespaceTest, LongAndShortNamesRenameBothWays) {
  const std::string long_name = "/" + std::string(100, 'L');
  ASSERT_TRUE(Mkdir(long_name).ok());
  ASSERT_TRUE(Put(long_name + "/f", {1}).ok());
  ASSERT_TRUE(Mv(long_name, "/s").ok());
  EXPECT_TRUE(ns_.Lookup("/s/f"));
  ASSERT_TRUE(Mv("/s", long_name + "2").ok());
  EXPECT_TRUE(ns_.Lookup(long_name + "2/f"));
  ASSERT_TRUE(Put("/a", {2}).ok());
  ASSERT_TRUE(Put("/z", {3}).ok());
  EXPECT_EQ(Names("/"), (std::vector<std::string>{long_name.substr(1) + "2", "a", "z"}));  // 'L' < 'a'
}

}  // namespace
}  // namespace dfs::master
