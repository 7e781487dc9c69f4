// Commands that move file contents: put, get, cat, and the seed's upload.
// Like cp(1), put and get accept an existing directory as the destination
// and put the file into it under its own name. put makes the remote folder
// when it is missing (as HDFS's create does; --no-parents refuses instead).
// On a terminal put and get draw a progress bar on stderr and end with a
// one-line summary; otherwise (or with -q) they are silent on success. With
// --json put and get print the stored file. cat into a pipe whose reader
// left (`cat F | head`) stops quietly with status 0, as cat(1) does.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <functional>
#include <memory>
#include <vector>
#include <string>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "client/cli/commands.h"
#include "client/cli/entry_format.h"
#include "client/cli/progress.h"
#include "client/cli/transfers.h"
#include "common/env.h"
#include "common/flags.h"
#include "common/units.h"
#include "common/limits.h"

namespace dfs::cli {
namespace {

struct PutArgs {
  bool force = false;
  uint32_t replication = 0;
  std::string chunk_size;
  std::string frame_size;
  int parallel = 4;
  bool chain = false;
  bool no_parents = false;
  bool seed_order = false;  // -u REMOTE LOCAL: only for the hint on a wrong order
  bool recursive = false;
  int jobs = 4;
  std::string local;
  std::string remote;
};

struct GetArgs {
  int parallel = 4;
  bool recursive = false;
  bool resume = false;
  int jobs = 4;
  std::string offset;
  std::string length;
  std::string remote;
  std::string local;
};

bool IsLocalDirectory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Where `put` stores LOCAL: REMOTE itself, or REMOTE/basename(LOCAL) when
// REMOTE is an existing directory (or ends in '/').
Result<std::string> PutTarget(client::Client& c, const PutArgs& a) {
  DFS_ASSIGN_OR_RETURN(std::string remote, client::ResolvePath(a.remote, c.working_directory()));
  bool into = a.remote.ends_with('/');
  if (!into) {
    auto st = c.Stat(remote);  // an error here (not found) means "a new file named REMOTE"
    into = st && st->is_dir();
  }
  if (!into) return remote;
  if (a.local == "-") {
    return Status(Code::kIsADirectory, fmt::format("is a directory: {} (name the file to store stdin in)", remote));
  }
  return JoinPath(remote, BaseName(a.local));
}

// The master speaks of the protocol; what to type instead is the CLI's to say.
Status PutHint(const Status& s) {
  if (s.code() == Code::kAlreadyExists) return Status(s.code(), s.message() + " (use -f to overwrite)");
  if (s.code() == Code::kUnavailable && s.message().find("replication ") != std::string::npos &&
      s.message().find(" needs ") != std::string::npos) {
    return Status(s.code(), s.message() + "; lower it with -r");
  }
  return s;
}

// The seed's users may type -u in the seed's old order (LOCAL first).
Status OpenHint(const PutArgs& a, int err) {
  Status s = Status::FromErrno(err, "cannot open " + a.local);
  struct stat st {};
  if (a.seed_order && err == ENOENT && ::stat(a.remote.c_str(), &st) == 0) {
    return Status(s.code(), s.message() + " (-u takes the path in dfs first: -u REMOTE LOCAL)");
  }
  return s;
}

void Put(Context& ctx, const PutArgs& a) {
  // -r of a file is a put of the file, as cp -r's is.
  if (a.local != "-" && IsLocalDirectory(a.local)) {
    TreeOptions t{.jobs = a.jobs, .parallel = a.parallel, .force = a.force, .replication = a.replication};
    if (!a.chunk_size.empty()) t.chunk_size = *ParseSize(a.chunk_size);  // validated by the flag
    return PutTree(ctx, a.local, a.remote, t);
  }
  int fd = STDIN_FILENO;
  std::string name = "stdin";
  if (a.local != "-") {
    name = a.local;
    fd = ::open(a.local.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ctx.Fail(OpenHint(a, errno));
  }
  UniqueFd owned(fd == STDIN_FILENO ? -1 : fd);
  client::Client* c = ctx.Connect();
  if (c == nullptr) return;
  auto target = PutTarget(*c, a);
  if (!target) return ctx.Fail(target.error());
  client::PutOptions o;
  o.overwrite = a.force;
  o.replication = a.replication;
  o.parallel = a.parallel;
  o.fan_out = !a.chain;
  o.make_parents = !a.no_parents;
  if (!a.chunk_size.empty()) o.chunk_size = *ParseSize(a.chunk_size);  // validated by the flag
  if (!a.frame_size.empty()) o.frame_size = static_cast<uint32_t>(*ParseSize(a.frame_size));  // checked by the flag
  ProgressBar bar(ProgressWanted(ctx.quiet), *target);
  o.progress = bar.Hook();
  o.progress_interval = ProgressBar::kInterval;
  auto r = c->Put(fd, name, *target, o);
  bar.Finish(r.has_value());
  if (client::FileCache* cache = ctx.Cache()) {
    // Write-through: the cache holds the new version (or, from a stream
    // it cannot read again, nothing of the old one).
    if (!r || a.local == "-" || !cache->Insert(*r, a.local).value_or(false)) cache->DropUnder(*target);
  }
  if (!r) return ctx.Fail(PutHint(r.error()));
  if (ctx.out.json) PrintJson(StatJson(*r));
}

Result<client::GetOptions> GetOptionsOf(const GetArgs& a) {
  client::GetOptions o;
  o.parallel = a.parallel;
  if (!a.offset.empty()) {
    DFS_ASSIGN_OR_RETURN(o.offset, ParseSize(a.offset));
  }
  if (!a.length.empty()) {
    DFS_ASSIGN_OR_RETURN(o.length, ParseSize(a.length));
  }
  return o;
}

bool Unreachable(const Status& s) { return s.code() == Code::kUnavailable || s.code() == Code::kTimedOut; }

// Whether the cache answered a get or cat (served it, or failed it for
// good), or the cluster must be read.
enum class Cached { kAnswered, kFetch };

// Serves `remote_arg` from the cache through `write` when the master
// confirms the cached version, or when the master cannot be reached and it
// confirmed the version within --cache-ttl (said on stderr). Past the TTL
// an unreachable master is an error naming the cached copy's age.
Cached FromCache(Context& ctx, const std::string& remote_arg,
                 const std::function<Status(const client::FileCache::Entry&)>& write) {
  client::FileCache* cache = ctx.Cache();
  if (cache == nullptr) return Cached::kFetch;
  auto c = ctx.TryConnect();
  auto path = client::ResolvePath(remote_arg, c ? (*c)->working_directory() : std::string("/"));
  if (!path) return Cached::kFetch;  // the cluster's path reports it
  auto entry = cache->Lookup(*path);
  Status why;
  if (c) {
    if (!entry) return Cached::kFetch;  // nothing to confirm: no extra round trip
    auto st = (*c)->Stat(*path);
    if (st && entry && entry->Matches(*st)) {
      Status s = write(*entry);
      if (s.ok()) {
        cache->Confirm(*entry);
        return Cached::kAnswered;
      }
      if (s.code() != Code::kCorruption) {
        if (!StdoutReaderGone()) ctx.Fail(s);
        return Cached::kAnswered;
      }
      PrintError(s.message() + "; reading it from the cluster");
      return Cached::kFetch;
    }
    if (st || !Unreachable(st.error())) {
      if (entry) cache->DropUnder(*path);  // another version, or gone
      return Cached::kFetch;
    }
    why = st.error();
  } else {
    if (!Unreachable(c.error())) {
      ctx.Fail(c.error());
      return Cached::kAnswered;
    }
    why = c.error();
  }
  // The master cannot be reached.
  if (!entry) {
    ctx.Fail(why);
    return Cached::kAnswered;
  }
  const double age = std::chrono::duration<double>(entry->Age()).count();
  const double ttl = std::chrono::duration<double>(cache->options().ttl).count();
  if (age > ttl) {
    ctx.Fail(Status(why.code(), fmt::format("{}; the cached copy of {} was last confirmed {} ago, past --cache-ttl {}: "
                                            "not served", why.message(), *path, HumanDuration(age), HumanDuration(ttl))));
    return Cached::kAnswered;
  }
  if (Status s = write(*entry); !s.ok()) {
    if (!StdoutReaderGone()) ctx.Fail(s);
    return Cached::kAnswered;
  }
  PrintError(fmt::format("{}; served {} from the cache (confirmed {} ago, within --cache-ttl {})", why.message(), *path,
                         HumanDuration(age), HumanDuration(ttl)));
  return Cached::kAnswered;
}

// A cached file (or the range `o` asks for) to standard output.
Status ServeToStdout(const client::FileCache& cache, const client::FileCache::Entry& e, const client::GetOptions& o) {
  std::fflush(stdout);
  return cache.CopyTo(e, STDOUT_FILENO, o.offset, o.length);
}

// `fill` writes a file's bytes into a temporary beside `local`, renamed
// over it only when it succeeds (as Client::Get does).
Status WriteLocalFile(const std::string& local, const std::function<Status(int fd)>& fill) {
  std::string tmp = local + ".tmp.XXXXXX";
  std::vector<char> name(tmp.begin(), tmp.end());
  name.push_back('\0');
  UniqueFd fd(::mkstemp(name.data()));
  if (fd.get() < 0) return Status::FromErrno(errno, local);
  tmp.assign(name.data());
  const mode_t mask = ::umask(0);
  ::umask(mask);
  IgnoreError(::fchmod(fd.get(), 0666 & ~mask) == 0 ? Status::OK() : Status::FromErrno(errno, tmp));  // cosmetic
  Status s = fill(fd.get());
  if (s.ok() && ::close(fd.release()) != 0) s = Status::FromErrno(errno, tmp);
  if (s.ok() && ::rename(tmp.c_str(), local.c_str()) != 0) s = Status::FromErrno(errno, local);
  if (!s.ok()) ::unlink(tmp.c_str());
  return s;
}

// To standard output, in order; nothing else may write to it meanwhile. A
// reader that leaves early (head) is no failure: cat(1) is quiet there too.
void ToStdout(Context& ctx, client::Client& c, const std::string& remote, const client::GetOptions& o) {
  std::fflush(stdout);
  auto r = c.Get(remote, STDOUT_FILENO, o);
  if (!r && !StdoutReaderGone()) ctx.Fail(r.error());
}

void Get(Context& ctx, const GetArgs& a) {
  if (a.recursive) return GetTree(ctx, a.remote, a.local, {.jobs = a.jobs, .parallel = a.parallel});
  if (a.resume) {
    if (a.local == "-") return ctx.Fail(Status(Code::kInvalidArgument, "get -c needs a local file to resume, not stdout"));
    return GetResume(ctx, a.remote, a.local, a.parallel);
  }
  auto o = GetOptionsOf(a);
  if (!o) return ctx.Fail(o.error());
  const bool to_stdout = a.local == "-";
  if (FromCache(ctx, a.remote, [&](const client::FileCache::Entry& e) -> Status {
        if (to_stdout) return ServeToStdout(*ctx.Cache(), e, *o);
        const std::string local = IsLocalDirectory(a.local) ? JoinPath(a.local, BaseName(e.path)) : a.local;
        ProgressBar bar(ProgressWanted(ctx.quiet), local);  // no bar to draw: the summary line alone
        DFS_RETURN_IF_ERROR(WriteLocalFile(local, [&](int fd) { return ctx.Cache()->CopyTo(e, fd); }));
        bar.Update({.done = e.size, .total = e.size});
        bar.Finish(true);
        if (ctx.out.json) {
          PrintJson({{"path", e.path}, {"local", local}, {"size", e.size}, {"checksum", e.checksum}, {"cached", true}});
        }
        return Status::OK();
      }) == Cached::kAnswered) {
    return;
  }
  client::Client* c = ctx.Connect();
  if (c == nullptr) return;
  // Bytes on a terminal's stdout would be torn by the bar's redraws.
  ProgressBar bar(ProgressWanted(ctx.quiet) && !(to_stdout && ::isatty(STDOUT_FILENO) == 1),
                  to_stdout ? a.remote : a.local);
  o->progress = bar.Hook();
  o->progress_interval = ProgressBar::kInterval;
  if (to_stdout) {
    ToStdout(ctx, *c, a.remote, *o);
    return bar.Finish(ctx.exit_code == 0);
  }
  std::string local = a.local;
  if (IsLocalDirectory(local)) {
    auto remote = client::ResolvePath(a.remote, c->working_directory());
    if (!remote) return ctx.Fail(remote.error());
    local = JoinPath(local, BaseName(*remote));
  }
  auto r = c->Get(a.remote, local, *o);
  bar.Finish(r.has_value());
  if (!r) return ctx.Fail(r.error());
  if (client::FileCache* cache = ctx.Cache()) {
    // A cache that fails costs only speed: the get is done.
    if (auto in = cache->Insert(*r, local); !in) spdlog::debug("not cached: {}", in.error().ToString());
  }
  if (ctx.out.json) {
    PrintJson({{"path", r->path}, {"local", local}, {"size", r->size}, {"checksum", r->checksum}});
  }
}

void Cat(Context& ctx, const GetArgs& a) {
  auto o = GetOptionsOf(a);
  if (!o) return ctx.Fail(o.error());
  if (FromCache(ctx, a.remote, [&](const client::FileCache::Entry& e) { return ServeToStdout(*ctx.Cache(), e, *o); }) ==
      Cached::kAnswered) {
    return;
  }
  client::Client* c = ctx.Connect();
  if (c == nullptr) return;
  ToStdout(ctx, *c, a.remote, *o);
}

// put's flags, shared with the seed's upload.
void AddPutFlags(CLI::App* p, PutArgs* put) {
  p->add_flag("-f,--force", put->force, "replace REMOTE if it exists");
  p->add_option("-r,--replication", put->replication, "copies of each chunk (default: the cluster's)")
      ->check(CLI::Range(uint32_t{1}, limits::kMaxReplication));
  p->add_option("--chunk-size", put->chunk_size, "bytes per chunk, e.g. 64M (default: the cluster's)")
      ->check(SizeFlag())
      ->check(SizeInRange(limits::kMinChunkSize, limits::kMaxChunkSize));
  p->add_option("--parallel", put->parallel, "chunks streaming at once")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  p->add_option("--frame-size", put->frame_size,
                "bytes per message, 4K to 8M (default 1M); a chunk no larger is sent in one message")
      ->check(SizeFlag())
      ->check(SizeInRange(limits::kMinFrameSize, limits::kMaxFrameSize));
  p->add_flag("--chain", put->chain,
              "send a chunk that fits one message node to node down its pipeline, not to every replica at "
              "once (the bytes leave this machine once instead of once per replica, at a hop's latency each)");
  p->add_flag("--no-parents", put->no_parents,
              "fail when REMOTE's folder does not exist (by default it is made, as mkdir -p would)");
  p->add_flag("-R,--recursive", put->recursive,
              "LOCAL is a folder: put the whole tree (also `-r DIR`, and implied when LOCAL is a folder)");
  p->add_option("-j,--jobs", put->jobs, "with a folder: files in flight at once")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
}

// dfs-cli cache [clear]: what the file cache holds, or empties it.
void CacheCommand(Context& ctx, const std::string& action) {
  client::FileCache* cache = ctx.Cache();
  if (cache == nullptr) return ctx.Fail(Status(Code::kInvalidArgument, "the file cache is off (--no-cache)"));
  if (action == "clear") {
    const uint64_t n = cache->Clear();
    if (ctx.out.json) return PrintJson({{"dir", cache->dir()}, {"cleared", n}});
    std::printf("cleared %llu entr%s from %s\n", static_cast<unsigned long long>(n), n == 1 ? "y" : "ies",
                cache->dir().c_str());
    return;
  }
  const client::FileCache::Usage u = cache->Scan();
  const double ttl = std::chrono::duration<double>(cache->options().ttl).count();
  if (ctx.out.json) {
    nlohmann::json entries = nlohmann::json::array();
    for (const auto& e : u.list) {
      entries.push_back({{"path", e.path}, {"size", e.size}, {"checksum", e.checksum}, {"confirmed", e.confirmed_ms}});
    }
    return PrintJson({{"dir", u.dir}, {"entries", u.entries}, {"bytes", u.bytes}, {"max_bytes", u.max_bytes},
                      {"ttl_ms", cache->options().ttl.count()}, {"files", std::move(entries)}});
  }
  std::printf("%s: %llu file%s, %s of %s; served offline up to %s after the master last confirmed them\n", u.dir.c_str(),
              static_cast<unsigned long long>(u.entries), u.entries == 1 ? "" : "s", FormatSize(u.bytes).c_str(),
              FormatSize(u.max_bytes).c_str(), HumanDuration(ttl).c_str());
  if (u.list.empty()) return;
  std::vector<std::vector<std::string>> rows{{"SIZE", "CONFIRMED", "PATH"}};
  for (const auto& e : u.list) {
    rows.push_back({FormatSize(e.size), HumanDuration(std::chrono::duration<double>(e.Age()).count()) + " ago", e.path});
  }
  std::fputs(FormatTable(rows, {0, 1}).c_str(), stdout);
}

}  // namespace

void RegisterDataCommands(CLI::App& app, Context& ctx) {
  auto action = std::make_shared<std::string>();
  auto* ch = app.add_subcommand("cache", "show what the local file cache holds, or clear it");
  ch->add_option("ACTION", *action, "clear: remove every cached file")->check(CLI::IsMember({"clear"}));
  ch->callback([&ctx, action] { CacheCommand(ctx, *action); });
  Examples(ch, {"dfs-cli cache", "dfs-cli cache clear", "dfs-cli --no-cache get /big.iso .   # neither read nor fill it"});

  auto put = std::make_shared<PutArgs>();
  auto* p = app.add_subcommand("put", "store a local file (or stdin, '-') in dfs");
  AddPutFlags(p, put.get());
  p->add_option("LOCAL", put->local, "a local file or folder, or - for stdin")->required();
  p->add_option("REMOTE", put->remote,
                "the path in dfs (missing folders are made), or an existing directory to put LOCAL into")
      ->required();
  p->callback([&ctx, put] { Put(ctx, *put); });
  Examples(p, {"dfs-cli put ./img.jpg /photos/2026/        # into the folder, as img.jpg",
               "dfs-cli put -r ./photos /backup/ -j 8      # the tree, as /backup/photos",
               "tar c src | dfs-cli put -f - /backup/src.tar"});

  // The seed's -u REMOTE LOCAL (aliases.cc): put with the path in dfs first.
  auto up = std::make_shared<PutArgs>();
  up->seed_order = true;
  auto* u = app.add_subcommand("upload", "-u REMOTE LOCAL: the seed's upload (put, the path in dfs first)");
  u->group("");  // hidden: --help lists it as -u in the footer
  AddPutFlags(u, up.get());
  u->add_option("REMOTE", up->remote, "the path in dfs, or an existing directory to put LOCAL into")->required();
  u->add_option("LOCAL", up->local, "a local file, or - for stdin")->required();
  u->callback([&ctx, up] { Put(ctx, *up); });
  Examples(u, {"dfs-cli -u /photos/2026/ ./img.jpg"});

  auto get = std::make_shared<GetArgs>();
  auto* g = app.add_subcommand("get", "copy a file out of dfs into a local file (or stdout, '-')");
  g->add_option("--parallel", get->parallel, "chunks fetched at once")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  g->add_flag("-r,-R,--recursive", get->recursive, "REMOTE is a folder: get the whole tree");
  g->add_option("-j,--jobs", get->jobs, "with -r: files in flight at once")->check(CLI::Range(1, 64))->capture_default_str();
  g->add_flag("-c,--continue", get->resume,
              "resume into LOCAL.part (kept when a get -c fails or is killed) from the first chunk it lacks");
  g->add_option("REMOTE", get->remote, "the file (or, with -r, folder) in dfs")->required();
  g->add_option("LOCAL", get->local, "a local file (written whole or not at all), a directory, or - for stdout")
      ->required();
  g->callback([&ctx, get] { Get(ctx, *get); });
  Examples(g, {"dfs-cli get /photos/2026/img.jpg ./copy.jpg", "dfs-cli get /logs/today.log - | grep ERROR",
               "dfs-cli get -r /photos ./restore -j 8", "dfs-cli get -c /images/debian.iso .   # again after a failure"});

  auto cat = std::make_shared<GetArgs>();
  auto* k = app.add_subcommand("cat", "write a file (or a byte range of it) to stdout");
  k->add_option("--offset", cat->offset, "first byte, e.g. 1M")->check(SizeFlag());
  k->add_option("--length", cat->length, "bytes to write (default: to the end)")->check(SizeFlag());
  k->add_option("REMOTE", cat->remote, "the file in dfs")->required();
  k->callback([&ctx, cat] { Cat(ctx, *cat); });
  Examples(k, {"dfs-cli cat /notes.txt | head", "dfs-cli cat --offset 1M --length 100 /big.bin"});
}

}  // namespace dfs::cli
