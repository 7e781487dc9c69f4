// dfs-cli's shell (issue 21, item 1) against a real master and real nodes:
// a person at a terminal (a pseudo-terminal this test drives, as expect
// does) makes a folder, cds into it, uploads, lists, completes a path with
// Tab, cancels a 500 MiB put with Ctrl-C (nothing of it visible after),
// keeps going, sees a notice when a node is killed and leaves with Ctrl-D;
// a script in a pipe or a file runs one command per line, and -e stops at
// the first failure. Every wait is on output or state, never a sleep.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/data_test_util.h"
#include "tests/support/cluster.h"

namespace dfs::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A program on a fresh pseudo-terminal, driven as expect(1) drives one:
// send keys, wait for text to appear. Kills the program when destroyed.
class PtySession {
 public:
  PtySession(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
    winsize ws{};
    ws.ws_col = 120;
    ws.ws_row = 40;
    pid_ = ::forkpty(&fd_, nullptr, nullptr, &ws);
    if (pid_ == 0) {
      for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  ~PtySession() {
    if (pid_ > 0 && !exit_code_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) ::close(fd_);
  }
  bool started() const { return pid_ > 0; }

  void Send(const std::string& keys) { ASSERT_EQ(::write(fd_, keys.data(), keys.size()), static_cast<ssize_t>(keys.size())); }

  // Waits until `text` appears in what the program wrote after the last
  // match; true when it did within `timeout`.
  bool Expect(const std::string& text, std::chrono::milliseconds timeout = 30s) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      const size_t at = screen_.find(text, seen_);
      if (at != std::string::npos) {
        seen_ = at + text.size();
        return true;
      }
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
      if (left <= 0ms || !ReadSome(left)) return false;
    }
  }

  // Reads to the end of the program's output and its exit status.
  std::optional<int> WaitExit(std::chrono::milliseconds timeout = 30s) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (!ReadSome(std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()))) break;
    }
    for (;;) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, Clock::now() < deadline ? 0 : WNOHANG);
      if (r == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return exit_code_;
      }
      if (r < 0 && errno == EINTR) continue;
      return std::nullopt;
    }
  }

  // Everything after the last match (for failure messages).
  std::string Unmatched() const { return screen_.substr(seen_); }
  // For a failure message: the whole screen, and where the program waits.
  std::string Diagnose() const {
    std::string out = "screen:\n" + screen_ + "\n--- wchan: " +
                      MiniCluster::ReadText("/proc/" + std::to_string(pid_) + "/wchan");
    if (FILE* f = ::popen(("stty -a -F /proc/" + std::to_string(pid_) + "/fd/0 2>&1").c_str(), "r")) {
      char buf[4096];
      size_t n = 0;
      out += "\n--- stty:\n";
      while ((n = ::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
      ::pclose(f);
    }
    const std::string gdb = "gdb -batch -p " + std::to_string(pid_) + " -ex 'thread apply all bt' 2>/dev/null";
    if (FILE* f = ::popen(gdb.c_str(), "r")) {
      char buf[4096];
      size_t n = 0;
      out += "\n--- stacks:\n";
      while ((n = ::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
      ::pclose(f);
    }
    return out;
  }
  const std::string& screen() const { return screen_; }

 private:
  // False at the end of output (the program and the pty's last user gone).
  bool ReadSome(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    const int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (n <= 0) return n == 0 || errno == EINTR;
    char buf[4096];
    const ssize_t got = ::read(fd_, buf, sizeof buf);
    if (got <= 0) return false;  // EIO: the other side closed
    screen_.append(buf, static_cast<size_t>(got));
    return true;
  }

  pid_t pid_ = -1;
  int fd_ = -1;
  std::string screen_;
  size_t seen_ = 0;
  std::optional<int> exit_code_;
};

class ShellCliTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(cluster_.Start()); }

  std::string Local(const std::string& name) const { return cluster_.root() + "/" + name; }

  std::vector<std::string> ShellArgv(std::vector<std::string> extra = {}) const {
    std::vector<std::string> argv{DFS_CLI_BIN, "--master", cluster_.master_address(), "shell"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  bool Exists(const std::string& path) { return cluster_.Cli({"stat", path}).exit_code == 0; }

  MiniCluster cluster_{{.nodes = 3, .client_cache = true}};
};

TEST_F(ShellCliTest, InteractiveSessionOnATerminal) {
  WriteLocal(Local("small.txt"), "hello from the shell\n");
  {
    // 500 MiB, sparse: reading it costs nothing, storing it three times
    // takes long enough to interrupt.
    const int fd = ::open(Local("big.bin").c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, 500LL << 20), 0);
    ::close(fd);
  }
  const std::string history = Local("history");
  // dfs-cli with no command on a terminal is the shell.
  PtySession s({DFS_CLI_BIN, "--master", cluster_.master_address()},
               {"TERM=xterm", "DFS_HISTORY=" + history, "LC_ALL=C.UTF-8"});
  ASSERT_TRUE(s.started());
  ASSERT_TRUE(s.Expect(":/> ")) << s.screen();

  s.Send("mkdir -p /work/sub\r");
  ASSERT_TRUE(s.Expect(":/> ")) << s.Unmatched();
  s.Send("cd /work\r");
  ASSERT_TRUE(s.Expect(":/work> ")) << s.Unmatched();
  s.Send("lcd " + cluster_.root() + "\r");
  ASSERT_TRUE(s.Expect(":/work> ")) << s.Unmatched();
  // Relative on both sides: the local folder (lcd) and the remote one (cd).
  s.Send("put small.txt sub/\r");
  ASSERT_TRUE(s.Expect(":/work> ")) << s.Unmatched();
  s.Send("ls -l sub\r");
  ASSERT_TRUE(s.Expect("small.txt")) << s.Unmatched();
  ASSERT_TRUE(s.Expect(":/work> ")) << s.Unmatched();
  EXPECT_TRUE(Exists("/work/sub/small.txt"));

  // Tab: "su" is the folder sub/, "sm" the file in it; Enter runs the line
  // the completions made.
  s.Send("cat su\t");
  ASSERT_TRUE(s.Expect("b/")) << s.Unmatched();
  s.Send("sm\t");
  ASSERT_TRUE(s.Expect("all.txt")) << s.Unmatched();
  s.Send("\r");
  ASSERT_TRUE(s.Expect("hello from the shell")) << s.Unmatched();
  ASSERT_TRUE(s.Expect(":/work> ")) << s.Unmatched();

  // Ctrl-C mid-transfer: once the progress bar shows, the put is cancelled,
  // and its file never appears.
  s.Send("put big.bin big.bin\r");
  ASSERT_TRUE(s.Expect("%", 60s)) << s.Unmatched();
  s.Send("\x03");
  ASSERT_TRUE(s.Expect("interrupted", 30s)) << s.Unmatched();
  ASSERT_TRUE(s.Expect(":/work> ")) << s.Unmatched();
  EXPECT_FALSE(Exists("/work/big.bin"));
  s.Send("stat big.bin\r");
  ASSERT_TRUE(s.Expect("no such file or directory: /work/big.bin")) << s.Unmatched();
  ASSERT_TRUE(s.Expect(":/work> ")) << s.Unmatched();

  // Ctrl-C at the prompt clears the line; the shell keeps going.
  s.Send("rm -r /work");
  s.Send("\x03");
  ASSERT_TRUE(s.Expect("^C")) << s.Diagnose();
  s.Send("pwd\r");
  ASSERT_TRUE(s.Expect("/work\r\n")) << s.Unmatched();
  ASSERT_TRUE(s.Expect(":/work> ")) << s.Unmatched();
  EXPECT_TRUE(Exists("/work/sub/small.txt"));

  // A node killed while the shell waits at its prompt: a notice.
  const std::string victim = cluster_.node_id(2);
  cluster_.KillNode(2);
  ASSERT_TRUE(s.Expect("node " + victim, 30s)) << s.Unmatched();
  ASSERT_TRUE(s.Expect("is down")) << s.Unmatched();
  // And the shell still works.
  s.Send("ls sub\r");
  ASSERT_TRUE(s.Expect("small.txt")) << s.Unmatched();
  ASSERT_TRUE(s.Expect(":/work> ")) << s.Unmatched();

  // Ctrl-D leaves, with the status of the last command.
  s.Send("\x04");
  EXPECT_EQ(s.WaitExit(), 0) << s.Diagnose();
  const std::string kept = MiniCluster::ReadText(history);
  EXPECT_NE(kept.find("mkdir"), std::string::npos) << kept;
}

TEST_F(ShellCliTest, CommandsFromAPipeOneALine) {
  WriteLocal(Local("a.txt"), "piped\n");
  const std::string script = "mkdir -p /p/q\n"
                             "cd /p\n"
                             "# a comment, and an empty line\n"
                             "\n"
                             "put " + Local("a.txt") + " q/\n"
                             "ls q\n"
                             "--json stat q/a.txt\n"
                             "cat q/a.txt\n";
  auto r = RunCommand(ShellArgv(), 60s, {}, script);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("a.txt\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"path\":\"/p/q/a.txt\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("piped\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("> "), std::string::npos) << "no prompt in a pipe: " << r.out;
}

TEST_F(ShellCliTest, ExitOnErrorStopsAtTheFirstFailure) {
  const std::string script = "mkdir /e\nstat /e/nope\nmkdir /e/after\n";
  auto r = RunCommand(ShellArgv({"-e"}), 60s, {}, script);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("/e/nope"), std::string::npos) << r.err;
  EXPECT_FALSE(Exists("/e/after"));

  // Without -e every line runs; the status is the last command's.
  auto all = RunCommand(ShellArgv(), 60s, {}, script);
  EXPECT_EQ(all.exit_code, 0) << all.err;
  EXPECT_TRUE(Exists("/e/after"));

  // A usage error stops a script too, with status 2.
  auto usage = RunCommand(ShellArgv({"-e"}), 60s, {}, "ls --no-such-flag\nmkdir /never\n");
  EXPECT_EQ(usage.exit_code, 2) << usage.err;
  EXPECT_FALSE(Exists("/never"));
  auto quote = RunCommand(ShellArgv({"-e"}), 60s, {}, "mkdir 'unterminated\nmkdir /never\n");
  EXPECT_EQ(quote.exit_code, 2) << quote.err;
  EXPECT_NE(quote.err.find("unterminated"), std::string::npos) << quote.err;
  auto unknown = RunCommand(ShellArgv({"-e"}), 60s, {}, "frobnicate /x\nmkdir /never\n");
  EXPECT_EQ(unknown.exit_code, 2) << unknown.err;
  EXPECT_NE(unknown.err.find("unknown command: frobnicate"), std::string::npos) << unknown.err;
  EXPECT_FALSE(Exists("/never"));
}

TEST_F(ShellCliTest, CommandsFromAFile) {
  WriteLocal(Local("setup.dfs"), "mkdir -p /f/g\ncd /f\nmkdir g/h\nstat /f/g/nope\nmkdir g/i\n");
  auto r = RunCommand(ShellArgv({"-e", Local("setup.dfs")}), 60s);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(Exists("/f/g/h"));
  EXPECT_FALSE(Exists("/f/g/i"));
  auto missing = RunCommand(ShellArgv({Local("no-such-script")}), 60s);
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
}

TEST_F(ShellCliTest, NoCommandOutsideATerminalIsAUsageError) {
  auto r = RunCommand({DFS_CLI_BIN, "--master", cluster_.master_address()}, 60s, {}, "ls\n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("a command is required"), std::string::npos) << r.err;
}

// The shell drops a cached file as soon as the master's file.changed event
// says another client changed it, so even with the master gone afterwards
// (when a cached copy is served on its age alone) the old bytes never come
// back; a one-shot client would serve it within --cache-ttl then.
TEST_F(ShellCliTest, CachedFilesAreDroppedOnAnotherClientsChange) {
  WriteLocal(Local("v1"), "version one\n");
  WriteLocal(Local("v2"), "version two\n");
  PtySession s({DFS_CLI_BIN, "--master", cluster_.master_address(), "--timeout", "0.3", "shell"},
               {"TERM=xterm", "DFS_HISTORY=", "LC_ALL=C.UTF-8"});
  ASSERT_TRUE(s.started());
  ASSERT_TRUE(s.Expect(":/> ")) << s.screen();
  s.Send("lcd " + cluster_.root() + "\r");
  ASSERT_TRUE(s.Expect(":/> ")) << s.Unmatched();
  s.Send("put v1 /f\r");
  ASSERT_TRUE(s.Expect(":/> ")) << s.Unmatched();
  s.Send("put v1 /kept\r");
  ASSERT_TRUE(s.Expect(":/> ")) << s.Unmatched();
  s.Send("cache\r");
  ASSERT_TRUE(s.Expect("2 files")) << s.Unmatched();
  ASSERT_TRUE(s.Expect(":/> ")) << s.Unmatched();
  // Another client, with a cache of its own, overwrites /f.
  ASSERT_EQ(cluster_.Cli({"--cache-dir", Local("other"), "put", "-f", Local("v2"), "/f"}).exit_code, 0);
  s.Send("pwd\r");
  ASSERT_TRUE(s.Expect(":/> ")) << s.Unmatched();
  cluster_.KillMaster();
  s.Send("get /f out\r");
  ASSERT_TRUE(s.Expect(":/> ", 30s)) << s.Unmatched();
  EXPECT_EQ(s.screen().find("served /f from the cache"), std::string::npos) << s.screen();
  EXPECT_FALSE(std::filesystem::exists(Local("out")));
  // What no event touched is still served on its age.
  s.Send("get /kept kept\r");
  ASSERT_TRUE(s.Expect("served /kept from the cache", 30s)) << s.Unmatched();
  ASSERT_TRUE(s.Expect(":/> ")) << s.Unmatched();
  EXPECT_EQ(ReadLocal(Local("kept")), "version one\n");
  s.Send("\x04");
  EXPECT_EQ(s.WaitExit(), 0);
}

}  // namespace
}  // namespace dfs::test
