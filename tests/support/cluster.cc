#include "tests/support/cluster.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace dfs::test {
namespace {

constexpr auto kStartTimeout = std::chrono::seconds(15);

std::string MakeRoot() {
  std::string base = ::testing::TempDir();
  if (base.empty()) base = "/tmp/";
  std::string tmpl = base + "dfs-test-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  char* dir = ::mkdtemp(buf.data());
  return dir ? std::string(dir) : std::string();
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// "key=value" lines.
uint16_t PortFrom(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + "=", 0) == 0) return static_cast<uint16_t>(std::stoi(line.substr(key.size() + 1)));
  }
  return 0;
}

}  // namespace

MiniCluster::MiniCluster(ClusterOptions options) : options_(std::move(options)), root_(MakeRoot()) {
  master_dir_ = root_ + "/master";
  // Every dfs-cli this test starts keeps its file cache in the test's own
  // folder, never in the user's (one test per process: the variable is ours).
  ::setenv("XDG_CACHE_HOME", (root_ + "/cache").c_str(), 1);
  if (options_.client_cache) ::unsetenv("DFS_NO_CACHE");
  else ::setenv("DFS_NO_CACHE", "1", 1);
}

MiniCluster::~MiniCluster() {
  for (auto& n : nodes_) n.process.Kill();
  master_.Kill();
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  bool failed = info != nullptr && info->result()->Failed();
  if (failed || std::getenv("DFS_KEEP_TEST_DIRS") != nullptr) {
    std::fprintf(stderr, "cluster state and logs kept in %s\n", root_.c_str());
  } else if (!root_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
}

std::string MiniCluster::ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool MiniCluster::Start() {
  if (!StartMaster()) return false;
  for (int i = 0; i < options_.nodes; ++i) {
    if (AddNode() < 0) return false;
  }
  if (!WaitForAliveNodes(options_.nodes, kStartTimeout)) {
    ADD_FAILURE() << "only " << AliveNodes() << " of " << options_.nodes << " nodes alive; logs in " << root_;
    return false;
  }
  return true;
}

bool MiniCluster::StartMaster() {
  std::filesystem::create_directories(master_dir_);
  std::filesystem::remove(master_dir_ + "/master.addr");
  std::vector<std::string> argv{DFS_MASTER_BIN, "--dir", master_dir_, "--dead-after", options_.dead_after};
  if (master_starts_ == 0) {
    argv.insert(argv.end(), {"--port", "0"});
  } else {
    argv.insert(argv.end(), {"--port", std::to_string(client_port_), "--event-port", std::to_string(event_port_),
                             "--node-port", std::to_string(node_port_)});
  }
  argv.insert(argv.end(), options_.master_args.begin(), options_.master_args.end());
  master_ = Process::Start(argv, root_ + "/master.log");
  ++master_starts_;
  const std::string addr_file = master_dir_ + "/master.addr";
  bool up = WaitFor([&] { return !master_.running() || std::filesystem::exists(addr_file); }, kStartTimeout);
  if (!up || !master_.running()) {
    ADD_FAILURE() << "master did not start; log: " << ReadText(root_ + "/master.log");
    return false;
  }
  master_address_ = Trim(ReadText(addr_file));
  std::string ports = ReadText(master_dir_ + "/master.ports");
  client_port_ = PortFrom(ports, "client");
  event_port_ = PortFrom(ports, "events");
  node_port_ = PortFrom(ports, "nodes");
  return true;
}

int MiniCluster::StopMaster() { return master_.Stop(); }
void MiniCluster::KillMaster() { master_.Kill(); }

int MiniCluster::AddNode(std::vector<std::string> args) {
  Node n;
  n.dir = root_ + "/node" + std::to_string(nodes_.size());
  n.args = std::move(args);
  nodes_.push_back(std::move(n));
  int i = static_cast<int>(nodes_.size()) - 1;
  return StartNode(i) ? i : -1;
}

bool MiniCluster::StartNode(int i) {
  Node& n = nodes_.at(static_cast<size_t>(i));
  std::filesystem::create_directories(n.dir);
  std::filesystem::remove(n.dir + "/node.addr");
  std::vector<std::string> argv{DFS_NODE_BIN, "--dir", n.dir, "--master", master_address_};
  argv.insert(argv.end(), options_.node_args.begin(), options_.node_args.end());
  argv.insert(argv.end(), n.args.begin(), n.args.end());
  std::string log = root_ + "/node" + std::to_string(i) + ".log";
  n.process = Process::Start(argv, log);
  bool up = WaitFor([&] { return !n.process.running() || std::filesystem::exists(n.dir + "/node.addr"); },
                    kStartTimeout);
  if (!up || !n.process.running()) {
    ADD_FAILURE() << "node " << i << " did not start; log: " << ReadText(log);
    return false;
  }
  return true;
}

int MiniCluster::StopNode(int i) { return nodes_.at(static_cast<size_t>(i)).process.Stop(); }
void MiniCluster::KillNode(int i) { nodes_.at(static_cast<size_t>(i)).process.Kill(); }

std::string MiniCluster::node_id(int i) const { return Trim(ReadText(node_dir(i) + "/node.id")); }

CommandResult MiniCluster::Cli(const std::vector<std::string>& args, std::chrono::milliseconds timeout,
                               const std::string& stdin_data) const {
  std::vector<std::string> argv{DFS_CLI_BIN, "--master", master_address_};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, timeout, {}, stdin_data);
}

std::string MiniCluster::NodeState(const std::string& id) const {
  auto r = Cli({"--json", "nodes"}, std::chrono::seconds(10));
  if (r.exit_code != 0) return "";
  auto doc = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.contains("nodes")) return "";
  for (const auto& n : doc["nodes"]) {
    if (n.value("id", "") == id) return n.value("state", "");
  }
  return "";
}

int MiniCluster::AliveNodes() const {
  auto r = Cli({"--json", "nodes"}, std::chrono::seconds(10));
  if (r.exit_code != 0) return -1;
  auto doc = nlohmann::json::parse(r.out, nullptr, false);
  if (doc.is_discarded() || !doc.contains("nodes")) return -1;
  int alive = 0;
  for (const auto& n : doc["nodes"]) alive += n.value("state", "") == "alive" ? 1 : 0;
  return alive;
}

bool MiniCluster::WaitForNodeState(const std::string& id, const std::string& state,
                                   std::chrono::milliseconds timeout) const {
  return WaitFor([&] { return NodeState(id) == state; }, timeout);
}

bool MiniCluster::WaitForAliveNodes(int n, std::chrono::milliseconds timeout) const {
  return WaitFor([&] { return AliveNodes() == n; }, timeout);
}

}  // namespace dfs::test
