// The client's file cache (dfs-cli's --cache-*, issue 21): whole files on
// the local disk, each stored with the version the master described when it
// was read or written, so a later get whose version the master confirms is
// served without touching a node.
//
// Never stale, never torn:
// - An entry is served only for the version it holds: the caller compares
//   it with a fresh Stat (Matches), and only when the master cannot be
//   reached does it fall back to an entry the master confirmed within the
//   TTL (Age).
// - An entry is written to a temporary name, its bytes checked against the
//   master's whole-file CRC32C, then renamed into place: a client killed
//   mid-write leaves a temporary (swept later), never an entry.
// - Every serve checks the bytes against the entry's checksum again as they
//   are copied out; an entry that fails (bit rot, a torn write the kernel
//   lost in a power cut) is deleted and the caller reads from the cluster.
//
// Layout: DIR/<master address>/<16 hex digits of the path's hash>.dfc, each
// a header (a magic line and one JSON line: path, inode, size, checksum,
// mtime) padded to 4 KiB, then the file's bytes. The file's mtime is when
// the master last confirmed the version (Confirm touches it), which is also
// the least-recently-used order eviction follows.
//
// Not thread-safe; processes share a cache safely (every change is a rename
// or an unlink of whole entries).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "client/dfs_client.h"
#include "common/status.h"

namespace dfs::client {

struct CacheOptions {
  // "": $XDG_CACHE_HOME/dfs, else $HOME/.cache/dfs.
  std::string dir;
  // How long after the master last confirmed a version it may be served
  // while the master cannot be reached.
  std::chrono::milliseconds ttl{60'000};
  // Bytes of entries kept; the least recently confirmed go first. A file
  // larger than a quarter of it is not cached.
  uint64_t max_bytes = uint64_t{1} << 30;
};

class FileCache {
 public:
  struct Entry {
    std::string path;  // in dfs, absolute
    uint64_t inode = 0;
    uint64_t size = 0;
    uint32_t checksum = 0;
    int64_t mtime_ms = 0;      // the file's, in dfs
    int64_t confirmed_ms = 0;  // Unix ms: the master last confirmed this version
    std::string file;          // the entry's local file
    // The version `status` (a fresh Stat) describes is this one.
    bool Matches(const FileStatus& status) const;
    // Since the master last confirmed it.
    std::chrono::milliseconds Age() const;
  };
  struct Usage {
    std::string dir;
    uint64_t entries = 0;
    uint64_t bytes = 0;
    uint64_t max_bytes = 0;
    std::vector<Entry> list;  // most recently confirmed first
  };

  // The cache of the cluster whose master is `master` (HOST:PORT).
  // Creates its folder; an error names it.
  static Result<FileCache> Open(const CacheOptions& options, const std::string& master);

  const CacheOptions& options() const { return options_; }
  const std::string& dir() const { return dir_; }

  // The entry for `path`, if one is stored (whatever its version).
  std::optional<Entry> Lookup(const std::string& path) const;
  // Copies the entry's bytes [offset, offset+length) to `fd` (at its
  // position, in order), checking the whole file's checksum as it reads.
  // Corruption (and the entry deleted) when they do not match; nothing is
  // written to `fd` then unless it was a pipe or terminal, where a bad
  // block is found only after the blocks before it went out.
  Status CopyTo(const Entry& entry, int fd, uint64_t offset = 0, uint64_t length = UINT64_MAX) const;
  // The master confirmed the entry's version now.
  void Confirm(const Entry& entry) const;
  // Stores the bytes of local file `source` as version `status` of
  // status.path (replacing what was there), if they match its checksum
  // and it is not too large; then evicts down to max_bytes. Returns whether
  // it was stored.
  Result<bool> Insert(const FileStatus& status, const std::string& source);
  // Drops what is stored at or under `path` (a file.changed event, a put
  // from a stream, a file the master no longer has).
  void DropUnder(const std::string& path);
  Usage Scan() const;
  // Removes every entry; returns how many.
  uint64_t Clear();

 private:
  FileCache(CacheOptions options, std::string dir) : options_(std::move(options)), dir_(std::move(dir)) {}
  std::string EntryFile(const std::string& path) const;
  std::optional<Entry> ReadEntry(const std::string& file) const;
  void Evict();

  CacheOptions options_;
  std::string dir_;
};

// The default cache folder ($XDG_CACHE_HOME/dfs, else $HOME/.cache/dfs).
std::string DefaultCacheDir();

}  // namespace dfs::client
