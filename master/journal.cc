#include "master/journal.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <future>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/files.h"
#include "master/journal_format.h"

namespace dfs::master {
namespace fmtj = journal_format;

namespace {

// Bytes the torn-tail scan may hash before it gives up and calls the damage
// corruption. A real torn tail is at most one batch (max_batch_bytes plus a
// record) and garbage rarely passes the length check, so this is far more
// than needed while keeping a pathological file from stalling start-up.
constexpr uint64_t kScanBudgetBytes = 1ull << 30;

uint64_t EnvU64(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return 0;
  char* end = nullptr;
  unsigned long long n = std::strtoull(v, &end, 10);
  return *end == '\0' ? n : 0;
}


std::string DirOf(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Creates `path` with a journal header through a temp file, so a crash never
// leaves a half-made journal under the real name. Returns the open
// descriptor; records go at kFileHeaderSize.
Result<int> CreateJournalFile(const std::string& path, uint64_t generation) {
  std::string tmp = path + std::string(fmtj::kTmpSuffix);
  int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno(errno, "create " + tmp);
  char header[fmtj::kFileHeaderSize];
  fmtj::EncodeFileHeader(header, fmtj::kJournalMagic, generation);
  Status s = WriteAll(fd, std::string_view(header, sizeof header), tmp);
  if (s.ok() && ::fsync(fd) != 0) s = Status::FromErrno(errno, "fsync " + tmp);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = Status::FromErrno(errno, "rename " + tmp);
  if (s.ok()) s = SyncDirectory(DirOf(path));
  if (!s.ok()) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  }
  return fd;
}

// Opens an existing journal after checking its header; records go at its end.
Result<int> OpenJournalFile(const std::string& path, uint64_t generation) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open " + path);
  auto fail = [fd](Status s) {
    ::close(fd);
    return s;
  };
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail(Status::FromErrno(errno, "stat " + path));
  char header[fmtj::kFileHeaderSize];
  if (st.st_size == 0) {
    // Emptied by replay (a torn creation): start it again.
    fmtj::EncodeFileHeader(header, fmtj::kJournalMagic, generation);
    Status s = WriteAll(fd, std::string_view(header, sizeof header), path);
    if (s.ok() && ::fsync(fd) != 0) s = Status::FromErrno(errno, "fsync " + path);
    if (!s.ok()) return fail(s);
    return fd;
  }
  ssize_t n = ::pread(fd, header, sizeof header, 0);
  if (n < 0) return fail(Status::FromErrno(errno, "read " + path));
  uint64_t file_generation = 0;
  auto check = fmtj::CheckFileHeader(std::string_view(header, static_cast<size_t>(n)), fmtj::kJournalMagic,
                                     &file_generation);
  if (check != fmtj::HeaderCheck::kOk) {
    return fail(Status::Corruption(fmt::format("{}: bad or short journal header; replay it first", path)));
  }
  if (file_generation != generation) {
    return fail(Status::Corruption(
        fmt::format("{}: header says generation {}, expected {}", path, file_generation, generation)));
  }
  return fd;
}

// A read-only view of a whole file; empty files map to nothing.
class MappedFile {
 public:
  MappedFile() = default;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() { Unmap(); }

  Status Map(int fd, size_t size, const std::string& path) {
    if (size == 0) return Status::OK();
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) return Status::FromErrno(errno, "mmap " + path);
    ::madvise(p, size, MADV_SEQUENTIAL);
    data_ = static_cast<const char*>(p);
    size_ = size;
    return Status::OK();
  }
  void Unmap() {
    if (data_ != nullptr) ::munmap(const_cast<char*>(data_), size_);
    data_ = nullptr;
    size_ = 0;
  }
  std::string_view view() const { return {data_, size_}; }

 private:
  const char* data_ = nullptr;
  size_t size_ = 0;
};

// The first offset >= from where a whole, CRC-valid record starts.
// nullopt with *exhausted == false proves there is none.
std::optional<size_t> FindValidRecord(std::string_view data, size_t from, bool* exhausted) {
  *exhausted = false;
  uint64_t budget = kScanBudgetBytes;
  for (size_t q = from; q + fmtj::kRecordHeaderSize <= data.size(); ++q) {
    uint32_t len = fmtj::DecodeFixed32(data.data() + q);
    if (len > fmtj::kMaxRecordSize || data.size() - q - fmtj::kRecordHeaderSize < len) continue;
    if (budget < len + 4u) {
      *exhausted = true;
      return std::nullopt;
    }
    budget -= len + 4u;
    if (fmtj::CheckRecordAt(data, q).check == fmtj::RecordCheck::kOk) return q;
  }
  return std::nullopt;
}

std::string DescribeDamage(const fmtj::RecordView& r, size_t offset, size_t file_size) {
  switch (r.check) {
    case fmtj::RecordCheck::kShortHeader:
      return fmt::format("incomplete record header ({} of {} bytes)", file_size - offset,
                         fmtj::kRecordHeaderSize);
    case fmtj::RecordCheck::kTooLong:
      return fmt::format("record length {} over the {} byte limit", r.length, fmtj::kMaxRecordSize);
    case fmtj::RecordCheck::kShortPayload:
      return fmt::format("record of length {} runs past the end of the file ({} bytes)", r.length, file_size);
    case fmtj::RecordCheck::kBadCrc:
      return fmt::format("record of length {} fails its CRC", r.length);
    case fmtj::RecordCheck::kOk: break;
  }
  return "valid record";
}

Status TruncateDurably(int fd, uint64_t size, const std::string& path) {
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) return Status::FromErrno(errno, "truncate " + path);
  // Durable before anything is appended after it, so the cut bytes cannot
  // reappear between new records after another crash.
  if (::fsync(fd) != 0) return Status::FromErrno(errno, "fsync " + path);
  return Status::OK();
}

}  // namespace

std::string JournalPath(const std::string& dir, uint64_t generation) {
  return fmt::format("{}/{}{}", dir, fmtj::kJournalPrefix, generation);
}

// ---------------------------------------------------------------- writer

JournalWriter::JournalWriter(Options options)
    : options_(std::move(options)), requested_generation_(options_.generation) {}

Result<std::unique_ptr<JournalWriter>> JournalWriter::Open(Options options) {
  if (options.fault_crash_after_records == 0) {
    options.fault_crash_after_records = EnvU64("DFS_FAULT_CRASH_AFTER_JOURNAL_APPEND");
  }
  if (options.fault_fail_sync_number == 0) {
    options.fault_fail_sync_number = EnvU64("DFS_FAULT_JOURNAL_SYNC_FAIL");
  }
  std::unique_ptr<JournalWriter> w(new JournalWriter(std::move(options)));
  DFS_RETURN_IF_ERROR(w->OpenFile());
  if (w->options_.fault_crash_after_records != 0) {
    w->crash_after_records_ = w->options_.fault_crash_after_records;
    spdlog::warn("journal: fault injection: exit after record {} is durable", w->crash_after_records_);
  }
  w->fail_sync_number_ = w->options_.fault_fail_sync_number;
  if (w->fail_sync_number_ != 0) {
    spdlog::warn("journal: fault injection: sync {} will fail with EIO", w->fail_sync_number_);
  }
  w->thread_ = std::thread([p = w.get()] { p->Run(); });
  return w;
}

Status JournalWriter::OpenFile() {
  path_ = JournalPath(options_.dir, options_.generation);
  struct stat st {};
  Result<int> fd = ::stat(path_.c_str(), &st) == 0 ? OpenJournalFile(path_, options_.generation)
                                                    : CreateJournalFile(path_, options_.generation);
  if (!fd) return fd.error();
  fd_ = *fd;
  if (::fstat(fd_, &st) != 0) return Status::FromErrno(errno, "stat " + path_);
  end_ = prepared_ = static_cast<uint64_t>(st.st_size);
  return Status::OK();
}

JournalWriter::~JournalWriter() {
  IgnoreError(Stop());  // the error already went to every pending `done`
}

void JournalWriter::Append(std::string record, std::function<void(Status)> done) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      queue_.push_back(Entry{std::move(record), std::move(done), 0});
      cv_.notify_one();
      return;
    }
  }
  if (done) done(Status::Unavailable(fmt::format("journal {} is stopped", options_.dir)));
}

Status JournalWriter::AppendAndSync(std::string record) {
  std::promise<Status> promise;
  auto future = promise.get_future();
  Append(std::move(record), [&promise](Status s) { promise.set_value(std::move(s)); });
  return future.get();
}

void JournalWriter::Rotate(uint64_t new_generation, std::function<void(Status)> done) {
  Status refused;
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      refused = Status::Unavailable(fmt::format("journal {} is stopped", options_.dir));
    } else if (new_generation <= requested_generation_) {
      refused = Status::InvalidArgument(
          fmt::format("journal rotation to generation {} after {}", new_generation, requested_generation_));
    } else {
      requested_generation_ = new_generation;
      queue_.push_back(Entry{std::string(), std::move(done), new_generation});
      cv_.notify_one();
      return;
    }
  }
  if (done) done(std::move(refused));
}

Status JournalWriter::RotateAndWait(uint64_t new_generation) {
  std::promise<Status> promise;
  auto future = promise.get_future();
  Rotate(new_generation, [&promise](Status s) { promise.set_value(std::move(s)); });
  return future.get();
}

Status JournalWriter::Stop() {
  std::lock_guard stop_lock(stop_mu_);
  if (stopped_) return stop_status_;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0 && failed_.ok()) {
    if (Status s = CutPrepared(); !s.ok()) Fail(s);
  }
  stop_status_ = failed_;
  if (fd_ >= 0 && ::close(fd_) != 0 && stop_status_.ok()) {
    stop_status_ = Status::FromErrno(errno, "close " + path_);
  }
  fd_ = -1;
  stopped_ = true;
  return stop_status_;
}

JournalStats JournalWriter::stats() const {
  JournalStats s;
  s.records = records_.load(std::memory_order_relaxed);
  s.bytes = bytes_.load(std::memory_order_relaxed);
  s.syncs = syncs_.load(std::memory_order_relaxed);
  s.max_batch_records = max_batch_records_.load(std::memory_order_relaxed);
  s.prepared = prepared_bytes_.load(std::memory_order_relaxed);
  return s;
}

uint64_t JournalWriter::generation() const {
  std::lock_guard lock(mu_);
  return requested_generation_;
}

void JournalWriter::Run() {
  std::vector<Entry> batch;
  for (;;) {
    bool idle = false;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return !queue_.empty() || stopping_; });
      if (queue_.empty()) return;  // stopping, and everything drained
      batch.swap(queue_);
    }
    ProcessBatch(batch);
    batch.clear();
    {
      std::lock_guard lock(mu_);
      idle = queue_.empty() && !stopping_;
    }
    // Zeros only while nothing waits: a batch never queues behind them.
    if (idle) PrepareAhead();
  }
}

void JournalWriter::PrepareAhead() {
  const uint64_t want = options_.prepare_bytes;
  if (want == 0 || prepare_off_ || !failed_.ok() || fd_ < 0) return;
  const uint64_t from = std::max(prepared_, end_);
  if (from - end_ >= want / 4) return;  // enough ahead still
  const uint64_t to = end_ + want;
  struct statvfs fs {};
  if (::fstatvfs(fd_, &fs) != 0 || static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize < 32 * (to - from)) {
    prepare_off_ = true;  // the last free space is not for zeros
    return;
  }
  static const std::string zeros(256 << 10, '\0');
  for (uint64_t at = from; at < to;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), to - at));
    Status s = PwriteAll(fd_, zeros.data(), n, at, fmt::format("{} at offset {}", path_, at));
    if (!s.ok()) {
      // No room (or a bad disk): give the space back and append from now on.
      spdlog::warn("journal: cannot prepare space in {}: {}; appending without it", path_, s.ToString());
      prepare_off_ = true;
      if (::ftruncate(fd_, static_cast<off_t>(std::max(prepared_, end_))) != 0) {
        Fail(Status::FromErrno(errno, "truncate " + path_));
      }
      return;
    }
    // Out a piece at a time, so a batch that comes meanwhile does not wait
    // behind one long flush of zeros.
    (void)::sync_file_range(fd_, static_cast<off_t>(at), static_cast<off_t>(n),
                            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
    at += n;
  }
  // The size and the blocks, durable: a batch over them changes neither.
  // A failure here is the journal's (fsyncgate), as for any of its syncs.
  // (Not through Sync: fault injection counts the batches' syncs.)
  if (::fdatasync(fd_) != 0) return Fail(Status::FromErrno(errno, "fdatasync " + path_));
  prepared_ = to;
  prepared_bytes_.fetch_add(to - from, std::memory_order_relaxed);
}

Status JournalWriter::CutPrepared() {
  if (prepared_ <= end_) return Status::OK();
  if (::ftruncate(fd_, static_cast<off_t>(end_)) != 0) return Status::FromErrno(errno, "truncate " + path_);
  if (::fdatasync(fd_) != 0) return Status::FromErrno(errno, "fdatasync " + path_);
  prepared_ = end_;
  return Status::OK();
}

void JournalWriter::ProcessBatch(std::vector<Entry>& entries) {
  size_t i = 0;
  while (i < entries.size()) {
    if (!failed_.ok()) {
      for (; i < entries.size(); ++i) {
        if (entries[i].done) entries[i].done(failed_);
      }
      return;
    }
    Entry& e = entries[i];
    if (e.rotate_to != 0) {
      Status s = SwitchTo(e.rotate_to);
      if (!s.ok()) Fail(s);
      if (e.done) e.done(failed_.ok() ? Status::OK() : failed_);
      ++i;
      continue;
    }
    if (e.record.size() > fmtj::kMaxRecordSize) {
      if (e.done) {
        e.done(Status::InvalidArgument(fmt::format("journal record of {} bytes is over the {} byte limit",
                                                   e.record.size(), fmtj::kMaxRecordSize)));
      }
      ++i;
      continue;
    }
    // The run of records up to the next rotation or oversized record, cut at
    // max_batch_bytes: one write, one sync.
    size_t end = i;
    size_t bytes = 0;
    while (end < entries.size() && entries[end].rotate_to == 0 &&
           entries[end].record.size() <= fmtj::kMaxRecordSize &&
           (end == i || bytes + entries[end].record.size() <= options_.max_batch_bytes)) {
      bytes += entries[end].record.size() + fmtj::kRecordHeaderSize;
      ++end;
    }
    Status s = WriteAndSync(entries, i, end);
    for (; i < end; ++i) {
      if (entries[i].done) entries[i].done(s);
    }
  }
}

Status JournalWriter::WriteAndSync(std::vector<Entry>& entries, size_t begin, size_t end) {
  buffer_.clear();
  for (size_t k = begin; k < end; ++k) {
    char header[fmtj::kRecordHeaderSize];
    fmtj::EncodeRecordHeader(header, entries[k].record);
    buffer_.append(header, sizeof header);
    buffer_.append(entries[k].record);
  }
  Status s = PwriteAll(fd_, buffer_.data(), buffer_.size(), end_, path_);
  if (s.ok()) s = Sync(path_);
  if (!s.ok()) {
    Fail(s);
    return failed_;
  }
  end_ += buffer_.size();
  prepared_ = std::max(prepared_, end_);
  uint64_t n = end - begin;
  uint64_t durable = records_.fetch_add(n, std::memory_order_relaxed) + n;
  bytes_.fetch_add(buffer_.size(), std::memory_order_relaxed);
  syncs_.fetch_add(1, std::memory_order_relaxed);
  if (n > max_batch_records_.load(std::memory_order_relaxed)) {
    max_batch_records_.store(n, std::memory_order_relaxed);
  }
  if (durable >= crash_after_records_) {
    spdlog::critical("journal: injected crash after record {} is durable in {}", durable, path_);
    ::_exit(kFaultCrashExitCode);
  }
  return Status::OK();
}

Status JournalWriter::Sync(const std::string& what) {
  ++sync_calls_;
  if (sync_calls_ == fail_sync_number_) {
    return Status::FromErrno(EIO, "fdatasync " + what + " (injected)");
  }
  // fdatasync also persists the file size, which is all an append changes.
  if (::fdatasync(fd_) != 0) return Status::FromErrno(errno, "fdatasync " + what);
  return Status::OK();
}

Status JournalWriter::SwitchTo(uint64_t generation) {
  // The old file ends at its last record before a newer one exists: replay
  // takes damage at the end of a journal that a newer one follows for
  // corruption.
  DFS_RETURN_IF_ERROR(CutPrepared());
  std::string path = JournalPath(options_.dir, generation);
  DFS_ASSIGN_OR_RETURN(int fd, CreateJournalFile(path, generation));
  // Everything before the rotation was synced by the batch that carried it.
  if (::close(fd_) != 0) {
    ::close(fd);
    return Status::FromErrno(errno, "close " + path_);
  }
  // Not logged here: the caller's `done` hears of it. The metadata thread may
  // fork a checkpoint writer right now, and a child forked while this thread
  // held spdlog's lock would deadlock on its first log line.
  fd_ = fd;
  path_ = std::move(path);
  end_ = prepared_ = fmtj::kFileHeaderSize;
  prepare_off_ = false;
  return Status::OK();
}

void JournalWriter::Fail(Status s) {
  if (!failed_.ok()) return;
  spdlog::critical("journal: {} failed, refusing every further append: {}", path_, s.ToString());
  failed_ = Status::IOError(fmt::format("journal {} failed: {}", path_, s.message()));
}

// ---------------------------------------------------------------- replay

Result<ReplayStats> ReplayJournal(const std::string& path, const RecordApplier& apply,
                                  const ReplayOptions& options) {
  ReplayStats stats;
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open " + path);
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Status::FromErrno(errno, "stat " + path);
  const size_t size = static_cast<size_t>(st.st_size);
  MappedFile file;
  DFS_RETURN_IF_ERROR(file.Map(fd, size, path));
  std::string_view data = file.view();

  if (size < fmtj::kFileHeaderSize) {
    if (size == 0) return stats;
    // A journal is created under a temp name and renamed only once its
    // header is synced, so this only comes from a crash during some older
    // creation path or a copy; a magic prefix is a torn creation.
    const size_t n = std::min(size, fmtj::kMagicSize);
    if (data.substr(0, n) != fmtj::kJournalMagic.substr(0, n)) {
      return Status::Corruption(fmt::format("{}: not a dfs journal (bad magic at offset 0)", path));
    }
    if (!options.allow_torn_tail) {
      return Status::Corruption(fmt::format("{}: incomplete header ({} bytes) at offset 0", path, size));
    }
    file.Unmap();
    DFS_RETURN_IF_ERROR(TruncateDurably(fd, 0, path));
    spdlog::warn("journal: cut torn header file={} offset=0 dropped_bytes={}", path, size);
    stats.torn_tail = true;
    stats.dropped_bytes = size;
    return stats;
  }
  switch (fmtj::CheckFileHeader(data, fmtj::kJournalMagic, &stats.generation)) {
    case fmtj::HeaderCheck::kOk: break;
    case fmtj::HeaderCheck::kShort: break;  // unreachable: size was checked
    case fmtj::HeaderCheck::kBadMagic:
      return Status::Corruption(fmt::format("{}: not a dfs journal (bad magic at offset 0)", path));
    case fmtj::HeaderCheck::kBadCrc:
      return Status::Corruption(fmt::format("{}: journal header fails its CRC at offset 0", path));
  }
  if (options.expected_generation && *options.expected_generation != stats.generation) {
    return Status::Corruption(fmt::format("{}: header says generation {} at offset 8, expected {}", path,
                                          stats.generation, *options.expected_generation));
  }
  stats.has_header = true;

  size_t offset = fmtj::kFileHeaderSize;
  while (offset < size) {
    fmtj::RecordView r = fmtj::CheckRecordAt(data, offset);
    if (r.check == fmtj::RecordCheck::kOk) {
      Status s = apply(r.payload);
      if (!s.ok()) return s.Prepend(fmt::format("{}: record at offset {}", path, offset));
      ++stats.records;
      offset += fmtj::kRecordHeaderSize + r.length;
      continue;
    }
    std::string damage = DescribeDamage(r, offset, size);
    bool exhausted = false;
    std::optional<size_t> next = FindValidRecord(data, offset + 1, &exhausted);
    if (next) {
      return Status::Corruption(fmt::format(
          "{}: corrupt record at offset {}: {}; a valid record follows at offset {}, so this is not a "
          "torn tail; refusing to drop the {} bytes after it",
          path, offset, damage, *next, size - offset));
    }
    if (exhausted) {
      return Status::Corruption(fmt::format(
          "{}: corrupt record at offset {}: {}; could not prove the {} bytes after it hold no valid record",
          path, offset, damage, size - offset));
    }
    if (!options.allow_torn_tail) {
      return Status::Corruption(fmt::format(
          "{}: damaged tail at offset {}: {}; a newer journal follows this one, so it was fully synced",
          path, offset, damage));
    }
    const bool zeros = data.find_first_not_of('\0', offset) == std::string_view::npos;
    file.Unmap();
    DFS_RETURN_IF_ERROR(TruncateDurably(fd, offset, path));
    if (zeros) {
      // Space the writer prepared (or a size that outran its data): no record was there.
      spdlog::info("journal: cut {} bytes of zeros after the last record file={} offset={} records_kept={}",
                   size - offset, path, offset, stats.records);
    } else {
      spdlog::warn("journal: cut torn tail file={} offset={} dropped_bytes={} records_kept={} ({})", path,
                   offset, size - offset, stats.records, damage);
    }
    stats.torn_tail = true;
    stats.dropped_bytes = size - offset;
    stats.valid_bytes = offset;
    return stats;
  }
  stats.valid_bytes = size;
  return stats;
}

}  // namespace dfs::master
