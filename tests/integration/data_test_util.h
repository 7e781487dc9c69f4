// Helpers for the data-path tests (data_*_test.cc): local files with known
// bytes, the chunk files a node holds, and a dfs-cli put fed through a pipe
// so a test decides when each byte arrives (a fault "mid-put" is then
// certain to land mid-put).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "client/dfs_client.h"
#include "tests/support/process.h"

namespace dfs::test {

// A libdfs_client connection, for tests that keep one Client across puts
// (its spare leases live there); nullptr if it cannot connect.
inline std::unique_ptr<client::Client> ConnectClient(const std::string& master,
                                                     std::chrono::milliseconds timeout = std::chrono::seconds(3)) {
  client::ClientOptions o;
  o.master = master;
  o.timeout = timeout;
  auto c = client::Client::Connect(o);
  return c ? std::move(*c) : nullptr;
}

// Client::Put of `bytes` to `remote` at replication `r`.
inline Result<client::FileStatus> PutBytes(client::Client& c, const std::string& bytes, const std::string& remote,
                                           uint32_t r) {
  client::PutOptions po;
  po.replication = r;
  return c.Put(std::as_bytes(std::span(bytes)), remote, po);
}

inline std::string RandomBytes(size_t n, uint64_t seed) {
  std::string out(n, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<char>(x >> 24);
  }
  return out;
}

inline void WriteLocal(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

inline std::string ReadLocal(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Every "<id>_<version>.chunk" under a node's folder.
inline std::vector<std::string> ChunkFiles(const std::string& node_dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(node_dir + "/chunks", ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->path().extension() == ".chunk") out.push_back(it->path().string());
  }
  return out;
}

// Bytes in the node's volume files, DIR/chunks/volumes/*.vol, where small
// chunks go (filenode/volume_format.h).
inline uint64_t VolumeBytes(const std::string& node_dir) {
  uint64_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(node_dir + "/chunks/volumes", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (it->path().extension() == ".vol") n += it->file_size(ec);
  }
  return n;
}

// Flips every bit of the first byte of `needle` wherever it occurs in the
// node's volume files (chunk bytes are stored as sent); how many it flipped.
inline int FlipInVolumes(const std::string& node_dir, std::string_view needle) {
  int flipped = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(node_dir + "/chunks/volumes", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (it->path().extension() != ".vol") continue;
    std::fstream io(it->path(), std::ios::in | std::ios::out | std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(io)), std::istreambuf_iterator<char>());
    for (size_t at = bytes.find(needle); at != std::string::npos; at = bytes.find(needle, at + 1)) {
      io.clear();
      io.seekp(static_cast<std::streamoff>(at));
      io.put(static_cast<char>(~bytes[at]));
      ++flipped;
    }
  }
  return flipped;
}

// DIR/chunks/<id % 256, two hex digits>/<id>_<version>.chunk (filenode/chunk_format.h).
inline std::string ChunkFile(const std::string& node_dir, uint64_t id, uint32_t version) {
  char sub[8];
  std::snprintf(sub, sizeof sub, "%02x", static_cast<unsigned>(id % 256));
  return node_dir + "/chunks/" + sub + "/" + std::to_string(id) + "_" + std::to_string(version) + ".chunk";
}

// `dfs-cli ARGS...` with stdin a pipe the test writes to; output to files.
class PipedCli {
 public:
  PipedCli(const std::vector<std::string>& args, const std::string& out_dir) : err_path_(out_dir + "/piped.err") {
    int in[2];
    if (::pipe2(in, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(in[0], STDIN_FILENO);
      int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int out = ::open((out_dir + "/piped.out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(err, STDERR_FILENO);
      ::dup2(out, STDOUT_FILENO);
      std::vector<std::string> argv{DFS_CLI_BIN};
      argv.insert(argv.end(), args.begin(), args.end());
      std::vector<char*> c;
      for (auto& a : argv) c.push_back(a.data());
      c.push_back(nullptr);
      ::execv(c[0], c.data());
      ::_exit(127);
    }
    ::close(in[0]);
    in_ = in[1];
    ::signal(SIGPIPE, SIG_IGN);
  }
  ~PipedCli() {
    if (in_ >= 0) ::close(in_);
    if (pid_ > 0 && !exit_code_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  bool Write(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::write(in_, bytes.data() + off, bytes.size() - off);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  // Closes stdin (end of input) and waits; nullopt on timeout.
  std::optional<int> Finish(std::chrono::milliseconds timeout) {
    if (in_ >= 0) ::close(in_);
    in_ = -1;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return exit_code_;
      }
      ::usleep(10000);  // poll waitpid until the child exits or the deadline passes
    }
    return std::nullopt;
  }
  std::string err() const { return ReadLocal(err_path_); }
  pid_t pid() const { return pid_; }

 private:
  std::string err_path_;
  pid_t pid_ = -1;
  int in_ = -1;
  std::optional<int> exit_code_;
};

}  // namespace dfs::test
