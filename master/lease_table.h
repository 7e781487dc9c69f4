// Write leases: one writer per path at a time. A lease holds the chunks
// allocated for the version being written; they join the namespace only when
// the write completes. Leases are not journaled: after a master restart a
// writer's complete fails ("lease expired") and it writes again, while the
// chunks it wrote belong to no file and are deleted as orphans.
//
// Not thread-safe: owned by the metadata thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace dfs::master {

struct Lease {
  uint64_t id = 0;
  std::string path;
  uint64_t client_id = 0;
  std::string user;
  bool overwrite = false;
  uint32_t replication = 0;
  uint64_t chunk_size = 0;
  uint32_t mode = 0;
  std::chrono::steady_clock::time_point expires;
  std::vector<uint64_t> chunks;  // allocated so far, in allocation order
  // A spare (CompleteFileRequest, SPARE LEASES): no path until a completion
  // names one (LeaseTable::Claim).
  bool spare() const { return path.empty(); }
};

class LeaseTable {
 public:
  using Clock = std::chrono::steady_clock;

  // nullptr when `path` is free.
  const Lease* Holder(const std::string& path) const {
    auto it = by_path_.find(path);
    return it == by_path_.end() ? nullptr : &leases_.at(it->second);
  }
  Lease* Find(uint64_t id) {
    auto it = leases_.find(id);
    return it == leases_.end() ? nullptr : &it->second;
  }
  Lease& Add(Lease lease) {
    if (!lease.spare()) by_path_[lease.path] = lease.id;
    return leases_[lease.id] = std::move(lease);
  }
  // A spare lease becomes the lease on `path` (free: Holder(path) is null).
  void Claim(Lease& spare, std::string path) {
    spare.path = std::move(path);
    by_path_[spare.path] = spare.id;
  }
  // Removes the lease and returns it.
  Lease Remove(uint64_t id) {
    Lease l = std::move(leases_.at(id));
    leases_.erase(id);
    if (!l.spare()) by_path_.erase(l.path);
    return l;
  }
  // Leases whose holder stopped renewing.
  std::vector<uint64_t> Expired(Clock::time_point now) const {
    std::vector<uint64_t> out;
    for (const auto& [id, l] : leases_) {
      if (l.expires <= now) out.push_back(id);
    }
    return out;
  }
  size_t size() const { return leases_.size(); }

 private:
  std::map<uint64_t, Lease> leases_;
  std::unordered_map<std::string, uint64_t> by_path_;
};

}  // namespace dfs::master
