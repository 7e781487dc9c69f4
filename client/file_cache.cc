#include "client/file_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>

#include "common/checksum.h"
#include "common/files.h"
#include "common/random_id.h"
#include "common/units.h"

namespace dfs::client {
namespace {

namespace fs = std::filesystem;

// Small enough to stay in the L2 cache and cost few page faults (a 4 MiB
// buffer was 1,024 first-touch faults, 10-25 ms on this VM, per serve).
constexpr size_t kBlock = 256 << 10;
constexpr const char* kPathFile = "path";

std::string HashName(const std::string& path) {
  // Two CRCs with different seeds: 64 bits, and the stored path settles a
  // collision (the entry is then replaced, never served for the wrong path).
  return fmt::format("{:08x}{:08x}", Crc32c(path), Crc32c(path, 0x9e3779b9u));
}

// A version's file name: INODE-SIZE-CHECKSUM-MTIME, all it takes to match a Stat.
std::string VersionName(const FileStatus& s) {
  return fmt::format("{}-{}-{:08x}-{}", s.inode, s.size, s.checksum, s.mtime_ms);
}

bool ParseVersion(const std::string& name, FileCache::Entry* e) {
  unsigned long long inode = 0, size = 0;
  unsigned int crc = 0;
  long long mtime = 0;
  int used = 0;
  if (std::sscanf(name.c_str(), "%llu-%llu-%8x-%lld%n", &inode, &size, &crc, &mtime, &used) != 4 ||
      static_cast<size_t>(used) != name.size()) {
    return false;
  }
  e->inode = inode;
  e->size = size;
  e->checksum = crc;
  e->mtime_ms = mtime;
  return true;
}

int64_t MtimeMs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
}

std::string ReadSmall(const std::string& file) {
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return "";
  char buf[4096];
  const ssize_t n = ::read(fd.get(), buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

// Files of `dir` (not "." or ".." or temporaries).
std::vector<std::string> Names(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') out.emplace_back(e->d_name);
  }
  ::closedir(d);
  return out;
}

// CRC32C and length of `fd`'s bytes from its start (pread: its position stays).
Result<std::pair<uint32_t, uint64_t>> Checksum(int fd, const std::string& what) {
  std::vector<std::byte> buf(kBlock);
  uint32_t crc = 0;
  uint64_t off = 0;
  for (;;) {
    const ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, what);
    if (n == 0) return std::pair{crc, off};
    crc = Crc32c(std::span(buf.data(), static_cast<size_t>(n)), crc);
    off += static_cast<uint64_t>(n);
  }
}

// `size` bytes of `in` from its start to `out` at its position (0: a new
// file): a reflink where the file system shares blocks (btrfs, XFS), else
// a copy in the kernel, else read and write.
Status CopyFile(int in, int out, uint64_t size, const std::string& what) {
  if (::lseek(out, 0, SEEK_CUR) == 0 && ::ioctl(out, FICLONE, in) == 0) {
    return ::lseek(out, static_cast<off_t>(size), SEEK_SET) < 0 ? Status::FromErrno(errno, what) : Status::OK();
  }
  loff_t from = 0;
  while (static_cast<uint64_t>(from) < size) {
    const ssize_t n = ::copy_file_range(in, &from, out, nullptr, size - static_cast<uint64_t>(from), 0);
    if (n > 0 || (n < 0 && errno == EINTR)) continue;
    if (n < 0 && from == 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) break;
    return Status::FromErrno(n < 0 ? errno : EIO, what);
  }
  std::vector<std::byte> buf(kBlock);
  while (static_cast<uint64_t>(from) < size) {
    const ssize_t n = ::pread(in, buf.data(), std::min<uint64_t>(kBlock, size - static_cast<uint64_t>(from)), from);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::FromErrno(n < 0 ? errno : EIO, what);
    DFS_RETURN_IF_ERROR(WriteAll(out, buf.data(), static_cast<size_t>(n), what));
    from += n;
  }
  return Status::OK();
}

}  // namespace

std::string DefaultCacheDir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x != nullptr && x[0] == '/') return std::string(x) + "/dfs";
  if (const char* h = std::getenv("HOME"); h != nullptr && h[0] != '\0') return std::string(h) + "/.cache/dfs";
  return "/tmp/dfs-cache-" + std::to_string(::geteuid());
}

bool FileCache::Entry::Matches(const FileStatus& s) const {
  return !s.is_dir() && s.inode == inode && s.size == size && s.checksum == checksum && s.mtime_ms == mtime_ms;
}

std::chrono::milliseconds FileCache::Entry::Age() const {
  return std::chrono::milliseconds(std::max<int64_t>(0, UnixMillis() - confirmed_ms));
}

Result<FileCache> FileCache::Open(const CacheOptions& options, const std::string& master) {
  std::string base = options.dir.empty() ? DefaultCacheDir() : options.dir;
  std::string key = master;
  for (char& c : key) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') c = '_';
  }
  const std::string dir = base + "/" + key;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::FromErrno(ec.value(), "cache folder " + dir);
  return FileCache(options, dir);
}

std::string FileCache::EntryFile(const std::string& path) const { return dir_ + "/" + HashName(path); }

std::optional<FileCache::Entry> FileCache::ReadEntry(const std::string& entry_dir) const {
  Entry e;
  e.path = ReadSmall(entry_dir + "/" + kPathFile);
  if (e.path.empty()) return std::nullopt;
  // The newest version, should a crash have left two.
  int64_t best = -1;
  for (const std::string& name : Names(entry_dir)) {
    Entry v;
    struct stat st {};
    if (!ParseVersion(name, &v) || ::stat((entry_dir + "/" + name).c_str(), &st) != 0) continue;
    if (static_cast<uint64_t>(st.st_size) != v.size || MtimeMs(st) <= best) continue;
    best = MtimeMs(st);
    e.inode = v.inode;
    e.size = v.size;
    e.checksum = v.checksum;
    e.mtime_ms = v.mtime_ms;
    e.confirmed_ms = best;
    e.file = entry_dir + "/" + name;
  }
  if (best < 0) return std::nullopt;
  return e;
}

std::optional<FileCache::Entry> FileCache::Lookup(const std::string& path) const {
  auto e = ReadEntry(EntryFile(path));
  if (!e || e->path != path) return std::nullopt;
  return e;
}

Status FileCache::CopyTo(const Entry& entry, int fd, uint64_t offset, uint64_t length) const {
  UniqueFd in(::open(entry.file.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) return Status::FromErrno(errno, "cache entry " + entry.file);
  struct stat out_st {};
  const bool regular = ::fstat(fd, &out_st) == 0 && S_ISREG(out_st.st_mode);
  const uint64_t end = length == UINT64_MAX ? entry.size : std::min(entry.size, offset + length);
  // Into a regular file the copy and the check go together, and a bad
  // entry leaves bytes the caller's temporary discards; into a pipe the
  // whole entry is checked before its first byte goes out.
  std::vector<std::byte> buf(kBlock);
  auto fail = [&](Status s) {
    ::unlink(entry.file.c_str());
    return s;
  };
  auto pass = [&](bool write) -> Status {
    uint32_t crc = 0;
    for (uint64_t off = 0; off < entry.size;) {
      const ssize_t n = ::pread(in.get(), buf.data(), std::min<uint64_t>(kBlock, entry.size - off), static_cast<off_t>(off));
      if (n <= 0) return fail(Status::FromErrno(n < 0 ? errno : EIO, "cache entry " + entry.file));
      const auto got = static_cast<uint64_t>(n);
      crc = Crc32c(std::span(buf.data(), got), crc);
      if (write && off + got > offset && off < end) {
        const uint64_t from = std::max(off, offset);
        const uint64_t to = std::min(off + got, end);
        DFS_RETURN_IF_ERROR(WriteAll(fd, buf.data() + (from - off), to - from, "output"));
      }
      off += got;
    }
    if (crc != entry.checksum) {
      return fail(Status(Code::kCorruption, fmt::format("cached copy of {} is damaged (checksum {:08x}, want {:08x}); "
                                                        "it is deleted", entry.path, crc, entry.checksum)));
    }
    return Status::OK();
  };
  if (!regular || offset != 0 || end != entry.size) {
    if (!regular) DFS_RETURN_IF_ERROR(pass(false));
    return pass(true);
  }
  // A whole file into a regular one: checked first (a read of the page
  // cache, at ISA-L's CRC speed), then shared by a reflink where the file
  // system has them (btrfs, XFS: no byte copied) or copied in the kernel.
  DFS_RETURN_IF_ERROR(pass(false));
  return CopyFile(in.get(), fd, entry.size, "output");
}

void FileCache::Confirm(const Entry& entry) const {
  ::utimensat(AT_FDCWD, entry.file.c_str(), nullptr, 0);  // now; a failure costs only the TTL's head start
}

Result<bool> FileCache::Insert(const FileStatus& status, const std::string& source) {
  if (status.is_dir() || status.size > options_.max_bytes / 4) {
    DropUnder(status.path);
    return false;
  }
  const std::string entry_dir = EntryFile(status.path);
  std::error_code ec;
  fs::create_directories(entry_dir, ec);
  if (ec) return Status::FromErrno(ec.value(), "cache folder " + entry_dir);
  if (ReadSmall(entry_dir + "/" + kPathFile) != status.path) {
    // New, or another path with the same hash: this path takes it over.
    for (const std::string& name : Names(entry_dir)) ::unlink((entry_dir + "/" + name).c_str());
    const std::string tmp = entry_dir + "/.path-" + fmt::format("{:016x}", RandomU64());
    UniqueFd pf(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (pf.get() < 0) return Status::FromErrno(errno, tmp);
    Status w = WriteAll(pf.get(), status.path, tmp);
    if (!w.ok() || ::rename(tmp.c_str(), (entry_dir + "/" + kPathFile).c_str()) != 0) {
      ::unlink(tmp.c_str());
      return w.ok() ? Status::FromErrno(errno, entry_dir) : w;
    }
  }
  // The bytes go to a temporary, are checked against the master's checksum
  // as they go, and only then take the version's name.
  UniqueFd in(::open(source.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) return Status::FromErrno(errno, source);
  const std::string tmp = entry_dir + "/.tmp-" + fmt::format("{:016x}", RandomU64());
  UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (out.get() < 0) return Status::FromErrno(errno, tmp);
  // Checked first (the file was just written: a read of the page cache),
  // then copied in the kernel; the copy's bytes are checked on every serve.
  Status s;
  if (auto sum = Checksum(in.get(), source); !sum) {
    s = sum.error();
  } else if (sum->second != status.size || sum->first != status.checksum) {
    s = Status(Code::kCorruption, fmt::format("{} is not the version read (changed meanwhile?)", source));
  } else {
    s = CopyFile(in.get(), out.get(), status.size, tmp);
  }
  const std::string name = VersionName(status);
  if (s.ok() && ::rename(tmp.c_str(), (entry_dir + "/" + name).c_str()) != 0) s = Status::FromErrno(errno, entry_dir);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  for (const std::string& other : Names(entry_dir)) {
    if (other != name && other != kPathFile) ::unlink((entry_dir + "/" + other).c_str());
  }
  Evict();
  return true;
}

void FileCache::DropUnder(const std::string& path) {
  const std::string prefix = path == "/" ? "/" : path + "/";
  for (const std::string& name : Names(dir_)) {
    const std::string entry_dir = dir_ + "/" + name;
    const std::string p = ReadSmall(entry_dir + "/" + kPathFile);
    if (p == path || p.starts_with(prefix) || p.empty()) {
      std::error_code ec;
      fs::remove_all(entry_dir, ec);
    }
  }
}

FileCache::Usage FileCache::Scan() const {
  Usage u;
  u.dir = dir_;
  u.max_bytes = options_.max_bytes;
  for (const std::string& name : Names(dir_)) {
    auto e = ReadEntry(dir_ + "/" + name);
    if (!e) continue;
    ++u.entries;
    u.bytes += e->size;
    u.list.push_back(std::move(*e));
  }
  std::sort(u.list.begin(), u.list.end(), [](const Entry& a, const Entry& b) { return a.confirmed_ms > b.confirmed_ms; });
  return u;
}

void FileCache::Evict() {
  Usage u = Scan();
  while (u.bytes > options_.max_bytes && !u.list.empty()) {
    const Entry& oldest = u.list.back();
    std::error_code ec;
    fs::remove_all(fs::path(oldest.file).parent_path(), ec);
    u.bytes -= oldest.size;
    u.list.pop_back();
  }
}

uint64_t FileCache::Clear() {
  uint64_t n = 0;
  for (const std::string& name : Names(dir_)) {
    std::error_code ec;
    n += fs::remove_all(dir_ + "/" + name, ec) > 0 ? 1 : 0;
  }
  return n;
}

}  // namespace dfs::client
