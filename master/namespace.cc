#include "master/namespace.h"

#include <fmt/format.h>

#include "common/limits.h"
#include "master/path.h"

namespace dfs::master {
namespace {

constexpr uint32_t kDefaultDirMode = 0755;
constexpr uint32_t kDefaultFileMode = 0644;

Status NoSuch(std::string_view path) { return Status::NotFound(fmt::format("no such file or directory: {}", path)); }
Status Exists(std::string_view path) { return Status::AlreadyExists(fmt::format("file exists: {}", path)); }
Status NotDir(std::string_view path) {
  return Status(Code::kNotADirectory, fmt::format("not a directory: {}", path));
}
Status IsDir(std::string_view path) { return Status(Code::kIsADirectory, fmt::format("is a directory: {}", path)); }


}  // namespace

Inode::~Inode() {
  if (is_dir) {
    for (Inode* child : *children) delete child;
    delete children;
  } else {
    chunks.~ChunkList();
  }
}

bool Inode::IsAncestorOf(const Inode* other) const {
  for (const Inode* p = other; p != nullptr; p = p->parent) {
    if (p == this) return true;
  }
  return false;
}

Namespace::Namespace() : root_(std::make_unique<Inode>(true)) {
  root_->id = 1;
  root_->mode = kDefaultDirMode;
  InternOwner("root");
}

Namespace::~Namespace() = default;

uint32_t Namespace::InternOwner(const std::string& user) {
  auto [it, inserted] = owner_index_.try_emplace(user, static_cast<uint32_t>(owners_.size()));
  if (inserted) owners_.push_back(user);
  return it->second;
}

const std::string& Namespace::OwnerName(uint32_t owner) const {
  static const std::string kUnknown = "?";
  return owner < owners_.size() ? owners_[owner] : kUnknown;
}

Result<Namespace::Resolved> Namespace::Resolve(std::string_view path) const {
  DFS_ASSIGN_OR_RETURN(auto parts, SplitPath(path));
  Resolved r;
  if (parts.empty()) {
    r.node = root_.get();
    return r;
  }
  Inode* dir = root_.get();
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    auto it = dir->children->find(parts[i]);
    if (it == dir->children->end()) return NoSuch(JoinPath(parts, i + 1));
    dir = *it;
    if (!dir->is_dir) return NotDir(JoinPath(parts, i + 1));
  }
  r.parent = dir;
  r.name = parts.back();
  auto it = dir->children->find(r.name);
  if (it != dir->children->end()) r.node = *it;
  return r;
}

Result<const Inode*> Namespace::Lookup(std::string_view path) const {
  DFS_ASSIGN_OR_RETURN(Resolved r, Resolve(path));
  if (r.node == nullptr) return NoSuch(path);
  return static_cast<const Inode*>(r.node);
}

std::string Namespace::PathOf(const Inode* inode) const {
  if (inode == nullptr || inode->parent == nullptr) return "/";
  std::vector<std::string_view> names;
  for (const Inode* p = inode; p->parent != nullptr; p = p->parent) names.push_back(p->name);
  std::string out;
  for (auto it = names.rbegin(); it != names.rend(); ++it) {
    out += '/';
    out += *it;
  }
  return out;
}

Inode* Namespace::AddChild(Inode* dir, std::unique_ptr<Inode> child) {
  child->parent = dir;
  Inode* raw = child.release();  // the directory owns it now
  dir->children->insert(raw);
  if (raw->is_dir) ++directories_;
  else ++files_;
  return raw;
}

std::unique_ptr<Inode> Namespace::Detach(Inode* node) {
  Inode* dir = node->parent;
  auto it = dir->children->find(node->name.view());
  std::unique_ptr<Inode> owned(*it);
  dir->children->erase(it);
  owned->parent = nullptr;
  if (owned->is_dir) --directories_;
  else --files_;
  return owned;
}

void Namespace::Touch(Inode* dir, int64_t ms) {
  if (dir != nullptr) {
    dir->mtime_ms = ms;
    dir->ctime_ms = ms;
  }
}

ChunkList Namespace::AddChunks(const google::protobuf::RepeatedPtrField<msg::ChunkInfo>& in,
                               uint32_t replication) {
  ChunkList out;
  out.reserve(static_cast<uint32_t>(in.size()));
  for (const auto& c : in) {
    ChunkRecord& rec = chunks_.Insert(
        c.id(), ChunkRecord{static_cast<uint32_t>(c.size()), c.version() & 0xFFFFFF, 0, c.checksum(), 0});
    ++rec.refs;  // a checkpoint lists a shared chunk once per file
    rec.replication = std::max<uint32_t>(rec.replication, std::min<uint32_t>(replication, 255));
    out.push_back(c.id());
  }
  return out;
}

void Namespace::RefChunks(const ChunkList& chunks, uint32_t replication) {
  for (uint64_t id : chunks) {
    ChunkRecord& rec = chunks_.Insert(id, ChunkRecord{});
    ++rec.refs;
    rec.replication = std::max<uint32_t>(rec.replication, std::min<uint32_t>(replication, 255));
  }
}

uint64_t Namespace::FileSize(const Inode* file) const {
  uint64_t total = 0;
  if (file->is_dir) return total;
  for (uint64_t id : file->chunks) {
    if (const ChunkRecord* c = FindChunk(id)) total += c->size;
  }
  return total;
}

void Namespace::UnrefChunks(const ChunkList& chunks, std::vector<uint64_t>* freed) {
  for (uint64_t id : chunks) {
    ChunkRecord* rec = chunks_.Find(id);
    if (rec == nullptr) continue;
    if (--rec->refs > 0) continue;
    chunks_.Erase(id);
    if (freed != nullptr) freed->push_back(id);
  }
}

void Namespace::Release(Inode* node, ApplyResult* out) {
  if (node->is_dir) {
    ++out->directories;
    for (Inode* child : *node->children) {
      Release(child, out);
      if (child->is_dir) --directories_;
      else --files_;
    }
  } else {
    ++out->files;
    out->bytes += FileSize(node);
    UnrefChunks(node->chunks, &out->freed_chunks);
  }
}

Status Namespace::Apply(const msg::JournalRecord& r, ApplyResult* out) {
  ApplyResult local;
  if (out == nullptr) out = &local;
  switch (r.op_case()) {
    case msg::JournalRecord::kMkdir: return ApplyMkdir(r, out);
    case msg::JournalRecord::kDelete: return ApplyDelete(r, out);
    case msg::JournalRecord::kRename: return ApplyRename(r, out);
    case msg::JournalRecord::kCopy: return ApplyCopy(r, out);
    case msg::JournalRecord::kInstallFile: return ApplyInstall(r, out);
    case msg::JournalRecord::kSetReplication: return ApplySetReplication(r, out);
    case msg::JournalRecord::kReserveIds:
      chunk_id_limit_ = std::max(chunk_id_limit_, r.reserve_ids().chunk_id_limit());
      return Status::OK();
    case msg::JournalRecord::OP_NOT_SET: break;
  }
  return Status::Corruption("journal record with no operation");
}

Status Namespace::ApplyMkdir(const msg::JournalRecord& r, ApplyResult* out) {
  const auto& op = r.mkdir();
  DFS_ASSIGN_OR_RETURN(auto parts, SplitPath(op.path()));
  if (parts.empty()) {
    if (op.parents()) {
      out->inode = root_.get();
      out->changed = false;
      return Status::OK();
    }
    return Exists("/");
  }
  // Walk as far as the path exists; check everything before changing anything.
  Inode* dir = root_.get();
  size_t i = 0;
  for (; i < parts.size(); ++i) {
    auto it = dir->children->find(parts[i]);
    if (it == dir->children->end()) break;
    Inode* next = *it;
    if (!next->is_dir) {
      return i + 1 == parts.size() ? Exists(op.path()) : NotDir(JoinPath(parts, i + 1));
    }
    dir = next;
  }
  if (i == parts.size()) {
    if (!op.parents()) return Exists(op.path());
    out->inode = dir;
    out->changed = false;
    return Status::OK();
  }
  if (!op.parents() && i + 1 < parts.size()) return NoSuch(JoinPath(parts, i + 1));
  uint64_t id = op.first_inode();
  if (id < 2) return Status::Internal("mkdir record without inode ids");
  uint32_t owner = InternOwner(r.user());
  Touch(dir, r.unix_ms());
  for (; i < parts.size(); ++i) {
    auto child = std::make_unique<Inode>(true);
    child->id = id++;
    child->name.assign(parts[i]);
    child->mode = op.mode() ? op.mode() : kDefaultDirMode;
    child->owner = owner;
    child->mtime_ms = child->ctime_ms = r.unix_ms();
    dir = AddChild(dir, std::move(child));
  }
  next_inode_ = std::max(next_inode_, id);
  out->inode = dir;
  return Status::OK();
}

Status Namespace::ApplyDelete(const msg::JournalRecord& r, ApplyResult* out) {
  const auto& op = r.delete_();
  DFS_ASSIGN_OR_RETURN(Resolved res, Resolve(op.path()));
  if (res.node == nullptr) return NoSuch(op.path());
  if (res.node == root_.get()) return Status::InvalidArgument("cannot remove /");
  Inode* node = res.node;
  if (op.directory()) {
    if (!node->is_dir) return NotDir(op.path());
    if (!node->children->empty()) {
      return Status(Code::kNotEmpty, fmt::format("directory not empty: {}", op.path()));
    }
  } else if (!op.recursive() && node->is_dir) {
    return Status(Code::kIsADirectory, fmt::format("is a directory: {} (a directory is removed recursively or as a directory)", op.path()));
  }
  Touch(node->parent, r.unix_ms());
  std::unique_ptr<Inode> gone = Detach(node);
  Release(gone.get(), out);
  return Status::OK();
}

Status Namespace::ApplyRename(const msg::JournalRecord& r, ApplyResult* out) {
  const auto& op = r.rename();
  DFS_ASSIGN_OR_RETURN(Resolved src, Resolve(op.source()));
  if (src.node == nullptr) return NoSuch(op.source());
  if (src.node == root_.get()) return Status::InvalidArgument("cannot move /");
  DFS_ASSIGN_OR_RETURN(Resolved dst, Resolve(op.destination()));
  Inode* target_dir = dst.parent;
  std::string_view target_name = dst.name;
  std::string target_path = op.destination();
  Inode* existing = dst.node;
  if (existing != nullptr && existing->is_dir) {
    // Into an existing directory, as mv does.
    target_dir = existing;
    target_name = src.node->name;
    target_path = PathOf(existing);
    if (target_path != "/") target_path += '/';
    target_path += target_name;
    auto it = existing->children->find(target_name);
    existing = it == existing->children->end() ? nullptr : *it;
  }
  if (target_dir == nullptr) return Status::InvalidArgument("cannot replace /");
  if (src.node->is_dir && src.node->IsAncestorOf(target_dir)) {
    return Status::InvalidArgument(
        fmt::format("cannot move {} into its own subtree {}", op.source(), target_path));
  }
  if (existing == src.node) {  // onto itself
    out->inode = src.node;
    out->path = target_path;
    out->changed = false;
    return Status::OK();
  }
  if (existing != nullptr) {
    if (existing->is_dir) return Exists(target_path);
    if (src.node->is_dir) return NotDir(target_path);
  }
  // Checks done; now change. A file replaced by the move is released.
  if (existing != nullptr) {
    std::unique_ptr<Inode> replaced = Detach(existing);
    ApplyResult dropped;
    Release(replaced.get(), &dropped);
    out->freed_chunks = std::move(dropped.freed_chunks);
  }
  Touch(src.node->parent, r.unix_ms());
  std::unique_ptr<Inode> moving = Detach(src.node);
  moving->name.assign(target_name);  // may view its own name: assign copes
  moving->ctime_ms = r.unix_ms();
  Touch(target_dir, r.unix_ms());
  out->inode = AddChild(target_dir, std::move(moving));
  out->path = target_path;
  return Status::OK();
}

Status Namespace::ApplyCopy(const msg::JournalRecord& r, ApplyResult* out) {
  const auto& op = r.copy();
  DFS_ASSIGN_OR_RETURN(Resolved src, Resolve(op.source()));
  if (src.node == nullptr) return NoSuch(op.source());
  if (src.node->is_dir) return IsDir(op.source());
  DFS_ASSIGN_OR_RETURN(Resolved dst, Resolve(op.destination()));
  Inode* target_dir = dst.parent;
  std::string target_name(dst.name);
  std::string target_path = op.destination();
  if (dst.node != nullptr && dst.node->is_dir) {
    target_dir = dst.node;
    target_name = std::string(src.node->name.view());
    target_path = PathOf(dst.node);
    target_path += (target_path == "/" ? "" : "/") + target_name;
    if (dst.node->children->contains(target_name)) return Exists(target_path);
  } else if (dst.node != nullptr) {
    return Exists(target_path);
  }
  if (target_dir == nullptr) return Exists("/");
  auto copy = std::make_unique<Inode>(false);
  copy->id = op.inode();
  copy->name.assign(target_name);
  copy->mode = src.node->mode;
  copy->owner = InternOwner(r.user());
  copy->mtime_ms = copy->ctime_ms = r.unix_ms();
  copy->checksum = src.node->checksum;
  copy->replication = src.node->replication;
  copy->chunks = src.node->chunks;
  RefChunks(copy->chunks, copy->replication);  // shared, not copied: instant, no bytes move
  next_inode_ = std::max(next_inode_, op.inode() + 1);
  Touch(target_dir, r.unix_ms());
  out->inode = AddChild(target_dir, std::move(copy));
  out->path = target_path;
  return Status::OK();
}

Status Namespace::ApplySetReplication(const msg::JournalRecord& r, ApplyResult* out) {
  const auto& op = r.set_replication();
  DFS_RETURN_IF_ERROR(limits::CheckReplication(op.replication()));
  DFS_ASSIGN_OR_RETURN(Resolved res, Resolve(op.path()));
  if (res.node == nullptr) return NoSuch(op.path());
  const auto want = static_cast<uint8_t>(op.replication());
  out->changed = false;
  std::vector<Inode*> stack{res.node};
  while (!stack.empty()) {
    Inode* n = stack.back();
    stack.pop_back();
    if (n->is_dir) {
      for (Inode* child : *n->children) stack.push_back(child);
      continue;
    }
    if (n->replication == want) continue;
    n->replication = want;
    n->ctime_ms = r.unix_ms();
    out->changed = true;
    ++out->files;
    for (uint64_t id : n->chunks) {
      ChunkRecord* rec = chunks_.Find(id);
      if (rec == nullptr) continue;
      // A chunk wants the most any file holding it wants. Shared (cp) and
      // lowered, the others' wish is not known here: it keeps the higher
      // count until a restart derives it exactly.
      const uint32_t next = rec->refs <= 1 ? want : std::max<uint32_t>(rec->replication, want);
      if (next == rec->replication) continue;
      rec->replication = next;
      out->changed_chunks.push_back(id);
    }
  }
  out->inode = res.node;
  return Status::OK();
}

Status Namespace::CheckCreate(std::string_view path, bool overwrite) const {
  DFS_ASSIGN_OR_RETURN(Resolved res, Resolve(path));
  if (res.parent == nullptr) return IsDir("/");
  if (res.node != nullptr) {
    if (res.node->is_dir) return IsDir(path);
    if (!overwrite) return Status::AlreadyExists(fmt::format("file exists: {}", path));
  }
  return Status::OK();
}

Status Namespace::ApplyInstall(const msg::JournalRecord& r, ApplyResult* out) {
  const auto& op = r.install_file();
  DFS_RETURN_IF_ERROR(CheckCreate(op.path(), op.overwrite()));
  DFS_ASSIGN_OR_RETURN(Resolved res, Resolve(op.path()));
  auto file = std::make_unique<Inode>(false);
  file->id = op.inode();
  file->name.assign(res.name);
  file->mode = op.mode() ? op.mode() : kDefaultFileMode;
  file->owner = InternOwner(r.user());
  file->mtime_ms = file->ctime_ms = r.unix_ms();
  file->checksum = op.checksum();
  file->replication = static_cast<uint8_t>(op.replication());
  if (res.node != nullptr) {
    // The new version replaces the old one in one step; the old chunks go.
    std::unique_ptr<Inode> old = Detach(res.node);
    ApplyResult dropped;
    Release(old.get(), &dropped);
    out->freed_chunks = std::move(dropped.freed_chunks);
  }
  file->chunks = AddChunks(op.chunks(), file->replication);
  next_inode_ = std::max(next_inode_, op.inode() + 1);
  Touch(res.parent, r.unix_ms());
  out->inode = AddChild(res.parent, std::move(file));
  out->path = op.path();
  return Status::OK();
}

void Namespace::Describe(const Inode* n, bool name_only, bool with_chunks, msg::FileInfo* out) const {
  if (name_only) {
    out->mutable_path()->assign(n->name.view());
  } else {
    out->set_path(PathOf(n));
  }
  out->set_type(n->is_dir ? msg::FileInfo::DIRECTORY : msg::FileInfo::FILE);
  out->set_inode(n->id);
  out->set_size(n->is_dir ? n->children->size() : FileSize(n));
  out->set_mode(n->mode);
  out->set_owner(OwnerName(n->owner));
  out->set_mtime_ms(n->mtime_ms);
  out->set_ctime_ms(n->ctime_ms);
  out->set_replication(n->replication);
  out->set_checksum(n->checksum);
  if (!n->is_dir) out->set_chunk_count(n->chunks.size());
  if (with_chunks && !n->is_dir) {
    for (uint64_t id : n->chunks) {
      auto* ci = out->add_chunks();
      ci->set_id(id);
      if (const ChunkRecord* c = FindChunk(id)) {
        ci->set_version(c->version);
        ci->set_size(c->size);
        ci->set_checksum(c->checksum);
      }
    }
  }
}

UsageTotals Namespace::Usage(const Inode* node) const {
  UsageTotals t;
  std::vector<const Inode*> stack{node};
  while (!stack.empty()) {
    const Inode* n = stack.back();
    stack.pop_back();
    if (n->is_dir) {
      ++t.directories;
      for (const Inode* child : *n->children) stack.push_back(child);
    } else {
      ++t.files;
      const uint64_t size = FileSize(n);
      t.bytes += size;
      t.stored_bytes += size * n->replication;
    }
  }
  return t;
}

Status Namespace::Export(const std::function<Status(const msg::CheckpointEntry&)>& sink) const {
  msg::CheckpointEntry e;
  std::vector<const Inode*> stack;
  for (auto it = root_->children->rbegin(); it != root_->children->rend(); ++it) stack.push_back(*it);
  while (!stack.empty()) {
    const Inode* n = stack.back();
    stack.pop_back();
    e.Clear();
    auto* ci = e.mutable_inode();
    ci->set_path(PathOf(n));
    ci->set_type(n->is_dir ? msg::FileInfo::DIRECTORY : msg::FileInfo::FILE);
    ci->set_inode(n->id);
    ci->set_mode(n->mode);
    ci->set_owner(OwnerName(n->owner));
    ci->set_mtime_ms(n->mtime_ms);
    ci->set_ctime_ms(n->ctime_ms);
    ci->set_replication(n->replication);
    ci->set_size(FileSize(n));
    ci->set_checksum(n->checksum);
    const uint64_t* ids = n->is_dir ? nullptr : n->chunks.begin();  // a directory has none
    const uint64_t* ids_end = n->is_dir ? nullptr : n->chunks.end();
    for (; ids != ids_end; ++ids) {
      auto* ch = ci->add_chunks();
      ch->set_id(*ids);
      if (const ChunkRecord* c = FindChunk(*ids)) {
        ch->set_version(c->version);
        ch->set_size(c->size);
        ch->set_checksum(c->checksum);
      }
    }
    DFS_RETURN_IF_ERROR(sink(e));
    if (n->is_dir) {
      for (auto it = n->children->rbegin(); it != n->children->rend(); ++it) stack.push_back(*it);
    }
  }
  e.Clear();
  e.mutable_counters()->set_next_inode(next_inode_);
  e.mutable_counters()->set_chunk_id_limit(chunk_id_limit_);
  return sink(e);
}

Status Namespace::Import(const msg::CheckpointEntry& e) {
  if (e.has_counters()) {
    next_inode_ = std::max(next_inode_, e.counters().next_inode());
    chunk_id_limit_ = std::max(chunk_id_limit_, e.counters().chunk_id_limit());
    return Status::OK();
  }
  if (!e.has_inode()) return Status::Corruption("checkpoint entry with no content");
  const auto& ci = e.inode();
  DFS_ASSIGN_OR_RETURN(Resolved res, Resolve(ci.path()));
  if (res.parent == nullptr || res.node != nullptr) {
    return Status::Corruption(fmt::format("checkpoint entry {} duplicates or replaces /", ci.path()));
  }
  auto n = std::make_unique<Inode>(ci.type() == msg::FileInfo::DIRECTORY);
  n->id = ci.inode();
  n->name.assign(res.name);
  n->mode = ci.mode();
  n->owner = InternOwner(ci.owner());
  n->mtime_ms = ci.mtime_ms();
  n->ctime_ms = ci.ctime_ms();
  n->replication = static_cast<uint8_t>(ci.replication());
  n->checksum = ci.checksum();
  if (!n->is_dir) n->chunks = AddChunks(ci.chunks(), n->replication);
  next_inode_ = std::max(next_inode_, n->id + 1);
  AddChild(res.parent, std::move(n));
  return Status::OK();
}

}  // namespace dfs::master
