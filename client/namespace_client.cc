// Client's namespace calls: one request each (List pages), paths resolved
// on this side, answers turned into the plain structs of dfs_client.h.
#include <fmt/format.h>

#include "client/client_impl.h"

namespace dfs::client {

FileStatus FileStatusFromProto(const msg::FileInfo& f) {
  FileStatus s;
  s.path = f.path();
  s.type = f.type() == msg::FileInfo::DIRECTORY ? FileType::kDirectory : FileType::kFile;
  s.inode = f.inode();
  s.size = f.size();
  s.mode = f.mode();
  s.owner = f.owner();
  s.mtime_ms = f.mtime_ms();
  s.ctime_ms = f.ctime_ms();
  s.replication = f.replication();
  s.checksum = f.checksum();
  s.chunk_count = f.chunk_count();
  s.chunks.reserve(static_cast<size_t>(f.chunks_size()));
  for (const auto& c : f.chunks()) {
    ChunkStatus cs;
    cs.id = c.id();
    cs.version = c.version();
    cs.size = c.size();
    cs.checksum = c.checksum();
    cs.replicas.assign(c.replicas().begin(), c.replicas().end());
    s.chunks.push_back(std::move(cs));
  }
  return s;
}

namespace {

FileStatus FromProto(const msg::FileInfo& f) { return FileStatusFromProto(f); }

Status Unexpected(std::string_view what) {
  return Status::ProtocolError(fmt::format("the master answered {} with something else", what));
}

RemoveSummary FromProto(const msg::DeleteResponse& r) {
  return RemoveSummary{.files = r.files(), .directories = r.directories(), .bytes = r.bytes()};
}

// One round trip to the master: the answer to `request` must carry the body
// `has` tests for (else a protocol error naming `what`); returns that body.
template <typename Impl, typename Response>
Result<Response> Ask(Impl& impl, msg::ClientEnvelope request, bool (msg::ClientEnvelope::*has)() const,
                     Response* (msg::ClientEnvelope::*take)(), std::string_view what) {
  DFS_ASSIGN_OR_RETURN(MasterMessage reply, impl.Call(std::move(request)));
  if (!(reply.envelope.*has)()) return Unexpected(what);
  return std::move(*(reply.envelope.*take)());
}

}  // namespace

Result<FileStatus> Client::Mkdir(std::string_view path, bool parents) {
  DFS_ASSIGN_OR_RETURN(std::string p, impl_->Resolve(path));
  msg::ClientEnvelope req;
  auto* m = req.mutable_mkdir_request();
  m->set_path(p);
  m->set_parents(parents);
  DFS_ASSIGN_OR_RETURN(auto r, Ask(*impl_, std::move(req), &msg::ClientEnvelope::has_mkdir_response,
                                    &msg::ClientEnvelope::mutable_mkdir_response, "mkdir"));
  return FromProto(r.info());
}

Result<RemoveSummary> Client::Remove(std::string_view path, bool recursive) {
  DFS_ASSIGN_OR_RETURN(std::string p, impl_->Resolve(path));
  msg::ClientEnvelope req;
  auto* d = req.mutable_delete_request();
  d->set_path(p);
  d->set_recursive(recursive);
  DFS_ASSIGN_OR_RETURN(auto r, Ask(*impl_, std::move(req), &msg::ClientEnvelope::has_delete_response,
                                    &msg::ClientEnvelope::mutable_delete_response, "rm"));
  return FromProto(r);
}

Result<RemoveSummary> Client::Rmdir(std::string_view path) {
  DFS_ASSIGN_OR_RETURN(std::string p, impl_->Resolve(path));
  msg::ClientEnvelope req;
  auto* d = req.mutable_delete_request();
  d->set_path(p);
  d->set_directory(true);
  DFS_ASSIGN_OR_RETURN(auto r, Ask(*impl_, std::move(req), &msg::ClientEnvelope::has_delete_response,
                                    &msg::ClientEnvelope::mutable_delete_response, "rmdir"));
  return FromProto(r);
}

Result<std::string> Client::Rename(std::string_view src, std::string_view dst) {
  DFS_ASSIGN_OR_RETURN(std::string s, impl_->Resolve(src));
  DFS_ASSIGN_OR_RETURN(std::string d, impl_->Resolve(dst));
  msg::ClientEnvelope req;
  auto* mv = req.mutable_rename_request();
  mv->set_source(s);
  mv->set_destination(d);
  DFS_ASSIGN_OR_RETURN(auto r, Ask(*impl_, std::move(req), &msg::ClientEnvelope::has_rename_response,
                                    &msg::ClientEnvelope::mutable_rename_response, "mv"));
  return std::move(*r.mutable_path());
}

Result<FileStatus> Client::Copy(std::string_view src, std::string_view dst) {
  DFS_ASSIGN_OR_RETURN(std::string s, impl_->Resolve(src));
  DFS_ASSIGN_OR_RETURN(std::string d, impl_->Resolve(dst));
  msg::ClientEnvelope req;
  auto* c = req.mutable_copy_request();
  c->set_source(s);
  c->set_destination(d);
  DFS_ASSIGN_OR_RETURN(auto r, Ask(*impl_, std::move(req), &msg::ClientEnvelope::has_copy_response,
                                    &msg::ClientEnvelope::mutable_copy_response, "cp"));
  return FromProto(r.info());
}

Result<FileStatus> Client::Stat(std::string_view path, bool with_chunks) {
  DFS_ASSIGN_OR_RETURN(std::string p, impl_->Resolve(path));
  msg::ClientEnvelope req;
  auto* s = req.mutable_stat_request();
  s->set_path(p);
  s->set_with_chunks(with_chunks);
  DFS_ASSIGN_OR_RETURN(auto r, Ask(*impl_, std::move(req), &msg::ClientEnvelope::has_stat_response,
                                    &msg::ClientEnvelope::mutable_stat_response, "stat"));
  return FromProto(r.info());
}

Result<std::vector<FileStatus>> Client::List(std::string_view path) {
  DFS_ASSIGN_OR_RETURN(std::string p, impl_->Resolve(path));
  std::vector<FileStatus> out;
  std::string start_after;
  for (;;) {
    msg::ClientEnvelope req;
    auto* l = req.mutable_list_request();
    l->set_path(p);
    l->set_start_after(start_after);
    l->set_limit(impl_->options.list_page_size);
    DFS_ASSIGN_OR_RETURN(auto page, Ask(*impl_, std::move(req), &msg::ClientEnvelope::has_list_response,
                                        &msg::ClientEnvelope::mutable_list_response, "ls"));
    out.reserve(out.size() + static_cast<size_t>(page.entries_size()));
    for (const auto& e : page.entries()) {
      // Names come sorted; one that does not follow the last would make
      // the next page start in the wrong place (or never end).
      if (!out.empty() && e.path() <= out.back().path) {
        return Status::ProtocolError(fmt::format("the master listed {} out of order", p));
      }
      out.push_back(FromProto(e));
    }
    if (!page.more()) break;
    if (page.entries_size() == 0) {
      return Status::ProtocolError(fmt::format("the master sent an empty page of {} with more to come", p));
    }
    start_after = out.back().path;
  }
  return out;
}

Result<Client::NameList> Client::ListNames(std::string_view path) {
  DFS_ASSIGN_OR_RETURN(std::string p, impl_->Resolve(path));
  NameList out;
  std::string_view last;
  for (;;) {
    msg::ClientEnvelope req;
    auto* l = req.mutable_list_request();
    l->set_path(p);
    l->set_start_after(std::string(last));
    l->set_limit(impl_->options.list_page_size);
    l->set_names_only(true);
    DFS_ASSIGN_OR_RETURN(auto page, Ask(*impl_, std::move(req), &msg::ClientEnvelope::has_list_response,
                                        &msg::ClientEnvelope::mutable_list_response, "ls"));
    const std::string& names = page.names();
    if (page.entries_size() > 0) {
      // A file lists as itself, one entry (List's rule): its name and type.
      for (const auto& e : page.entries()) {
        out.offsets.push_back(static_cast<uint32_t>(out.bytes.size()));
        out.bytes.append(e.path());
        out.bytes.push_back('\0');
        out.dirs.push_back(e.type() == msg::FileInfo::DIRECTORY);
      }
      return out;
    }
    if (!names.empty() && names.back() != '\0') {
      return Status::ProtocolError(fmt::format("the master's names of {} do not end a name", p));
    }
    const size_t base = out.offsets.size();
    const size_t start = out.bytes.size();
    out.bytes.append(names);
    for (size_t at = start; at < out.bytes.size();) {
      const std::string_view name(out.bytes.data() + at);
      // Sorted, one component each: the next page starts after the last.
      if (name.empty() || name.find('/') != std::string_view::npos ||
          (!out.offsets.empty() && name <= out.name(out.offsets.size() - 1))) {
        return Status::ProtocolError(fmt::format("the master listed {} out of order or with a bad name", p));
      }
      out.offsets.push_back(static_cast<uint32_t>(at));
      at += name.size() + 1;
    }
    const size_t got = out.offsets.size() - base;
    if (page.dirs().size() != (got + 7) / 8) {
      return Status::ProtocolError(fmt::format("the master's folder marks of {} do not match its names", p));
    }
    for (size_t i = 0; i < got; ++i) out.dirs.push_back((static_cast<uint8_t>(page.dirs()[i / 8]) >> (i % 8)) & 1);
    if (!page.more()) break;
    if (got == 0) return Status::ProtocolError(fmt::format("the master sent an empty page of {} with more to come", p));
    last = out.name(out.size() - 1);
  }
  return out;
}

Result<SpaceUsage> Client::DiskUsage(std::string_view path) {
  DFS_ASSIGN_OR_RETURN(std::string p, impl_->Resolve(path));
  msg::ClientEnvelope req;
  req.mutable_disk_usage_request()->set_path(p);
  DFS_ASSIGN_OR_RETURN(auto r, Ask(*impl_, std::move(req), &msg::ClientEnvelope::has_disk_usage_response,
                                    &msg::ClientEnvelope::mutable_disk_usage_response, "du"));
  return SpaceUsage{
      .files = r.files(), .directories = r.directories(), .bytes = r.bytes(), .stored_bytes = r.stored_bytes()};
}

Result<FsStats> Client::StatFs() {
  msg::ClientEnvelope req;
  req.mutable_stat_fs_request();
  DFS_ASSIGN_OR_RETURN(auto r, Ask(*impl_, std::move(req), &msg::ClientEnvelope::has_stat_fs_response,
                                    &msg::ClientEnvelope::mutable_stat_fs_response, "df"));
  return FsStats{.capacity = r.capacity(),
                 .used = r.used(),
                 .available = r.available(),
                 .nodes_alive = r.nodes_alive(),
                 .nodes_dead = r.nodes_dead(),
                 .files = r.files(),
                 .directories = r.directories(),
                 .chunks = r.chunks()};
}

Result<FsckReport> Client::Fsck(std::string_view path, uint32_t limit) {
  DFS_ASSIGN_OR_RETURN(std::string p, impl_->Resolve(path));
  msg::ClientEnvelope req;
  auto* f = req.mutable_fsck_request();
  f->set_path(p);
  f->set_limit(limit);
  DFS_ASSIGN_OR_RETURN(auto r, Ask(*impl_, std::move(req), &msg::ClientEnvelope::has_fsck_response,
                                    &msg::ClientEnvelope::mutable_fsck_response, "fsck"));
  FsckReport out{.files = r.files(),
                 .chunks = r.chunks(),
                 .bytes = r.bytes(),
                 .under_replicated = r.under_replicated(),
                 .over_replicated = r.over_replicated(),
                 .corrupt = r.corrupt(),
                 .missing = r.missing(),
                 .repairing = r.repairing(),
                 .repair_queue = r.repair_queue(),
                 .repaired = r.repaired(),
                 .holdoff = r.holdoff(),
                 .truncated = r.truncated(),
                 .unhealthy = {}};
  for (const auto& file : r.unhealthy()) {
    FsckFile ff{.path = file.path(), .chunks = {}};
    for (const auto& c : file.chunks()) {
      ff.chunks.push_back(
          {.id = c.chunk_id(), .index = c.index(), .live = c.live(), .wanted = c.wanted(), .repairing = c.repairing(),
           .corrupt = c.corrupt()});
    }
    out.unhealthy.push_back(std::move(ff));
  }
  return out;
}

Result<std::pair<uint64_t, uint64_t>> Client::SetReplication(std::string_view path, uint32_t replication) {
  DFS_ASSIGN_OR_RETURN(std::string p, impl_->Resolve(path));
  msg::ClientEnvelope req;
  auto* s = req.mutable_set_replication_request();
  s->set_path(p);
  s->set_replication(replication);
  DFS_ASSIGN_OR_RETURN(auto r, Ask(*impl_, std::move(req), &msg::ClientEnvelope::has_set_replication_response,
                                    &msg::ClientEnvelope::mutable_set_replication_response, "setrep"));
  return std::pair<uint64_t, uint64_t>{r.files(), r.chunks()};
}

Result<std::string> Client::Decommission(std::string_view node, bool cancel) {
  msg::ClientEnvelope req;
  auto* d = req.mutable_decommission_request();
  d->set_node(std::string(node));
  d->set_cancel(cancel);
  DFS_ASSIGN_OR_RETURN(auto r, Ask(*impl_, std::move(req), &msg::ClientEnvelope::has_decommission_response,
                                    &msg::ClientEnvelope::mutable_decommission_response, "decommission"));
  return std::move(*r.mutable_node_id());
}

Result<BalancerReport> Client::Balancer() {
  msg::ClientEnvelope req;
  req.mutable_balancer_request();
  DFS_ASSIGN_OR_RETURN(auto r, Ask(*impl_, std::move(req), &msg::ClientEnvelope::has_balancer_response,
                                    &msg::ClientEnvelope::mutable_balancer_response, "balancer"));
  BalancerReport out{.holdoff = r.holdoff(),
                     .repair_queue = r.repair_queue(),
                     .repairing = r.repairing(),
                     .repaired = r.repaired(),
                     .moving = r.moving(),
                     .moved = r.moved(),
                     .threshold = r.threshold(),
                     .spread = r.spread(),
                     .nodes = {}};
  for (const auto& n : r.nodes()) {
    out.nodes.push_back({.id = n.id(),
                         .utilisation = n.utilisation(),
                         .chunks = n.chunks(),
                         .state = n.state(),
                         .copies_in = n.copies_in(),
                         .copies_out = n.copies_out()});
  }
  return out;
}

const std::string& Client::working_directory() const { return impl_->cwd; }

Status Client::set_working_directory(std::string_view dir) {
  auto p = impl_->Resolve(dir);
  if (!p) return p.error();
  impl_->cwd = std::move(*p);
  return Status::OK();
}

}  // namespace dfs::client
