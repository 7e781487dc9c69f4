#include "master/namespace_requests.h"

#include <algorithm>

#include <fmt/format.h>

namespace dfs::master {
namespace {

// Directory listings go in pages of this many entries (about 60 KiB).
constexpr uint32_t kListPage = 1000;
constexpr uint32_t kMaxListPage = 10000;

Catalog::Key KeyOf(const ClientMessage& m) { return {m.envelope.client_id(), m.envelope.request_id()}; }

// Answers `m` on `out` with `reply`, or with `error` when it is not OK.
void AnswerQuery(bus::Outbox& out, const ClientMessage& m, const Status& error, msg::ClientEnvelope reply) {
  // The requester retries a lost answer.
  if (!error.ok()) {
    IgnoreError(bus::ReplyError(out, m, error));
  } else {
    IgnoreError(bus::Reply(out, m, std::move(reply)));
  }
}

}  // namespace

void NamespaceRequests::Mkdir(const ClientMessage& m) {
  const auto& req = m.envelope.mkdir_request();
  auto r = catalog_.NewRecord(m);
  auto* op = r.mutable_mkdir();
  op->set_path(req.path());
  op->set_parents(req.parents());
  op->set_mode(req.mode() & 07777);
  op->set_first_inode(catalog_.ns().next_inode());
  const Namespace& ns = catalog_.ns();
  chunks_.Release(catalog_.Mutate(KeyOf(m), std::move(r), [&ns](const ApplyResult& a, msg::ClientEnvelope& out) {
    ns.Describe(a.inode, false, false, out.mutable_mkdir_response()->mutable_info());
  }));
}

void NamespaceRequests::Delete(const ClientMessage& m) {
  const auto& req = m.envelope.delete_request();
  auto r = catalog_.NewRecord(m);
  auto* op = r.mutable_delete_();
  op->set_path(req.path());
  op->set_recursive(req.recursive());
  op->set_directory(req.directory());
  chunks_.Release(catalog_.Mutate(KeyOf(m), std::move(r), [](const ApplyResult& a, msg::ClientEnvelope& out) {
    auto* d = out.mutable_delete_response();
    d->set_files(a.files);
    d->set_directories(a.directories);
    d->set_bytes(a.bytes);
  }));
}

void NamespaceRequests::Rename(const ClientMessage& m) {
  const auto& req = m.envelope.rename_request();
  if (writes_.Writing(req.source())) {
    return catalog_.AnswerError(KeyOf(m), Status::Busy(fmt::format("busy: {} is being written", req.source())));
  }
  auto r = catalog_.NewRecord(m);
  auto* op = r.mutable_rename();
  op->set_source(req.source());
  op->set_destination(req.destination());
  chunks_.Release(catalog_.Mutate(KeyOf(m), std::move(r), [](const ApplyResult& a, msg::ClientEnvelope& out) {
    out.mutable_rename_response()->set_path(a.path);
  }));
}

void NamespaceRequests::Copy(const ClientMessage& m) {
  const auto& req = m.envelope.copy_request();
  auto r = catalog_.NewRecord(m);
  auto* op = r.mutable_copy();
  op->set_source(req.source());
  op->set_destination(req.destination());
  op->set_inode(catalog_.ns().next_inode());
  const Namespace& ns = catalog_.ns();
  chunks_.Release(catalog_.Mutate(KeyOf(m), std::move(r), [&ns](const ApplyResult& a, msg::ClientEnvelope& out) {
    ns.Describe(a.inode, false, false, out.mutable_copy_response()->mutable_info());
  }));
}

void NamespaceRequests::SetReplication(const ClientMessage& m) {
  const auto& req = m.envelope.set_replication_request();
  auto r = catalog_.NewRecord(m);
  auto* op = r.mutable_set_replication();
  op->set_path(req.path());
  op->set_replication(req.replication());
  std::vector<uint64_t> changed;
  chunks_.Release(catalog_.Mutate(KeyOf(m), std::move(r), [&changed](const ApplyResult& a, msg::ClientEnvelope& out) {
    auto* s = out.mutable_set_replication_response();
    s->set_files(a.files);
    s->set_chunks(a.changed_chunks.size());
    changed = a.changed_chunks;
  }));
  chunks_.Reconcile(changed);
}

void NamespaceRequests::Stat(const ClientMessage& m, bus::Outbox& out) const {
  const auto& req = m.envelope.stat_request();
  auto n = catalog_.ns().Lookup(req.path());
  if (!n) return AnswerQuery(out, m, n.error(), {});
  msg::ClientEnvelope reply;
  auto* info = reply.mutable_stat_response()->mutable_info();
  catalog_.ns().Describe(*n, false, req.with_chunks(), info);
  for (auto& c : *info->mutable_chunks()) chunks_.AddReplicas(c.id(), &c);
  AnswerQuery(out, m, Status::OK(), std::move(reply));
}

void NamespaceRequests::List(const ClientMessage& m, bus::Outbox& out) const {
  const auto& req = m.envelope.list_request();
  const Namespace& ns = catalog_.ns();
  auto n = ns.Lookup(req.path());
  if (!n) return AnswerQuery(out, m, n.error(), {});
  msg::ClientEnvelope reply;
  auto* r = reply.mutable_list_response();
  if (!(*n)->is_dir) {  // ls of a file lists the file, as ls does
    ns.Describe(*n, true, false, r->add_entries());
    return AnswerQuery(out, m, Status::OK(), std::move(reply));
  }
  const uint32_t limit = req.limit() ? std::min(req.limit(), kMaxListPage) : kListPage;
  const auto& children = *(*n)->children;
  auto it = req.start_after().empty() ? children.begin() : children.upper_bound(req.start_after());
  if (req.names_only()) {
    std::string* names = r->mutable_names();
    std::string* dirs = r->mutable_dirs();
    for (uint32_t i = 0; it != children.end() && i < limit; ++it, ++i) {
      names->append((*it)->name.view());
      names->push_back('\0');
      if (i % 8 == 0) dirs->push_back('\0');
      if ((*it)->is_dir) dirs->back() = static_cast<char>(dirs->back() | (1 << (i % 8)));
    }
  } else {
    for (; it != children.end() && static_cast<uint32_t>(r->entries_size()) < limit; ++it) {
      ns.Describe(*it, true, false, r->add_entries());
    }
  }
  r->set_more(it != children.end());
  AnswerQuery(out, m, Status::OK(), std::move(reply));
}

void NamespaceRequests::DiskUsage(const ClientMessage& m, bus::Outbox& out) const {
  auto n = catalog_.ns().Lookup(m.envelope.disk_usage_request().path());
  if (!n) return AnswerQuery(out, m, n.error(), {});
  const UsageTotals t = catalog_.ns().Usage(*n);
  msg::ClientEnvelope reply;
  auto* r = reply.mutable_disk_usage_response();
  r->set_files(t.files);
  r->set_directories(t.directories);
  r->set_bytes(t.bytes);
  r->set_stored_bytes(t.stored_bytes);
  AnswerQuery(out, m, Status::OK(), std::move(reply));
}

void NamespaceRequests::StatFs(const ClientMessage& m, bus::Outbox& out) const {
  msg::ClientEnvelope reply;
  auto* r = reply.mutable_stat_fs_response();
  for (const auto& n : registry_.List(Catalog::Clock::now())) {
    if (n.state() == msg::NodeInfo::ALIVE) {
      r->set_nodes_alive(r->nodes_alive() + 1);
      r->set_capacity(r->capacity() + n.stats().capacity());
      r->set_used(r->used() + n.stats().used());
      r->set_available(r->available() + n.stats().available());
    } else {
      r->set_nodes_dead(r->nodes_dead() + 1);
    }
  }
  r->set_files(catalog_.ns().file_count());
  r->set_directories(catalog_.ns().directory_count());
  r->set_chunks(catalog_.ns().chunk_count());
  AnswerQuery(out, m, Status::OK(), std::move(reply));
}

}  // namespace dfs::master
