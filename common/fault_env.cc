#include "common/fault_env.h"

#include <fnmatch.h>

#include <algorithm>
#include <cerrno>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace dfs {

// A file opened through a FaultEnv: each operation asks the env first.
class FaultFile final : public File {
 public:
  FaultFile(FaultEnv* env, std::unique_ptr<File> base, bool matched, std::shared_ptr<FaultEnv::Tracked> tracked)
      : File(base->path()), env_(env), base_(std::move(base)), matched_(matched), tracked_(std::move(tracked)) {}

  int fd() const override { return base_->fd(); }

  Status Append(std::string_view data) override {
    if (int f = Check(); f != 0) {
      if (f < 0) {
        IgnoreError(base_->Append(data.substr(0, data.size() / 2)));  // the torn half lands
        f = EIO;
      }
      return Injected(f, "write");
    }
    return After(base_->Append(data));
  }

  Status PwriteAll(const void* data, size_t size, uint64_t offset) override {
    if (int f = Check(); f != 0) {
      if (f < 0) {
        IgnoreError(base_->PwriteAll(data, size / 2, offset));
        f = EIO;
      }
      return Injected(f, "write", fmt::format(" at offset {}", offset));
    }
    return After(base_->PwriteAll(data, size, offset));
  }

  Status PwritevAll(std::span<iovec> iov, uint64_t offset) override {
    if (int f = Check(); f != 0) {
      if (f < 0) {
        std::string half;
        size_t total = 0;
        for (const iovec& v : iov) total += v.iov_len;
        for (const iovec& v : iov) {
          if (half.size() >= total / 2) break;
          half.append(static_cast<const char*>(v.iov_base), std::min(v.iov_len, total / 2 - half.size()));
        }
        IgnoreError(base_->PwriteAll(half.data(), half.size(), offset));
        f = EIO;
      }
      return Injected(f, "write", fmt::format(" at offset {}", offset));
    }
    return After(base_->PwritevAll(iov, offset));
  }

  Result<size_t> PreadAll(void* data, size_t size, uint64_t offset) override {
    return base_->PreadAll(data, size, offset);
  }
  Result<size_t> Read(void* data, size_t size) override { return base_->Read(data, size); }

  Status Sync() override {
    if (matched_) {
      if (int err = env_->NextSync(); err != 0) return Injected(err, "fdatasync");
    }
    DFS_RETURN_IF_ERROR(base_->Sync());
    if (tracked_) {
      auto size = base_->Size();
      if (size) env_->Synced(*tracked_, *size);
    }
    return Status::OK();
  }

  Status Truncate(uint64_t size) override {
    if (matched_ && env_->DiskDead() != 0) return Injected(env_->DiskDead(), "truncate");
    Written();
    return base_->Truncate(size);
  }
  Result<bool> Allocate(uint64_t offset, uint64_t len) override {
    if (matched_ && env_->DiskDead() != 0) return Injected(env_->DiskDead(), "allocate");
    return base_->Allocate(offset, len);
  }
  Result<uint64_t> Size() override { return base_->Size(); }
  Status WriteOut(uint64_t offset, uint64_t len) override {
    if (matched_ && env_->DiskDead() != 0) return Injected(env_->DiskDead(), "sync_file_range");
    return base_->WriteOut(offset, len);
  }
  void StartWriteback(uint64_t offset, uint64_t len) override { base_->StartWriteback(offset, len); }
  void DropCache(uint64_t offset, uint64_t len) override { base_->DropCache(offset, len); }

 private:
  // The fault for this write (0 none, -1 torn, else errno).
  int Check() { return matched_ ? env_->NextWrite() : 0; }
  void Written() {
    if (tracked_) env_->Written(*tracked_);
  }
  Status After(Status s) {
    if (s.ok()) Written();
    return s;
  }
  Status Injected(int err, std::string_view verb, std::string_view where = "") {
    Written();
    return Status::FromErrno(err, fmt::format("{} {}{} (injected)", verb, path(), where));
  }

  FaultEnv* const env_;
  std::unique_ptr<File> base_;
  const bool matched_;
  const std::shared_ptr<FaultEnv::Tracked> tracked_;  // written through here: DropUnsyncedData may cut it
};

FaultEnv::FaultEnv(Env* base) : base_(base) {}

void FaultEnv::SetPathGlob(std::string glob) {
  std::lock_guard lock(mu_);
  glob_ = std::move(glob);
}

void FaultEnv::FailWritesAfter(uint64_t n, int err) {
  write_err_ = err;
  fail_writes_after_ = writes_.load() + n;
}

void FaultEnv::FailSyncsAfter(uint64_t n) {
  fail_syncs_after_ = syncs_.load() + n;
}

void FaultEnv::TearWriteAfter(uint64_t n) {
  tear_after_ = writes_.load() + n;
}

void FaultEnv::Disarm() {
  fail_writes_after_ = kOff;
  fail_syncs_after_ = kOff;
  tear_after_ = kOff;
  dead_err_ = 0;
}

bool FaultEnv::Matches(const std::string& path) const {
  std::lock_guard lock(mu_);
  return glob_.empty() || ::fnmatch(glob_.c_str(), path.c_str(), 0) == 0;
}

int FaultEnv::NextWrite() {
  const uint64_t seen = writes_.fetch_add(1);  // writes before this one
  if (int dead = dead_err_.load(); dead != 0) {
    ++faults_;
    return dead;
  }
  if (seen >= fail_writes_after_.load()) {
    dead_err_ = write_err_.load();
    ++faults_;
    return dead_err_.load();
  }
  if (seen == tear_after_.load()) {
    ++faults_;
    return -1;
  }
  return 0;
}

int FaultEnv::NextSync() {
  const uint64_t seen = syncs_.fetch_add(1);
  if (seen >= fail_syncs_after_.load()) {
    ++faults_;
    return EIO;
  }
  return 0;
}

void FaultEnv::Written(Tracked& t) {
  std::lock_guard lock(mu_);
  t.dirty = true;
}

void FaultEnv::Synced(Tracked& t, uint64_t size) {
  std::lock_guard lock(mu_);
  t.synced_size = size;
  t.dirty = false;
}

Status FaultEnv::DropUnsyncedData() {
  std::vector<std::pair<std::string, uint64_t>> cuts;
  {
    std::lock_guard lock(mu_);
    for (const auto& [path, t] : files_) {
      if (t->dirty) cuts.emplace_back(path, t->synced_size);
      t->dirty = false;
    }
  }
  for (const auto& [path, size] : cuts) {
    auto f = base_->Open(path, OpenMode::kWriteExisting);
    if (!f) {
      if (f.error().code() == Code::kNotFound) continue;
      return f.error();
    }
    DFS_RETURN_IF_ERROR((*f)->Truncate(size));
  }
  return Status::OK();
}

Result<std::unique_ptr<File>> FaultEnv::Open(const std::string& path, OpenMode mode) {
  const bool matched = Matches(path);
  const bool writes = mode != OpenMode::kRead;
  const bool creates = mode == OpenMode::kCreate || mode == OpenMode::kCreateNew;
  if (matched && creates && DiskDead() != 0) {
    ++faults_;
    return Status::FromErrno(DiskDead(), fmt::format("create {} (injected)", path));
  }
  uint64_t size_before = 0;
  if (writes && !creates) {
    auto st = base_->Stat(path);
    if (st) size_before = st->size;
  }
  DFS_ASSIGN_OR_RETURN(std::unique_ptr<File> f, base_->Open(path, mode));
  std::shared_ptr<Tracked> tracked;
  if (writes) {
    std::lock_guard lock(mu_);
    auto& slot = files_[path];
    if (creates || slot == nullptr) slot = std::make_shared<Tracked>(Tracked{path, size_before, creates});
    tracked = slot;
  }
  return std::unique_ptr<File>(new FaultFile(this, std::move(f), matched, std::move(tracked)));
}

Status FaultEnv::Rename(const std::string& from, const std::string& to) {
  if (Matches(to) && DiskDead() != 0) {
    ++faults_;
    return Status::FromErrno(DiskDead(), fmt::format("rename {} to {} (injected)", from, to));
  }
  DFS_RETURN_IF_ERROR(base_->Rename(from, to));
  std::lock_guard lock(mu_);
  files_.erase(to);
  if (auto it = files_.find(from); it != files_.end()) {
    std::shared_ptr<Tracked> t = std::move(it->second);
    files_.erase(it);
    t->path = to;
    files_[to] = std::move(t);
  }
  return Status::OK();
}

Status FaultEnv::Remove(const std::string& path) {
  DFS_RETURN_IF_ERROR(base_->Remove(path));
  std::lock_guard lock(mu_);
  files_.erase(path);
  return Status::OK();
}

Status FaultEnv::SyncDir(const std::string& dir) {
  if (Matches(dir)) {
    if (int err = NextSync(); err != 0) return Status::FromErrno(err, fmt::format("fsync {} (injected)", dir));
  }
  return base_->SyncDir(dir);
}

Status FaultEnv::CreateDirs(const std::string& dir) { return base_->CreateDirs(dir); }
Result<std::vector<std::string>> FaultEnv::ListDir(const std::string& dir) { return base_->ListDir(dir); }
Result<FileStat> FaultEnv::Stat(const std::string& path) { return base_->Stat(path); }
Result<DiskSpace> FaultEnv::Space(const std::string& path) { return base_->Space(path); }

std::unique_ptr<FaultEnv> MakeFaultEnv(const DiskFaults& faults, Env* base) {
  if (!faults.any()) return nullptr;
  auto env = std::make_unique<FaultEnv>(base);
  env->SetPathGlob(faults.path_glob);
  if (faults.eio_after_writes) env->FailWritesAfter(*faults.eio_after_writes, EIO);
  if (faults.enospc_after_writes) env->FailWritesAfter(*faults.enospc_after_writes, ENOSPC);
  if (faults.fsync_fail_after) env->FailSyncsAfter(*faults.fsync_fail_after);
  if (faults.torn_write_after) env->TearWriteAfter(*faults.torn_write_after);
  return env;
}

}  // namespace dfs
