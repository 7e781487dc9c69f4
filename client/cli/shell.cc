// The shell's loop and builtins (shell.h). One thread: the editor's read
// loop waits on the terminal, the Ctrl-C pipe and the event socket
// together; a command runs in between, with SIGINT setting the flag its
// transfer checks (Client::set_interrupt).
#include "client/cli/shell.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <clocale>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <fmt/format.h>

#include "client/cli/shell_complete.h"
#include "client/cli/shell_editor.h"
#include "client/cli/shell_words.h"

extern char** environ;

namespace dfs::cli {
namespace {

// A listing Tab fetched is reused this long: a second Tab is instant, and
// a change by someone else shows within the TTL (this shell's own
// commands clear it).
constexpr std::chrono::milliseconds kListingTtl{2000};

std::atomic<bool> g_interrupt{false};
int g_interrupt_pipe[2] = {-1, -1};

void OnInterrupt(int) {
  g_interrupt.store(true);
  const int saved = errno;
  if (g_interrupt_pipe[1] >= 0) {
    [[maybe_unused]] ssize_t n = ::write(g_interrupt_pipe[1], "", 1);
  }
  errno = saved;
}

// SIGINT sets the flag and wakes the editor's wait; no SA_RESTART, so a
// transfer's poll returns at once and sees the flag.
Status InstallInterruptHandler() {
  if (g_interrupt_pipe[0] < 0 && ::pipe2(g_interrupt_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    return Status::FromErrno(errno, "pipe");
  }
  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  if (::sigaction(SIGINT, &sa, nullptr) != 0) return Status::FromErrno(errno, "sigaction");
  return Status::OK();
}

void ClearInterrupt() {
  char drain[64];
  while (::read(g_interrupt_pipe[0], drain, sizeof drain) > 0) {
  }
  g_interrupt.store(false);
}

std::string Clock(int64_t unix_ms) {
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
  return buf;
}

std::string Notice(const client::ClusterEvent& e) {
  std::string address = e.node_address;
  if (address.starts_with("tcp://")) address = address.substr(6);
  std::string what;
  if (e.topic == "node.down") what = "is down";
  else if (e.topic == "node.up") what = "is up";
  else if (e.topic == "node.restarted") what = "restarted";
  else return "";
  return fmt::format("[{}] node {} ({}) {}", Clock(e.unix_ms), e.node_id, address, what);
}

class Shell {
 public:
  Shell(Context& ctx, const ShellOptions& options)
      : ctx_(ctx),
        options_(options),
        base_json_(ctx.out.json),
        base_quiet_(ctx.quiet),
        cache_([this](const std::string& dir) { return List(dir); }, kListingTtl) {}

  int Run();

 private:
  int Interactive();
  int Script(std::istream& in);
  int Execute(const std::string& line);
  std::unique_ptr<CLI::App> Tree();
  std::string Prompt() const;
  std::vector<std::string> Notices();
  Result<std::vector<DirEntry>> List(const std::string& dir);
  void Help(CLI::App& app, const std::string& command);
  void Cd(const std::string& dir);
  void Lcd(const std::string& dir);
  void Lls(const std::vector<std::string>& args);

  Context& ctx_;
  ShellOptions options_;
  const bool base_json_;
  const bool base_quiet_;
  client::Client* client_ = nullptr;
  std::string master_;
  std::string previous_cwd_ = "/";
  bool quit_ = false;
  std::unique_ptr<client::EventWatch> events_;
  ListingCache cache_;
};

Result<std::vector<DirEntry>> Shell::List(const std::string& dir) {
  DFS_ASSIGN_OR_RETURN(std::vector<client::FileStatus> listed, client_->List(dir));
  std::vector<DirEntry> out;
  out.reserve(listed.size());
  for (auto& f : listed) out.push_back({std::move(f.path), f.is_dir()});
  return out;
}

std::string Shell::Prompt() const { return fmt::format("dfs {}:{}> ", master_, client_->working_directory()); }

std::vector<std::string> Shell::Notices() {
  std::vector<std::string> out;
  if (!events_) return out;
  auto events = events_->Take();
  if (!events) return out;
  for (const auto& e : *events) {
    if (e.topic == "file.changed") {
      // Another client changed it: never serve the old bytes, even offline.
      if (client::FileCache* cache = ctx_.Cache()) cache->DropUnder(e.path);
      continue;
    }
    std::string line = Notice(e);
    if (!line.empty()) out.push_back(std::move(line));
  }
  return out;
}

// The command tree of one line: dfs-cli's commands and the builtins.
std::unique_ptr<CLI::App> Shell::Tree() {
  auto app = BuildApp(ctx_, /*one_shot=*/false);
  app->name("");
  app->footer("");
  auto dir = std::make_shared<std::string>("/");
  auto* cd = app->add_subcommand("cd", "change the current directory in dfs (default /; - for the previous one)");
  cd->add_option("DIR", *dir, "a directory in dfs");
  cd->callback([this, dir] { Cd(*dir); });
  app->add_subcommand("pwd", "print the current directory in dfs")->callback([this] {
    std::printf("%s\n", client_->working_directory().c_str());
  });
  auto local = std::make_shared<std::string>();
  auto* lcd = app->add_subcommand("lcd", "change the local directory (default, and ~, $HOME)");
  lcd->add_option("LOCAL_DIR", *local, "a local directory");
  lcd->callback([this, local] { Lcd(*local); });
  app->add_subcommand("lpwd", "print the local directory")->callback([this] {
    std::error_code ec;
    auto p = std::filesystem::current_path(ec);
    if (ec) return ctx_.Fail(Status::FromErrno(ec.value(), "the local directory"));
    std::printf("%s\n", p.c_str());
  });
  auto* lls = app->add_subcommand("lls", "list local files (ls with its own flags)");
  lls->prefix_command();
  lls->callback([this, lls] { Lls(lls->remaining()); });
  auto topic = std::make_shared<std::string>();
  auto* help = app->add_subcommand("help", "list the commands, or show one command's flags and examples");
  help->add_option("COMMAND", *topic, "a command");
  CLI::App* root = app.get();
  help->callback([this, root, topic] { Help(*root, *topic); });
  app->add_subcommand("exit", "leave the shell (so does Ctrl-D)")->callback([this] { quit_ = true; });
  app->add_subcommand("quit", "leave the shell")->group("")->callback([this] { quit_ = true; });
  return app;
}

void Shell::Cd(const std::string& dir) {
  const std::string target = dir == "-" ? previous_cwd_ : dir;
  auto path = client::ResolvePath(target, client_->working_directory());
  if (!path) return ctx_.Fail(path.error());
  auto st = client_->Stat(*path);
  if (!st) return ctx_.Fail(st.error());
  if (!st->is_dir()) return ctx_.Fail(Status(Code::kNotADirectory, "not a directory: " + *path));
  previous_cwd_ = client_->working_directory();
  if (Status s = client_->set_working_directory(*path); !s.ok()) return ctx_.Fail(s);
}

void Shell::Lcd(const std::string& dir) {
  const char* home_env = std::getenv("HOME");
  const std::string home = home_env != nullptr && *home_env != '\0' ? home_env : "/";
  std::string target = dir;
  if (target.empty() || target == "~") target = home;
  else if (target.starts_with("~/")) target = home + target.substr(1);
  if (::chdir(target.c_str()) != 0) ctx_.Fail(Status::FromErrno(errno, "lcd " + target));
}

void Shell::Lls(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"ls"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> c_argv;
  for (auto& a : argv) c_argv.push_back(a.data());
  c_argv.push_back(nullptr);
  std::fflush(stdout);
  pid_t pid = -1;
  if (int err = ::posix_spawnp(&pid, "ls", nullptr, nullptr, c_argv.data(), environ); err != 0) {
    return ctx_.Fail(Status::FromErrno(err, "lls: cannot run ls"));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ctx_.exit_code = 1;  // ls said why
}

void Shell::Help(CLI::App& app, const std::string& command) {
  if (!command.empty()) {
    for (CLI::App* c : app.get_subcommands({})) {
      if (c->get_name() == command) {
        std::printf("%s", c->help().c_str());
        return;
      }
    }
    return ctx_.Fail(Status::NotFound("no such command: " + command + " (help lists them)"));
  }
  std::vector<std::vector<std::string>> rows;
  size_t width = 0;
  for (CLI::App* c : app.get_subcommands({})) {
    if (c->get_group().empty()) continue;
    width = std::max(width, c->get_name().size());
  }
  std::printf("Commands (help COMMAND shows its flags and examples):\n");
  for (CLI::App* c : app.get_subcommands({})) {
    if (c->get_group().empty()) continue;
    std::printf("  %-*s  %s\n", static_cast<int>(width), c->get_name().c_str(), c->get_description().c_str());
  }
  std::printf(
      "Paths in dfs are relative to the current directory (pwd, cd); local paths to the local one (lpwd, lcd).\n"
      "--json and -q may come before a command. Tab completes commands, flags and paths; Ctrl-C cancels\n"
      "a transfer or clears the line; Ctrl-D leaves. The seed's forms work too: -u, -d, -v, --stat, ...\n");
}

int Shell::Execute(const std::string& line) {
  auto words = SplitWords(line);
  if (!words) {
    PrintError(words.error().message());
    return 2;
  }
  if (words->empty()) return 0;
  std::vector<std::string> args = RewriteSeedAliases(std::move(*words));
  std::unique_ptr<CLI::App> app = Tree();
  ctx_.out.json = base_json_;
  ctx_.quiet = base_quiet_;
  ctx_.exit_code = 0;
  const auto first = std::find_if(args.begin(), args.end(), [](const std::string& w) { return !w.starts_with('-'); });
  const std::string command = first != args.end() ? *first : "";
  if (!command.empty() && app->get_subcommands([&](CLI::App* c) { return c->get_name() == command; }).empty()) {
    PrintError("unknown command: " + command + " (help lists them)");
    return 2;
  }
  std::reverse(args.begin(), args.end());  // CLI11 takes the words last first
  try {
    app->parse(args);
  } catch (const CLI::CallForHelp& e) {
    app->exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    app->exit(e);
  } catch (const CLI::ParseError& e) {
    PrintError(fmt::format("{} (help {} shows its usage)", e.what(), command));
    return 2;
  }
  std::fflush(stdout);
  std::clearerr(stdout);  // a reader that left (cat F | head) ends one command, not the shell
  cache_.Clear();
  return ctx_.exit_code;
}

int Shell::Script(std::istream& in) {
  int status = 0;
  std::string line;
  while (std::getline(in, line)) {
    ClearInterrupt();
    status = Execute(line);
    if (g_interrupt.load()) return 130;  // Ctrl-C stops a script, as it stops sh
    if (quit_ || (options_.exit_on_error && status != 0)) break;
  }
  return status;
}

int Shell::Interactive() {
  EditorHooks hooks;
  hooks.prompt = [this] { return Prompt(); };
  std::unique_ptr<CLI::App> tree = Tree();  // what Tab knows: never parsed, only read
  Completer complete(*tree, cache_, [this] { return client_->working_directory(); });
  hooks.complete = [&complete](std::string_view line) { return complete.Complete(line); };
  hooks.wait = [this](std::span<const int> fds, std::chrono::milliseconds timeout) -> Result<std::vector<int>> {
    if (events_) return events_->Wait(fds, timeout);
    std::vector<pollfd> p;
    for (int fd : fds) p.push_back({fd, POLLIN, 0});
    std::vector<int> ready;
    if (::poll(p.data(), p.size(), static_cast<int>(timeout.count())) > 0) {
      for (const auto& x : p) {
        if (x.revents != 0) ready.push_back(x.fd);
      }
    }
    return ready;
  };
  hooks.notices = [this] { return Notices(); };
  hooks.take_interrupt = [] { return g_interrupt.exchange(false); };
  hooks.interrupt_fd = g_interrupt_pipe[0];
  auto editor = LineEditor::Open(HistoryPath(), std::move(hooks));
  if (!editor) {
    PrintError(editor.error().message() + "; reading commands without line editing");
    return Script(std::cin);
  }
  std::printf("dfs shell on %s: help lists the commands, Tab completes, Ctrl-C cancels, Ctrl-D leaves.\n",
              master_.c_str());
  int status = 0;
  while (!quit_) {
    std::optional<std::string> line = (*editor)->ReadLine();
    if (!line) {
      std::printf("\n");
      break;
    }
    (*editor)->Remember(*line);
    ClearInterrupt();
    for (const auto& n : Notices()) std::printf("%s\n", n.c_str());  // and what changed while the line was typed
    status = Execute(*line);
    // A Ctrl-C meanwhile was for the command (the terminal echoed ^C, a
    // transfer said "interrupted"), not for the next line.
    ClearInterrupt();
    for (const auto& n : Notices()) std::printf("%s\n", n.c_str());
  }
  return status;
}

int Shell::Run() {
  client_ = ctx_.Connect();
  if (client_ == nullptr) return 1;
  master_ = client::DefaultMaster(ctx_.master_flag);
  if (Status s = InstallInterruptHandler(); !s.ok()) {
    PrintError(s.message());
    return 1;
  }
  ctx_.set_interrupt(&g_interrupt);
  if (!options_.script.empty()) {
    std::ifstream in(options_.script);
    if (!in) {
      PrintError(Status::FromErrno(errno, "cannot open " + options_.script).message());
      return 1;
    }
    return Script(in);
  }
  if (::isatty(STDIN_FILENO) != 1) return Script(std::cin);
  auto watch = client_->WatchEvents("");  // nodes for the notices, files for the cache
  if (watch) events_ = std::move(*watch);
  else PrintError("no notices of nodes going down: " + watch.error().message());
  return Interactive();
}

}  // namespace

std::string HistoryPath() {
  if (const char* h = std::getenv("DFS_HISTORY")) return h;
  std::string state;
  if (const char* x = std::getenv("XDG_STATE_HOME"); x != nullptr && *x == '/') state = x;
  else if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') state = std::string(home) + "/.local/state";
  else return "";
  const std::string dir = state + "/dfs";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return "";  // no history rather than no shell
  return dir + "/history";
}

void RegisterShellCommand(CLI::App& app, ShellOptions& options, bool& run) {
  auto* sh = app.add_subcommand("shell", "an interactive shell (the default on a terminal); reads commands from a "
                                         "pipe or FILE too, one per line");
  sh->add_flag("-e,--exit-on-error", options.exit_on_error,
               "stop at the first command that fails, with its exit status");
  sh->add_option("FILE", options.script, "read the commands from FILE instead of stdin")->check(CLI::ExistingFile);
  sh->callback([&run] { run = true; });
  Examples(sh, {"dfs-cli                                  # on a terminal: the shell",
                "printf 'mkdir -p /a\\nput x.bin /a/\\n' | dfs-cli shell -e",
                "dfs-cli shell -e setup.dfs"});
}

int RunShell(Context& ctx, const ShellOptions& options) {
  std::setlocale(LC_CTYPE, "");  // libedit reads the terminal's characters by the locale
  Shell shell(ctx, options);
  return shell.Run();
}

}  // namespace dfs::cli
