// libdfs_client: the API every dfs tool uses (dfs-cli, dfs-bench, the shell).
// It speaks to the master for metadata and straight to nodes for data.
// Nothing in here exposes ZeroMQ or protobuf.
//
// Not thread-safe: one Client per thread (each owns its sockets).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/limits.h"
#include "datapath/placement.h"

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
  bool disk_failed = false;  // the node's disk failed: it takes no new chunks
  std::string disk_error;
  bool decommissioning = false;  // takes no new chunks; its chunks are copied away
  bool retired = false;          // decommissioned: may be stopped with no chunk short
  // "alive", "dead", "decommissioning" or "retired".
  std::string state() const {
    if (!alive) return "dead";
    return retired ? "retired" : decommissioning ? "decommissioning" : "alive";
  }
};

// What repair and the balancer are doing (dfs-cli balancer).
struct BalancerNode {
  std::string id;
  double utilisation = 0;
  uint64_t chunks = 0;
  std::string state;
  uint64_t copies_in = 0, copies_out = 0;
};
struct BalancerReport {
  bool holdoff = false;
  uint64_t repair_queue = 0, repairing = 0, repaired = 0;
  uint64_t moving = 0, moved = 0;
  double threshold = 0, spread = 0;
  std::vector<BalancerNode> nodes;
};

// Process-wide, for a tool's main() to call once at start-up: freed data
// buffers (1 MiB frames, sent and received) stay in the heap for reuse
// instead of going back to the kernel, since every fresh buffer costs page
// faults and zeroing: measured here, gets ran 1.4-2x faster with it. Memory
// held stays bounded by the data in flight (parallel x credit).
void KeepDataBuffersInHeap();

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
  uint32_t chunk_count = 0;         // files: how many chunks
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

// fsck: the health of the chunks under a path, as the master sees it.
struct FsckChunk {
  uint64_t id = 0;
  uint32_t index = 0;   // its place in the file
  uint32_t live = 0;    // replicas on live nodes
  uint32_t wanted = 0;  // the file's replication
  bool repairing = false;
  uint32_t corrupt = 0;  // replicas found bad (not counted live; deleted once the chunk is whole)
  // "missing", "under-replicated", "over-replicated" or "corrupt".
  std::string issue() const {
    if (live == 0) return "missing";
    if (live < wanted) return "under-replicated";
    if (live > wanted) return "over-replicated";
    return corrupt > 0 ? "corrupt" : "healthy";
  }
};
struct FsckFile {
  std::string path;
  std::vector<FsckChunk> chunks;  // the unhealthy ones
};
struct FsckReport {
  uint64_t files = 0;
  uint64_t chunks = 0;
  uint64_t bytes = 0;
  uint64_t under_replicated = 0;  // fewer live replicas than wanted, at least one
  // More live replicas than wanted (a returning node, a lowered setrep):
  // trimmed soon, no risk to data, so not unhealthy.
  uint64_t over_replicated = 0;
  uint64_t corrupt = 0;  // chunks with a replica found bad (the others serve; repair replaces it)
  uint64_t missing = 0;           // no live replica
  uint64_t repairing = 0;         // of those, copies under way
  uint64_t repair_queue = 0;      // the whole cluster's
  uint64_t repaired = 0;          // copies done since the master started
  bool holdoff = false;           // the master waits for nodes' reports before repairing
  bool truncated = false;         // more unhealthy files than listed
  std::vector<FsckFile> unhealthy;  // files with a chunk of any issue() but "healthy"
  bool healthy() const { return under_replicated == 0 && missing == 0; }
};

struct ClusterInfo {
  uint64_t chunk_size = 0;
  uint32_t replication = 0;
};

// A write in progress: the master's lease on the path. Nobody else can write
// the path until CompleteWrite, AbandonWrite, or expiry (RenewLeases keeps
// it); readers keep seeing the last completed version meanwhile.
using NodeRef = datapath::NodeRef;
// Where one new chunk goes: write it to pipeline[0], which forwards on.
using ChunkPlacement = datapath::ChunkPlacement;

struct WriteLease {
  uint64_t id = 0;
  std::string path;
  uint32_t replication = 0;
  uint64_t chunk_size = 0;
  std::chrono::milliseconds lease_time{0};
  // Chunk 0, placed with the lease when WriteOptions::allocate_first asked.
  std::optional<ChunkPlacement> first_chunk;
  bool overwrite = false;
  bool small = false;  // WriteOptions::small
  // A spare lease (messages/client_master.proto, SPARE LEASES) that an
  // earlier completion handed out: the master learns `path` at completion.
  bool spare = false;
};

struct WriteOptions {
  bool overwrite = false;     // put -f
  uint32_t replication = 0;   // 0: the cluster default
  uint64_t chunk_size = 0;    // 0: the cluster default
  // Place chunk 0 in the same round trip (the file has at least one byte).
  bool allocate_first = false;
  // The file is one chunk that fits one message. A run of such writes on
  // one Client asks the master for the next one's lease in advance (a spare
  // lease, with chunk 0 placed), so that each after the first two costs no
  // CreateFile round trip.
  bool small = false;
  // The file's size when known (0: unknown): its chunks reserve what they
  // will hold on the nodes, not a whole chunk size each.
  uint64_t size_hint = 0;
};

struct WrittenChunk {
  uint64_t id = 0;
  uint32_t version = 0;
  uint64_t size = 0;
  uint32_t checksum = 0;
  std::vector<std::string> replicas;  // node ids that stored it (their checksums matched)
};

// How far a transfer is, for a progress bar: `done` bytes of `total`
// (`total_known` false: a put from a stream, whose length shows only at
// its end). Put counts bytes sent to the first node of each pipeline (it
// may step back when a chunk is resent); Read counts bytes verified and
// handed to the sink.
struct Progress {
  uint64_t done = 0;
  uint64_t total = 0;
  bool total_known = true;
};
// Called on the transfer's own thread from its event loop, at most once per
// `progress_interval` (never per frame), and once more at the end with
// done == total. Must be quick: the transfer waits while it runs.
using ProgressFn = std::function<void(const Progress&)>;

// Put: a whole file from local bytes, chunk by chunk through the nodes.
struct PutOptions {
  bool overwrite = false;     // put -f
  uint32_t replication = 0;   // 0: the cluster default
  uint64_t chunk_size = 0;    // 0: the cluster default
  // Chunks streaming at once, each to its own pipeline. Memory stays within
  // parallel x credit frames for a file or buffer; a stream (pipe) keeps
  // each unstored chunk whole for a resend, so at most 2 stream at once.
  int parallel = 4;
  uint32_t frame_size = limits::kDefaultFrameSize;  // payload bytes per frame
  // A pipeline silent this long while owing an answer has failed (a node
  // died or stalled); the chunk is resent to a pipeline without the culprit.
  // A little over a node's own downstream timeout (3 s + 1 s per hop), so a
  // live head node usually names the silent node first.
  std::chrono::milliseconds stall_timeout{5000};
  int attempts_per_chunk = 5;   // pipelines tried per chunk before giving up
  // A chunk that fits one frame goes to every replica at once, each storing
  // and reporting its own copy: one round trip instead of one per hop (3 ms
  // of latency → 2 for a 64 KiB file at -r 3 on the development VM, issue 4).
  // false: node to node down
  // the pipeline, as larger chunks go, which sends the bytes out of the
  // client once instead of once per replica.
  bool fan_out = true;
  // The parent directory is made (as mkdir -p) when it does not exist,
  // as HDFS's create does; false: "no such file or directory".
  bool make_parents = false;
  ProgressFn progress;  // empty: none
  std::chrono::milliseconds progress_interval{100};
};

inline constexpr uint64_t kToEnd = UINT64_MAX;

struct GetOptions {
  uint64_t offset = 0;
  uint64_t length = kToEnd;   // bytes from `offset`; kToEnd: the rest of the file
  int parallel = 4;           // chunks fetched at once (unordered reads)
  uint32_t window = 8;        // reads in flight per chunk: the credit a reader grants
  uint32_t frame_size = limits::kDefaultFrameSize;
  // A replica silent this long while owing an answer is abandoned for the
  // next (a node whose disk is saturated can pause for a second or two).
  std::chrono::milliseconds stall_timeout{3000};
  ProgressFn progress;  // empty: none (see PutOptions::progress)
  std::chrono::milliseconds progress_interval{100};
};

// A cluster event the master published (messages/events.proto): a node went
// down, came back or restarted; a chunk lost its last live replica or was
// repaired.
struct ClusterEvent {
  std::string topic;     // "node.down", "node.up", "node.restarted", "chunk.lost", "chunk.repaired", "file.changed"
  uint64_t sequence = 0;  // per master start, from 1: a gap means missed events
  int64_t unix_ms = 0;
  std::string node_id;    // node.* events
  std::string node_address;
  uint64_t chunk_id = 0;  // chunk.* events
  std::string path;       // file.changed: contents at or under it changed
};

class EventWatch;

// Receives verified bytes of a read at their offset in the file. Returning
// an error stops the read with that error.
using ReadSink = std::function<Status(uint64_t file_offset, std::span<const std::byte> bytes)>;

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
  // The names in a directory and which are folders, and nothing else (plain
  // ls): one buffer for them all, a fraction of List's work for a large
  // directory. Sorted as List's.
  struct NameList {
    std::string bytes;              // every name, each followed by '\0'
    std::vector<uint32_t> offsets;  // where each name starts in `bytes`
    std::vector<bool> dirs;
    size_t size() const { return offsets.size(); }
    std::string_view name(size_t i) const { return std::string_view(bytes.data() + offsets[i]); }
  };
  Result<NameList> ListNames(std::string_view path);
  Result<SpaceUsage> DiskUsage(std::string_view path);
  Result<FsStats> StatFs();
  // fsck: chunk health below `path`, listing up to `limit` unhealthy files.
  Result<FsckReport> Fsck(std::string_view path, uint32_t limit = 1000);
  // setrep: every file at or under `path` wants `replication` replicas; the
  // copies and deletes run in the background. Files changed, chunks changed.
  Result<std::pair<uint64_t, uint64_t>> SetReplication(std::string_view path, uint32_t replication);
  // decommission NODE (id or address), or cancel it; the node's id.
  Result<std::string> Decommission(std::string_view node, bool cancel = false);
  Result<BalancerReport> Balancer();

  // Writes, metadata side (the data path streams the chunks in between).
  // BeginWrite fails with "file exists" unless overwrite, and with Busy,
  // naming the path, while another client writes it.
  Result<WriteLease> BeginWrite(std::string_view path, const WriteOptions& options = {});
  // A chunk id and the nodes to write it to; `exclude` lists nodes that
  // failed this write already.
  // `size_hint`: the chunk's size when known (0: a whole chunk size).
  Result<ChunkPlacement> AllocateChunk(const WriteLease& lease, uint32_t index,
                                       const std::vector<std::string>& exclude = {}, uint64_t size_hint = 0);
  // Makes the new version visible, replacing any old one in one step.
  Result<FileStatus> CompleteWrite(const WriteLease& lease, const std::vector<WrittenChunk>& chunks,
                                   uint64_t size, uint32_t checksum);
  Status AbandonWrite(const WriteLease& lease);
  // Extends the leases; returns the ids the master no longer holds.
  Result<std::vector<uint64_t>> RenewLeases(const std::vector<uint64_t>& lease_ids);

  // Data. Put stores a whole file: nothing is visible at `remote` until every
  // chunk is stored on all its replicas with matching checksums and the
  // master committed it; on failure the write is abandoned. Errors are one
  // line naming `remote`.
  //
  // From an open descriptor: a regular file is read at offsets (from its
  // start, whatever the position), anything else once as a stream. `local`
  // names it in errors. Does not close `fd`.
  Result<FileStatus> Put(int fd, std::string_view local, std::string_view remote, const PutOptions& options = {});
  // From memory; `data` must stay valid during the call.
  Result<FileStatus> Put(std::span<const std::byte> data, std::string_view remote, const PutOptions& options = {});
  Result<FileStatus> Put(std::istream& in, std::string_view remote, const PutOptions& options = {});

  // Reads options.offset..+length of `remote`; every frame and (where read
  // whole) every chunk and the whole file are checked against the stored
  // checksums, and a replica that fails is reported to the master and the
  // next one is read instead. `in_order`: `sink` sees the bytes in file
  // order (for a pipe); otherwise pieces arrive in any order, from several
  // chunks at once. Returns the file as the master described it.
  Result<FileStatus> Read(std::string_view remote, const GetOptions& options, bool in_order, const ReadSink& sink);
  // Into a local file: written to a temporary beside it and renamed over
  // `local` only when complete, so a failed get leaves no partial file.
  Result<FileStatus> Get(std::string_view remote, const std::string& local, const GetOptions& options = {});
  // Into an open descriptor: a regular file is written at positions relative
  // to options.offset; anything else (stdout, a pipe) in order.
  Result<FileStatus> Get(std::string_view remote, int fd, const GetOptions& options = {});

  // While *flag is true, a transfer (Put, Read, Get) stops at the next turn
  // of its event loop with Code::kCancelled: a put's streams are aborted
  // and its write abandoned, so nothing of it becomes visible; a get to a
  // local file leaves no file. The flag is the caller's (a SIGINT handler
  // may set it; a signal also wakes the transfer's poll at once) and must
  // outlive the Client or be unset (nullptr) first; the Client never
  // clears it. Requests to the master are not cut short (each is bounded
  // by the timeout).
  void set_interrupt(const std::atomic<bool>* flag);

  // Subscribes to the master's cluster events whose topic starts with
  // `prefix` ("node." for nodes only, "" for all), on the PUB port the
  // master named in its hello. Events published before the subscription
  // reaches the master (a few ms) are not seen.
  Result<std::unique_ptr<EventWatch>> WatchEvents(std::string_view prefix);

  // Where relative paths start; "/" until set (the shell's cd).
  const std::string& working_directory() const;
  // InvalidArgument unless `dir` resolves to an absolute path; does not ask
  // the master whether it exists.
  Status set_working_directory(std::string_view dir);

  // Opaque: the library's own state (client_impl.h), named here so its data
  // path files can take it without befriending each of them.
  struct Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A subscription to the master's events (Client::WatchEvents). Owns a
// socket: use it from the thread that made it. Events queue while nobody
// looks (ZeroMQ keeps up to its high-water mark, then drops the newest).
class EventWatch {
 public:
  ~EventWatch();
  EventWatch(const EventWatch&) = delete;
  EventWatch& operator=(const EventWatch&) = delete;

  // Every event queued now, without waiting.
  Result<std::vector<ClusterEvent>> Take();
  // Waits up to `timeout` (negative: forever) until one of `fds` is
  // readable or an event is queued, whichever comes first; a signal ends
  // the wait early. Returns the fds that are readable (events: call Take).
  Result<std::vector<int>> Wait(std::span<const int> fds, std::chrono::milliseconds timeout);

  struct Impl;
  explicit EventWatch(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfs::client
