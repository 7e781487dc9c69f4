// libdfs_client: the API every dfs tool uses (dfs-cli, dfs-bench, the shell).
// It speaks to the master for metadata and straight to nodes for data.
// Nothing in here exposes ZeroMQ or protobuf.
//
// Not thread-safe: one Client per thread (each owns its sockets).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace dfs::client {

struct ClientOptions {
  // HOST:PORT of the master's client port.
  std::string master = "127.0.0.1:5550";
  // Per attempt; a request goes out `attempts` times before the master is
  // called unreachable, so a dead master is reported within about
  // timeout*attempts.
  std::chrono::milliseconds timeout{1000};
  int attempts = 2;
  std::string name = "dfs-client";
  // Sent with every request as the owner of what it creates; empty: the
  // local user (getpwuid(geteuid()), else $USER).
  std::string user;
  // Entries per List page; 0 lets the master choose.
  uint32_t list_page_size = 0;
};

// The master address a tool should use: `flag` if set, else $DFS_MASTER, else
// 127.0.0.1:5550.
std::string DefaultMaster(const std::string& flag);

struct NodeStatus {
  std::string id;
  std::string address;
  bool alive = false;
  uint64_t capacity = 0;
  uint64_t used = 0;
  uint64_t available = 0;
  uint64_t chunks = 0;
  uint32_t streams_open = 0;
  uint64_t credit_in_use = 0;
  uint64_t credit_pool = 0;
  uint64_t last_heartbeat_ms_ago = 0;
};

// The local user's name: getpwuid(geteuid()), else $USER, else "uid<N>".
std::string LocalUserName();

// Resolves `path` to the absolute, normalized form the master expects:
// relative paths are taken from `cwd` (absolute), "." and empty components
// are dropped, ".." removes the previous component (and stays at "/" above
// the root), a trailing '/' goes. InvalidArgument for an empty path or bytes
// that are not UTF-8 (protobuf cannot carry them). Everything else about
// names (length, control characters) is the master's to judge.
Result<std::string> ResolvePath(std::string_view path, std::string_view cwd = "/");

enum class FileType { kFile, kDirectory };

struct ChunkStatus {
  uint64_t id = 0;
  uint32_t version = 0;
  uint64_t size = 0;
  uint32_t checksum = 0;            // CRC32C of the chunk's bytes
  std::vector<std::string> replicas;  // node ids holding it
};

struct FileStatus {
  std::string path;  // Stat: the full path; List: the entry's name
  FileType type = FileType::kFile;
  uint64_t inode = 0;
  uint64_t size = 0;  // files: bytes; directories: number of entries
  uint32_t mode = 0;  // permission bits, e.g. 0755
  std::string owner;
  int64_t mtime_ms = 0;  // Unix time
  int64_t ctime_ms = 0;
  uint32_t replication = 0;
  uint32_t checksum = 0;  // files: CRC32C of the whole content
  std::vector<ChunkStatus> chunks;  // Stat with_chunks only

  bool is_dir() const { return type == FileType::kDirectory; }
};

// What a Remove/Rmdir took away.
struct RemoveSummary {
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t bytes = 0;
};

struct SpaceUsage {
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t bytes = 0;         // logical
  uint64_t stored_bytes = 0;  // logical x replication
};

struct FsStats {
  uint64_t capacity = 0;
  uint64_t used = 0;
  uint64_t available = 0;
  uint32_t nodes_alive = 0;
  uint32_t nodes_dead = 0;
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t chunks = 0;
};

struct ClusterInfo {
  uint64_t chunk_size = 0;
  uint32_t replication = 0;
};

// A write in progress: the master's lease on the path. Nobody else can write
// the path until CompleteWrite, AbandonWrite, or expiry (RenewLeases keeps
// it); readers keep seeing the last completed version meanwhile.
struct WriteLease {
  uint64_t id = 0;
  std::string path;
  uint32_t replication = 0;
  uint64_t chunk_size = 0;
  std::chrono::milliseconds lease_time{0};
};

struct WriteOptions {
  bool overwrite = false;     // put -f
  uint32_t replication = 0;   // 0: the cluster default
  uint64_t chunk_size = 0;    // 0: the cluster default
};

struct NodeRef {
  std::string id;
  std::string address;
};

// Where one new chunk goes: write it to pipeline[0], which forwards on.
struct ChunkPlacement {
  uint64_t chunk_id = 0;
  uint32_t version = 0;
  std::vector<NodeRef> pipeline;
};

struct WrittenChunk {
  uint64_t id = 0;
  uint32_t version = 0;
  uint64_t size = 0;
  uint32_t checksum = 0;
};

class Client {
 public:
  // Says hello to the master; Unavailable (naming the address) if it does
  // not answer in time.
  static Result<std::unique_ptr<Client>> Connect(const ClientOptions& options);
  ~Client();

  const ClusterInfo& cluster() const;
  Result<std::vector<NodeStatus>> ListNodes();

  // Namespace. Every path goes through ResolvePath against
  // working_directory() first; errors are the master's one-line messages
  // ("no such file or directory: /a/b", "file exists: /a", ...).
  //
  // Mkdir: `parents` (-p) creates what is missing and accepts an existing
  // directory. Returns the directory.
  Result<FileStatus> Mkdir(std::string_view path, bool parents = false);
  // rm: a file, or with `recursive` a directory and all below it.
  Result<RemoveSummary> Remove(std::string_view path, bool recursive = false);
  // rmdir: an empty directory only.
  Result<RemoveSummary> Rmdir(std::string_view path);
  // mv: onto `dst`, or into it when it is an existing directory. Returns
  // the path the entry now has.
  Result<std::string> Rename(std::string_view src, std::string_view dst);
  // cp of a file (chunks are shared, not copied); into `dst` when it is an
  // existing directory. Returns the new file.
  Result<FileStatus> Copy(std::string_view src, std::string_view dst);
  Result<FileStatus> Stat(std::string_view path, bool with_chunks = false);
  // Every entry of a directory, sorted by name (bytewise); entries carry
  // their bare name in `path`. Pages through the master's answers. A file
  // lists as itself: one entry with its bare name (Stat tells that apart
  // from a directory holding one file of the same name).
  Result<std::vector<FileStatus>> List(std::string_view path);
  Result<SpaceUsage> DiskUsage(std::string_view path);
  Result<FsStats> StatFs();

  // Writes, metadata side (the data path streams the chunks in between).
  // BeginWrite fails with "file exists" unless overwrite, and with Busy,
  // naming the path, while another client writes it.
  Result<WriteLease> BeginWrite(std::string_view path, const WriteOptions& options = {});
  // A chunk id and the nodes to write it to; `exclude` lists nodes that
  // failed this write already.
  Result<ChunkPlacement> AllocateChunk(const WriteLease& lease, uint32_t index,
                                       const std::vector<std::string>& exclude = {});
  // Makes the new version visible, replacing any old one in one step.
  Result<FileStatus> CompleteWrite(const WriteLease& lease, const std::vector<WrittenChunk>& chunks,
                                   uint64_t size, uint32_t checksum);
  Status AbandonWrite(const WriteLease& lease);
  // Extends the leases; returns the ids the master no longer holds.
  Result<std::vector<uint64_t>> RenewLeases(const std::vector<uint64_t>& lease_ids);

  // Where relative paths start; "/" until set (the shell's cd).
  const std::string& working_directory() const;
  // InvalidArgument unless `dir` resolves to an absolute path; does not ask
  // the master whether it exists.
  Status set_working_directory(std::string_view dir);

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfs::client
