// Background compaction of volumes, the chunk store's half: which chunks a
// volume still holds, their copies made durable and switched to only while
// nothing else changed them, and the old volume let go. The volume store
// (volume_compaction.cc) reads, writes and collects; compaction.h has the
// knobs; chunk_store.h says how the copies are guarded against deletes.
//
// A step, on the volume thread:
//   1. read the next live records of the volume and check every checksum
//      (a bad one is marked corrupt, reported and left where it is);
//   2. under the store's lock: keep the chunks still at the place read and
//      not being written, write their copies (not synced), claim their keys
//      and note them as moving;
//   3. fdatasync (Commit), unlocked;
//   4. under the lock: switch each chunk to its copy, or, if it was deleted
//      meanwhile (its tombstone names the copy), count both records dead.
// When nothing live is left: tombstones for what the volume keeps dead in
// earlier volumes (Repin), then CollectGarbage unlinks it.
#include <signal.h>
#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/units.h"
#include "filenode/chunk_store.h"
#include "filenode/volume_format.h"
#include "filenode/volume_store.h"

namespace dfs::filenode {
namespace {

using Clock = std::chrono::steady_clock;

// How often an idle store looks for a volume worth compacting.
constexpr auto kIdlePoll = std::chrono::seconds(1);
// Free space a compaction leaves for clients beyond what it copies: a step
// never takes the last of the disk.
constexpr uint64_t kHeadroom = 64ull << 20;

constexpr std::pair<CompactionStep, std::string_view> kStepNames[] = {
    {CompactionStep::kNone, "none"},         {CompactionStep::kRead, "read"},
    {CompactionStep::kWritten, "written"},   {CompactionStep::kSynced, "synced"},
    {CompactionStep::kSwitched, "switched"}, {CompactionStep::kRepinned, "repinned"},
    {CompactionStep::kUnlinked, "unlinked"},
};

}  // namespace

std::optional<CompactionStep> ParseCompactionStep(std::string_view name) {
  for (const auto& [step, n] : kStepNames) {
    if (n == name) return step;
  }
  return std::nullopt;
}

std::string_view CompactionStepName(CompactionStep step) {
  for (const auto& [s, n] : kStepNames) {
    if (s == step) return n;
  }
  return "?";
}

void ChunkStore::Reached(CompactionStep step) const {
  if (options_.compaction.on_step) options_.compaction.on_step(step);
  if (options_.compaction.kill_at != step) return;
  spdlog::critical("chunk store: injected crash: SIGKILL at compaction step '{}'", CompactionStepName(step));
  spdlog::default_logger()->flush();
  ::kill(::getpid(), SIGKILL);
}

std::vector<ChunkMeta> ChunkStore::TakeFoundCorrupt() {
  std::lock_guard lock(mu_);
  return std::exchange(found_corrupt_, {});
}

std::chrono::nanoseconds ChunkStore::Compact() {
  if (disk_failed()) return kIdlePoll;
  // Not worth a compaction, but free: an active volume whose records all
  // died goes without waiting to fill.
  if (compaction_.volume == 0) volumes_->RetireDeadActive();
  const CompactionOptions& o = options_.compaction;
  if (o.threshold <= 0) return kIdlePoll;
  const auto now = Clock::now();
  if (now < compaction_.resume_at) return compaction_.resume_at - now;
  if (compaction_.volume == 0 && !StartCompaction()) return kIdlePoll;
  auto moved = CompactStep();
  if (!moved) {
    AbandonCompaction(moved.error());
    return o.retry_after;
  }
  if (compaction_.todo.empty()) FinishCompaction();
  // The pace: a step's bytes at `rate`.
  const uint64_t rate = std::max<uint64_t>(o.rate, 1);
  return std::chrono::nanoseconds(static_cast<int64_t>(std::min<uint64_t>(*moved, o.step) * 1'000'000'000ull / rate));
}

bool ChunkStore::StartCompaction() {
  const CompactionOptions& o = options_.compaction;
  const uint64_t min_dead = std::min(o.min_dead, options_.volume_size / 4);
  auto pick = volumes_->PickForCompaction(o.threshold, min_dead, compacted_but_kept_);
  if (!pick) return false;
  // Room for every copy, and some for clients: a compaction that would fill
  // the disk waits (it frees more than it takes, but only at its end).
  if (auto space = env_->Space(root_); space) {
    uint64_t reserved = 0;
    {
      std::lock_guard lock(mu_);
      reserved = buffered_reserved_;
    }
    if (space->available < pick->live_bytes + reserved + kHeadroom) {
      spdlog::warn("chunk store: not compacting {}: its {} live need {} free with headroom, {} free",
                   volumes_->Path(pick->volume), FormatSize(pick->live_bytes),
                   FormatSize(pick->live_bytes + reserved + kHeadroom), FormatSize(space->available));
      compaction_.resume_at = Clock::now() + o.retry_after;
      return false;
    }
  }
  Compaction c;
  c.volume = pick->volume;
  c.bytes = pick->bytes;
  c.began = Clock::now();
  // Its puts (from its index file: the volume's records, not the whole
  // chunk index, are walked) that are still the chunks' live copies.
  auto records = volumes_->SealedRecords(c.volume);
  if (!records) {
    if (records.error().code() != Code::kNotFound) {
      spdlog::warn("chunk store: not compacting {}: {}", volumes_->Path(c.volume), records.error().ToString());
      compacted_but_kept_.insert(c.volume);
    }
    return false;  // NotFound: collected meanwhile
  }
  {
    std::lock_guard lock(mu_);
    for (const IndexedRecord& r : *records) {
      if (r.h.type != RecordType::kPut) continue;
      auto it = index_.find(r.h.key);
      // A chunk known to be corrupt stays where it is until the master has
      // it deleted; the volume goes then.
      if (it == index_.end() || it->second.volume != c.volume || it->second.offset != r.offset ||
          it->second.corrupt) {
        continue;
      }
      c.todo.push_back(CompactItem{r.h.key, r.offset, it->second.size});
    }
  }
  spdlog::debug("chunk store: compacting {} ({}): {} live records ({}), {} pins", volumes_->Path(c.volume),
                FormatSize(pick->bytes), pick->live, FormatSize(pick->live_bytes), pick->pins);
  compaction_ = std::move(c);
  return true;
}

Result<uint64_t> ChunkStore::CompactStep() {
  Compaction& c = compaction_;
  const std::string path = volumes_->Path(c.volume);
  // Still there, unchanged? (Checked again under the lock before the write.)
  auto still_at = [&](const CompactItem& item) {
    std::lock_guard lock(mu_);
    auto it = index_.find(item.key);
    return it != index_.end() && it->second.volume == c.volume && it->second.offset == item.offset;
  };

  // 1. Read and check.
  std::vector<CompactItem> items;
  std::vector<VolumeStore::Record> records;
  uint64_t bytes = 0;
  if (!c.todo.empty()) {
    auto file = env_->Open(path, OpenMode::kRead);
    if (!file) {
      // Every record in it died and it was collected meanwhile.
      if (file.error().code() == Code::kNotFound && !std::any_of(c.todo.begin(), c.todo.end(), still_at)) {
        c.todo.clear();
        return uint64_t{0};
      }
      return file.error();
    }
    while (!c.todo.empty() && bytes < options_.compaction.step) {
      CompactItem item = c.todo.front();
      c.todo.pop_front();
      if (!still_at(item)) continue;
      auto r = VolumeStore::ReadPut(**file, {c.volume, item.offset}, item.key, item.size);
      if (!r) {
        if (!still_at(item)) continue;  // deleted or replaced while we read it
        if (r.error().code() != Code::kCorruption) return r.error();
        // As a read would: never copied, marked, reported; it stays live in
        // this volume until the master has it deleted.
        ++c.corrupt;
        spdlog::error("chunk store: compacting {}: {}; left in place and reported as corrupt", path,
                      r.error().message());
        std::lock_guard lock(mu_);
        auto it = index_.find(item.key);
        if (it != index_.end() && !it->second.corrupt) {
          it->second.corrupt = true;
          found_corrupt_.push_back(ChunkMeta{item.key, it->second.size, it->second.crc32c});
        }
        continue;
      }
      bytes += r->data.size();
      items.push_back(item);
      records.push_back(std::move(*r));
    }
  }
  if (items.empty()) return uint64_t{0};
  Reached(CompactionStep::kRead);

  // 2. The copies, written under the lock: what a delete meanwhile sees.
  // The active volume rolls over first if they would not fit, so no fsync
  // or new file happens under the lock, which reads wait for.
  uint64_t record_bytes = 0;
  for (const CompactItem& item : items) record_bytes += VolumeStore::PutBytes(item.size);
  if (Status s = volumes_->MakeRoom(record_bytes); !s.ok()) {
    return NoteWriteError(s.Prepend(fmt::format("compacting {}", path)));
  }
  std::vector<size_t> kept;  // into items
  VolumeStore::Batch batch;
  {
    std::lock_guard lock(mu_);
    std::vector<VolumeStore::Put> puts;
    for (size_t i = 0; i < items.size(); ++i) {
      auto it = index_.find(items[i].key);
      if (it == index_.end() || it->second.volume != c.volume || it->second.offset != items[i].offset ||
          it->second.corrupt || writing_.count(items[i].key) != 0) {
        continue;  // deleted, replaced, found bad, or being written again
      }
      const VolumeStore::Record& r = records[i];
      puts.push_back(VolumeStore::Put{items[i].key, r.data, r.crc32c, r.block_crcs});
      kept.push_back(i);
    }
    if (puts.empty()) return uint64_t{0};
    auto written = volumes_->Write(puts, /*may_roll_over=*/false);
    if (!written) return NoteWriteError(written.error().Prepend(fmt::format("compacting {}", path)));
    batch = std::move(*written);
    for (size_t k = 0; k < kept.size(); ++k) {
      const CompactItem& item = items[kept[k]];
      const VolumeStore::Location to = batch.at()[k];
      // Claimed as a writer claims it: no writer of this chunk starts (a
      // file copy's tombstone, a volume copy's shadow) until the switch.
      writing_.insert(item.key);
      moving_[item.key] = Moving{c.volume, item.offset, to.volume, to.offset, item.size, false, 0};
    }
  }
  Reached(CompactionStep::kWritten);

  // 3. Durable.
  Status synced = volumes_->Commit(batch);
  if (synced.ok()) Reached(CompactionStep::kSynced);

  // 4. The switch.
  struct Dead {
    ChunkKey key;
    VolumeStore::Location at;
    uint64_t size;
    uint32_t by;
  };
  std::vector<Dead> dead;
  std::vector<std::pair<ChunkKey, Moving>> lost_tombstones;
  uint64_t moved = 0, moved_bytes = 0;
  {
    std::lock_guard lock(mu_);
    for (size_t k = 0; k < kept.size(); ++k) {
      const CompactItem& item = items[kept[k]];
      auto m = moving_.find(item.key);
      const Moving mv = m->second;
      moving_.erase(m);
      writing_.erase(item.key);
      const VolumeStore::Location from{mv.from_volume, mv.from_offset}, to{mv.to_volume, mv.to_offset};
      if (!synced.ok()) {
        // The copies are cut off again (Commit uncounted them), and with
        // them any tombstone a delete wrote for one: the original needs it.
        if (mv.deleted) lost_tombstones.emplace_back(item.key, mv);
        continue;
      }
      // The copy is a later put of the key: it shadows the original.
      dead.push_back(Dead{item.key, from, mv.size, to.volume});
      if (mv.deleted) {
        dead.push_back(Dead{item.key, to, mv.size, mv.tomb_volume != 0 ? mv.tomb_volume : to.volume});
        continue;
      }
      auto it = index_.find(item.key);
      it->second.volume = to.volume;
      it->second.offset = to.offset;
      ++moved;
      moved_bytes += VolumeStore::PutBytes(mv.size);
    }
  }
  for (const Dead& d : dead) volumes_->Shadow(d.key, d.at, d.size, d.by);
  for (const auto& [key, mv] : lost_tombstones) {
    auto tomb = volumes_->Bury(key, {mv.from_volume, mv.from_offset}, mv.size);
    if (!tomb) spdlog::warn("chunk store: delete of {}: {}", ChunkName(key), tomb.error().ToString());
  }
  if (!synced.ok()) return NoteWriteError(synced.Prepend(fmt::format("compacting {}", path)));
  c.moved_records += moved;
  c.moved_bytes += moved_bytes;
  Reached(CompactionStep::kSwitched);
  return bytes;
}

void ChunkStore::FinishCompaction() {
  Compaction c = std::exchange(compaction_, Compaction{});
  const std::string path = volumes_->Path(c.volume);
  if (Status s = volumes_->Repin(c.volume); !s.ok()) {
    IgnoreError(NoteWriteError(s));  // recorded; logged below
    compaction_.resume_at = Clock::now() + options_.compaction.retry_after;
    spdlog::error("chunk store: compacting {}: {}; it stays until a later compaction", path, s.ToString());
    return;
  }
  Reached(CompactionStep::kRepinned);
  volumes_->NoteCompaction(c.moved_records, c.moved_bytes);
  volumes_->CollectGarbage();
  const bool gone = !env_->Stat(path).has_value();
  if (gone) {
    Reached(CompactionStep::kUnlinked);
  } else {
    compacted_but_kept_.insert(c.volume);  // not again until what keeps it changes
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - c.began).count();
  if (gone) {
    spdlog::info("chunk store: compacted {}: moved {} live records ({}) in {} ms, {} freed", path,
                 c.moved_records, FormatSize(c.moved_bytes), ms,
                 FormatSize(c.bytes > c.moved_bytes ? c.bytes - c.moved_bytes : 0));
  } else {
    spdlog::info("chunk store: compacted {}: moved {} live records ({}) in {} ms; it stays while {} corrupt "
                 "record(s) or records it keeps dead remain",
                 path, c.moved_records, FormatSize(c.moved_bytes), ms, c.corrupt);
  }
}

void ChunkStore::AbandonCompaction(const Status& why) {
  const std::string path = volumes_->Path(compaction_.volume);
  const auto retry = options_.compaction.retry_after;
  spdlog::error("chunk store: compaction of {} stopped: {}; every chunk stays readable where it is; trying again "
                "in {:.1f} s",
                path, why.ToString(), std::chrono::duration<double>(retry).count());
  compaction_ = Compaction{};
  compaction_.resume_at = Clock::now() + retry;
}

}  // namespace dfs::filenode
