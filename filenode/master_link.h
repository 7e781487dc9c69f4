// The node's side of the conversation with the master, as a non-blocking
// state machine the node's poll loop drives:
//
//   hello (client port) -> register (node port) -> heartbeat every interval
//
// Any reply counts as proof of life. A master silent for a few intervals is
// presumed gone (paranoid pirate): the link drops both sockets and starts
// again from hello, so a master that restarted, even on other ports, is found
// again. A heartbeat answered "needs_register" registers again at once.
//
// Chunk reports (GFS: the master learns locations from the nodes): after
// every registration, and whenever a heartbeat answer asks, the link sends a
// full report in pages; between them it sends what changed (stored, deleted,
// corrupt), batched per poll turn. As the head of a write pipeline it also
// reports the replicas the nodes after it stored (relayed); those nodes'
// own reports of the same replicas wait for their next heartbeat. The master answers a report only when it
// has something to say (chunks to delete, or a refusal), so most reports
// cost one message, not two. Deletions the master asks for, in heartbeat or
// report answers, go to the `delete_chunks` hook.
//
// Not thread-safe: owned by the node's main thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bus/socket.h"
#include "client_master.pb.h"
#include "node_master.pb.h"
#include "common/net.h"

namespace dfs::filenode {

class MasterLink {
 public:
  using Clock = std::chrono::steady_clock;

  // A full report goes in pages of at most this many chunks (~1.3 MB each),
  // well under the node port's 64 MiB message limit.
  static constexpr size_t kReportPageChunks = 50000;

  struct Config {
    HostAndPort master;             // the client port
    std::string node_id;
    uint64_t incarnation = 0;
    std::string data_address;       // HOST:PORT others dial
    std::chrono::milliseconds heartbeat_interval{1000};
    int silent_intervals = 3;
    // Chunks per page of a full report (kReportPageChunks; tests page smaller).
    size_t report_page_chunks = kReportPageChunks;
  };

  // Every chunk the node holds, for a full report.
  struct Inventory {
    std::vector<msg::StoredChunk> stored;
    std::vector<msg::StoredChunk> corrupt;
  };
  struct Hooks {
    // Fresh figures before every register and heartbeat.
    std::function<msg::NodeStats()> stats;
    std::function<Inventory()> inventory;
    // The master wants these gone; the hook reports them deleted.
    std::function<void(const std::vector<msg::StoredChunk>&)> delete_chunks;
    // The master asks for a copy of a chunk (REPAIR); answered with
    // Replicated() under the same request id.
    std::function<void(uint64_t request_id, const msg::ReplicateChunkRequest&)> replicate;
  };

  MasterLink(bus::Context& ctx, Config config, Hooks hooks);
  ~MasterLink();

  // Changes to report with the next batch (sent from Service). Reports made
  // while unregistered are dropped: the full report after registering
  // covers them.
  void ReportStored(const msg::StoredChunk& chunk);
  // A replica another node of this node's pipeline stored (this node heads
  // the pipeline and reports for all of it, data.proto WRITE).
  void ReportRelayed(const std::string& node_id, msg::StoredChunk chunk);
  // A replica the head of its pipeline reports: ours goes with the next
  // heartbeat, in case the head died before it could.
  void ReportStoredLater(const msg::StoredChunk& chunk);
  void ReportDeleted(const msg::StoredChunk& chunk);
  void ReportCorrupt(const msg::StoredChunk& chunk);

  // A copy the master asked for ended (node_master.proto, REPAIR). Dropped
  // when unregistered: the master gives the copy up on its own.
  void Replicated(uint64_t request_id, msg::ReplicateChunkResponse response);

  // Receives whatever arrived and sends what is due. Never blocks.
  void Service(Clock::time_point now);
  // When Service next has something to do without input.
  Clock::time_point NextWake() const { return next_wake_; }
  // Sockets to poll for input (changes after reconnects: re-read each turn).
  std::vector<bus::Socket*> sockets();
  bool registered() const { return state_ == State::kRegistered; }

 private:
  enum class State { kNeedHello, kAwaitHello, kAwaitRegister, kRegistered };

  void StartHello(Clock::time_point now);
  void SendRegister(Clock::time_point now);
  void SendHeartbeat(Clock::time_point now);
  void HandleHelloSocket(Clock::time_point now);
  void HandleControlSocket(Clock::time_point now);
  void Reset(Clock::time_point now, std::string_view why);
  template <class E>
  Status SendOn(bus::Socket& socket, E env);
  void OnHelloReply(const bus::Message<msg::ClientEnvelope>& m, Clock::time_point now);
  void OnControlMessage(const bus::Message<msg::NodeEnvelope>& m, Clock::time_point now);
  void SendReports();
  Status SendReport(msg::ChunkReportRequest report);
  void HandleDeletes(const google::protobuf::RepeatedPtrField<msg::StoredChunk>& chunks);

  bus::Context& ctx_;
  Config config_;
  Hooks hooks_;
  msg::ChunkReportRequest pending_;        // the next incremental report
  std::vector<msg::StoredChunk> later_;    // stored reports for the next heartbeat
  bool need_full_report_ = false;
  State state_ = State::kNeedHello;
  std::unique_ptr<bus::Socket> hello_socket_;
  std::unique_ptr<bus::Socket> control_socket_;
  uint64_t next_request_id_ = 1;
  uint64_t awaited_request_id_ = 0;
  uint64_t master_incarnation_ = 0;
  Clock::time_point deadline_{};        // for the awaited reply
  Clock::time_point last_heard_{};
  Clock::time_point next_heartbeat_{};
  Clock::time_point next_wake_{};
  std::chrono::milliseconds backoff_{100};
  bool logged_unreachable_ = false;
};

}  // namespace dfs::filenode
