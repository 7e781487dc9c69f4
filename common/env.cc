#include "common/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>

namespace dfs {

void UniqueFd::Reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status UniqueFd::Close(const std::string& what) {
  if (fd_ < 0) return Status::OK();
  int rc = ::close(std::exchange(fd_, -1));
  return rc == 0 ? Status::OK() : Status::FromErrno(errno, "close " + what);
}

namespace {

class PosixFile final : public File {
 public:
  PosixFile(std::string path, UniqueFd fd) : File(std::move(path)), fd_(std::move(fd)) {}

  int fd() const override { return fd_.get(); }

  Status Append(std::string_view data) override {
    const char* p = data.data();
    size_t size = data.size();
    while (size > 0) {
      ssize_t n = ::write(fd_.get(), p, size);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno(errno, "write " + path());
      }
      p += n;
      size -= static_cast<size_t>(n);
    }
    return Status::OK();
  }

  Status PwriteAll(const void* data, size_t size, uint64_t offset) override {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
      ssize_t n = ::pwrite(fd_.get(), p, size, static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno(errno, fmt::format("write {} at offset {}", path(), offset));
      }
      p += n;
      size -= static_cast<size_t>(n);
      offset += static_cast<uint64_t>(n);
    }
    return Status::OK();
  }

  Status PwritevAll(std::span<iovec> iov, uint64_t offset) override {
    while (!iov.empty()) {
      const int count = static_cast<int>(std::min<size_t>(iov.size(), IOV_MAX));
      ssize_t n = ::pwritev(fd_.get(), iov.data(), count, static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno(errno, fmt::format("write {} at offset {}", path(), offset));
      }
      offset += static_cast<uint64_t>(n);
      auto left = static_cast<size_t>(n);
      while (!iov.empty() && left >= iov.front().iov_len) {
        left -= iov.front().iov_len;
        iov = iov.subspan(1);
      }
      if (n == 0 && !iov.empty()) {
        return Status::IOError(fmt::format("write {} at offset {}: the kernel wrote nothing", path(), offset));
      }
      if (left > 0) {
        iov.front().iov_base = static_cast<char*>(iov.front().iov_base) + left;
        iov.front().iov_len -= left;
      }
    }
    return Status::OK();
  }

  Result<size_t> PreadAll(void* data, size_t size, uint64_t offset) override {
    char* p = static_cast<char*>(data);
    size_t done = 0;
    while (done < size) {
      ssize_t n = ::pread(fd_.get(), p + done, size - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno(errno, fmt::format("read {} at offset {}", path(), offset + done));
      }
      if (n == 0) break;
      done += static_cast<size_t>(n);
    }
    return done;
  }

  Result<size_t> Read(void* data, size_t size) override {
    for (;;) {
      ssize_t n = ::read(fd_.get(), data, size);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return Status::FromErrno(errno, "read " + path());
    }
  }

  Status Sync() override {
    if (::fdatasync(fd_.get()) != 0) return Status::FromErrno(errno, "fdatasync " + path());
    return Status::OK();
  }

  Status Truncate(uint64_t size) override {
    if (::ftruncate(fd_.get(), static_cast<off_t>(size)) != 0) return Status::FromErrno(errno, "truncate " + path());
    return Status::OK();
  }

  Result<bool> Allocate(uint64_t offset, uint64_t len) override {
    if (::fallocate(fd_.get(), 0, static_cast<off_t>(offset), static_cast<off_t>(len)) != 0) {
      if (errno == EOPNOTSUPP) return false;
      return Status::FromErrno(errno, "allocate " + path());
    }
    return true;
  }

  Result<uint64_t> Size() override {
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) return Status::FromErrno(errno, "stat " + path());
    return static_cast<uint64_t>(st.st_size);
  }

  Status WriteOut(uint64_t offset, uint64_t len) override {
    if (::sync_file_range(fd_.get(), static_cast<off_t>(offset), static_cast<off_t>(len),
                          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER) != 0) {
      return Status::FromErrno(errno, "sync_file_range " + path());
    }
    return Status::OK();
  }

  void StartWriteback(uint64_t offset, uint64_t len) override {
    (void)::sync_file_range(fd_.get(), static_cast<off_t>(offset), static_cast<off_t>(len), SYNC_FILE_RANGE_WRITE);
  }

  void DropCache(uint64_t offset, uint64_t len) override {
    (void)::posix_fadvise(fd_.get(), static_cast<off_t>(offset), static_cast<off_t>(len), POSIX_FADV_DONTNEED);
  }

 private:
  UniqueFd fd_;
};

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) override {
    int flags = O_CLOEXEC;
    switch (mode) {
      case OpenMode::kRead: flags |= O_RDONLY; break;
      case OpenMode::kReadWrite: flags |= O_RDWR; break;
      case OpenMode::kWriteExisting: flags |= O_WRONLY; break;
      case OpenMode::kCreate: flags |= O_RDWR | O_CREAT | O_TRUNC; break;
      case OpenMode::kCreateNew: flags |= O_RDWR | O_CREAT | O_EXCL; break;
    }
    UniqueFd fd(::open(path.c_str(), flags, 0644));
    if (!fd.valid()) return Status::FromErrno(errno, (flags & O_CREAT) != 0 ? "create " + path : "open " + path);
    return std::unique_ptr<File>(new PosixFile(path, std::move(fd)));
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return Status::FromErrno(errno, fmt::format("rename {} to {}", from, to));
    return Status::OK();
  }

  Status Remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return Status::FromErrno(errno, "remove " + path);
    return Status::OK();
  }

  Status SyncDir(const std::string& dir) override {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) return Status::FromErrno(errno, "open " + dir);
    if (::fsync(fd.get()) != 0) return Status::FromErrno(errno, "fsync " + dir);
    return Status::OK();
  }

  Status CreateDirs(const std::string& dir) override {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return Status::FromErrno(ec.value(), "create " + dir);
    return Status::OK();
  }

  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    // readdir rather than std::filesystem::directory_iterator: a range-for
    // over the latter throws when advancing fails, even with an error_code.
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return Status::FromErrno(errno, "list " + dir);
    std::vector<std::string> names;
    for (;;) {
      errno = 0;
      struct dirent* e = ::readdir(d);
      if (e == nullptr) {
        int err = errno;
        ::closedir(d);
        if (err != 0) return Status::FromErrno(err, "list " + dir);
        return names;
      }
      std::string_view name = e->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
    }
  }

  Result<FileStat> Stat(const std::string& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
    return FileStat{static_cast<uint64_t>(st.st_size), S_ISDIR(st.st_mode)};
  }

  Result<DiskSpace> Space(const std::string& path) override {
    struct statvfs fs {};
    if (::statvfs(path.c_str(), &fs) != 0) return Status::FromErrno(errno, "statvfs " + path);
    return DiskSpace{static_cast<uint64_t>(fs.f_blocks) * fs.f_frsize, static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize};
  }
};

}  // namespace

Env* Env::Default() {
  static PosixEnv* env = new PosixEnv();  // never destroyed: used until exit
  return env;
}

std::string DirName(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

Result<PendingReplace> PendingReplace::Create(Env* env, std::string path, std::string_view suffix) {
  std::string temp = path + std::string(suffix);
  DFS_ASSIGN_OR_RETURN(std::unique_ptr<File> file, env->Open(temp, OpenMode::kCreate));
  return PendingReplace(env, std::move(path), std::move(temp), std::move(file));
}

PendingReplace::PendingReplace(PendingReplace&& o) noexcept
    : env_(o.env_),
      path_(std::move(o.path_)),
      temp_(std::move(o.temp_)),
      file_(std::move(o.file_)),
      synced_(o.synced_),
      renamed_(o.renamed_),
      done_(std::exchange(o.done_, true)) {}

PendingReplace& PendingReplace::operator=(PendingReplace&& o) noexcept {
  if (this != &o) {
    Abandon();
    env_ = o.env_;
    path_ = std::move(o.path_);
    temp_ = std::move(o.temp_);
    file_ = std::move(o.file_);
    synced_ = o.synced_;
    renamed_ = o.renamed_;
    done_ = std::exchange(o.done_, true);
  }
  return *this;
}

PendingReplace::~PendingReplace() { Abandon(); }

Status PendingReplace::Sync() {
  if (synced_) return Status::OK();
  if (file_ == nullptr) return Status::Internal("sync " + temp_ + ": already closed");
  DFS_RETURN_IF_ERROR(file_->Sync());
  synced_ = true;
  return Status::OK();
}

Status PendingReplace::Rename() {
  if (renamed_) return Status::OK();
  if (done_) return Status::Internal("rename " + temp_ + ": abandoned");
  DFS_RETURN_IF_ERROR(Sync());
  DFS_RETURN_IF_ERROR(env_->Rename(temp_, path_));
  renamed_ = done_ = true;
  return Status::OK();
}

Status PendingReplace::Commit() {
  DFS_RETURN_IF_ERROR(Rename());
  return env_->SyncDir(DirName(path_));
}

void PendingReplace::Abandon() {
  if (done_) return;
  done_ = true;
  file_.reset();
  // Best effort: start-up removes leftover temp files anyway.
  IgnoreError(env_->Remove(temp_));
}

void PendingReplace::Forget() {
  if (done_) return;
  done_ = true;
  file_.reset();
}

Status ReplaceDurably(Env* env, const std::string& path, const std::function<Status(File&)>& fill) {
  DFS_ASSIGN_OR_RETURN(PendingReplace r, PendingReplace::Create(env, path));
  DFS_RETURN_IF_ERROR(fill(r.file()));
  return r.Commit();
}

Status WriteFileDurably(Env* env, const std::string& path, std::string_view contents) {
  return ReplaceDurably(env, path, [&](File& f) { return f.Append(contents); });
}

Result<std::string> ReadWholeFile(Env* env, const std::string& path) {
  DFS_ASSIGN_OR_RETURN(std::unique_ptr<File> f, env->Open(path, OpenMode::kRead));
  std::string out;
  char buf[64 * 1024];
  for (;;) {
    DFS_ASSIGN_OR_RETURN(size_t n, f->Read(buf, sizeof buf));
    if (n == 0) return out;
    out.append(buf, n);
  }
}

}  // namespace dfs
