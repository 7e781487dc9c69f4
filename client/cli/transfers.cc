#include "client/cli/transfers.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "client/cli/entry_format.h"
#include "client/cli/progress.h"
#include "common/checksum.h"
#include "common/files.h"
#include "common/units.h"

namespace dfs::cli {
namespace {

namespace fs = std::filesystem;

struct Job {
  std::string local;
  std::string remote;
  uint64_t size = 0;
};

// One bar for a whole tree: bytes of every file, the files done and the
// latest file started. Workers report from their own threads.
class TreeProgress {
 public:
  TreeProgress(bool enabled, size_t files, uint64_t bytes, size_t workers)
      : bar_(enabled, ""), files_(files), total_(bytes), in_flight_(workers, 0) {}

  client::ProgressFn Hook(size_t worker, const std::string& name) {
    std::lock_guard lock(mu_);
    in_flight_[worker] = 0;
    current_ = name;
    if (!bar_.enabled()) return {};
    return [this, worker](const client::Progress& p) {
      std::lock_guard hold(mu_);
      in_flight_[worker] = p.done;
      DrawLocked(false);
    };
  }
  void Done(size_t worker, uint64_t bytes) {
    std::lock_guard lock(mu_);
    in_flight_[worker] = 0;
    finished_ += bytes;
    ++files_done_;
    DrawLocked(true);
  }
  // An error line, above the bar.
  void Note(const std::string& line) {
    std::lock_guard lock(mu_);
    bar_.Note(line);
  }
  void Finish(bool ok, const std::string& summary) {
    std::lock_guard lock(mu_);
    bar_.set_label(summary);
    bar_.Finish(ok);
  }

 private:
  void DrawLocked(bool force) {
    if (!bar_.enabled()) return;
    const auto now = std::chrono::steady_clock::now();
    if (!force && now - last_ < ProgressBar::kInterval / 2) return;  // several workers report
    last_ = now;
    uint64_t done = finished_;
    for (uint64_t d : in_flight_) done += d;
    bar_.set_label(fmt::format("[{}/{}] {}", files_done_, files_, current_));
    bar_.Update({.done = std::min(done, total_), .total = total_});
  }

  std::mutex mu_;
  ProgressBar bar_;
  const size_t files_;
  const uint64_t total_;
  std::vector<uint64_t> in_flight_;
  uint64_t finished_ = 0;
  size_t files_done_ = 0;
  std::string current_;
  std::chrono::steady_clock::time_point last_{};
};

// Runs `jobs` on up to `workers` threads, each with a connection of its own
// (the first uses ctx's). `one` does a job and returns its error; the rest
// go on after a failure and stop at Ctrl-C. Returns how many failed.
size_t RunJobs(Context& ctx, client::Client& first, const std::vector<Job>& jobs, int workers,
               TreeProgress& progress, const std::atomic<bool>* interrupt,
               const std::function<Status(client::Client&, const Job&, client::ProgressFn)>& one) {
  std::atomic<size_t> next{0};
  std::atomic<size_t> failed{0};
  auto work = [&](client::Client& c, size_t worker) {
    for (size_t i = next++; i < jobs.size(); i = next++) {
      if (interrupt != nullptr && interrupt->load()) {
        failed += 1;
        continue;
      }
      const Job& job = jobs[i];
      Status s = one(c, job, progress.Hook(worker, job.remote));
      if (s.ok()) {
        progress.Done(worker, job.size);
      } else {
        ++failed;
        progress.Done(worker, 0);
        if (s.code() != Code::kCancelled) progress.Note("dfs-cli: " + s.message());
      }
    }
  };
  const size_t n = std::min<size_t>(static_cast<size_t>(std::max(workers, 1)), std::max<size_t>(jobs.size(), 1));
  std::vector<std::unique_ptr<client::Client>> extra;
  for (size_t w = 1; w < n; ++w) {
    auto c = ctx.ConnectAnother();
    if (!c) break;  // fewer workers then; the first one still runs
    extra.push_back(std::move(*c));
  }
  std::vector<std::thread> threads;
  for (size_t w = 0; w < extra.size(); ++w) threads.emplace_back(work, std::ref(*extra[w]), w + 1);
  work(first, 0);
  for (auto& t : threads) t.join();
  return failed.load();
}

std::string Summary(size_t files, size_t failed) {
  std::string s = fmt::format("{} file{}", files, files == 1 ? "" : "s");
  if (failed > 0) s += fmt::format(", {} failed", failed);
  return s;
}

// Ends a tree transfer: the summary line, the exit status.
void FinishTree(Context& ctx, TreeProgress& progress, const char* verb, size_t files, size_t failed,
                const std::atomic<bool>* interrupt) {
  const bool cancelled = interrupt != nullptr && interrupt->load();
  progress.Finish(failed == 0, Summary(files, failed));
  if (failed > 0) {
    ctx.Fail(Status(cancelled ? Code::kCancelled : Code::kInternal,
                    cancelled ? fmt::format("{}: cancelled", verb)
                              : fmt::format("{}: {} of {} files failed", verb, failed, files)));
  }
}

}  // namespace

void PutTree(Context& ctx, const std::string& local, const std::string& remote_arg, const TreeOptions& options) {
  std::error_code ec;
  const fs::file_status top = fs::status(local, ec);
  if (ec) return ctx.Fail(Status::FromErrno(ec.value(), "cannot open " + local));
  if (!fs::is_directory(top)) {
    return ctx.Fail(Status(Code::kNotADirectory, "not a directory: " + local + " (put without -r for a file)"));
  }
  client::Client* c = ctx.Connect();
  if (c == nullptr) return;
  auto remote = client::ResolvePath(remote_arg, c->working_directory());
  if (!remote) return ctx.Fail(remote.error());
  std::string root = *remote;
  if (auto st = c->Stat(root); st && st->is_dir()) {
    const std::string base = fs::weakly_canonical(fs::absolute(local), ec).filename().string();
    if (!base.empty()) root = JoinPath(root, base);
  } else if (st) {
    return ctx.Fail(Status(Code::kNotADirectory, "not a directory: " + root));
  }

  // The walk: folders in pre-order (parents first), files with sizes.
  std::vector<std::string> dirs{root};
  std::vector<Job> jobs;
  uint64_t bytes = 0;
  size_t failed = 0;
  fs::recursive_directory_iterator it(local, fs::directory_options::none, ec);
  if (ec) return ctx.Fail(Status::FromErrno(ec.value(), "cannot read " + local));
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const fs::directory_entry& e = *it;
    // Lexical: fs::relative would follow a link to where it points, and a
    // link to /etc/hosts would be stored as /etc/hosts, not ROOT/link.
    const std::string rel = e.path().lexically_relative(local).generic_string();
    const std::string target = root + "/" + rel;
    std::error_code sec;
    if (e.is_symlink(sec) && e.is_directory(sec)) {
      PrintError("skipped " + e.path().string() + ": a symbolic link to a folder");
      continue;
    }
    if (e.is_directory(sec)) {
      dirs.push_back(target);
    } else if (e.is_regular_file(sec) || e.is_symlink(sec)) {
      // A dangling link fails when opened, with its own error.
      const uint64_t size = e.is_regular_file(sec) ? e.file_size(sec) : 0;
      jobs.push_back({.local = e.path().string(), .remote = target, .size = sec ? 0 : size});
      bytes += jobs.back().size;
    } else {
      PrintError("skipped " + e.path().string() + ": not a regular file");
    }
  }
  if (ec) {
    // An unreadable folder: its files are not counted, so the run fails.
    PrintError(Status::FromErrno(ec.value(), "cannot read a folder under " + local).message());
    ++failed;
  }
  for (const std::string& d : dirs) {
    if (auto m = c->Mkdir(d, /*parents=*/true); !m) return ctx.Fail(m.error());
  }

  const std::atomic<bool>* interrupt = ctx.interrupt();
  TreeProgress progress(ProgressWanted(ctx.quiet), jobs.size(), bytes, static_cast<size_t>(options.jobs));
  failed += RunJobs(ctx, *c, jobs, options.jobs, progress, interrupt,
                    [&](client::Client& cl, const Job& job, client::ProgressFn hook) -> Status {
                      UniqueFd fd(::open(job.local.c_str(), O_RDONLY | O_CLOEXEC));
                      if (fd.get() < 0) return Status::FromErrno(errno, "cannot open " + job.local);
                      client::PutOptions o;
                      o.overwrite = options.force;
                      o.replication = options.replication;
                      o.chunk_size = options.chunk_size;
                      o.parallel = options.parallel;
                      o.progress = std::move(hook);
                      o.progress_interval = ProgressBar::kInterval;
                      auto r = cl.Put(fd.get(), job.local, job.remote, o);
                      if (!r) {
                        const Status& s = r.error();
                        if (s.code() == Code::kAlreadyExists) return Status(s.code(), s.message() + " (use -f to overwrite)");
                        return s;
                      }
                      return Status::OK();
                    });
  FinishTree(ctx, progress, "put -r", jobs.size(), failed, interrupt);
  if (ctx.out.json) PrintJson({{"path", root}, {"files", jobs.size()}, {"folders", dirs.size()}, {"bytes", bytes}, {"failed", failed}});
}

void GetTree(Context& ctx, const std::string& remote_arg, const std::string& local, const TreeOptions& options) {
  client::Client* c = ctx.Connect();
  if (c == nullptr) return;
  auto remote = client::ResolvePath(remote_arg, c->working_directory());
  if (!remote) return ctx.Fail(remote.error());
  auto top = c->Stat(*remote);
  if (!top) return ctx.Fail(top.error());
  if (!top->is_dir()) {
    return ctx.Fail(Status(Code::kNotADirectory, "not a directory: " + *remote + " (get without -r for a file)"));
  }
  std::error_code ec;
  std::string root = local;
  if (fs::is_directory(local, ec)) root = (fs::path(local) / (*remote == "/" ? "" : BaseName(*remote))).string();

  // The walk, breadth first: folders to make, files to fetch.
  std::vector<std::pair<std::string, std::string>> dirs{{*remote, root}};
  std::vector<Job> jobs;
  uint64_t bytes = 0;
  for (size_t i = 0; i < dirs.size(); ++i) {
    const auto [rdir, ldir] = dirs[i];
    auto entries = c->List(rdir);
    if (!entries) return ctx.Fail(entries.error());
    for (const client::FileStatus& e : *entries) {
      // A name is one component; anything else (a master that lies) must
      // not steer a write outside LOCAL.
      if (e.path.empty() || e.path == "." || e.path == ".." || e.path.find('/') != std::string::npos) {
        return ctx.Fail(Status(Code::kProtocolError, fmt::format("the master listed a bad name in {}: '{}'", rdir, e.path)));
      }
      const std::string r = JoinPath(rdir, e.path);
      const std::string l = (fs::path(ldir) / e.path).string();
      if (e.is_dir()) {
        dirs.emplace_back(r, l);
      } else {
        jobs.push_back({.local = l, .remote = r, .size = e.size});
        bytes += e.size;
      }
    }
  }
  for (const auto& [r, l] : dirs) {
    fs::create_directories(l, ec);
    if (ec) return ctx.Fail(Status::FromErrno(ec.value(), "cannot make " + l));
  }

  const std::atomic<bool>* interrupt = ctx.interrupt();
  TreeProgress progress(ProgressWanted(ctx.quiet), jobs.size(), bytes, static_cast<size_t>(options.jobs));
  const size_t failed = RunJobs(ctx, *c, jobs, options.jobs, progress, interrupt,
                                [&](client::Client& cl, const Job& job, client::ProgressFn hook) -> Status {
                                  client::GetOptions o;
                                  o.parallel = options.parallel;
                                  o.progress = std::move(hook);
                                  o.progress_interval = ProgressBar::kInterval;
                                  auto r = cl.Get(job.remote, job.local, o);
                                  return r ? Status::OK() : r.error();
                                });
  FinishTree(ctx, progress, "get -r", jobs.size(), failed, interrupt);
  if (ctx.out.json) PrintJson({{"path", root}, {"files", jobs.size()}, {"folders", dirs.size()}, {"bytes", bytes}, {"failed", failed}});
}

void GetResume(Context& ctx, const std::string& remote_arg, const std::string& local_arg, int parallel) {
  client::Client* c = ctx.Connect();
  if (c == nullptr) return;
  auto remote = client::ResolvePath(remote_arg, c->working_directory());
  if (!remote) return ctx.Fail(remote.error());
  auto st = c->Stat(*remote, /*with_chunks=*/true);
  if (!st) return ctx.Fail(st.error());
  if (st->is_dir()) return ctx.Fail(Status(Code::kIsADirectory, "is a directory: " + *remote + " (get -r for a folder)"));
  std::string local = local_arg;
  std::error_code ec;
  if (fs::is_directory(local, ec)) local = (fs::path(local) / BaseName(*remote)).string();
  const std::string part = local + ".part";

  UniqueFd fd(::open(part.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666));
  if (fd.get() < 0) return ctx.Fail(Status::FromErrno(errno, "cannot open " + part));
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    return ctx.Fail(Status(Code::kBusy, "another get -c is writing " + part));
  }
  struct stat pst {};
  if (::fstat(fd.get(), &pst) != 0) return ctx.Fail(Status::FromErrno(errno, part));
  const auto have = static_cast<uint64_t>(pst.st_size);

  // Keep the leading chunks whose bytes match the master's checksums.
  uint64_t verified = 0;
  size_t chunks_ok = 0;
  std::vector<std::byte> buf;
  for (const client::ChunkStatus& ch : st->chunks) {
    if (verified + ch.size > have) break;
    buf.resize(ch.size);
    const ssize_t n = ::pread(fd.get(), buf.data(), buf.size(), static_cast<off_t>(verified));
    if (n != static_cast<ssize_t>(buf.size()) || Crc32c(buf) != ch.checksum) break;
    verified += ch.size;
    ++chunks_ok;
  }
  buf = {};
  if (::ftruncate(fd.get(), static_cast<off_t>(verified)) != 0 ||
      ::lseek(fd.get(), static_cast<off_t>(verified), SEEK_SET) < 0) {
    return ctx.Fail(Status::FromErrno(errno, part));
  }
  if (verified > 0 && !ctx.quiet) {
    std::fprintf(stderr, "dfs-cli: resuming %s at %s (%zu of %zu chunks verified in %s)\n", remote->c_str(),
                 FormatSize(verified).c_str(), chunks_ok, st->chunks.size(), part.c_str());
  }

  client::GetOptions o;
  o.parallel = parallel;
  o.offset = verified;
  ProgressBar bar(ProgressWanted(ctx.quiet), local);
  o.progress = bar.Hook();
  o.progress_interval = ProgressBar::kInterval;
  Result<client::FileStatus> r = *st;
  if (verified < st->size) r = c->Get(*remote, fd.get(), o);
  bar.Finish(r.has_value());
  if (!r) {
    ctx.Fail(r.error());
    return PrintError("the partial file " + part + " is kept: get -c again resumes it");
  }
  // The chunks read now were checked as they came; the kept ones were
  // checked above against the chunk list of a Stat, which an overwrite may
  // have changed since: the whole file must match what the read returned.
  if (verified > 0) {
    uint32_t crc = 0;
    std::vector<std::byte> block(8 << 20);
    for (uint64_t off = 0; off < r->size;) {
      const ssize_t n = ::pread(fd.get(), block.data(), std::min<uint64_t>(block.size(), r->size - off), static_cast<off_t>(off));
      if (n <= 0) return ctx.Fail(Status::FromErrno(n < 0 ? errno : EIO, part));
      crc = Crc32c(std::span(block.data(), static_cast<size_t>(n)), crc);
      off += static_cast<uint64_t>(n);
    }
    if (crc != r->checksum) {
      ::unlink(part.c_str());
      return ctx.Fail(Status(Code::kCorruption, fmt::format("{} changed while it was resumed (its checksum does not match); "
                                                           "the partial file is removed: run get -c again", *remote)));
    }
  }
  if (::rename(part.c_str(), local.c_str()) != 0) return ctx.Fail(Status::FromErrno(errno, local));
  if (ctx.out.json) {
    PrintJson({{"path", r->path}, {"local", local}, {"size", r->size}, {"checksum", r->checksum}, {"resumed_from", verified}});
  }
}

}  // namespace dfs::cli
