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
#include <memory>
#include <string>

#include <fmt/format.h>

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
  client::Client* c = ctx.Connect();
  if (c == nullptr) return;
  auto o = GetOptionsOf(a);
  if (!o) return ctx.Fail(o.error());
  // Bytes on a terminal's stdout would be torn by the bar's redraws.
  const bool to_stdout = a.local == "-";
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
  if (ctx.out.json) {
    PrintJson({{"path", r->path}, {"local", local}, {"size", r->size}, {"checksum", r->checksum}});
  }
}

void Cat(Context& ctx, const GetArgs& a) {
  client::Client* c = ctx.Connect();
  if (c == nullptr) return;
  auto o = GetOptionsOf(a);
  if (!o) return ctx.Fail(o.error());
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

}  // namespace

void RegisterDataCommands(CLI::App& app, Context& ctx) {
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
