#include "master/chunk_manager.h"

#include <algorithm>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace dfs::master {

ChunkManager::ChunkManager(const Namespace& ns, const NodeRegistry& registry, Repairer::Options repair,
                           Clock::time_point start)
    : ns_(ns),
      registry_(registry),
      repairer_(repair, ns, registry, locations_,
                {.alive = [this](uint32_t idx) { return Alive(idx); },
                 .counts = [this](uint32_t idx) { return Counts(idx); },
                 .busy = [this](uint32_t idx) { return load_.in_flight(idx) > 0; },
                 .publish =
                     [this](const std::string& topic, const msg::ChunkEvent& e) {
                       if (publish_) publish_(topic, e);
                     }},
                start),
      balancer_(Balancer::Options{}, ns, registry, locations_, repairer_,
                [this](uint32_t idx) { return Counts(idx); }) {}

void ChunkManager::Connect(Publish publish, bus::Outbox* nodes) {
  publish_ = std::move(publish);
  repairer_.set_node_outbox(nodes);
}

void ChunkManager::NodeUp(const std::string& node_id) {
  const uint32_t idx = locations_.NodeIndex(node_id);
  if (alive_.size() <= idx) alive_.resize(idx + 1, 0);
  alive_[idx] = 1;
}

void ChunkManager::NodeDown(const std::string& node_id) {
  const uint32_t idx = locations_.NodeIndex(node_id);
  if (alive_.size() <= idx) alive_.resize(idx + 1, 0);
  alive_[idx] = 0;
  full_reports_.erase(idx);
  repairer_.NodeDown(idx);
  repairer_.StartCopies(Clock::now());
}

void ChunkManager::HandleReplicated(const NodeMessage& m) {
  const auto& r = m.envelope.replicate_chunk_response();
  const Status failure = r.has_failure() ? bus::FromProto(r.failure()) : Status::OK();
  const bool known = repairer_.Done(m.envelope.request_id(), r.chunk_id(), failure);
  // What the targets stored counts now, known copy or not (a late answer):
  // each is checked against the file's record like any report.
  for (const auto& stored : r.stored()) {
    if (stored.chunk().chunk_id() == r.chunk_id()) AcceptRelayed(stored);
  }
  if (known) repairer_.AfterCopy(r.chunk_id());
  repairer_.StartCopies(Clock::now());  // its slots are free
}

void ChunkManager::HandleReport(const NodeMessage& m, bus::Outbox& out) {
  const auto& req = m.envelope.chunk_report_request();
  const NodeRegistry::Node* node = registry_.Find(req.node_id());
  if (node == nullptr || !node->alive || node->incarnation != req.incarnation()) {
    IgnoreError(bus::ReplyError(out, m, Status::NotFound("unknown node: register first")));
    return;
  }
  const uint32_t idx = locations_.NodeIndex(req.node_id());
  if (req.full() && !full_reports_.contains(idx)) {
    locations_.ForgetNode(idx);  // the full report replaces what we knew
    full_reports_.insert(idx);
  }
  if (req.last_page()) full_reports_.erase(idx);
  msg::NodeEnvelope reply;
  auto* r = reply.mutable_chunk_report_response();
  for (const auto& s : req.stored()) {
    if (!AcceptStored(idx, req.node_id(), s)) *r->add_delete_() = s;
  }
  // Replicas the nodes after this one in its pipelines stored. A node not
  // known alive is skipped: its own report (it sends one with its next
  // heartbeat, and a full one when it registers) says what it holds.
  for (const auto& relayed : req.relayed()) AcceptRelayed(relayed);
  for (const auto& s : req.deleted()) {
    locations_.RemoveReplica(s.chunk_id(), idx);
    repairer_.Check(s.chunk_id());  // freed chunks are gone from the namespace: nothing to do
  }
  for (const auto& s : req.corrupt()) {
    spdlog::warn("node={} found chunk={} v{} corrupt", req.node_id(), s.chunk_id(), s.version());
    locations_.RemoveReplica(s.chunk_id(), idx);
    const ChunkRecord* rec = ns_.FindChunk(s.chunk_id());
    const bool owned = rec != nullptr && rec->version == s.version();
    if (!owned && !writing_.contains(s.chunk_id()) && !in_grace_.contains(s.chunk_id())) {
      *r->add_delete_() = s;  // nothing wants it
      continue;
    }
    // Kept on the node (never served past its bad block) until the chunk
    // has its live replicas again, or is freed: a bad copy is better than none.
    auto& holders = corrupt_[s.chunk_id()];
    if (std::find(holders.begin(), holders.end(), idx) == holders.end()) holders.push_back(idx);
    if (!owned) continue;  // a write or a reader's grace: its end frees it (Free)
    if (repairer_.Live(s.chunk_id()) >= Repairer::Wanted(*rec)) {
      DeleteCorrupt(s.chunk_id());
    } else {
      repairer_.Check(s.chunk_id());
    }
  }
  // An incremental report is answered only when the master has something to
  // say: at several reports per file written, answers that say nothing cost
  // more than anything else in a small file's write. Full-report pages are
  // always answered. A lost report is covered by the full report that
  // follows every registration.
  if (!req.full() && r->delete__size() == 0) return;
  IgnoreError(bus::Reply(out, m, std::move(reply)));
}

bool ChunkManager::AcceptStored(uint32_t idx, const std::string& node_id, const msg::StoredChunk& s) {
  if (const ChunkRecord* rec = ns_.FindChunk(s.chunk_id())) {
    if (rec->version == s.version() && rec->size == s.size() && rec->checksum == s.crc32c()) {
      locations_.AddReplica(s.chunk_id(), idx);
      const uint32_t live = repairer_.Live(s.chunk_id());
      if (live > Repairer::Wanted(*rec)) {
        TrimSurplus(s.chunk_id(), *rec);
      } else if (live < Repairer::Wanted(*rec)) {
        repairer_.Check(s.chunk_id());
      }
      if (live >= Repairer::Wanted(*rec)) DeleteCorrupt(s.chunk_id());
      return true;
    }
    spdlog::warn("node={} holds chunk={} v{} ({} bytes, crc {:08x}) but the file has v{} ({} bytes, crc {:08x}): "
                 "deleting that replica",
                 node_id, s.chunk_id(), s.version(), s.size(), s.crc32c(), uint32_t{rec->version}, rec->size,
                 rec->checksum);
    return false;
  }
  if (writing_.contains(s.chunk_id())) {
    locations_.AddPending(s.chunk_id(), {idx, s.version(), s.crc32c(), s.size()});
    load_.Stored(s.chunk_id(), idx, Clock::now());
    return true;
  }
  if (in_grace_.contains(s.chunk_id())) {
    // Freed, but a reader may still need it: kept, and known here, so that
    // the delete reaches this node too when the grace ends (a node that
    // re-registered meanwhile reported it anew).
    locations_.AddReplica(s.chunk_id(), idx);
    return true;
  }
  return false;  // no file owns it and no write is in progress
}

void ChunkManager::AcceptRelayed(const msg::RelayedChunk& r) {
  const NodeRegistry::Node* holder = registry_.Find(r.node_id());
  if (holder == nullptr || !holder->alive) return;
  const uint32_t idx = locations_.NodeIndex(r.node_id());
  if (!AcceptStored(idx, r.node_id(), r.chunk())) {
    locations_.QueueDelete(idx, r.chunk());  // rides on its next heartbeat answer
  }
}

void ChunkManager::TrimSurplus(uint64_t chunk, const ChunkRecord& rec) {
  // Not while the picture is incomplete (nodes still reporting after a
  // master start) nor while a copy of the chunk is under way.
  if (repairer_.in_holdoff(Clock::now()) || repairer_.repairing(chunk)) return;
  const auto* reps = locations_.Replicas(chunk);
  if (reps == nullptr) return;
  // Live holders, fullest first (the highest used fraction).
  std::vector<std::pair<double, uint32_t>> holders;
  for (uint32_t idx : *reps) {
    if (!Counts(idx)) continue;
    const NodeRegistry::Node* n = registry_.Find(locations_.NodeId(idx));
    const double used = n == nullptr || n->stats.capacity() == 0
                            ? 1.0
                            : 1.0 - static_cast<double>(n->stats.available()) / static_cast<double>(n->stats.capacity());
    holders.emplace_back(used, idx);
  }
  const uint32_t wanted = Repairer::Wanted(rec);
  if (holders.size() <= wanted) return;
  std::sort(holders.begin(), holders.end(), std::greater<>());
  // A balancer's move: the replica it moved away from goes, whatever the others' fill.
  if (auto source = repairer_.TakeMoveSource(chunk)) {
    auto it = std::find_if(holders.begin(), holders.end(), [&](const auto& h) { return h.second == *source; });
    if (it != holders.end()) std::rotate(holders.begin(), it, it + 1);
  }
  msg::StoredChunk gone;
  gone.set_chunk_id(chunk);
  gone.set_version(rec.version);
  gone.set_size(rec.size);
  gone.set_crc32c(rec.checksum);
  const auto due = Clock::now() + std::min<Clock::duration>(free_grace_, kTrimGrace);
  for (size_t i = 0; i < holders.size() - wanted; ++i) {
    const uint32_t idx = holders[i].second;
    spdlog::info("chunk={} has {} live replicas, {} wanted: deleting the one on node={} (the fullest)", chunk,
                 holders.size() - i, wanted, locations_.NodeId(idx));
    // Offered to no new reader from now on; deleted once a reader that
    // located it before has had time to finish.
    locations_.RemoveReplica(chunk, idx);
    trims_.push_back({due, idx, gone});
  }
}

void ChunkManager::DeleteTrimmed(Clock::time_point now) {
  while (!trims_.empty() && trims_.front().due <= now) {
    Trim t = std::move(trims_.front());
    trims_.pop_front();
    const uint64_t chunk = t.chunk.chunk_id();
    // Taken back meanwhile (a copy landed there again): kept.
    const auto* reps = locations_.Replicas(chunk);
    if (reps != nullptr && std::find(reps->begin(), reps->end(), t.node) != reps->end()) continue;
    if (repairer_.repairing(chunk)) {
      trims_.push_back({now + kTrimGrace, t.node, std::move(t.chunk)});  // a copy may be landing there
      continue;
    }
    locations_.QueueDelete(t.node, t.chunk);
  }
}

void ChunkManager::DecorateHeartbeat(const std::string& node_id, msg::HeartbeatResponse* reply) {
  // Bounded per beat so one answer stays small; the rest go on the next ones.
  for (auto& d : locations_.TakeDeletes(locations_.NodeIndex(node_id), 10000)) *reply->add_delete_chunks() = d;
}

void ChunkManager::AddReplicas(uint64_t chunk, msg::ChunkInfo* out) const {
  if (const auto* reps = locations_.Replicas(chunk)) {
    for (uint32_t idx : *reps) out->add_replicas(locations_.NodeId(idx));
  }
}

Status ChunkManager::VerifyReplicas(const msg::CompleteFileRequest& req) const {
  for (const auto& c : req.chunks()) {
    if (c.replicas().empty()) {
      return Status::InvalidArgument(fmt::format("chunk {} names no replica", c.id()));
    }
    const auto* pending = locations_.Pending(c.id());
    int confirmed = 0;
    for (const auto& node_id : c.replicas()) {
      const ChunkLocations::Report* found = nullptr;
      if (pending != nullptr) {
        for (const auto& rep : *pending) {
          if (locations_.NodeId(rep.node) == node_id) found = &rep;
        }
      }
      if (found == nullptr) {
        // A replica that acknowledged the chunk and died before its report
        // arrived is lost, not late: the chunk is under-replicated (repair's
        // work), and the write still completes on the replicas that confirmed.
        const auto* node = registry_.Find(node_id);
        if (node == nullptr || !node->alive) continue;
        return Status::Unavailable(fmt::format("node {} has not confirmed chunk {}", node_id, c.id()));
      }
      if (found->crc != c.checksum() || found->size != c.size() || found->version != c.version()) {
        return Status::Corruption(fmt::format(
            "chunk {}: node {} stored {} bytes with crc {:08x}, the client sent {} bytes with crc {:08x}", c.id(),
            node_id, found->size, found->crc, c.size(), c.checksum()));
      }
      ++confirmed;
    }
    if (confirmed == 0) {
      return Status::Unavailable(fmt::format("no live replica confirmed chunk {}", c.id()));
    }
  }
  return Status::OK();
}

void ChunkManager::Locate(const ClientMessage& m, bus::Outbox& out) const {
  const auto& req = m.envelope.locate_request();
  auto n = ns_.Lookup(req.path());
  if (!n) {
    IgnoreError(bus::ReplyError(out, m, n.error()));
    return;
  }
  if ((*n)->is_dir) {
    IgnoreError(bus::ReplyError(out, m, Status(Code::kIsADirectory, "is a directory: " + req.path())));
    return;
  }
  msg::ClientEnvelope reply;
  auto* r = reply.mutable_locate_response();
  ns_.Describe(*n, false, true, r->mutable_info());
  const uint64_t begin = req.offset();
  // 0, or a range reaching past 2^64, means "to the end".
  const uint64_t end =
      req.length() == 0 || req.length() > UINT64_MAX - req.offset() ? UINT64_MAX : req.offset() + req.length();
  uint64_t offset = 0;
  for (const auto& c : r->info().chunks()) {
    const uint64_t chunk_end = offset + c.size();
    if (chunk_end > begin && offset < end) {
      auto* loc = r->add_chunks();
      *loc->mutable_chunk() = c;
      loc->set_file_offset(offset);
      // Live replicas, least loaded first: credit in use, then bytes out.
      std::vector<std::pair<double, const NodeRegistry::Node*>> live;
      if (const auto* reps = locations_.Replicas(c.id())) {
        for (uint32_t idx : *reps) {
          const auto* node = registry_.Find(locations_.NodeId(idx));
          if (node == nullptr || !node->alive) continue;
          double pool = static_cast<double>(std::max<uint64_t>(1, node->stats.credit_pool()));
          double load = static_cast<double>(node->stats.credit_in_use()) / pool +
                        static_cast<double>(node->stats.bytes_out_per_s()) / 1e12;
          live.emplace_back(load, node);
        }
      }
      std::sort(live.begin(), live.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      for (const auto& [load, node] : live) {
        auto* na = loc->add_replicas();
        na->set_id(node->id);
        na->set_address(node->address);
      }
    }
    offset = chunk_end;
  }
  r->mutable_info()->clear_chunks();  // the locations carry them
  IgnoreError(bus::Reply(out, m, std::move(reply)));
}

void ChunkManager::ReportBadReplica(const ClientMessage& m, bus::Outbox& out) {
  const auto& bad = m.envelope.report_bad_replica_request();
  spdlog::warn("client reports chunk={} bad on node={}: {}", bad.chunk_id(), bad.node_id(), bad.reason());
  // Stop offering it; the node's next full report brings it back if it
  // was a passing fault. Repair from a good copy is the health work's.
  locations_.RemoveReplica(bad.chunk_id(), locations_.NodeIndex(bad.node_id()));
  repairer_.Check(bad.chunk_id());
  msg::ClientEnvelope reply;
  reply.mutable_report_bad_replica_response();
  IgnoreError(bus::Reply(out, m, std::move(reply)));  // the requester retries a lost answer
}

void ChunkManager::TrackWrite(uint64_t chunk, uint64_t lease, const std::vector<std::string>& nodes, uint64_t bytes,
                              Clock::time_point now) {
  writing_[chunk] = lease;
  for (const auto& id : nodes) load_.Placed(chunk, locations_.NodeIndex(id), bytes, now);
}

void ChunkManager::CommitWrite(uint64_t chunk) {
  writing_.erase(chunk);
  load_.Dropped(chunk);
  locations_.TakePending(chunk);
}

void ChunkManager::Release(const std::vector<uint64_t>& chunks) {
  const auto due = Clock::now() + free_grace_;
  for (uint64_t id : chunks) {
    const bool written = writing_.erase(id) != 0;
    if (written) load_.Dropped(id);
    if (!written && free_grace_ > Clock::duration::zero()) {
      // A file held it: readers may still be reading it.
      if (in_grace_.insert(id).second) grace_queue_.emplace_back(due, id);
      continue;
    }
    Free(id);
  }
}

void ChunkManager::Free(uint64_t id) {
  msg::StoredChunk gone;
  gone.set_chunk_id(id);
  gone.set_version(kChunkVersion);
  for (uint32_t node : locations_.Drop(id)) locations_.QueueDelete(node, gone);
  DeleteCorrupt(id);
}

void ChunkManager::Reconcile(const std::vector<uint64_t>& chunks) {
  for (uint64_t id : chunks) {
    const ChunkRecord* rec = ns_.FindChunk(id);
    if (rec == nullptr) continue;
    const uint32_t live = repairer_.Live(id);
    if (live > Repairer::Wanted(*rec)) {
      TrimSurplus(id, *rec);
    } else if (live < Repairer::Wanted(*rec)) {
      repairer_.Check(id);
    }
  }
}

void ChunkManager::DeleteCorrupt(uint64_t chunk) {
  auto it = corrupt_.find(chunk);
  if (it == corrupt_.end()) return;
  msg::StoredChunk gone;
  gone.set_chunk_id(chunk);
  gone.set_version(kChunkVersion);
  const auto* reps = locations_.Replicas(chunk);
  for (uint32_t idx : it->second) {
    // A node that since took a good copy (a repair's target) keeps it.
    if (reps != nullptr && std::find(reps->begin(), reps->end(), idx) != reps->end()) continue;
    spdlog::info("chunk={} has its replicas again: deleting the corrupt one on node={}", chunk,
                 locations_.NodeId(idx));
    locations_.QueueDelete(idx, gone);
  }
  corrupt_.erase(it);
}

void ChunkManager::Tick(Clock::time_point now) {
  while (!grace_queue_.empty() && grace_queue_.front().first <= now) {
    const uint64_t id = grace_queue_.front().second;
    grace_queue_.pop_front();
    in_grace_.erase(id);
    // Chunk ids are never reused, so no file can hold it again; checked
    // all the same, as freeing a live chunk would lose data.
    if (ns_.FindChunk(id) == nullptr) Free(id);
  }
  DeleteTrimmed(now);
  repairer_.Tick(now);
  balancer_.Tick(now);
}

void ChunkManager::SetDraining(const std::string& node_id, bool draining) {
  balancer_.SetDraining(locations_.NodeIndex(node_id), draining);
  if (!draining) {
    // Its replicas count again: what was copied away meanwhile is surplus.
    std::vector<uint64_t> held;
    const uint32_t idx = locations_.NodeIndex(node_id);
    locations_.ForEachReplica([&](uint64_t chunk, const auto& nodes) {
      if (std::find(nodes.begin(), nodes.end(), idx) != nodes.end()) held.push_back(chunk);
    });
    Reconcile(held);
  }
  repairer_.StartCopies(Clock::now());
}

bool ChunkManager::Retired(const std::string& node_id) { return balancer_.retired(locations_.NodeIndex(node_id)); }

void ChunkManager::BalancerStatus(const ClientMessage& m, bus::Outbox& out, Clock::time_point now) {
  msg::ClientEnvelope reply;
  auto* r = reply.mutable_balancer_response();
  r->set_holdoff(repairer_.in_holdoff(now));
  r->set_repair_queue(repairer_.queued());
  r->set_repairing(repairer_.copies() - repairer_.moving());
  r->set_repaired(repairer_.repaired());
  r->set_moving(repairer_.moving());
  r->set_moved(repairer_.moved());
  r->set_threshold(balancer_.threshold());
  r->set_spread(balancer_.spread());
  for (const auto& s : balancer_.Status()) {
    auto* n = r->add_nodes();
    n->set_id(s.id);
    n->set_utilisation(s.utilisation);
    n->set_chunks(s.chunks);
    n->set_state(s.retired ? "retired" : s.draining ? "decommissioning" : "alive");
    n->set_copies_in(s.copies_in);
    n->set_copies_out(s.copies_out);
  }
  IgnoreError(bus::Reply(out, m, std::move(reply)));
}

void ChunkManager::Fsck(const ClientMessage& m, bus::Outbox& out, Clock::time_point now) const {
  const auto& req = m.envelope.fsck_request();
  auto root = ns_.Lookup(req.path().empty() ? "/" : req.path());
  if (!root) {
    IgnoreError(bus::ReplyError(out, m, root.error()));
    return;
  }
  const uint32_t limit = req.limit() == 0 ? 1000 : req.limit();
  msg::ClientEnvelope reply;
  auto* r = reply.mutable_fsck_response();
  uint64_t files = 0, chunks = 0, bytes = 0, under = 0, missing = 0, repairing = 0, over = 0, corrupt = 0;
  std::vector<const Inode*> stack{*root};
  while (!stack.empty()) {
    const Inode* n = stack.back();
    stack.pop_back();
    if (n->is_dir) {
      for (const Inode* child : *n->children) stack.push_back(child);
      continue;
    }
    ++files;
    msg::FsckFile* bad = nullptr;
    uint32_t index = 0;
    for (uint64_t id : n->chunks) {
      const ChunkRecord* rec = ns_.FindChunk(id);
      ++chunks;
      bytes += rec == nullptr ? 0 : rec->size;
      const uint32_t live = repairer_.Live(id);
      const uint32_t wanted = rec == nullptr ? std::max<uint32_t>(1, n->replication) : Repairer::Wanted(*rec);
      const auto bad_copies = corrupt_.find(id);
      const auto n_corrupt = static_cast<uint32_t>(bad_copies == corrupt_.end() ? 0 : bad_copies->second.size());
      if (live > wanted) ++over;
      if (n_corrupt > 0) ++corrupt;
      if (live < wanted) ++(live == 0 ? missing : under);
      if (live != wanted || n_corrupt > 0) {
        const bool copying = live < wanted && repairer_.repairing(id);
        repairing += copying ? 1 : 0;
        if (bad == nullptr && static_cast<uint32_t>(r->unhealthy_size()) < limit) {
          bad = r->add_unhealthy();
          bad->set_path(ns_.PathOf(n));
        } else if (bad == nullptr) {
          r->set_truncated(true);
        }
        if (bad != nullptr) {
          auto* c = bad->add_chunks();
          c->set_chunk_id(id);
          c->set_index(index);
          c->set_live(live);
          c->set_wanted(wanted);
          c->set_repairing(copying);
          c->set_corrupt(n_corrupt);
        }
      }
      ++index;
    }
  }
  std::sort(r->mutable_unhealthy()->begin(), r->mutable_unhealthy()->end(),
            [](const msg::FsckFile& a, const msg::FsckFile& b) { return a.path() < b.path(); });
  r->set_files(files);
  r->set_chunks(chunks);
  r->set_bytes(bytes);
  r->set_under_replicated(under);
  r->set_over_replicated(over);
  r->set_corrupt(corrupt);
  r->set_missing(missing);
  r->set_repairing(repairing);
  r->set_repair_queue(repairer_.queued() + repairer_.copies());
  r->set_repaired(repairer_.repaired());
  r->set_holdoff(repairer_.in_holdoff(now));
  IgnoreError(bus::Reply(out, m, std::move(reply)));  // the requester retries a lost answer
}

}  // namespace dfs::master
