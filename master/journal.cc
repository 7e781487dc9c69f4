#include "master/journal.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <future>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/env.h"
#include "master/journal_format.h"

namespace dfs::master {
namespace fmtj = journal_format;

namespace {

// Bytes the torn-tail scan may hash before it gives up and calls the damage
// corruption. A real torn tail is at most one batch (max_batch_bytes plus a
// record) and garbage rarely passes the length check, so this is far more
// than needed while keeping a pathological file from stalling start-up.
constexpr uint64_t kScanBudgetBytes = 1ull << 30;

// Creates `path` with a journal header through a temp file, so a crash never
// leaves a half-made journal under the real name. Returns the open
// file; records go at kFileHeaderSize.
Result<std::unique_ptr<File>> CreateJournalFile(Env* env, const std::string& path, uint64_t generation) {
  DFS_ASSIGN_OR_RETURN(PendingReplace r, PendingReplace::Create(env, path, fmtj::kTmpSuffix));
  char header[fmtj::kFileHeaderSize];
  fmtj::EncodeFileHeader(header, fmtj::kJournalMagic, generation);
  DFS_RETURN_IF_ERROR(r.file().PwriteAll(header, sizeof header, 0));
  DFS_RETURN_IF_ERROR(r.Commit());
  return r.TakeFile();
}

// Opens an existing journal after checking its header; records go at its end.
Result<std::unique_ptr<File>> OpenJournalFile(Env* env, const std::string& path, uint64_t generation) {
  DFS_ASSIGN_OR_RETURN(std::unique_ptr<File> file, env->Open(path, OpenMode::kReadWrite));
  DFS_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  char header[fmtj::kFileHeaderSize];
  if (size == 0) {
    // Emptied by replay (a torn creation): start it again.
    fmtj::EncodeFileHeader(header, fmtj::kJournalMagic, generation);
    DFS_RETURN_IF_ERROR(file->PwriteAll(header, sizeof header, 0));
    DFS_RETURN_IF_ERROR(file->Sync());
    return file;
  }
  DFS_ASSIGN_OR_RETURN(size_t n, file->PreadAll(header, sizeof header, 0));
  uint64_t file_generation = 0;
  auto check = fmtj::CheckFileHeader(std::string_view(header, n), fmtj::kJournalMagic, &file_generation);
  if (check != fmtj::HeaderCheck::kOk) {
    return Status::Corruption(fmt::format("{}: bad or short journal header; replay it first", path));
  }
  if (file_generation != generation) {
    return Status::Corruption(
        fmt::format("{}: header says generation {}, expected {}", path, file_generation, generation));
  }
  return file;
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

Status TruncateDurably(File& file, uint64_t size) {
  DFS_RETURN_IF_ERROR(file.Truncate(size));
  // Durable before anything is appended after it, so the cut bytes cannot
  // reappear between new records after another crash.
  return file.Sync();
}

}  // namespace

std::string JournalPath(const std::string& dir, uint64_t generation) {
  return fmt::format("{}/{}{}", dir, fmtj::kJournalPrefix, generation);
}

// ---------------------------------------------------------------- writer

JournalWriter::JournalWriter(Options options)
    : options_(std::move(options)), requested_generation_(options_.generation) {}

Result<std::unique_ptr<JournalWriter>> JournalWriter::Open(Options options) {
  if (options.env == nullptr) options.env = Env::Default();
  std::unique_ptr<JournalWriter> w(new JournalWriter(std::move(options)));
  DFS_RETURN_IF_ERROR(w->OpenFile());
  if (w->options_.fault_crash_after_records != 0) {
    w->crash_after_records_ = w->options_.fault_crash_after_records;
    spdlog::warn("journal: fault injection: exit after record {} is durable", w->crash_after_records_);
  }
  w->thread_ = std::thread([p = w.get()] { p->Run(); });
  return w;
}

Status JournalWriter::OpenFile() {
  path_ = JournalPath(options_.dir, options_.generation);
  Env* env = options_.env;
  auto exists = env->Stat(path_);
  if (!exists && exists.error().code() != Code::kNotFound) return exists.error();
  Result<std::unique_ptr<File>> file = exists ? OpenJournalFile(env, path_, options_.generation)
                                              : CreateJournalFile(env, path_, options_.generation);
  if (!file) return file.error();
  file_ = std::move(*file);
  DFS_ASSIGN_OR_RETURN(uint64_t size, file_->Size());
  end_ = prepared_ = size;
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
  if (file_ != nullptr && failed_.ok()) {
    if (Status s = CutPrepared(); !s.ok()) Fail(s);
  }
  stop_status_ = failed_;
  file_.reset();  // every byte that matters was synced
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
  if (want == 0 || prepare_off_ || !failed_.ok() || file_ == nullptr) return;
  const uint64_t from = std::max(prepared_, end_);
  if (from - end_ >= want / 4) return;  // enough ahead still
  const uint64_t to = end_ + want;
  auto space = options_.env->Space(options_.dir);
  if (!space || space->available < 32 * (to - from)) {
    prepare_off_ = true;  // the last free space is not for zeros
    return;
  }
  static const std::string zeros(256 << 10, '\0');
  for (uint64_t at = from; at < to;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), to - at));
    Status s = file_->PwriteAll(zeros.data(), n, at);
    if (!s.ok()) {
      // No room (or a bad disk): give the space back and append from now on.
      spdlog::warn("journal: cannot prepare space in {}: {}; appending without it", path_, s.ToString());
      prepare_off_ = true;
      if (Status t = file_->Truncate(std::max(prepared_, end_)); !t.ok()) Fail(t);
      return;
    }
    // Out a piece at a time, so a batch that comes meanwhile does not wait
    // behind one long flush of zeros.
    IgnoreError(file_->WriteOut(at, n));  // a flush, not a promise: the fdatasync below is
    at += n;
  }
  // The size and the blocks, durable: a batch over them changes neither.
  // A failure here is the journal's (fsyncgate), as for any of its syncs.
  if (Status s = file_->Sync(); !s.ok()) return Fail(s);
  prepared_ = to;
  prepared_bytes_.fetch_add(to - from, std::memory_order_relaxed);
}

Status JournalWriter::CutPrepared() {
  if (prepared_ <= end_) return Status::OK();
  DFS_RETURN_IF_ERROR(file_->Truncate(end_));
  DFS_RETURN_IF_ERROR(file_->Sync());
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
  // fdatasync also persists the file size, which is all an append changes.
  Status s = file_->PwriteAll(buffer_.data(), buffer_.size(), end_);
  if (s.ok()) s = file_->Sync();
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

Status JournalWriter::SwitchTo(uint64_t generation) {
  // The old file ends at its last record before a newer one exists: replay
  // takes damage at the end of a journal that a newer one follows for
  // corruption.
  DFS_RETURN_IF_ERROR(CutPrepared());
  std::string path = JournalPath(options_.dir, generation);
  DFS_ASSIGN_OR_RETURN(std::unique_ptr<File> file, CreateJournalFile(options_.env, path, generation));
  // Everything before the rotation was synced by the batch that carried it.
  // Not logged here: the caller's `done` hears of it. The metadata thread may
  // fork a checkpoint writer right now, and a child forked while this thread
  // held spdlog's lock would deadlock on its first log line.
  file_ = std::move(file);
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

namespace {

// The record at `offset` is damaged: a torn tail, cut when `options` allow
// it, or corruption that stops start-up (a valid record follows it).
Result<ReplayStats> EndAtDamage(const fmtj::RecordView& r, size_t offset, std::string_view data, MappedFile& file,
                                File& handle, const std::string& path, const ReplayOptions& options,
                                ReplayStats stats) {
  const size_t size = data.size();
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
  DFS_RETURN_IF_ERROR(TruncateDurably(handle, offset));
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

}  // namespace

Result<ReplayStats> ReplayJournal(const std::string& path, const RecordApplier& apply,
                                  const ReplayOptions& options) {
  ReplayStats stats;
  Env* env = options.env != nullptr ? options.env : Env::Default();
  DFS_ASSIGN_OR_RETURN(std::unique_ptr<File> handle, env->Open(path, OpenMode::kReadWrite));
  DFS_ASSIGN_OR_RETURN(const uint64_t file_size, handle->Size());
  const size_t size = static_cast<size_t>(file_size);
  MappedFile file;
  DFS_RETURN_IF_ERROR(file.Map(handle->fd(), size, path));
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
    DFS_RETURN_IF_ERROR(TruncateDurably(*handle, 0));
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
    return EndAtDamage(r, offset, data, file, *handle, path, options, stats);
  }
  stats.valid_bytes = size;
  return stats;
}

}  // namespace dfs::master
