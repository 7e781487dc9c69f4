// The namespace through dfs-cli against a real master: mkdir, rmdir, rm, mv,
// cp, stat, ls (-l, -R), tree, du, df, the seed-style aliases, --json
// shapes, every error's exit status and one-line message, hostile names,
// and the namespace surviving a master restart. Also the client-side path
// resolution and List paging through libdfs_client.
//
// There is no data path yet (put/get), so MakeFile commits files straight
// through the master's write requests: a lease, chunk ids, and a commit that
// names chunks no node holds. Namespace commands never read the bytes, so
// that is enough for rm, cp, mv, stat, ls, tree and du of files.
#include <pwd.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bus/request_client.h"
#include "client_master.pb.h"
#include "client/dfs_client.h"
#include "tests/support/cluster.h"

namespace dfs::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

int CountLines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

std::string LocalUser() {
  if (passwd* pw = getpwuid(geteuid()); pw != nullptr) return pw->pw_name;
  return "";
}

// Exit 0, nothing on stderr; returns stdout.
::testing::AssertionResult Succeeds(const CommandResult& r) {
  if (r.exit_code == 0 && r.err.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "exit " << r.exit_code << ", stderr: " << r.err;
}

// Exit 1, nothing on stdout, exactly one line "dfs-cli: ...<fragment>..." on stderr.
::testing::AssertionResult FailsWith(const CommandResult& r, const std::string& fragment) {
  if (r.exit_code != 1) return ::testing::AssertionFailure() << "exit " << r.exit_code << ", stderr: " << r.err;
  if (!r.out.empty()) return ::testing::AssertionFailure() << "stdout not empty: " << r.out;
  if (CountLines(r.err) != 1 || !r.err.starts_with("dfs-cli: ")) {
    return ::testing::AssertionFailure() << "want one line 'dfs-cli: ...', got: " << r.err;
  }
  if (r.err.find(fragment) == std::string::npos) {
    return ::testing::AssertionFailure() << "stderr lacks '" << fragment << "': " << r.err;
  }
  return ::testing::AssertionSuccess();
}

// "d00042"
std::string Numbered(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "d%05d", i);
  return buf;
}

std::vector<std::string> Names(const json& doc) {
  std::vector<std::string> names;
  for (const auto& e : doc.at("entries")) names.push_back(e.at("name").get<std::string>());
  return names;
}

// A file of `chunk_sizes` at `path` with replication 1 and `checksum`, as
// the data path will leave it, minus the bytes on the nodes.
Status MakeFile(const std::string& master, const std::string& path, const std::vector<uint64_t>& chunk_sizes = {},
                uint32_t checksum = 0) {
  bus::Context ctx;
  bus::SocketOptions so;
  so.linger_ms = 0;
  bus::RequestClient<msg::ClientEnvelope> rpc(ctx, "tcp://" + master, so, bus::RetryPolicy{std::chrono::milliseconds(2000), 2});
  msg::ClientEnvelope create;
  create.set_user(LocalUser());
  create.mutable_create_file_request()->set_path(path);
  create.mutable_create_file_request()->set_replication(1);
  DFS_ASSIGN_OR_RETURN(bus::Message<msg::ClientEnvelope> created, rpc.Call(create));
  const uint64_t lease = created.envelope.create_file_response().lease_id();

  msg::ClientEnvelope complete;
  complete.set_user(LocalUser());
  auto* done = complete.mutable_complete_file_request();
  done->set_lease_id(lease);
  uint64_t total = 0;
  for (size_t i = 0; i < chunk_sizes.size(); ++i) {
    msg::ClientEnvelope alloc;
    alloc.set_user(LocalUser());
    alloc.mutable_allocate_chunk_request()->set_lease_id(lease);
    alloc.mutable_allocate_chunk_request()->set_index(static_cast<uint32_t>(i));
    DFS_ASSIGN_OR_RETURN(bus::Message<msg::ClientEnvelope> got, rpc.Call(alloc));
    auto* ci = done->add_chunks();
    ci->set_id(got.envelope.allocate_chunk_response().chunk_id());
    ci->set_version(got.envelope.allocate_chunk_response().version());
    ci->set_size(chunk_sizes[i]);
    ci->set_checksum(static_cast<uint32_t>(1000 + i));
    total += chunk_sizes[i];
  }
  done->set_size(total);
  done->set_checksum(checksum);
  DFS_ASSIGN_OR_RETURN(bus::Message<msg::ClientEnvelope> finished, rpc.Call(complete));
  if (!finished.envelope.has_complete_file_response()) return Status::ProtocolError("no complete_file_response");
  return Status::OK();
}

class NamespaceCli : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(cluster_.Start()); }

  CommandResult Cli(const std::vector<std::string>& args) { return cluster_.Cli(args); }
  json Json(const std::vector<std::string>& args) {
    std::vector<std::string> all{"--json"};
    all.insert(all.end(), args.begin(), args.end());
    auto r = cluster_.Cli(all);
    EXPECT_TRUE(Succeeds(r)) << "dfs-cli --json " << ::testing::PrintToString(args);
    return json::parse(r.out.empty() ? "{}" : r.out);
  }
  std::vector<std::string> Ls(const std::string& path) { return Names(Json({"ls", path})); }
  ::testing::AssertionResult File(const std::string& path, const std::vector<uint64_t>& chunk_sizes = {},
                                  uint32_t checksum = 0) {
    Status st = MakeFile(cluster_.master_address(), path, chunk_sizes, checksum);
    if (st.ok()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "MakeFile " << path << ": " << st.ToString();
  }

  // Files are made at the metadata level (MakeFile): no bytes move, so the
  // replica check is off here; the data path tests exercise it.
  MiniCluster cluster_{ClusterOptions{.nodes = 1, .master_args = {"--unsafe-unverified-writes"}}};
};

TEST(ResolvePath, RelativeDotsAndSlashes) {
  struct Case {
    std::string path, cwd, want;
  };
  std::vector<Case> cases = {
      {"/", "/", "/"},          {"a", "/", "/a"},           {"/a/../b", "/", "/b"},
      {"/../..", "/", "/"},     {"a/./b/", "/", "/a/b"},    {"//a//b//", "/", "/a/b"},
      {"../z", "/x/y", "/x/z"}, {".", "/x/y", "/x/y"},      {"/a/b/../../..", "/", "/"},
      {"é/ü", "/", "/é/ü"},     {"..", "/", "/"},           {"a/..", "/q", "/q"},
  };
  for (const auto& k : cases) {
    auto r = client::ResolvePath(k.path, k.cwd);
    ASSERT_TRUE(r.has_value()) << k.path << ": " << r.error().message();
    EXPECT_EQ(*r, k.want) << k.path << " from " << k.cwd;
  }
  EXPECT_FALSE(client::ResolvePath("").has_value());
  auto bad = client::ResolvePath("/a/\xff\xfe");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message().find("not UTF-8"), std::string::npos) << bad.error().message();
  EXPECT_NE(bad.error().message().find("\\xff\\xfe"), std::string::npos) << bad.error().message();
  EXPECT_FALSE(client::ResolvePath("/\xc0\xaf").has_value()) << "overlong '/' must not pass";
}

TEST_F(NamespaceCli, MkdirAndItsErrors) {
  EXPECT_TRUE(Succeeds(Cli({"mkdir", "/a"})));
  EXPECT_TRUE(FailsWith(Cli({"mkdir", "/a"}), "file exists: /a"));
  EXPECT_TRUE(FailsWith(Cli({"mkdir", "/m/n"}), "no such file or directory: /m"));
  EXPECT_TRUE(FailsWith(Cli({"mkdir", "/"}), "file exists: /"));

  EXPECT_TRUE(Succeeds(Cli({"mkdir", "-p", "/x/y/z"})));
  EXPECT_TRUE(Succeeds(Cli({"mkdir", "-p", "/x/y/z"}))) << "repeated -p is fine";
  EXPECT_TRUE(Succeeds(Cli({"mkdir", "-p", "/a"}))) << "-p on an existing directory is fine";
  EXPECT_EQ(Ls("/x/y"), std::vector<std::string>{"z"});

  // Relative paths start at /; "." and ".." are resolved before sending.
  EXPECT_TRUE(Succeeds(Cli({"mkdir", "rel"})));
  EXPECT_TRUE(Succeeds(Cli({"mkdir", "/a/../b"})));
  EXPECT_TRUE(Succeeds(Cli({"mkdir", "/a/./c"})));
  EXPECT_TRUE(Succeeds(Cli({"mkdir", "/../../top"})));
  EXPECT_EQ(Ls("/"), (std::vector<std::string>{"a", "b", "rel", "top", "x"}));
  EXPECT_EQ(Ls("/a"), std::vector<std::string>{"c"});

  // Several paths: each is tried, each failure is one line, exit 1.
  auto r = Cli({"mkdir", "/s1", "/a", "/s2"});
  EXPECT_TRUE(FailsWith(r, "file exists: /a"));
  EXPECT_EQ(Ls("/").size(), 7u);

  // --json names what was made.
  auto made = Json({"mkdir", "/j"});
  ASSERT_EQ(made["directories"].size(), 1u);
  EXPECT_EQ(made["directories"][0]["path"], "/j");
  EXPECT_EQ(made["directories"][0]["type"], "dir");
}

TEST_F(NamespaceCli, RmdirAndRm) {
  ASSERT_TRUE(Succeeds(Cli({"mkdir", "-p", "/full/sub/deeper", "/empty", "/tree/a/b", "/tree/c"})));
  EXPECT_TRUE(FailsWith(Cli({"rmdir", "/full"}), "directory not empty: /full"));
  EXPECT_TRUE(FailsWith(Cli({"rmdir", "/nope"}), "no such file or directory: /nope"));
  EXPECT_TRUE(FailsWith(Cli({"rmdir", "/"}), "cannot remove /"));
  EXPECT_TRUE(Succeeds(Cli({"rmdir", "/empty"})));
  EXPECT_TRUE(FailsWith(Cli({"rm", "/full"}), "is a directory: /full (use rm -r, or rmdir)"));
  EXPECT_TRUE(FailsWith(Cli({"rm", "/nope"}), "no such file or directory: /nope"));
  EXPECT_TRUE(FailsWith(Cli({"rm", "-r", "/"}), "cannot remove /"));

  auto removed = Json({"rm", "-r", "/tree"});
  ASSERT_EQ(removed["removed"].size(), 1u);
  EXPECT_EQ(removed["removed"][0]["path"], "/tree");
  EXPECT_EQ(removed["removed"][0]["directories"], 4) << removed.dump();
  EXPECT_EQ(removed["removed"][0]["files"], 0);
  EXPECT_TRUE(Succeeds(Cli({"rm", "-r", "/full/sub"})));
  EXPECT_TRUE(Succeeds(Cli({"rmdir", "/full"})));
  EXPECT_TRUE(Ls("/").empty());
  EXPECT_TRUE(FailsWith(Cli({"ls", "/tree"}), "no such file or directory: /tree"));
}

TEST_F(NamespaceCli, MvAndCp) {
  ASSERT_TRUE(Succeeds(Cli({"mkdir", "-p", "/m1/inside", "/box", "/box2/m2", "/p/q"})));
  EXPECT_TRUE(Succeeds(Cli({"mv", "/m1", "/m2"})));  // rename
  EXPECT_EQ(Ls("/m2"), std::vector<std::string>{"inside"});

  auto moved = Json({"mv", "/m2", "/box"});  // into an existing directory
  EXPECT_EQ(moved["path"], "/box/m2");
  EXPECT_EQ(moved["source"], "/m2");
  EXPECT_EQ(Ls("/box/m2"), std::vector<std::string>{"inside"});
  EXPECT_EQ(Ls("/"), (std::vector<std::string>{"box", "box2", "p"}));

  EXPECT_TRUE(FailsWith(Cli({"mv", "/box/m2", "/box2"}), "file exists: /box2/m2"));
  EXPECT_TRUE(FailsWith(Cli({"mv", "/p", "/p/q"}), "cannot move /p into its own subtree"));
  EXPECT_TRUE(FailsWith(Cli({"mv", "/p", "/p/q/r"}), "cannot move /p into its own subtree"));
  EXPECT_TRUE(FailsWith(Cli({"mv", "/nope", "/x"}), "no such file or directory: /nope"));
  EXPECT_TRUE(FailsWith(Cli({"mv", "/", "/x"}), "cannot move /"));
  EXPECT_TRUE(Succeeds(Cli({"mv", "box/m2/../m2", "/p/q/../renamed"})));
  EXPECT_EQ(Ls("/p"), (std::vector<std::string>{"q", "renamed"}));

  EXPECT_TRUE(FailsWith(Cli({"cp", "/nope", "/x"}), "no such file or directory: /nope"));
  EXPECT_TRUE(FailsWith(Cli({"cp", "/box", "/x"}), "is a directory: /box"));
}

TEST_F(NamespaceCli, StatShapes) {
  ASSERT_TRUE(Succeeds(Cli({"mkdir", "-p", "/s/one", "/s/two"})));
  auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  auto st = Json({"stat", "/s"});
  for (const char* k : {"path", "type", "size", "replication", "mtime", "checksum", "chunks", "owner", "mode",
                        "inode"}) {
    EXPECT_TRUE(st.contains(k)) << k << " missing: " << st.dump();
  }
  EXPECT_EQ(st["path"], "/s");
  EXPECT_EQ(st["type"], "dir");
  EXPECT_EQ(st["size"], 2) << "a directory's size is its number of entries";
  EXPECT_EQ(st["mode"], 0755);
  EXPECT_EQ(st["owner"], LocalUser());
  EXPECT_GT(st["inode"].get<uint64_t>(), 1u);
  EXPECT_TRUE(st["chunks"].is_array() && st["chunks"].empty());
  EXPECT_NEAR(static_cast<double>(st["mtime"].get<int64_t>()), static_cast<double>(before), 120'000.0);

  auto text = Cli({"stat", "/s/one"});
  ASSERT_TRUE(Succeeds(text));
  EXPECT_NE(text.out.find("path: /s/one"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("type: directory"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("drwxr-xr-x (0755)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("owner: " + LocalUser()), std::string::npos) << text.out;

  EXPECT_TRUE(FailsWith(Cli({"stat", "/s/three"}), "no such file or directory: /s/three"));
  EXPECT_TRUE(FailsWith(Cli({"--json", "stat", "/s/three"}), "no such file or directory: /s/three"));
  EXPECT_EQ(Json({"stat", "/"})["path"], "/");
}

TEST_F(NamespaceCli, LsSortedPlainLongAndJson) {
  for (const char* d : {"/l/c", "/l/a", "/l/b", "/l/B", "/l/z z", "/l/é"}) {
    ASSERT_TRUE(Succeeds(Cli({"mkdir", "-p", d})));
  }
  auto plain = Cli({"ls", "/l"});
  ASSERT_TRUE(Succeeds(plain));
  EXPECT_EQ(plain.out, "B/\na/\nb/\nc/\nz z/\né/\n");  // bytewise order; directories end in '/'
  EXPECT_EQ(Cli({"ls", "l"}).out, plain.out) << "relative to /";

  auto doc = Json({"ls", "/l"});
  EXPECT_EQ(Names(doc), (std::vector<std::string>{"B", "a", "b", "c", "z z", "é"}));
  for (const auto& e : doc["entries"]) {
    EXPECT_EQ(e["type"], "dir");
    EXPECT_EQ(e["size"], 0);
    EXPECT_FALSE(e.contains("mtime")) << "mtime only with -l";
  }
  auto longdoc = Json({"ls", "-l", "/l"});
  ASSERT_EQ(longdoc["entries"].size(), 6u);
  for (const auto& e : longdoc["entries"]) {
    EXPECT_EQ(e["owner"], LocalUser());
    EXPECT_EQ(e["mode"], 0755);
    EXPECT_GT(e["mtime"].get<int64_t>(), 1'600'000'000'000);
  }

  auto table = Cli({"ls", "-l", "/l"});
  ASSERT_TRUE(Succeeds(table));
  EXPECT_EQ(CountLines(table.out), 6) << table.out;
  std::regex row("drwxr-xr-x \\S+ - \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d B/");  // a folder's size: -
  EXPECT_TRUE(std::regex_search(table.out, row)) << table.out;

  EXPECT_EQ(Ls("/"), std::vector<std::string>{"l"});
  auto root = Cli({"ls"});  // default: /
  EXPECT_EQ(root.out, "l/\n");
  EXPECT_TRUE(Json({"ls", "/l/a"})["entries"].empty());
  EXPECT_TRUE(FailsWith(Cli({"ls", "/nope"}), "no such file or directory: /nope"));
  EXPECT_TRUE(FailsWith(Cli({"ls", "/l/nope/deeper"}), "no such file or directory"));
}

TEST_F(NamespaceCli, LsRecursive) {
  ASSERT_TRUE(Succeeds(Cli({"mkdir", "-p", "/r/a/x", "/r/b"})));
  auto r = Cli({"ls", "-R", "/r"});
  ASSERT_TRUE(Succeeds(r));
  EXPECT_EQ(r.out, "/r:\na/\nb/\n\n/r/a:\nx/\n\n/r/a/x:\n\n/r/b:\n");

  auto doc = Json({"ls", "-R", "/r"});
  std::vector<std::string> paths;
  for (const auto& e : doc["entries"]) paths.push_back(e["path"].get<std::string>());
  EXPECT_EQ(paths, (std::vector<std::string>{"/r/a", "/r/b", "/r/a/x"}));
  EXPECT_EQ(Names(doc), (std::vector<std::string>{"a", "b", "x"}));
}

TEST_F(NamespaceCli, Tree) {
  ASSERT_TRUE(Succeeds(Cli({"mkdir", "-p", "/t/a/b", "/t/c"})));
  auto r = Cli({"tree", "/t"});
  ASSERT_TRUE(Succeeds(r));
  EXPECT_EQ(r.out, "/t\n├── a\n│   └── b\n└── c\n\n3 directories, 0 files\n");
  auto one = Cli({"tree", "/t/a"});
  EXPECT_EQ(one.out, "/t/a\n└── b\n\n1 directory, 0 files\n");

  auto doc = Json({"tree", "/t"});
  EXPECT_EQ(doc["directories"], 3);
  EXPECT_EQ(doc["files"], 0);
  EXPECT_EQ(doc["tree"]["name"], "/t");
  ASSERT_EQ(doc["tree"]["children"].size(), 2u);
  EXPECT_EQ(doc["tree"]["children"][0]["name"], "a");
  EXPECT_EQ(doc["tree"]["children"][0]["children"][0]["name"], "b");
  EXPECT_EQ(doc["tree"]["children"][1]["name"], "c");

  EXPECT_TRUE(Succeeds(Cli({"tree"})));
  EXPECT_TRUE(FailsWith(Cli({"tree", "/nope"}), "no such file or directory: /nope"));
}

TEST_F(NamespaceCli, DuAndDf) {
  ASSERT_TRUE(Succeeds(Cli({"mkdir", "-p", "/d/e", "/d/f/g"})));
  auto du = Json({"du", "/d"});
  EXPECT_EQ(du["path"], "/d");
  EXPECT_EQ(du["bytes"], 0);
  EXPECT_EQ(du["stored_bytes"], 0);
  EXPECT_EQ(du["files"], 0);
  EXPECT_EQ(du["directories"], 4) << "/d itself and the three below it";
  auto text = Cli({"du", "/d"});
  ASSERT_TRUE(Succeeds(text));
  EXPECT_NE(text.out.find("SIZE"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("0 B"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("/d"), std::string::npos) << text.out;
  EXPECT_TRUE(FailsWith(Cli({"du", "/nope"}), "no such file or directory: /nope"));

  auto df = Json({"df"});
  for (const char* k : {"capacity", "used", "available", "nodes_alive", "nodes_dead", "files", "directories",
                        "chunks"}) {
    EXPECT_TRUE(df.contains(k)) << k << " missing: " << df.dump();
  }
  EXPECT_EQ(df["nodes_alive"], 1);
  EXPECT_EQ(df["nodes_dead"], 0);
  EXPECT_GT(df["capacity"].get<uint64_t>(), 0u);
  EXPECT_EQ(df["files"], 0);
  EXPECT_EQ(df["directories"], 5) << "/ and the four made here";
  auto dft = Cli({"df"});
  ASSERT_TRUE(Succeeds(dft));
  EXPECT_NE(dft.out.find("1 alive"), std::string::npos) << dft.out;
}

TEST_F(NamespaceCli, SeedStyleAliases) {
  EXPECT_TRUE(Succeeds(Cli({"--mkdir", "/seed"})));
  EXPECT_TRUE(Succeeds(Cli({"--mkdir=/seed2"})));
  EXPECT_EQ(Json({"--stat", "/seed"})["type"], "dir");
  auto st = Cli({"--stat", "/seed"});
  EXPECT_NE(st.out.find("path: /seed"), std::string::npos) << st.out;
  EXPECT_TRUE(FailsWith(Cli({"--rm", "/seed"}), "is a directory: /seed"));
  EXPECT_TRUE(FailsWith(Cli({"--mkdir", "/seed"}), "file exists: /seed"));
}

TEST_F(NamespaceCli, HostileNamesAreRefusedWithOneLine) {
  ASSERT_TRUE(Succeeds(Cli({"mkdir", "/h"})));
  EXPECT_TRUE(FailsWith(Cli({"mkdir", "/h/" + std::string(300, 'n')}), "name too long"));
  EXPECT_TRUE(FailsWith(Cli({"mkdir", "/h/a\x01" "b"}), "control character"));
  EXPECT_TRUE(FailsWith(Cli({"mkdir", "/h/tab\tname"}), "control character"));
  EXPECT_TRUE(FailsWith(Cli({"mkdir", "/h/bad\xff\xfe"}), "not UTF-8"));
  EXPECT_TRUE(FailsWith(Cli({"mkdir", "/h/\xc0\xae\xc0\xae"}), "not UTF-8")) << "overlong '..'";
  EXPECT_TRUE(FailsWith(Cli({"stat", "/h/\xed\xa0\x80"}), "not UTF-8")) << "a surrogate";
  std::string long_path;
  while (long_path.size() < 5000) long_path += "/" + std::string(200, 'p');
  EXPECT_TRUE(FailsWith(Cli({"mkdir", "-p", long_path}), "path too long"));
  EXPECT_TRUE(FailsWith(Cli({"ls", long_path}), "path too long"));
  // ".." is the client's to resolve: /h/../k is /k.
  EXPECT_TRUE(Succeeds(Cli({"mkdir", "/h/../k"})));
  EXPECT_EQ(Ls("/"), (std::vector<std::string>{"h", "k"}));
  EXPECT_TRUE(Ls("/h").empty()) << "nothing hostile got in";
  EXPECT_EQ(cluster_.master().running(), true);
}

TEST_F(NamespaceCli, StatLsTreeDuOfFiles) {
  ASSERT_TRUE(Succeeds(Cli({"mkdir", "/f"})));
  ASSERT_TRUE(File("/f/empty"));
  ASSERT_TRUE(File("/f/big", {1000, 500}, 0xdeadbeef));

  auto st = Json({"stat", "/f/big"});
  EXPECT_EQ(st["path"], "/f/big");
  EXPECT_EQ(st["type"], "file");
  EXPECT_EQ(st["size"], 1500);
  EXPECT_EQ(st["replication"], 1);
  EXPECT_EQ(st["checksum"], 0xdeadbeefu);
  EXPECT_EQ(st["mode"], 0644);
  EXPECT_EQ(st["owner"], LocalUser());
  ASSERT_EQ(st["chunks"].size(), 2u) << st.dump();
  EXPECT_EQ(st["chunks"][0]["size"], 1000);
  EXPECT_EQ(st["chunks"][1]["size"], 500);
  EXPECT_EQ(st["chunks"][0]["version"], 1);
  EXPECT_NE(st["chunks"][0]["id"], st["chunks"][1]["id"]);
  EXPECT_TRUE(st["chunks"][0]["replicas"].is_array()) << "no node holds them: an empty list";
  auto text = Cli({"stat", "/f/big"});
  ASSERT_TRUE(Succeeds(text));
  for (const char* want : {"type: file", "1.5 KiB (1500 bytes)", "-rw-r--r-- (0644)", "replication: 1",
                           "checksum: deadbeef", "chunks: 2", "VERSION", "(none reported)"}) {
    EXPECT_NE(text.out.find(want), std::string::npos) << want << " in:\n" << text.out;
  }

  EXPECT_EQ(Cli({"ls", "/f"}).out, "big\nempty\n");
  EXPECT_EQ(Cli({"ls", "/f/big"}).out, "/f/big\n") << "a file lists as itself, under the name given";
  EXPECT_EQ(Cli({"ls", "f/big"}).out, "f/big\n");
  auto lone = Json({"ls", "/f/big"});
  ASSERT_EQ(lone["entries"].size(), 1u);
  EXPECT_EQ(lone["entries"][0]["type"], "file");
  EXPECT_EQ(lone["entries"][0]["size"], 1500);
  std::regex row("-rw-r--r-- \\S+ +1\\.5 KiB \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d big\n");
  auto table = Cli({"ls", "-l", "/f"});
  EXPECT_TRUE(std::regex_search(table.out, row)) << table.out;
  // A directory holding one file of its own name is still a directory.
  ASSERT_TRUE(Succeeds(Cli({"mkdir", "/same"})));
  ASSERT_TRUE(File("/same/same"));
  EXPECT_EQ(Cli({"ls", "/same"}).out, "same\n");
  EXPECT_EQ(Cli({"ls", "-R", "/same"}).out, "/same:\nsame\n");

  // No node holds big's chunks here (metadata only): the viewer says so.
  EXPECT_EQ(Cli({"tree", "/f"}).out,
            "/f\n├── big  (1.5 KiB, r1, 2 chunks)  [2 chunks MISSING]\n└── empty  (0 B, r1, 0 chunks)\n\n"
            "0 directories, 2 files, 1 file with chunks short of replicas (dfs-cli fsck -v)\n");
  EXPECT_EQ(Cli({"tree", "/f/big"}).out,
            "/f/big  (1.5 KiB, r1, 2 chunks)  [2 chunks MISSING]\n\n"
            "0 directories, 1 file, 1 file with chunks short of replicas (dfs-cli fsck -v)\n");
  auto du = Json({"du", "/f"});
  EXPECT_EQ(du["bytes"], 1500);
  EXPECT_EQ(du["stored_bytes"], 1500);
  EXPECT_EQ(du["files"], 2);
  EXPECT_EQ(du["directories"], 1);
  auto df = Json({"df"});
  EXPECT_EQ(df["files"], 3);
  EXPECT_EQ(df["chunks"], 2);

  EXPECT_TRUE(FailsWith(Cli({"mkdir", "/f/big"}), "file exists: /f/big"));
  EXPECT_TRUE(FailsWith(Cli({"mkdir", "/f/big/sub"}), "not a directory: /f/big"));
  EXPECT_TRUE(FailsWith(Cli({"mkdir", "-p", "/f/big/sub"}), "not a directory: /f/big"));
  EXPECT_TRUE(FailsWith(Cli({"rmdir", "/f/big"}), "not a directory: /f/big"));
}

TEST_F(NamespaceCli, RmCpMvOfFiles) {
  ASSERT_TRUE(Succeeds(Cli({"mkdir", "/f", "/d"})));
  ASSERT_TRUE(File("/f/a", {100}));
  ASSERT_TRUE(File("/f/b"));

  auto copy = Json({"cp", "/f/a", "/f/c"});
  EXPECT_EQ(copy["path"], "/f/c");
  EXPECT_EQ(copy["type"], "file");
  EXPECT_EQ(copy["size"], 100);
  EXPECT_EQ(Json({"stat", "/f/c"})["chunks"][0]["id"], Json({"stat", "/f/a"})["chunks"][0]["id"])
      << "cp shares chunks";
  EXPECT_TRUE(Succeeds(Cli({"cp", "/f/a", "/d"})));  // into an existing directory
  EXPECT_EQ(Ls("/d"), std::vector<std::string>{"a"});
  EXPECT_TRUE(FailsWith(Cli({"cp", "/f/a", "/nope/x"}), "no such file or directory"));

  EXPECT_TRUE(Succeeds(Cli({"mv", "/f/b", "/f/b2"})));
  EXPECT_TRUE(Succeeds(Cli({"mv", "/f/b2", "/d"})));
  EXPECT_EQ(Ls("/d"), (std::vector<std::string>{"a", "b2"}));
  EXPECT_TRUE(Succeeds(Cli({"mv", "/f/c", "/f/a"}))) << "a file moved onto a file replaces it";
  EXPECT_EQ(Ls("/f"), std::vector<std::string>{"a"});
  ASSERT_TRUE(Succeeds(Cli({"mkdir", "/f/dir"})));
  EXPECT_TRUE(FailsWith(Cli({"mv", "/f/dir", "/f/a"}), "not a directory: /f/a"));

  EXPECT_TRUE(FailsWith(Cli({"rm", "/f/a/x"}), "/f/a"));
  auto gone = Json({"rm", "/f/a"});
  EXPECT_EQ(gone["removed"][0]["files"], 1);
  EXPECT_EQ(gone["removed"][0]["bytes"], 100);
  EXPECT_TRUE(Succeeds(Cli({"rm", "/d/b2"})));
  EXPECT_TRUE(Succeeds(Cli({"rm", "-r", "/d"})));
  EXPECT_EQ(Ls("/"), std::vector<std::string>{"f"});
  EXPECT_EQ(Json({"df"})["files"], 0);
  EXPECT_EQ(Json({"df"})["chunks"], 0) << "the last reference to a chunk went with /d/a";
}

TEST_F(NamespaceCli, UsageErrorsExit2) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"mkdir"}, {"rmdir"}, {"rm"}, {"mv", "/a"}, {"cp", "/a"}, {"stat"}, {"rm", "--bogus", "/a"},
           {"ls", "/a", "/b"}, {"du", "/a", "/b"}, {"--stat"}}) {
    auto r = Cli(args);
    EXPECT_EQ(r.exit_code, 2) << ::testing::PrintToString(args) << ": " << r.err;
    EXPECT_EQ(CountLines(r.err), 1) << r.err;
  }
}

// Pages: a listing longer than a page (the client's page size set to 7, and
// the master's own default) comes back whole, sorted, without repeats.
TEST_F(NamespaceCli, ListPagesThroughLargeDirectories) {
  client::ClientOptions o;
  o.master = cluster_.master_address();
  o.list_page_size = 7;
  auto c = client::Client::Connect(o);
  ASSERT_TRUE(c.has_value()) << c.error().message();
  constexpr int kEntries = 1201;  // two of the master's 1000-entry pages; 172 of ours
  for (int i = 0; i < kEntries; ++i) {
    auto r = (*c)->Mkdir("/big/" + Numbered(i), /*parents=*/true);
    ASSERT_TRUE(r.has_value()) << r.error().message();
  }
  auto listed = (*c)->List("/big");
  ASSERT_TRUE(listed.has_value()) << listed.error().message();
  ASSERT_EQ(listed->size(), static_cast<size_t>(kEntries));
  for (int i = 0; i < kEntries; ++i) EXPECT_EQ((*listed)[static_cast<size_t>(i)].path, Numbered(i));
  // Names alone, in the same pages, with which are folders (a file among them).
  ASSERT_TRUE(File("/big/zz-file"));
  auto bare = (*c)->ListNames("/big");
  ASSERT_TRUE(bare.has_value()) << bare.error().message();
  ASSERT_EQ(bare->size(), static_cast<size_t>(kEntries) + 1);
  for (int i = 0; i < kEntries; ++i) {
    EXPECT_EQ(bare->name(static_cast<size_t>(i)), Numbered(i));
    EXPECT_TRUE(bare->dirs[static_cast<size_t>(i)]);
  }
  EXPECT_EQ(bare->name(kEntries), "zz-file");
  EXPECT_FALSE(bare->dirs[kEntries]);
  // The CLI's plain ls lists names alone: folders marked with '/'.
  auto plain = cluster_.Cli({"ls", "/big"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(plain.out.substr(0, 8), "d00000/\n");
  EXPECT_EQ(CountLines(plain.out), static_cast<size_t>(kEntries) + 1);
  EXPECT_TRUE(plain.out.ends_with("/\nzz-file\n")) << plain.out.substr(plain.out.size() - 30);
  ASSERT_EQ((*c)->Remove("/big/zz-file").has_value(), true);

  auto names = Ls("/big");  // the CLI: the master's page size
  ASSERT_EQ(names.size(), static_cast<size_t>(kEntries));
  EXPECT_EQ(names.front(), "d00000");
  EXPECT_EQ(names.back(), Numbered(kEntries - 1));
}

void ExpectNamespaceSurvivesRestart(bool kill) {
  MiniCluster c({.nodes = 1});
  ASSERT_TRUE(c.Start());
  for (const char* d : {"/keep/a", "/keep/b", "/keep/c/d", "/gone/x"}) {
    ASSERT_TRUE(Succeeds(c.Cli({"mkdir", "-p", d})));
  }
  ASSERT_TRUE(Succeeds(c.Cli({"mv", "/keep/b", "/keep/bb"})));
  ASSERT_TRUE(Succeeds(c.Cli({"rm", "-r", "/gone"})));
  if (kill) {
    c.KillMaster();  // a mutation is answered only once durable: nothing may be lost
  } else {
    ASSERT_EQ(c.StopMaster(), 0);
  }
  ASSERT_TRUE(c.StartMaster());
  auto r = c.Cli({"ls", "-R", "/"});
  ASSERT_TRUE(Succeeds(r));
  EXPECT_EQ(r.out, "/:\nkeep/\n\n/keep:\na/\nbb/\nc/\n\n/keep/a:\n\n/keep/bb:\n\n/keep/c:\nd/\n\n/keep/c/d:\n");
  auto st = json::parse(c.Cli({"--json", "stat", "/keep/c/d"}).out);
  EXPECT_EQ(st["owner"], LocalUser());
  EXPECT_TRUE(FailsWith(c.Cli({"mkdir", "/keep/a"}), "file exists: /keep/a"));
}

TEST(NamespaceRestart, NamespaceSurvivesAMasterRestart) { ExpectNamespaceSurvivesRestart(false); }
TEST(NamespaceRestart, NamespaceSurvivesAMasterCrash) { ExpectNamespaceSurvivesRestart(true); }

}  // namespace
}  // namespace dfs::test
