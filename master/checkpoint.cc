#include "master/checkpoint.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <optional>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/checksum.h"
#include "common/env.h"
#include "master/journal_format.h"

namespace dfs::master {
namespace fmtj = journal_format;

namespace {

// Write and read in pieces of this size: big enough that syscalls vanish
// next to the disk, small enough to stay out of the way of the namespace.
constexpr size_t kIoChunk = 1u << 20;


// Frames records into the temp file, keeping the whole-file CRC for the trailer.
class FileSink final : public RecordSink {
 public:
  explicit FileSink(File& file) : file_(file) {}

  Status Add(std::string_view record) override {
    if (record.size() > fmtj::kMaxRecordSize) {
      return Status::InvalidArgument(fmt::format("checkpoint record of {} bytes is over the {} byte limit",
                                                 record.size(), fmtj::kMaxRecordSize));
    }
    char header[fmtj::kRecordHeaderSize];
    fmtj::EncodeRecordHeader(header, record);
    DFS_RETURN_IF_ERROR(Put(std::string_view(header, sizeof header)));
    DFS_RETURN_IF_ERROR(Put(record));
    ++records_;
    return Status::OK();
  }

  // Bytes covered by the trailer's CRC.
  Status Put(std::string_view bytes) {
    crc_ = Crc32c(bytes, crc_);
    buffer_.append(bytes);
    return buffer_.size() >= kIoChunk ? Flush() : Status::OK();
  }
  // Bytes the CRC does not cover (the CRC itself).
  void PutRaw(std::string_view bytes) { buffer_.append(bytes); }

  Status Flush() {
    Status s = file_.Append(buffer_);
    buffer_.clear();
    return s;
  }

  uint64_t records() const { return records_; }
  uint32_t crc() const { return crc_; }

 private:
  File& file_;
  std::string buffer_;
  uint32_t crc_ = 0;
  uint64_t records_ = 0;
};

// The temp file's contents; ReplaceDurably syncs and renames it.
Status WriteCheckpointFile(File& file, uint64_t generation, const std::function<Status(RecordSink&)>& produce) {
  FileSink sink(file);
  char header[fmtj::kFileHeaderSize];
  fmtj::EncodeFileHeader(header, fmtj::kCheckpointMagic, generation);
  DFS_RETURN_IF_ERROR(sink.Put(std::string_view(header, sizeof header)));
  DFS_RETURN_IF_ERROR(produce(sink));
  char trailer[fmtj::kTrailerSize];
  fmtj::EncodeFixed32(trailer, fmtj::kTrailerMarker);
  fmtj::EncodeFixed64(trailer + 4, sink.records());
  DFS_RETURN_IF_ERROR(sink.Put(std::string_view(trailer, 12)));
  fmtj::EncodeFixed32(trailer + 12, fmtj::MaskCrc(sink.crc()));
  sink.PutRaw(std::string_view(trailer + 12, 4));
  return sink.Flush();
}

// Sequential reads that say how many bytes they got, so truncation shows up
// as a short read at a known offset.
class FileReader {
 public:
  explicit FileReader(File& file) : file_(file) {}

  // Appends up to n bytes to *out; fewer only at end of file.
  Result<size_t> Read(size_t n, std::string* out) {
    size_t got = 0;
    while (got < n) {
      if (pos_ == buffer_.size()) {
        buffer_.resize(kIoChunk);
        DFS_ASSIGN_OR_RETURN(size_t r, file_.Read(buffer_.data(), buffer_.size()));
        buffer_.resize(r);
        pos_ = 0;
        if (r == 0) break;
      }
      size_t take = std::min(n - got, buffer_.size() - pos_);
      out->append(buffer_, pos_, take);
      pos_ += take;
      got += take;
    }
    offset_ += got;
    return got;
  }
  uint64_t offset() const { return offset_; }

 private:
  File& file_;
  std::string buffer_;
  size_t pos_ = 0;
  uint64_t offset_ = 0;
};

Result<uint64_t> ReadCheckpointFile(File& file, const RecordApplier& apply) {
  const std::string& path = file.path();
  FileReader in(file);
  auto corrupt = [&path](uint64_t offset, std::string_view what) {
    return Status::Corruption(fmt::format("{}: {} at offset {}", path, what, offset));
  };
  std::string bytes;
  DFS_ASSIGN_OR_RETURN(size_t got, in.Read(fmtj::kFileHeaderSize, &bytes));
  uint64_t generation = 0;
  switch (fmtj::CheckFileHeader(bytes, fmtj::kCheckpointMagic, &generation)) {
    case fmtj::HeaderCheck::kOk: break;
    case fmtj::HeaderCheck::kShort:
      return corrupt(0, fmt::format("incomplete checkpoint header ({} of {} bytes)", got, fmtj::kFileHeaderSize));
    case fmtj::HeaderCheck::kBadMagic: return corrupt(0, "not a dfs checkpoint (bad magic)");
    case fmtj::HeaderCheck::kBadCrc: return corrupt(0, "checkpoint header fails its CRC");
  }
  uint32_t crc = Crc32c(bytes);
  uint64_t records = 0;
  for (;;) {
    const uint64_t offset = in.offset();
    bytes.clear();
    DFS_ASSIGN_OR_RETURN(got, in.Read(4, &bytes));
    if (got < 4) return corrupt(offset, "checkpoint ends without a trailer (truncated)");
    uint32_t length = fmtj::DecodeFixed32(bytes.data());
    if (length == fmtj::kTrailerMarker) {
      DFS_ASSIGN_OR_RETURN(got, in.Read(fmtj::kTrailerSize - 4, &bytes));
      if (got < fmtj::kTrailerSize - 4) return corrupt(offset, "incomplete checkpoint trailer (truncated)");
      crc = Crc32c(std::string_view(bytes).substr(0, 12), crc);
      if (fmtj::DecodeFixed32(bytes.data() + 12) != fmtj::MaskCrc(crc)) {
        return corrupt(offset, "checkpoint trailer CRC mismatch (damaged file)");
      }
      uint64_t count = fmtj::DecodeFixed64(bytes.data() + 4);
      if (count != records) {
        return corrupt(offset, fmt::format("trailer counts {} records, file holds {}", count, records));
      }
      bytes.clear();
      DFS_ASSIGN_OR_RETURN(got, in.Read(1, &bytes));
      if (got != 0) return corrupt(in.offset() - 1, "unexpected bytes after the checkpoint trailer");
      return generation;
    }
    if (length > fmtj::kMaxRecordSize) {
      return corrupt(offset, fmt::format("record length {} over the {} byte limit", length, fmtj::kMaxRecordSize));
    }
    DFS_ASSIGN_OR_RETURN(got, in.Read(4 + size_t{length}, &bytes));
    if (got < 4 + size_t{length}) return corrupt(offset, "incomplete record (truncated)");
    std::string_view record = std::string_view(bytes).substr(fmtj::kRecordHeaderSize);
    if (fmtj::CheckRecordAt(bytes, 0).check != fmtj::RecordCheck::kOk) {
      return corrupt(offset, fmt::format("record of length {} fails its CRC", length));
    }
    crc = Crc32c(bytes, crc);
    Status s = apply(record);
    if (!s.ok()) return s.Prepend(fmt::format("{}: record at offset {}", path, offset));
    ++records;
  }
}

// journal.<decimal generation>, nothing else.
std::optional<uint64_t> ParseJournalName(std::string_view name) {
  if (!name.starts_with(fmtj::kJournalPrefix)) return std::nullopt;
  std::string_view digits = name.substr(fmtj::kJournalPrefix.size());
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  uint64_t g = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), g);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return g;
}

struct DirListing {
  std::vector<uint64_t> journals;  // sorted
  std::vector<std::string> temps;  // names of our temp files
};

Result<DirListing> ListDir(Env* env, const std::string& dir) {
  DirListing out;
  DFS_ASSIGN_OR_RETURN(std::vector<std::string> names, env->ListDir(dir));
  for (const std::string& name : names) {
    if (name.ends_with(fmtj::kTmpSuffix)) {
      std::string_view base = std::string_view(name).substr(0, name.size() - fmtj::kTmpSuffix.size());
      if (base == fmtj::kCheckpointName || ParseJournalName(base)) out.temps.push_back(name);
    } else if (auto g = ParseJournalName(name)) {
      out.journals.push_back(*g);
    }
  }
  std::sort(out.journals.begin(), out.journals.end());
  return out;
}

Status RemoveFile(Env* env, const std::string& path) {
  Status s = env->Remove(path);
  return s.code() == Code::kNotFound ? Status::OK() : s;
}

Env* OrDefault(Env* env) { return env != nullptr ? env : Env::Default(); }

}  // namespace

std::string CheckpointPath(const std::string& dir) { return fmt::format("{}/{}", dir, fmtj::kCheckpointName); }

Status WriteCheckpoint(const std::string& dir, uint64_t generation,
                       const std::function<Status(RecordSink&)>& produce, Env* env) {
  return ReplaceDurably(OrDefault(env), CheckpointPath(dir),
                        [&](File& file) { return WriteCheckpointFile(file, generation, produce); });
}

Result<uint64_t> ReadCheckpoint(const std::string& dir, const RecordApplier& apply, Env* env) {
  DFS_ASSIGN_OR_RETURN(std::unique_ptr<File> file, OrDefault(env)->Open(CheckpointPath(dir), OpenMode::kRead));
  return ReadCheckpointFile(*file, apply);
}

Result<uint64_t> RemoveJournalsBefore(const std::string& dir, uint64_t generation, Env* env) {
  env = OrDefault(env);
  DFS_ASSIGN_OR_RETURN(DirListing listing, ListDir(env, dir));
  uint64_t removed = 0;
  for (uint64_t g : listing.journals) {
    if (g >= generation) break;
    DFS_RETURN_IF_ERROR(RemoveFile(env, JournalPath(dir, g)));
    ++removed;
  }
  if (removed > 0) DFS_RETURN_IF_ERROR(env->SyncDir(dir));
  return removed;
}

Status InstallCheckpoint(const std::string& dir, uint64_t generation,
                         const std::function<Status(RecordSink&)>& produce, Env* env) {
  env = OrDefault(env);
  std::string journal = JournalPath(dir, generation);
  if (auto st = env->Stat(journal); !st) {
    if (st.error().code() != Code::kNotFound) return st.error();
    return Status::InvalidArgument(
        fmt::format("checkpoint generation {} before {} exists: rotate the journal first", generation, journal));
  }
  DFS_RETURN_IF_ERROR(WriteCheckpoint(dir, generation, produce, env));
  DFS_ASSIGN_OR_RETURN(uint64_t removed, RemoveJournalsBefore(dir, generation, env));
  spdlog::info("checkpoint: {} generation={} installed, {} old journal(s) removed", CheckpointPath(dir),
               generation, removed);
  return Status::OK();
}

Result<RecoveryStats> RecoverMasterState(const std::string& dir, const RecordApplier& apply_checkpoint,
                                         const RecordApplier& apply_journal, Env* env) {
  env = OrDefault(env);
  RecoveryStats stats;
  DFS_ASSIGN_OR_RETURN(DirListing listing, ListDir(env, dir));
  for (const std::string& name : listing.temps) {
    // A temp file is never part of the state: it was renamed into place or
    // the crash came first.
    DFS_RETURN_IF_ERROR(RemoveFile(env, dir + "/" + name));
    spdlog::info("recovery: removed leftover {}/{}", dir, name);
    ++stats.files_removed;
  }
  if (!listing.temps.empty()) DFS_RETURN_IF_ERROR(env->SyncDir(dir));

  if (auto st = env->Stat(CheckpointPath(dir)); st) {
    DFS_ASSIGN_OR_RETURN(stats.checkpoint_generation, ReadCheckpoint(
                                                          dir,
                                                          [&](std::string_view record) {
                                                            ++stats.checkpoint_records;
                                                            return apply_checkpoint(record);
                                                          },
                                                          env));
    stats.checkpoint_found = true;
  } else if (st.error().code() != Code::kNotFound) {
    return st.error();
  }
  const uint64_t base = stats.checkpoint_generation;

  std::vector<uint64_t> live;
  std::vector<uint64_t> stale;
  for (uint64_t g : listing.journals) (g < base ? stale : live).push_back(g);
  if (!live.empty() && live.front() != base) {
    return Status::Corruption(
        stats.checkpoint_found
            ? fmt::format("{}: checkpoint generation {} but {} is missing (found {} first)", dir, base,
                          JournalPath(dir, base), JournalPath(dir, live.front()))
            : fmt::format("{}: {} exists but there is no checkpoint; the state before generation {} is missing",
                          dir, JournalPath(dir, live.front()), live.front()));
  }
  if (live.empty() && stats.checkpoint_found) {
    return Status::Corruption(
        fmt::format("{}: checkpoint generation {} but {} is missing", dir, base, JournalPath(dir, base)));
  }
  for (size_t i = 1; i < live.size(); ++i) {
    if (live[i] != live[i - 1] + 1) {
      return Status::Corruption(fmt::format("{}: journal generations jump from {} to {}; {} is missing", dir,
                                            live[i - 1], live[i], JournalPath(dir, live[i - 1] + 1)));
    }
  }

  for (size_t i = 0; i < live.size(); ++i) {
    std::string path = JournalPath(dir, live[i]);
    bool newest = i + 1 == live.size();
    DFS_ASSIGN_OR_RETURN(ReplayStats r, ReplayJournal(path, apply_journal,
                                                      {.allow_torn_tail = newest,
                                                       .expected_generation = live[i],
                                                       .env = env}));
    if (!r.has_header && !newest) {
      return Status::Corruption(fmt::format("{}: empty journal at offset 0, yet a newer one follows", path));
    }
    ++stats.journals_replayed;
    stats.journal_records += r.records;
    stats.torn_tail = stats.torn_tail || r.torn_tail;
    stats.dropped_bytes += r.dropped_bytes;
  }

  for (uint64_t g : stale) {
    // Covered by the checkpoint: the crash came between steps 3a and 3b.
    DFS_RETURN_IF_ERROR(RemoveFile(env, JournalPath(dir, g)));
    spdlog::info("recovery: removed {} (covered by checkpoint generation {})", JournalPath(dir, g), base);
    ++stats.files_removed;
  }
  if (!stale.empty()) DFS_RETURN_IF_ERROR(env->SyncDir(dir));

  stats.journal_generation = live.empty() ? base : live.back();
  spdlog::info(
      "recovery: dir={} checkpoint_generation={} checkpoint_records={} journals={} journal_records={} "
      "torn_tail={} dropped_bytes={} open_generation={}",
      dir, base, stats.checkpoint_records, stats.journals_replayed, stats.journal_records, stats.torn_tail,
      stats.dropped_bytes, stats.journal_generation);
  return stats;
}

}  // namespace dfs::master
