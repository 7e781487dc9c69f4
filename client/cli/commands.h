// dfs-cli's commands. Each Register* adds subcommands to the app and returns
// nothing; a command's callback stores its exit status in `Context::exit_code`.
#pragma once

#include <atomic>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "client/cli/output.h"
#include "client/dfs_client.h"
#include "client/file_cache.h"

namespace dfs::cli {

struct Context {
  std::string master_flag;
  double timeout_s = 1.5;
  Output out;
  bool quiet = false;  // -q: no progress bars
  std::string log_level = "error";
  int exit_code = 0;
  // The file cache's flags (--cache-dir, --cache-ttl, --cache-size, --no-cache).
  std::string cache_dir;
  std::string cache_ttl = "60s";
  std::string cache_size = "1G";
  bool no_cache = false;

  // Connects on first use; prints the error and sets exit_code 1 on failure.
  client::Client* Connect();
  // The same, printing nothing (the cache decides what to say).
  Result<client::Client*> TryConnect();
  // The file cache, opened on first use; nullptr with --no-cache, or when
  // its folder cannot be made (said once on stderr: the command goes on
  // without it).
  client::FileCache* Cache();
  // Prints `status` (one line) and sets exit_code 1.
  void Fail(const Status& status);
  // The shell's Ctrl-C: transfers stop while *flag is set (Client::set_interrupt).
  void set_interrupt(const std::atomic<bool>* flag);
  // Connected already (no connection is attempted).
  client::Client* connected() const { return client_.get(); }
  const std::atomic<bool>* interrupt() const { return interrupt_; }
  // Another connection with the same settings, for a worker thread of its
  // own (a Client is one thread's); it shares the shell's Ctrl-C and its
  // working directory.
  Result<std::unique_ptr<client::Client>> ConnectAnother();

 private:
  client::ClientOptions Options() const;

  std::unique_ptr<client::Client> client_;
  const std::atomic<bool>* interrupt_ = nullptr;
  std::optional<client::FileCache> cache_;
  bool cache_tried_ = false;
};

void RegisterClusterCommands(CLI::App& app, Context& ctx);
// setrep, decommission, balancer.
void RegisterHealthCommands(CLI::App& app, Context& ctx);
// mkdir, rmdir, rm, mv, cp.
void RegisterNamespaceCommands(CLI::App& app, Context& ctx);
// ls, stat.
void RegisterListingCommands(CLI::App& app, Context& ctx);
void RegisterTreeCommand(CLI::App& app, Context& ctx);
// du, df.
void RegisterUsageCommands(CLI::App& app, Context& ctx);
// put, get, cat, and the seed's upload (-u REMOTE LOCAL).
void RegisterDataCommands(CLI::App& app, Context& ctx);

// The command tree the one-shot dfs-cli and the shell both parse: every
// command above, the options before the command, and the help footer.
// `one_shot`: also the options that only make sense before connecting
// (--master, --timeout, --log-level); the shell is connected already.
// Commands store into `ctx` (its json and quiet flags too), so a caller
// that parses more than once resets those first.
std::unique_ptr<CLI::App> BuildApp(Context& ctx, bool one_shot);

// The words of one command (argv without argv[0]) rewritten as
// RewriteSeedAliases does.
std::vector<std::string> RewriteSeedAliases(std::vector<std::string> words);

// Ends `cmd`'s --help with "Examples:" and `lines`, each a command line
// a user can type.
CLI::App* Examples(CLI::App* cmd, std::initializer_list<std::string_view> lines);

// The seed's option-style commands ("--stat PATH") rewritten to their
// subcommands ("stat PATH"), so CLI11 sees one grammar: --stat, --mkdir,
// --rm as stat, mkdir, rm; -u REMOTE LOCAL as upload (put with the seed's
// argument order), -d REMOTE LOCAL as get, -v [PATH] as tree (the seed's
// viewer). Only the first word after the global options is rewritten;
// argv[0] is kept.
std::vector<std::string> RewriteSeedAliases(int argc, char** argv);

}  // namespace dfs::cli
