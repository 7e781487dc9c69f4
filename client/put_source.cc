#include "client/put_source.h"

#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

namespace dfs::client {
namespace {

class StreamOnly : public PutSource {
 public:
  std::optional<uint64_t> size() const override { return std::nullopt; }
  Result<bus::Frame> ReadAt(uint64_t, size_t) override {
    return Status::Internal("a stream cannot be read at an offset");
  }
  Result<std::optional<bus::Frame>> ReadNext(size_t max) override {
    // Read straight into a frame of the full size; only a short last frame
    // is copied into one of its own size.
    if (pending_.size() != max) {
      if (got_ > max) return Status::Internal("a stream frame shrank while being filled");
      bus::Frame f = bus::Frame::Allocate(max);
      if (got_ > 0) std::memcpy(f.data(), pending_.data(), got_);
      pending_ = std::move(f);
    }
    while (got_ < max) {
      DFS_ASSIGN_OR_RETURN(std::optional<size_t> n, Read(pending_.data() + got_, max - got_));
      if (!n) return std::optional<bus::Frame>();
      if (*n == 0) break;
      got_ += *n;
    }
    const size_t got = std::exchange(got_, 0);
    bus::Frame out = std::exchange(pending_, bus::Frame());
    if (got == max) return std::optional<bus::Frame>(std::move(out));
    return std::optional<bus::Frame>(bus::Frame::Copy(std::span<const std::byte>(out.data(), got)));
  }

 protected:
  // 0 at the end; nullopt when nothing can be read without waiting.
  virtual Result<std::optional<size_t>> Read(std::byte* dst, size_t n) = 0;

 private:
  bus::Frame pending_;  // the frame being filled, `got_` bytes so far
  size_t got_ = 0;
};

class FdStream : public StreamOnly {
 public:
  FdStream(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
  int wait_fd() const override { return fd_; }

 protected:
  Result<std::optional<size_t>> Read(std::byte* dst, size_t n) override {
    // Never block: Put's loop has acknowledgements to take and a lease to
    // renew while a slow producer (tar | dfs-cli put -) thinks.
    pollfd p{fd_, POLLIN, 0};
    int ready = ::poll(&p, 1, 0);
    if (ready < 0 && errno != EINTR) return Status::FromErrno(errno, "poll " + name_);
    if (ready <= 0) return std::optional<size_t>();
    for (;;) {
      ssize_t r = ::read(fd_, dst, n);
      if (r >= 0) return std::optional<size_t>(static_cast<size_t>(r));
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return std::optional<size_t>();
      return Status::FromErrno(errno, "read " + name_);
    }
  }

 private:
  int fd_;
  std::string name_;
};

class FdFile : public PutSource {
 public:
  FdFile(int fd, std::string name, uint64_t size) : fd_(fd), name_(std::move(name)), size_(size) {}
  std::optional<uint64_t> size() const override { return size_; }
  Result<bus::Frame> ReadAt(uint64_t offset, size_t length) override {
    bus::Frame f = bus::Frame::Allocate(length);
    size_t got = 0;
    while (got < length) {
      ssize_t r = ::pread(fd_, f.data() + got, length - got, static_cast<off_t>(offset + got));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Status::FromErrno(errno, "read " + name_);
      if (r == 0) {
        return Status::IOError(fmt::format("{} shrank while being read (ends before byte {})", name_,
                                           offset + length));
      }
      got += static_cast<size_t>(r);
    }
    return f;
  }
  Result<std::optional<bus::Frame>> ReadNext(size_t) override { return Status::Internal("read a file at offsets"); }

 private:
  int fd_;
  std::string name_;
  uint64_t size_;
};

class Memory : public PutSource {
 public:
  explicit Memory(std::span<const std::byte> data) : data_(data) {}
  std::optional<uint64_t> size() const override { return data_.size(); }
  Result<bus::Frame> ReadAt(uint64_t offset, size_t length) override {
    if (offset + length > data_.size()) return Status::Internal("read past the end of the buffer");
    return bus::Frame::Copy(data_.subspan(offset, length));
  }
  Result<std::optional<bus::Frame>> ReadNext(size_t) override {
    return Status::Internal("read a buffer at offsets");
  }

 private:
  std::span<const std::byte> data_;
};

class IStream : public StreamOnly {
 public:
  explicit IStream(std::istream& in) : in_(in) {}

 protected:
  // Blocks: an istream cannot say whether a read would.
  Result<std::optional<size_t>> Read(std::byte* dst, size_t n) override {
    if (!in_.good()) {
      if (in_.bad()) return Status::IOError("read failed on the input stream");
      return std::optional<size_t>(0);
    }
    in_.read(reinterpret_cast<char*>(dst), static_cast<std::streamsize>(n));
    if (in_.bad()) return Status::IOError("read failed on the input stream");
    return std::optional<size_t>(static_cast<size_t>(in_.gcount()));
  }

 private:
  std::istream& in_;
};

}  // namespace

Result<std::unique_ptr<PutSource>> FdSource(int fd, std::string name) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Status::FromErrno(errno, name);
  if (S_ISDIR(st.st_mode)) return Status(Code::kIsADirectory, "is a directory: " + name);
  if (S_ISREG(st.st_mode)) {
    // pread reads from the start whatever the fd's position: "put FILE" means all of it.
    return std::unique_ptr<PutSource>(new FdFile(fd, std::move(name), static_cast<uint64_t>(st.st_size)));
  }
  return std::unique_ptr<PutSource>(new FdStream(fd, std::move(name)));
}

std::unique_ptr<PutSource> MemorySource(std::span<const std::byte> data) {
  return std::make_unique<Memory>(data);
}

std::unique_ptr<PutSource> StreamSource(std::istream& in) { return std::make_unique<IStream>(in); }

}  // namespace dfs::client
