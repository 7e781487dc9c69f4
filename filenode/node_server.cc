#include "filenode/node_server.h"

#include <algorithm>

#include <boost/filesystem/operations.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/net.h"
#include "common/random_id.h"
#include "common/units.h"
#include "filenode/node_identity.h"

namespace dfs::filenode {

namespace {

msg::StoredChunk ToStoredChunk(const ChunkMeta& c) {
  msg::StoredChunk out;
  out.set_chunk_id(c.key.id);
  out.set_version(c.key.version);
  out.set_size(c.size);
  out.set_crc32c(c.crc32c);
  return out;
}

}  // namespace

NodeServer::NodeServer(NodeOptions options) : options_(std::move(options)), incarnation_(RandomU64()) {}
NodeServer::~NodeServer() = default;

Status NodeServer::Start() {
  DFS_ASSIGN_OR_RETURN(DirLock lock, DirLock::Acquire(options_.dir, "dfs-node"));
  lock_.emplace(std::move(lock));
  fault_env_ = MakeFaultEnv(options_.disk_faults, Env::Default());
  if (fault_env_) spdlog::warn("--unsafe-fault-*: disk faults will be injected into {}", options_.dir);
  Env* env = fault_env_ ? fault_env_.get() : Env::Default();
  DFS_ASSIGN_OR_RETURN(node_id_, LoadOrCreateNodeId(options_.dir, env));
  DFS_ASSIGN_OR_RETURN(HostAndPort master, ParseHostPort(options_.master, 5550));
  ChunkStoreOptions so;
  so.volume_max_chunk = options_.volume_max_chunk;
  so.volume_prepare = options_.volume_prepare;
  so.drop_behind = !options_.keep_written_pages;
  so.volume_size = options_.volume_size;
  so.compaction = options_.compaction;
  so.env = env;
  store_ = std::make_unique<ChunkStore>(options_.dir, so);
  DFS_RETURN_IF_ERROR(store_->Scan().status());

  context_ = std::make_unique<bus::Context>();
  bus::SocketOptions data;
  DFS_ASSIGN_OR_RETURN(bus::Socket s, bus::Socket::Create(*context_, bus::SocketType::kRouter, data));
  DFS_RETURN_IF_ERROR(s.Bind(TcpEndpoint(options_.bind, options_.port)));
  DFS_ASSIGN_OR_RETURN(uint16_t port, PortOfEndpoint(s.endpoint()));
  data_socket_ = std::make_unique<bus::Socket>(std::move(s));
  data_address_ = HostPort(options_.advertise.empty() ? options_.bind : options_.advertise, port);
  DFS_RETURN_IF_ERROR(WriteFileDurably(Env::Default(), options_.dir + "/node.addr", data_address_ + "\n"));

  MasterLink::Config lc;
  lc.master = master;
  lc.node_id = node_id_;
  lc.incarnation = incarnation_;
  lc.data_address = data_address_;
  lc.heartbeat_interval = options_.heartbeat_interval;
  lc.silent_intervals = options_.master_silent_intervals;
  MasterLink::Hooks hooks;
  hooks.stats = [this] { return Stats(); };
  hooks.inventory = [this] { return Inventory(); };
  hooks.delete_chunks = [this](const std::vector<msg::StoredChunk>& c) { DeleteChunks(c); };
  hooks.replicate = [this](uint64_t request_id, const msg::ReplicateChunkRequest& r) {
    replicator_->Start(request_id, r, std::chrono::steady_clock::now());
  };
  link_ = std::make_unique<MasterLink>(*context_, lc, std::move(hooks));

  PipelineOptions po;
  po.credit_pool = options_.credit_pool;
  po.upstream_silence = options_.upstream_silence;
  po.downstream_timeout = options_.downstream_timeout;
  po.capacity = options_.capacity;
  po.max_write_rate = options_.max_write_rate;
  DataService::Events events;
  events.stored = [this](StoredEvent e) {
    msg::StoredChunk mine = ToStoredChunk(e.local);
    if (e.reported_upstream) return link_->ReportStoredLater(mine);
    link_->ReportStored(mine);
    for (const auto& r : e.downstream) {
      msg::StoredChunk theirs = mine;
      theirs.set_size(r.size());
      theirs.set_crc32c(r.crc32c());
      link_->ReportRelayed(r.node_id(), std::move(theirs));
    }
  };
  events.corrupt = [this](const ChunkMeta& c) { link_->ReportCorrupt(ToStoredChunk(c)); };
  data_ = std::make_unique<DataService>(*context_, *data_socket_, *store_, node_id_, po, std::move(events));
  DFS_RETURN_IF_ERROR(data_->Start());
  replicator_ = std::make_unique<Replicator>(*context_, *store_, node_id_, Replicator::Config{},
                                             [this](const ChunkMeta& c) { link_->ReportCorrupt(ToStoredChunk(c)); });
  Scrubber::Config sc;
  sc.rate = options_.scrub_rate;
  sc.interval = options_.scrub_interval;
  scrubber_ = std::make_unique<Scrubber>(*store_, node_id_, sc,
                                         [this](const ChunkMeta& c) { link_->ReportCorrupt(ToStoredChunk(c)); });
  spdlog::info("node={} up data={} master={} dir={}", node_id_, data_address_, options_.master, options_.dir);
  return Status::OK();
}

MasterLink::Inventory NodeServer::Inventory() const {
  MasterLink::Inventory inv;
  for (const auto& c : store_->List()) (c.corrupt ? inv.corrupt : inv.stored).push_back(ToStoredChunk(c.meta));
  return inv;
}

void NodeServer::DeleteChunks(const std::vector<msg::StoredChunk>& chunks) {
  for (const auto& c : chunks) {
    ChunkKey key{c.chunk_id(), c.version()};
    Status s = store_->Delete(key);
    if (!s.ok() && s.code() != Code::kNotFound) {
      spdlog::warn("node={} cannot delete {}: {}", node_id_, ChunkName(key), s.ToString());
      continue;
    }
    // Gone either way: say so, so the master's map converges.
    link_->ReportDeleted(c);
  }
}

msg::NodeStats NodeServer::Stats() {
  msg::NodeStats st;
  boost::system::error_code ec;
  auto space = boost::filesystem::space(options_.dir, ec);
  // What the chunks take on disk, volumes whole: space deleted chunks held
  // shows as used until compaction gives it back.
  uint64_t used = store_->disk_bytes();
  uint64_t fs_capacity = ec ? 0 : space.capacity;
  uint64_t fs_available = ec ? 0 : space.available;
  fs_available = fs_available > options_.reserve ? fs_available - options_.reserve : 0;  // --reserve
  if (ec) spdlog::warn("cannot read free space of {}: {}", options_.dir, ec.message());
  uint64_t capacity = options_.capacity ? options_.capacity : fs_capacity;
  uint64_t left = capacity > used ? capacity - used : 0;
  st.set_capacity(capacity);
  st.set_used(used);
  st.set_available(std::min(fs_available, left));
  st.set_chunks(store_->chunk_count());
  if (store_->disk_failed()) {
    st.set_disk_failed(true);
    st.set_disk_error(store_->disk_error());
  }
  data_->FillStats(st, std::chrono::steady_clock::now());
  return st;
}

Status NodeServer::Run(int stop_fd) {
  using Clock = std::chrono::steady_clock;
  if (options_.adaptive_cpu >= 0) pin_.emplace(options_.adaptive_cpu, options_.wide_cpus);
  for (;;) {
    // Downstream answers and finished chunks first, then the master link,
    // which sends the chunk reports this turn produced.
    auto now = Clock::now();
    data_->Service(now);
    replicator_->Service(now);
    scrubber_->Service(now);
    for (auto& done : replicator_->Take()) link_->Replicated(done.request_id, std::move(done.response));
    // Found by compaction on the volume thread; within a second (the
    // loop's longest wait).
    for (const ChunkMeta& c : store_->TakeFoundCorrupt()) link_->ReportCorrupt(ToStoredChunk(c));
    link_->Service(now);
    if (pin_) {
      // Spread at once when a large stream shows up; back on one CPU after
      // a quiet second (the loop wakes at least once a second).
      const bool pinned = now - data_->last_large() >= std::chrono::seconds(1);
      if (pinned != pin_->pinned()) {
        if (Status s = pin_->Set(pinned); !s.ok()) {
          spdlog::warn("node={} --cpu adaptive: {}; leaving threads where they are", node_id_, s.ToString());
          pin_.reset();
        } else {
          SPDLOG_DEBUG("node={} threads {}", node_id_, pinned ? "back on one CPU" : "spread for a large stream");
        }
      }
    }
    // The link's sockets change when it reconnects, and downstream links
    // come and go, so the poll set is rebuilt each turn; it is a few entries.
    bus::Poller poller;
    const size_t stop_idx = poller.AddFd(stop_fd);
    const size_t data_idx = poller.Add(*data_socket_);
    for (bus::Socket* s : link_->sockets()) poller.Add(*s);
    data_->AddTo(poller);
    replicator_->AddTo(poller);
    auto wake = std::min({link_->NextWake(), data_->NextWake(now), replicator_->NextWake(now),
                          scrubber_->NextWake(now)});
    auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(wake - Clock::now());
    timeout = std::clamp(timeout, std::chrono::milliseconds(0), std::chrono::milliseconds(1000));
    DFS_ASSIGN_OR_RETURN(int ready, poller.Wait(timeout));
    (void)ready;
    if (poller.Readable(stop_idx)) {
      spdlog::info("node={} stopping on signal", node_id_);
      return Status::OK();
    }
    if (poller.Readable(data_idx)) {
      auto r = bus::Drain<msg::DataEnvelope>(*data_socket_, 256, [this](DataMessage& m) {
        HandleData(m);
        return true;
      });
      if (!r) spdlog::error("data port receive failed: {}", r.error().ToString());
    }
  }
}

void NodeServer::HandleData(DataMessage& m) {
  if (!m.defect.ok()) {
    if (auto n = defect_log_.Allow()) {
      spdlog::warn("refused message on data port: {} ({} similar)", m.defect.message(), n - 1);
    }
    IgnoreError(bus::ReplyError(*data_socket_, m, m.defect));  // the sender may be gone
    return;
  }
  if (data_->Handle(m, std::chrono::steady_clock::now())) return;
  msg::DataEnvelope reply;
  switch (m.envelope.body_case()) {
    case msg::DataEnvelope::kPingRequest:
      reply.mutable_ping_response()->set_incarnation(incarnation_);
      break;
    default:
      *reply.mutable_error() = bus::ToProto(Status::ProtocolError(fmt::format(
          "node data port does not serve request type {}", static_cast<int>(m.envelope.body_case()))));
  }
  IgnoreError(bus::Reply(*data_socket_, m, std::move(reply)));  // the requester retries
}

}  // namespace dfs::filenode
