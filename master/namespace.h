// The master's namespace: a tree of directories and files in RAM, changed
// only by Apply(record) so that live requests and journal replay run the same
// code. Records carry every id and time they need; Apply never reads a clock.
//
// Memory matters here (it bounds how many files one master holds): names are
// stored once, in the inode, and a directory indexes its children in an
// Abseil B-tree of their pointers ordered by those names (Inode, below).
//
// Chunks are shared between files by `cp`; the namespace counts references
// and reports chunks whose last reference went away, so the caller can delete
// them from the nodes.
//
// Not thread-safe: owned by the master's metadata thread.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <absl/container/btree_set.h>
#include <absl/container/flat_hash_map.h>
#include <absl/types/compare.h>

#include "common/status.h"
#include "master/chunk_list.h"
#include "master/chunk_table.h"
#include "journal.pb.h"

namespace dfs::master {

// A name in 16 bytes: up to 15 bytes inline (most names), longer ones (at
// most 255, path.h) in one heap allocation of their exact length. A
// std::string takes 32.
class InodeName {
 public:
  InodeName() = default;
  InodeName(const InodeName&) = delete;
  InodeName& operator=(const InodeName&) = delete;
  ~InodeName() { Free(); }

  std::string_view view() const {
    if (bytes_[15] != kOnHeap) return {bytes_, static_cast<size_t>(bytes_[15])};
    const char* p;
    std::memcpy(&p, bytes_, sizeof(p));
    return {p, static_cast<unsigned char>(bytes_[8])};
  }
  operator std::string_view() const { return view(); }  // NOLINT: a name is read as a view
  // `name` may be a view of this name itself.
  void assign(std::string_view name) {
    if (name.size() < 16) {
      char copy[15];
      std::memcpy(copy, name.data(), name.size());
      Free();
      std::memcpy(bytes_, copy, name.size());
      bytes_[15] = static_cast<char>(name.size());
      return;
    }
    char* p = new char[name.size()];
    std::memcpy(p, name.data(), name.size());
    Free();
    std::memcpy(bytes_, &p, sizeof(p));
    bytes_[8] = static_cast<char>(static_cast<unsigned char>(name.size()));  // <= 255
    bytes_[15] = kOnHeap;
  }

 private:
  static constexpr char kOnHeap = static_cast<char>(0xFF);
  void Free() {
    if (bytes_[15] != kOnHeap) return;
    char* p;
    std::memcpy(&p, bytes_, sizeof(p));
    delete[] p;
    bytes_[15] = 0;
  }
  // Inline: the bytes, then their count in [15]. On the heap: the pointer in
  // [0, 8), the length in [8], kOnHeap in [15].
  alignas(8) char bytes_[16] = {};
};

struct Inode;

// Orders a directory's children by name; looks them up by name
// (heterogeneous: a child is found by a string_view without building an
// Inode). Three-way, so the B-tree compares each key once.
struct ByName {
  using is_transparent = void;
  static std::string_view Key(const Inode* inode);
  static std::string_view Key(std::string_view name) { return name; }
  template <typename A, typename B>
  absl::weak_ordering operator()(const A& a, const B& b) const {
    const int c = Key(a).compare(Key(b));
    return c < 0 ? absl::weak_ordering::less : c == 0 ? absl::weak_ordering::equivalent : absl::weak_ordering::greater;
  }
};

// 72 bytes (an 80-byte malloc chunk; a std::string name, separate children
// and chunk fields and a name-keyed child map made it 104 + ~24 per entry):
// the name is stored once, here, and a directory's B-tree holds only the
// children's pointers (8 bytes a slot, ~30 slots a node) and orders them by
// their names.
struct Inode {
  using Children = absl::btree_set<Inode*, ByName>;

  explicit Inode(bool dir) : is_dir(dir) {
    if (dir) {
      children = new Children();
    } else {
      new (&chunks) ChunkList();
    }
  }
  ~Inode();
  Inode(const Inode&) = delete;
  Inode& operator=(const Inode&) = delete;

  uint64_t id = 0;
  Inode* parent = nullptr;
  int64_t mtime_ms = 0;
  int64_t ctime_ms = 0;
  uint32_t mode = 0;
  uint32_t owner = 0;  // index into the owner table
  uint32_t checksum = 0;
  uint8_t replication = 0;
  const bool is_dir;
  InodeName name;
  union {
    Children* children;  // directories only: owns the children
    ChunkList chunks;    // files only
  };

  bool IsAncestorOf(const Inode* other) const;
};
static_assert(sizeof(Inode) == 72, "an inode fits an 80-byte malloc chunk");

inline std::string_view ByName::Key(const Inode* inode) { return inode->name.view(); }

// What a mutation did, for the reply and the caller's bookkeeping.
struct ApplyResult {
  const Inode* inode = nullptr;     // created/moved/installed entry
  std::string path;                 // final path (rename, copy)
  uint64_t files = 0, directories = 0, bytes = 0;  // removed (delete)
  std::vector<uint64_t> freed_chunks;  // chunks no file references any more
  std::vector<uint64_t> changed_chunks;  // chunks whose wanted replication changed (setrep)
  bool changed = true;              // false: nothing to journal (mkdir -p of an existing dir)
};

struct UsageTotals {
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t bytes = 0;
  uint64_t stored_bytes = 0;
};

class Namespace {
 public:
  Namespace();
  ~Namespace();

  // Applies one mutation. On error nothing changed.
  Status Apply(const msg::JournalRecord& record, ApplyResult* result);

  Result<const Inode*> Lookup(std::string_view path) const;
  std::string PathOf(const Inode* inode) const;
  const std::string& OwnerName(uint32_t owner) const;
  // FileInfo for stat/ls; `name_only` puts the bare name in `path`.
  void Describe(const Inode* inode, bool name_only, bool with_chunks, msg::FileInfo* out) const;
  UsageTotals Usage(const Inode* root) const;

  // Writes a version check for a file about to be written at `path`: its
  // parent exists and is a directory, `path` is not a directory, and it
  // exists only if `overwrite`.
  Status CheckCreate(std::string_view path, bool overwrite) const;

  // Id sources. Inode ids are journaled with the records that use them.
  uint64_t next_inode() const { return next_inode_; }
  uint64_t chunk_id_limit() const { return chunk_id_limit_; }

  uint64_t file_count() const { return files_; }
  uint64_t directory_count() const { return directories_; }
  uint64_t chunk_count() const { return chunks_.size(); }
  // nullptr when no file holds chunk `id`.
  const ChunkRecord* FindChunk(uint64_t id) const { return chunks_.Find(id); }
  // Every chunk some file holds: f(id, record). O(chunks).
  template <typename F>
  void ForEachChunk(F&& f) const {
    chunks_.ForEach(f);
  }
  // A file's length: the sum of its chunks' (derived, not stored, so an
  // inode fits an 80-byte allocation).
  uint64_t FileSize(const Inode* file) const;

  // Checkpoint: a preorder walk (parents before children), then counters.
  Status Export(const std::function<Status(const msg::CheckpointEntry&)>& sink) const;
  Status Import(const msg::CheckpointEntry& entry);

 private:
  struct Resolved {
    Inode* parent = nullptr;  // the directory that holds (or would hold) the last component
    Inode* node = nullptr;    // the entry itself, when it exists
    std::string_view name;    // the last component
  };
  Result<Resolved> Resolve(std::string_view path) const;

  Status ApplyMkdir(const msg::JournalRecord& r, ApplyResult* out);
  Status ApplyDelete(const msg::JournalRecord& r, ApplyResult* out);
  Status ApplyRename(const msg::JournalRecord& r, ApplyResult* out);
  Status ApplyCopy(const msg::JournalRecord& r, ApplyResult* out);
  Status ApplyInstall(const msg::JournalRecord& r, ApplyResult* out);
  Status ApplySetReplication(const msg::JournalRecord& r, ApplyResult* out);

  Inode* AddChild(Inode* dir, std::unique_ptr<Inode> child);
  std::unique_ptr<Inode> Detach(Inode* node);
  void Release(Inode* node, ApplyResult* out);  // counts and frees chunks of a subtree
  void RefChunks(const ChunkList& chunks, uint32_t replication);
  // Adds a file's chunks from their descriptions (install, import).
  ChunkList AddChunks(const google::protobuf::RepeatedPtrField<msg::ChunkInfo>& chunks, uint32_t replication);
  void UnrefChunks(const ChunkList& chunks, std::vector<uint64_t>* freed);
  uint32_t InternOwner(const std::string& user);
  void Touch(Inode* dir, int64_t ms);

  std::unique_ptr<Inode> root_;
  uint64_t next_inode_ = 2;  // 1 is the root
  uint64_t chunk_id_limit_ = 1;
  uint64_t files_ = 0;
  uint64_t directories_ = 1;
  // Every chunk some file holds.
  ChunkTable chunks_;
  std::vector<std::string> owners_;
  absl::flat_hash_map<std::string, uint32_t> owner_index_;
};

}  // namespace dfs::master
