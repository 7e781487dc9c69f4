// dfs-cli as a person at a terminal and a script in a pipe meet it (issue
// 21, items 2, 6, 7 and 8), against a real master and three real nodes:
// the seed's command forms in the seed's argument order, `cat | head`
// ending quietly, put into a folder that does not exist yet, the progress
// bar on a pseudo-terminal (and never in a pipe or with -q), the library's
// progress hook, --json of every table, human tables, and --help of every
// command with an example.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/data_test_util.h"
#include "tests/support/cluster.h"

namespace dfs::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// What a command wrote to its terminal (stdout and stderr both on the
// pty), and its exit status.
struct PtyResult {
  int exit_code = -1;
  std::string screen;
};

// Runs `argv` with stdin, stdout and stderr on a fresh pseudo-terminal of
// 100 columns, reading it until the command exits (killed after `timeout`).
PtyResult RunOnPty(const std::vector<std::string>& argv, std::chrono::milliseconds timeout = 60s) {
  PtyResult r;
  winsize ws{};
  ws.ws_col = 100;
  ws.ws_row = 30;
  int master = -1;
  const pid_t pid = ::forkpty(&master, nullptr, nullptr, &ws);
  if (pid < 0) return r;
  if (pid == 0) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) {
      ::kill(pid, SIGKILL);
      break;
    }
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t n = ::read(master, buf, sizeof buf);
    if (n <= 0) break;  // EIO: the last holder of the terminal's other end is gone
    r.screen.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(master);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

class CliUsabilityTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(cluster_.Start()); }

  std::string Local(const std::string& name) const { return cluster_.root() + "/" + name; }

  json Json(const std::vector<std::string>& args) {
    std::vector<std::string> a{"--json"};
    a.insert(a.end(), args.begin(), args.end());
    auto r = cluster_.Cli(a);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto doc = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(doc.is_discarded()) << "not JSON: " << r.out;
    return doc;
  }

  std::vector<std::string> CliArgv(const std::vector<std::string>& args) const {
    std::vector<std::string> argv{DFS_CLI_BIN, "--master", cluster_.master_address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  MiniCluster cluster_{{.nodes = 3, .client_cache = true}};
};

TEST_F(CliUsabilityTest, SeedFormsInTheSeedsOrder) {
  WriteLocal(Local("notes.txt"), "seed style");
  // --mkdir PATH.
  auto mk = cluster_.Cli({"--mkdir", "/seed"});
  ASSERT_EQ(mk.exit_code, 0) << mk.err;
  // -u PATH_ON_SERVER LOCAL_PATH: into the folder under the local name, and to a named file.
  auto u = cluster_.Cli({"-u", "/seed", Local("notes.txt")});
  ASSERT_EQ(u.exit_code, 0) << u.err;
  EXPECT_EQ(u.out, "");
  EXPECT_EQ(cluster_.Cli({"cat", "/seed/notes.txt"}).out, "seed style");
  ASSERT_EQ(cluster_.Cli({"-u", "/seed/named.txt", Local("notes.txt")}).exit_code, 0);
  EXPECT_EQ(cluster_.Cli({"cat", "/seed/named.txt"}).out, "seed style");
  // put keeps cp's order.
  ASSERT_EQ(cluster_.Cli({"put", Local("notes.txt"), "/seed/put.txt"}).exit_code, 0);
  EXPECT_EQ(cluster_.Cli({"cat", "/seed/put.txt"}).out, "seed style");

  // -d PATH_ON_SERVER LOCAL_PATH: into a local folder, and to a named file.
  std::filesystem::create_directory(Local("down"));
  auto d = cluster_.Cli({"-d", "/seed/notes.txt", Local("down")});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_EQ(ReadLocal(Local("down/notes.txt")), "seed style");
  ASSERT_EQ(cluster_.Cli({"-d", "/seed/named.txt", Local("named-copy")}).exit_code, 0);
  EXPECT_EQ(ReadLocal(Local("named-copy")), "seed style");

  // -v [PATH]: the viewer, a tree; -v alone shows the whole namespace.
  auto v = cluster_.Cli({"-v", "/seed"});
  ASSERT_EQ(v.exit_code, 0) << v.err;
  EXPECT_EQ(v.out,
            "/seed\n├── named.txt  (10 B, r3, 1 chunk)\n├── notes.txt  (10 B, r3, 1 chunk)\n"
            "└── put.txt  (10 B, r3, 1 chunk)\n\n0 directories, 3 files\n");
  auto all = cluster_.Cli({"-v"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(all.out,
            "/\n└── seed\n    ├── named.txt  (10 B, r3, 1 chunk)\n    ├── notes.txt  (10 B, r3, 1 chunk)\n"
            "    └── put.txt  (10 B, r3, 1 chunk)\n\n1 directory, 3 files\n");

  // --stat PATH, --rm PATH.
  auto st = cluster_.Cli({"--stat", "/seed/notes.txt"});
  ASSERT_EQ(st.exit_code, 0) << st.err;
  EXPECT_NE(st.out.find("path: /seed/notes.txt"), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("10 B (10 bytes)"), std::string::npos) << st.out;
  ASSERT_EQ(cluster_.Cli({"--rm", "/seed/notes.txt"}).exit_code, 0);
  auto gone = cluster_.Cli({"--stat", "/seed/notes.txt"});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_EQ(gone.err, "dfs-cli: no such file or directory: /seed/notes.txt\n");

  // The seed's old order (LOCAL first) says what -u takes.
  auto wrong = cluster_.Cli({"-u", Local("notes.txt"), "/seed"});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.err.find("-u takes the path in dfs first: -u REMOTE LOCAL"), std::string::npos) << wrong.err;
  EXPECT_EQ(std::count(wrong.err.begin(), wrong.err.end(), '\n'), 1) << wrong.err;

  // --help says both orders.
  auto help = cluster_.Cli({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* s : {"put LOCAL REMOTE", "get REMOTE LOCAL", "-u REMOTE LOCAL", "-d REMOTE LOCAL", "-v [PATH]"}) {
    EXPECT_NE(help.out.find(s), std::string::npos) << s << " in:\n" << help.out;
  }
}

TEST_F(CliUsabilityTest, CatIntoHeadEndsQuietly) {
  // Far more than a pipe holds, so the writer meets the closed pipe.
  const std::string data = RandomBytes(8 << 20, 21);
  WriteLocal(Local("big"), data);
  ASSERT_EQ(cluster_.Cli({"put", Local("big"), "/big"}).exit_code, 0);
  const std::string cli = std::string(DFS_CLI_BIN) + " --master " + cluster_.master_address();
  for (const std::string cmd : {"cat /big", "get /big -", "-d /big -"}) {
    SCOPED_TRACE(cmd);
    // The exit status of dfs-cli itself, then what head printed.
    auto r = RunCommand({"/bin/bash", "-c", cli + " " + cmd + " | head -c 100 > " + Local("head") +
                                           "; echo ${PIPESTATUS[0]}"});
    EXPECT_EQ(r.out, "0\n");
    EXPECT_EQ(r.err, "") << "quiet, as cat(1)";
    EXPECT_EQ(ReadLocal(Local("head")), data.substr(0, 100));
  }
  // A listing cut short is quiet too: 500 names of 200 bytes are more
  // than the pipe and head's one read hold.
  std::vector<std::string> mkdir{"mkdir", "-p"};
  for (int i = 0; i < 500; ++i) mkdir.push_back("/names/" + std::to_string(i) + std::string(200, 'n'));
  ASSERT_EQ(cluster_.Cli(mkdir).exit_code, 0);
  auto ls = RunCommand({"/bin/bash", "-c", cli + " ls /names | head -c 1 > /dev/null; echo ${PIPESTATUS[0]}"});
  EXPECT_EQ(ls.out, "0\n");
  EXPECT_EQ(ls.err, "");
}

TEST_F(CliUsabilityTest, PutIntoAMissingFolderMakesIt) {
  WriteLocal(Local("f.txt"), "deep");
  auto p = cluster_.Cli({"put", Local("f.txt"), "/a/b/c/f.txt"});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_EQ(p.err, "");
  EXPECT_EQ(cluster_.Cli({"cat", "/a/b/c/f.txt"}).out, "deep");
  EXPECT_EQ(Json({"stat", "/a/b"})["type"], "dir");
  // A trailing '/' names a folder to put into, made too; so does the seed's -u.
  ASSERT_EQ(cluster_.Cli({"put", Local("f.txt"), "/x/y/"}).exit_code, 0);
  EXPECT_EQ(cluster_.Cli({"cat", "/x/y/f.txt"}).out, "deep");
  ASSERT_EQ(cluster_.Cli({"-u", "/u/v/", Local("f.txt")}).exit_code, 0);
  EXPECT_EQ(cluster_.Cli({"cat", "/u/v/f.txt"}).out, "deep");
  // From stdin: nothing of the stream is lost to the retry.
  ASSERT_EQ(cluster_.Cli({"put", "-", "/s/t/stdin.txt"}, 60s, "from a pipe").exit_code, 0);
  EXPECT_EQ(cluster_.Cli({"cat", "/s/t/stdin.txt"}).out, "from a pipe");

  // --no-parents refuses, naming the path; nothing is made.
  auto no = cluster_.Cli({"put", "--no-parents", Local("f.txt"), "/n/f.txt"});
  EXPECT_EQ(no.exit_code, 1);
  EXPECT_NE(no.err.find("no such file or directory"), std::string::npos) << no.err;
  EXPECT_NE(no.err.find("/n"), std::string::npos) << no.err;
  EXPECT_EQ(cluster_.Cli({"stat", "/n"}).exit_code, 1);
  // A file in the way is an error, not something to make a folder over.
  auto blocked = cluster_.Cli({"put", Local("f.txt"), "/a/b/c/f.txt/g.txt"});
  EXPECT_EQ(blocked.exit_code, 1);
  EXPECT_EQ(std::count(blocked.err.begin(), blocked.err.end(), '\n'), 1) << blocked.err;
  EXPECT_EQ(cluster_.Cli({"cat", "/a/b/c/f.txt"}).out, "deep");
}

TEST_F(CliUsabilityTest, ProgressOnATerminalOnly) {
  const std::string data = RandomBytes(24 << 20, 2);
  WriteLocal(Local("big"), data);
  // On a terminal: the bar redrawn in place, then one summary line.
  auto put = RunOnPty(CliArgv({"put", "--chunk-size", "1M", "--parallel", "1", Local("big"), "/big"}));
  ASSERT_EQ(put.exit_code, 0) << put.screen;
  EXPECT_NE(put.screen.find('\r'), std::string::npos) << put.screen;
  EXPECT_TRUE(std::regex_search(put.screen, std::regex("\\d+% \\[=*>? *\\] [0-9.]+ (B|KiB|MiB) / 24\\.0 MiB  "
                                                       "([0-9.]+ (B|KiB|MiB|GiB)|--)/s  ETA (\\d+:\\d\\d|--:--)")))
      << put.screen;
  EXPECT_TRUE(std::regex_search(put.screen, std::regex("/big: 24\\.0 MiB in [0-9.]+ s \\([0-9.]+ (KiB|MiB|GiB)/s\\)\r?\n$")))
      << put.screen;
  auto get = RunOnPty(CliArgv({"get", "/big", Local("copy")}));
  ASSERT_EQ(get.exit_code, 0) << get.screen;
  EXPECT_TRUE(std::regex_search(get.screen, std::regex("copy: 24\\.0 MiB in [0-9.]+ s \\(")) ) << get.screen;
  EXPECT_TRUE(ReadLocal(Local("copy")) == data);

  // -q on a terminal, and stderr in a pipe: not a byte of it.
  auto quiet = RunOnPty(CliArgv({"-q", "put", Local("big"), "/quiet"}));
  EXPECT_EQ(quiet.exit_code, 0);
  EXPECT_EQ(quiet.screen, "");
  auto quiet_get = RunOnPty(CliArgv({"get", "-q", "/big", Local("copy2")}));
  EXPECT_EQ(quiet_get.exit_code, 0);
  EXPECT_EQ(quiet_get.screen, "");
  auto piped = cluster_.Cli({"put", Local("big"), "/piped"});
  EXPECT_EQ(piped.exit_code, 0);
  EXPECT_EQ(piped.err, "");
  EXPECT_EQ(piped.out, "");
  auto piped_get = cluster_.Cli({"get", "/big", Local("copy3")});
  EXPECT_EQ(piped_get.exit_code, 0);
  EXPECT_EQ(piped_get.err, "");
  // A tree: one bar for all of it (files done, the current file), then one
  // summary line; nothing of it in a pipe.
  std::filesystem::create_directories(Local("tree/sub"));
  WriteLocal(Local("tree/a.bin"), data);
  WriteLocal(Local("tree/sub/b.bin"), data);
  auto tree = RunOnPty(CliArgv({"put", "-r", "--chunk-size", "1M", "-j", "1", "--parallel", "1", Local("tree"), "/tree"}));
  ASSERT_EQ(tree.exit_code, 0) << tree.screen;
  EXPECT_TRUE(std::regex_search(tree.screen, std::regex("\\[[01]/2\\] /tree/(a|sub/b)\\.bin +\\d+% \\[")))
      << tree.screen;
  EXPECT_TRUE(std::regex_search(tree.screen, std::regex("2 files: 48\\.0 MiB in [0-9.]+ s \\(")) ) << tree.screen;
  auto tree_piped = cluster_.Cli({"get", "-r", "/tree", Local("tree-back")});
  EXPECT_EQ(tree_piped.exit_code, 0);
  EXPECT_EQ(tree_piped.err, "");
  // A failed put clears its bar and leaves only the error.
  auto failed = RunOnPty(CliArgv({"put", Local("big"), "/big"}));
  EXPECT_EQ(failed.exit_code, 1);
  EXPECT_EQ(failed.screen, "dfs-cli: file exists: /big (use -f to overwrite)\r\n");
}

// The library's hook: rate-limited, never backwards within a chunk's
// attempt, ending at the total.
TEST_F(CliUsabilityTest, ProgressHookIsRateLimitedAndEndsAtTheTotal) {
  auto c = ConnectClient(cluster_.master_address());
  ASSERT_NE(c, nullptr);
  const std::string data = RandomBytes(16 << 20, 3);
  std::vector<client::Progress> seen;
  client::PutOptions po;
  po.chunk_size = 1 << 20;
  po.progress_interval = 50ms;
  po.progress = [&](const client::Progress& p) { seen.push_back(p); };
  const auto start = std::chrono::steady_clock::now();
  auto put = c->Put(std::as_bytes(std::span(data)), "/hooked", po);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(put.has_value()) << put.error().ToString();
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().done, data.size());
  EXPECT_EQ(seen.back().total, data.size());
  for (const auto& p : seen) {
    EXPECT_TRUE(p.total_known);
    EXPECT_LE(p.done, p.total);
  }
  // At most one call per interval, plus the first and the last.
  EXPECT_LE(seen.size(), static_cast<size_t>(took / 50ms) + 2);

  std::vector<client::Progress> read;
  client::GetOptions go;
  go.progress_interval = 50ms;
  go.progress = [&](const client::Progress& p) { read.push_back(p); };
  uint64_t sunk = 0;
  auto got = c->Read("/hooked", go, false, [&](uint64_t, std::span<const std::byte> b) {
    sunk += b.size();
    return Status::OK();
  });
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  ASSERT_FALSE(read.empty());
  EXPECT_EQ(read.back().done, data.size());
  EXPECT_EQ(read.back().total, data.size());
  for (size_t i = 1; i < read.size(); ++i) EXPECT_GE(read[i].done, read[i - 1].done);
  EXPECT_EQ(sunk, data.size());
}

TEST_F(CliUsabilityTest, EveryTableHasJsonAndHumanAlignedColumns) {
  WriteLocal(Local("f"), std::string(1536, 'x'));
  ASSERT_EQ(cluster_.Cli({"put", Local("f"), "/t/f"}).exit_code, 0);
  EXPECT_EQ(Json({"nodes"})["nodes"].size(), 3u);
  EXPECT_EQ(Json({"ls", "/t"})["entries"][0]["size"], 1536);
  EXPECT_EQ(Json({"ls", "-l", "/t"})["entries"][0]["owner"].is_string(), true);
  EXPECT_EQ(Json({"du", "/t"})["bytes"], 1536);
  EXPECT_GT(Json({"df"})["capacity"].get<uint64_t>(), 0u);
  EXPECT_EQ(Json({"stat", "/t/f"})["size"], 1536);
  EXPECT_EQ(Json({"tree", "/t"})["files"], 1);

  // Human sizes: 1536 bytes is 1.5 KiB in ls -l and du; a folder's size is no size.
  auto ls = cluster_.Cli({"ls", "-l", "/"});
  EXPECT_TRUE(std::regex_search(ls.out, std::regex("drwxr-xr-x \\S+ - \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d t/\n"))) << ls.out;
  auto lsf = cluster_.Cli({"ls", "-l", "/t"});
  EXPECT_TRUE(std::regex_search(lsf.out, std::regex("-rw-r--r-- \\S+ 1\\.5 KiB \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d f\n")))
      << lsf.out;
  auto du = cluster_.Cli({"du", "/t"});
  EXPECT_NE(du.out.find("1.5 KiB"), std::string::npos) << du.out;
  EXPECT_NE(du.out.find("4.5 KiB"), std::string::npos) << "stored at -r 3: " << du.out;

  // Aligned: the right-aligned last column (LAST SEEN) makes every row of
  // the nodes table as wide as its header; numbers end under their header.
  auto nodes = cluster_.Cli({"nodes"});
  ASSERT_EQ(nodes.exit_code, 0);
  std::vector<std::string> lines;
  for (size_t at = 0; at < nodes.out.size();) {
    const size_t nl = nodes.out.find('\n', at);
    lines.push_back(nodes.out.substr(at, nl - at));
    at = nl + 1;
  }
  ASSERT_GE(lines.size(), 5u) << nodes.out;
  const size_t chunks_end = lines[0].find("CHUNKS") + 6;
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(lines[i].size(), lines[0].size()) << nodes.out;
    EXPECT_NE(lines[i][chunks_end - 1], ' ') << "CHUNKS right-aligned:\n" << nodes.out;
    EXPECT_TRUE(lines[i].ends_with(i == 0 ? "LAST SEEN" : " ago")) << lines[i];
  }
  EXPECT_EQ(lines[4], "3 nodes, 3 alive");
  auto df = cluster_.Cli({"df"});
  EXPECT_TRUE(std::regex_search(df.out, std::regex("\\d+\\.\\d (B|KiB|MiB|GiB|TiB)"))) << df.out;
}

TEST_F(CliUsabilityTest, EveryCommandHasHelpWithAnExample) {
  for (const char* cmd : {"put", "get", "cat", "ls", "stat", "mkdir", "rmdir", "rm", "mv", "cp", "du", "df", "tree",
                          "nodes"}) {
    for (const char* flag : {"-h", "--help"}) {
      SCOPED_TRACE(std::string(cmd) + " " + flag);
      auto r = RunCommand({DFS_CLI_BIN, cmd, flag});
      EXPECT_EQ(r.exit_code, 0) << r.err;
      EXPECT_NE(r.out.find("Example"), std::string::npos) << r.out;
      EXPECT_NE(r.out.find(std::string("dfs-cli ")), std::string::npos) << r.out;
    }
  }
  // The seed's forms answer --help too.
  auto u = RunCommand({DFS_CLI_BIN, "-u", "--help"});
  EXPECT_EQ(u.exit_code, 0);
  EXPECT_NE(u.out.find("REMOTE"), std::string::npos) << u.out;
  EXPECT_NE(u.out.find("dfs-cli -u /photos/2026/ ./img.jpg"), std::string::npos) << u.out;
}

// put -r and get -r of a tree: nested folders, an empty folder, empty
// files, several files in flight; a file that cannot be read is named with
// its error and fails the run, and everything else arrives.
TEST_F(CliUsabilityTest, PutAndGetATree) {
  namespace fs = std::filesystem;
  const fs::path src = Local("src");
  fs::create_directories(src / "a" / "b" / "c");
  fs::create_directories(src / "empty");
  std::vector<std::pair<std::string, std::string>> files{
      {"top.txt", "top"}, {"a/one.bin", RandomBytes(3 << 20, 1)}, {"a/b/empty.txt", ""},
      {"a/b/c/deep.bin", RandomBytes(300 << 10, 2)}, {"a/b/c/more.txt", "more"}};
  for (int i = 0; i < 12; ++i) files.emplace_back("a/b/many" + std::to_string(i), RandomBytes(1000 + i, 10 + i));
  for (const auto& [name, bytes] : files) WriteLocal((src / name).string(), bytes);
  // A dangling link: the one file that cannot be read (as root, no mode bits stop a read).
  fs::create_symlink(Local("nowhere"), src / "a" / "broken");
  // A link to a file outside the tree is stored under the link's name.
  WriteLocal(Local("outside.txt"), "from outside");
  fs::create_symlink(Local("outside.txt"), src / "a" / "link.txt");

  auto put = cluster_.Cli({"put", "-r", src.string(), "/tree", "-j", "3", "--chunk-size", "1M"});
  EXPECT_EQ(put.exit_code, 1) << put.err;
  EXPECT_NE(put.err.find("cannot open " + (src / "a" / "broken").string() + ": No such file or directory"),
            std::string::npos) << put.err;
  EXPECT_NE(put.err.find("put -r: 1 of 19 files failed"), std::string::npos) << put.err;
  EXPECT_EQ(cluster_.Cli({"cat", "/tree/a/link.txt"}).out, "from outside");
  // /tree did not exist: it is the copy of src (cp -r's rule).
  for (const auto& [name, bytes] : files) EXPECT_EQ(cluster_.Cli({"cat", "/tree/" + name}).out, bytes) << name;
  EXPECT_EQ(Json({"stat", "/tree/empty"})["type"], "dir");
  EXPECT_EQ(cluster_.Cli({"stat", "/tree/a/broken"}).exit_code, 1);
  // Into an existing folder, under the tree's own name; -f replaces.
  fs::remove(src / "a" / "broken");
  auto again = cluster_.Cli({"-q", "put", "-R", src.string(), "/tree"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(cluster_.Cli({"cat", "/tree/src/a/b/c/more.txt"}).out, "more");
  auto exists = cluster_.Cli({"put", "-r", src.string(), "/tree"});
  EXPECT_EQ(exists.exit_code, 1);
  EXPECT_NE(exists.err.find("file exists: /tree/src/top.txt (use -f to overwrite)"), std::string::npos) << exists.err;
  EXPECT_EQ(cluster_.Cli({"put", "-f", "-r", "2", src.string(), "/tree"}).exit_code, 0);

  // get -r back: the same tree, byte for byte, empty folder and files too.
  auto get = cluster_.Cli({"get", "-r", "-j", "4", "/tree/src", Local("back")});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  EXPECT_EQ(get.err, "");
  for (const auto& [name, bytes] : files) EXPECT_TRUE(ReadLocal(Local("back/" + name)) == bytes) << name;
  EXPECT_TRUE(fs::is_directory(Local("back/empty")));
  // Into an existing folder: under the remote folder's name.
  ASSERT_EQ(cluster_.Cli({"-d", "-r", "/tree/src/a", Local("back")}).exit_code, 0);
  EXPECT_EQ(ReadLocal(Local("back/a/b/c/more.txt")), "more");
  // A file is no folder, and a folder needs -r.
  auto not_dir = cluster_.Cli({"get", "-r", "/tree/top.txt", Local("x")});
  EXPECT_EQ(not_dir.exit_code, 1);
  EXPECT_NE(not_dir.err.find("not a directory: /tree/top.txt"), std::string::npos) << not_dir.err;
  // A folder that cannot be written into: each file fails with its own error.
  WriteLocal(Local("blocker"), "a file where a folder should go");
  auto blocked = cluster_.Cli({"get", "-r", "/tree/src", Local("blocker/x")});
  EXPECT_EQ(blocked.exit_code, 1);
  EXPECT_NE(blocked.err.find("blocker/x"), std::string::npos) << blocked.err;
  // -r N of put still names the replication.
  ASSERT_EQ(cluster_.Cli({"put", "-r", "1", Local("src/top.txt"), "/r1"}).exit_code, 0);
  EXPECT_EQ(Json({"stat", "/r1"})["replication"], 1);
}

// get -c keeps the leading chunks of LOCAL.part whose checksums match and
// fetches the rest from the first that does not.
TEST_F(CliUsabilityTest, GetContinueResumesFromTheFirstChunkItLacks) {
  const std::string data = RandomBytes(40 << 20, 7);
  WriteLocal(Local("in"), data);
  ASSERT_EQ(cluster_.Cli({"-q", "put", "--chunk-size", "4M", Local("in"), "/big"}).exit_code, 0);
  // Half a download, with a bad byte in chunk 3.
  std::string part = data.substr(0, 22 << 20);
  part[(3 << 22) + 5] ^= 0x40;
  WriteLocal(Local("out.part"), part);
  auto r = cluster_.Cli({"get", "-c", "/big", Local("out")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("resuming /big at 12.0 MiB (3 of 10 chunks verified"), std::string::npos) << r.err;
  EXPECT_TRUE(ReadLocal(Local("out")) == data);
  EXPECT_FALSE(std::filesystem::exists(Local("out.part")));
  // A .part longer than the file, from an older version: cut to what matches.
  WriteLocal(Local("out2.part"), data + "tail of something else");
  r = cluster_.Cli({"--json", "get", "-c", "/big", Local("out2")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["resumed_from"], 40 << 20);
  EXPECT_TRUE(ReadLocal(Local("out2")) == data);
  EXPECT_EQ(cluster_.Cli({"get", "-c", "/big", "-"}).exit_code, 1);

  // A download killed halfway, then resumed: the whole file, once.
  const std::string more = RandomBytes(128 << 20, 8);
  WriteLocal(Local("in2"), more);
  ASSERT_EQ(cluster_.Cli({"-q", "put", "-r", "1", "--chunk-size", "4M", Local("in2"), "/bigger"}).exit_code, 0);
  Process get = Process::Start(CliArgv({"get", "-c", "--parallel", "1", "/bigger", Local("out3")}), Local("get.log"));
  std::error_code ec;
  WaitFor([&] {
    const auto size = std::filesystem::file_size(Local("out3.part"), ec);  // (uintmax_t)-1 while missing
    return (!ec && size >= (40u << 20)) || !get.running();
  }, 60s);
  get.Signal(SIGKILL);
  const auto status = get.Wait(10s);
  ASSERT_TRUE(status.has_value());
  r = cluster_.Cli({"get", "-c", "/bigger", Local("out3")}, 120s);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  if (*status == 128 + SIGKILL) {
    EXPECT_NE(r.err.find("resuming /bigger at "), std::string::npos) << r.err;
  }
  EXPECT_TRUE(ReadLocal(Local("out3")) == more);
}

// The client cache (issue 21, item 5): a put writes through, a get of the
// version the master confirms is served with every node down, another
// client's overwrite or delete is never served stale, and `cache` shows it.
TEST_F(CliUsabilityTest, CacheServesOnlyTheVersionTheMasterConfirms) {
  const std::string v1 = RandomBytes(3 << 20, 21);
  const std::string v2 = RandomBytes(2 << 20, 22);
  WriteLocal(Local("v1"), v1);
  WriteLocal(Local("v2"), v2);
  ASSERT_EQ(cluster_.Cli({"-q", "put", Local("v1"), "/f"}).exit_code, 0);
  auto show = Json({"cache"});
  ASSERT_EQ(show["entries"], 1) << show;
  EXPECT_EQ(show["files"][0]["path"], "/f");
  EXPECT_EQ(show["bytes"], 3 << 20);

  // Another client (a cache of its own) overwrites: the next get reads v2.
  const std::string other = "--cache-dir=" + Local("other-cache");
  ASSERT_EQ(cluster_.Cli({other, "-q", "put", "-f", Local("v2"), "/f"}).exit_code, 0);
  auto g = cluster_.Cli({"get", "/f", Local("out")});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  EXPECT_TRUE(ReadLocal(Local("out")) == v2);
  EXPECT_EQ(cluster_.Cli({"cat", "/f"}).out, v2);

  // Every node down: the version the master confirms is served from the cache.
  for (int i = 0; i < cluster_.node_count(); ++i) cluster_.KillNode(i);
  g = cluster_.Cli({"--json", "get", "/f", Local("out2")});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  EXPECT_EQ(g.err, "");
  EXPECT_EQ(json::parse(g.out)["cached"], true);
  EXPECT_TRUE(ReadLocal(Local("out2")) == v2);
  EXPECT_EQ(cluster_.Cli({"cat", "--offset", "1M", "--length", "10", "/f"}).out, v2.substr(1 << 20, 10));
  // --no-cache goes to the nodes, which are down.
  EXPECT_EQ(cluster_.Cli({"--no-cache", "get", "/f", Local("out3")}, 30s).exit_code, 1);

  // Another client deletes it: not served, though the bytes are cached.
  ASSERT_EQ(cluster_.Cli({other, "rm", "/f"}).exit_code, 0);
  g = cluster_.Cli({"get", "/f", Local("out4")});
  EXPECT_EQ(g.exit_code, 1);
  EXPECT_NE(g.err.find("no such file or directory: /f"), std::string::npos) << g.err;
  EXPECT_EQ(Json({"cache"})["entries"], 0);

  auto cleared = cluster_.Cli({"cache", "clear"});
  EXPECT_EQ(cleared.exit_code, 0) << cleared.err;
  EXPECT_NE(cleared.out.find("cleared"), std::string::npos) << cleared.out;
  EXPECT_EQ(cluster_.Cli({"--no-cache", "cache"}).exit_code, 1);
}

// With the master unreachable a cached file is served within --cache-ttl of
// the master's last confirmation (and says so), and refused past it.
TEST_F(CliUsabilityTest, CacheServesOfflineWithinTheTtlOnly) {
  const std::string data = RandomBytes(1 << 20, 23);
  WriteLocal(Local("in"), data);
  ASSERT_EQ(cluster_.Cli({"-q", "put", Local("in"), "/g"}).exit_code, 0);
  ASSERT_EQ(cluster_.Cli({"get", "/g", Local("warm")}).exit_code, 0);  // confirmed now
  cluster_.KillMaster();
  for (int i = 0; i < cluster_.node_count(); ++i) cluster_.KillNode(i);
  auto g = cluster_.Cli({"--timeout", "0.2", "get", "/g", Local("out")});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  EXPECT_NE(g.err.find("cannot reach the master"), std::string::npos) << g.err;
  EXPECT_NE(g.err.find("served /g from the cache (confirmed "), std::string::npos) << g.err;
  EXPECT_TRUE(ReadLocal(Local("out")) == data);
  EXPECT_EQ(cluster_.Cli({"--timeout", "0.2", "cat", "/g"}).out, data);
  // Past the TTL: refused, naming the copy's age; nothing written.
  g = cluster_.Cli({"--timeout", "0.2", "--cache-ttl", "1ms", "get", "/g", Local("late")});
  EXPECT_EQ(g.exit_code, 1);
  EXPECT_NE(g.err.find("past --cache-ttl"), std::string::npos) << g.err;
  EXPECT_FALSE(std::filesystem::exists(Local("late")));
  // Never cached: the master's error alone.
  g = cluster_.Cli({"--timeout", "0.2", "get", "/never", Local("never")});
  EXPECT_EQ(g.exit_code, 1);
  EXPECT_NE(g.err.find("cannot reach the master"), std::string::npos) << g.err;
}

// Least recently confirmed entries go first once the cache is over its
// size; a file over a quarter of it is not cached at all.
TEST_F(CliUsabilityTest, CacheEvictsTheLeastRecentlyUsedBySize) {
  const std::vector<std::string> flags{"--cache-size", "2M"};
  for (int i = 0; i < 5; ++i) {
    WriteLocal(Local("f" + std::to_string(i)), RandomBytes(500 << 10, 30 + static_cast<uint64_t>(i)));
    std::vector<std::string> a = flags;
    a.insert(a.end(), {"-q", "put", Local("f" + std::to_string(i)), "/f" + std::to_string(i)});
    ASSERT_EQ(cluster_.Cli(a).exit_code, 0);
    if (i == 3) {
      // f0 used again: f1 is now the least recent.
      std::vector<std::string> get = flags;
      get.insert(get.end(), {"get", "/f0", Local("again")});
      ASSERT_EQ(cluster_.Cli(get).exit_code, 0);
    }
  }
  auto show = Json({"cache"});
  std::vector<std::string> paths;
  for (const auto& f : show["files"]) paths.push_back(f["path"]);
  EXPECT_LE(show["bytes"].get<uint64_t>(), uint64_t{2} << 20) << show;
  EXPECT_EQ(std::count(paths.begin(), paths.end(), "/f1"), 0) << show;
  EXPECT_EQ(std::count(paths.begin(), paths.end(), "/f0"), 1) << show;
  EXPECT_EQ(std::count(paths.begin(), paths.end(), "/f4"), 1) << show;
  WriteLocal(Local("big"), RandomBytes(600 << 10, 40));
  ASSERT_EQ(cluster_.Cli({"--cache-size", "2M", "-q", "put", Local("big"), "/big"}).exit_code, 0);
  EXPECT_EQ(Json({"cache"})["files"].size(), paths.size()) << "a file over a quarter of the cache is not cached";
}

// A damaged or torn entry is never served: the bytes come from the cluster
// and the entry is dropped; a temporary a killed client left is ignored.
TEST_F(CliUsabilityTest, CacheNeverServesADamagedEntry) {
  namespace fs = std::filesystem;
  const std::string data = RandomBytes(2 << 20, 24);
  WriteLocal(Local("in"), data);
  ASSERT_EQ(cluster_.Cli({"-q", "put", Local("in"), "/h"}).exit_code, 0);
  std::string entry;
  for (const auto& e : fs::recursive_directory_iterator(cluster_.root() + "/cache")) {
    if (e.is_regular_file() && e.path().filename() != "path") entry = e.path().string();
  }
  ASSERT_FALSE(entry.empty());
  // A temporary of a client killed while filling the cache: never an entry.
  WriteLocal(fs::path(entry).parent_path().string() + "/.tmp-0123456789abcdef", "torn");
  std::string bad = data;
  bad[12345] ^= 1;
  WriteLocal(entry, bad);
  auto g = cluster_.Cli({"get", "/h", Local("out")});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  EXPECT_NE(g.err.find("cached copy of /h is damaged"), std::string::npos) << g.err;
  EXPECT_TRUE(ReadLocal(Local("out")) == data);
  // Through a pipe too: not one bad byte goes out before the check.
  ASSERT_EQ(cluster_.Cli({"get", "/h", Local("refill")}).exit_code, 0);
  WriteLocal(entry, bad);
  auto c = cluster_.Cli({"cat", "/h"});
  EXPECT_EQ(c.exit_code, 0) << c.err;
  EXPECT_TRUE(c.out == data);
  // Cut short (a torn write): not an entry at all.
  WriteLocal(entry, data.substr(0, 1000));
  c = cluster_.Cli({"cat", "/h"});
  EXPECT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(c.err, "");
  EXPECT_TRUE(c.out == data);
}

}  // namespace
}  // namespace dfs::test
