// Put and get through dfs-cli against a real master and three real nodes:
// every size around the chunk boundary at every replication, compared byte
// for byte after get, cat and ranged cat; the CLI contract for an existing
// file, stdin and stdout, seed-style aliases and concurrent writers.
// A small --chunk-size (256K) makes "many chunks" cheap.
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/checksum.h"
#include "tests/integration/data_test_util.h"
#include "tests/support/cluster.h"

namespace dfs::test {
namespace {

using namespace std::chrono_literals;

constexpr size_t kChunk = 256 * 1024;

class DataPutGetTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(cluster_.Start()); }

  std::string Local(const std::string& name) const { return cluster_.root() + "/" + name; }

  // put LOCAL REMOTE with a small chunk size; asserts success. A chunk that
  // fits one frame goes whole in one message, to every replica at once or
  // (`chain`) node to node; `frame_size` below the chunk size makes it a
  // stream of frames.
  void Put(const std::string& bytes, const std::string& remote, int replication,
           const std::string& frame_size = "1M", bool chain = false) {
    const std::string local = Local("in");
    WriteLocal(local, bytes);
    std::vector<std::string> args{"put", "-r", std::to_string(replication), "--chunk-size", "256K", "--frame-size",
                                  frame_size, local, remote};
    if (chain) args.insert(args.begin() + 1, "--chain");
    auto r = cluster_.Cli(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(r.err.empty()) << r.err;
  }

  nlohmann::json StatJson(const std::string& remote) {
    auto r = cluster_.Cli({"--json", "stat", remote});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json();
  }

  MiniCluster cluster_{{.nodes = 3}};
};

TEST_F(DataPutGetTest, EverySizeAroundTheChunkBoundaryAtEveryReplication) {
  const size_t sizes[] = {0, 1, kChunk - 1, kChunk, kChunk + 1, 10 * kChunk};
  // Whole chunks in one message each (to every replica at once, then node
  // to node), then streams of 64 KiB frames.
  const std::pair<std::string, bool> modes[] = {{"1M", false}, {"1M", true}, {"64K", false}};
  for (const auto& [frame, chain] : modes) {
    for (int r = 1; r <= 3; ++r) {
      for (size_t size : sizes) {
        const std::string mode = frame + (chain ? "-chain" : "");
        SCOPED_TRACE("frames of " + mode + ", replication " + std::to_string(r) + ", size " + std::to_string(size));
        const std::string data = RandomBytes(size, size * 7 + static_cast<uint64_t>(r));
        const std::string remote = "/f" + mode + "-r" + std::to_string(r) + "-" + std::to_string(size);
        Put(data, remote, r, frame, chain);

        auto st = StatJson(remote);
        EXPECT_EQ(st["size"], size);
        // The client combines per-chunk CRCs into the file's; check it against one computed whole.
        EXPECT_EQ(st["checksum"], Crc32c(data));
        EXPECT_EQ(st["replication"], r);
        ASSERT_EQ(st["chunks"].size(), (size + kChunk - 1) / kChunk);
        for (const auto& c : st["chunks"]) {
          EXPECT_LE(c["size"].get<size_t>(), kChunk);
          EXPECT_EQ(c["replicas"].size(), static_cast<size_t>(r)) << c.dump();
        }

        const std::string out = Local("out");
        auto g = cluster_.Cli({"get", remote, out});
        ASSERT_EQ(g.exit_code, 0) << g.err;
        EXPECT_TRUE(ReadLocal(out) == data);
        auto c = cluster_.Cli({"cat", remote});
        ASSERT_EQ(c.exit_code, 0) << c.err;
        EXPECT_TRUE(c.out == data);

        // Ranges: the first byte, across a chunk boundary, past the end.
        const std::pair<size_t, size_t> ranges[] = {{0, 1}, {kChunk - 3, 7}, {kChunk + 5, 3 * kChunk}, {size, 10}};
        for (auto [off, len] : ranges) {
          auto rc = cluster_.Cli({"cat", "--offset", std::to_string(off), "--length", std::to_string(len), remote});
          ASSERT_EQ(rc.exit_code, 0) << rc.err;
          const std::string want = off < size ? data.substr(off, len) : "";
          EXPECT_TRUE(rc.out == want) << "range " << off << "+" << len << ": got " << rc.out.size() << " bytes";
        }
      }
    }
  }
}

// Small files one after another through one client: after the first two,
// each goes on the lease the last one's completion brought (a spare), and
// straight to every replica. A master restart in the middle loses the spare
// the client holds; the next put finds out at completion and writes the
// file again on a lease of its own. Every file reads back as written.
TEST_F(DataPutGetTest, ARunOfSmallPutsThroughOneClientOutlivesAMasterRestart) {
  auto c = ConnectClient(cluster_.master_address());
  ASSERT_TRUE(c);
  std::vector<std::string> written;
  auto put = [&](int i) {
    const std::string data = RandomBytes(1000 + static_cast<size_t>(i) * 997, 40 + static_cast<uint64_t>(i));
    const std::string path = "/run-" + std::to_string(i);
    auto st = PutBytes(*c, data, path, 3);
    ASSERT_TRUE(st) << path << ": " << st.error().ToString();
    EXPECT_EQ(st->size, data.size());
    written.push_back(data);
  };
  for (int i = 0; i < 6; ++i) put(i);
  cluster_.KillMaster();
  ASSERT_TRUE(cluster_.StartMaster());
  ASSERT_TRUE(cluster_.WaitForAliveNodes(3, 10s)) << "alive: " << cluster_.AliveNodes();
  for (int i = 6; i < 12; ++i) put(i);
  for (size_t i = 0; i < written.size(); ++i) {
    const std::string path = "/run-" + std::to_string(i);
    auto r = cluster_.Cli({"cat", path});
    ASSERT_EQ(r.exit_code, 0) << path << ": " << r.err;
    EXPECT_TRUE(r.out == written[i]) << path;
    auto st = StatJson(path);
    ASSERT_EQ(st["chunks"].size(), 1u);
    EXPECT_EQ(st["chunks"][0]["replicas"].size(), 3u) << st.dump();
  }
}

// Clients on several threads of one process, as dfs-bench small runs them:
// one that ends early must not disturb the others, and a client made after
// every other one has gone works. Each thread writes small files and a file
// of several chunks and reads them all back through its own client.
TEST_F(DataPutGetTest, ClientsOnSeveralThreadsOfOneProcessOutliveEachOther) {
  constexpr int kThreads = 4;
  std::vector<std::string> errors(kThreads);
  auto read_back = [](client::Client& c, const std::string& path) -> Result<std::string> {
    std::string got;
    auto st = c.Read(path, {}, /*in_order=*/true, [&](uint64_t, std::span<const std::byte> b) {
      got.append(reinterpret_cast<const char*>(b.data()), b.size());
      return Status::OK();
    });
    if (!st) return st.error();
    return got;
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::string& err = errors[static_cast<size_t>(t)];
      auto c = ConnectClient(cluster_.master_address());
      if (!c) {
        err = "cannot connect";
        return;
      }
      // Thread 0 leaves after one file, while the others are mid-run.
      const int files = t == 0 ? 1 : 12;
      for (int i = 0; i < files && err.empty(); ++i) {
        const size_t size = i == 5 ? 3 * kChunk + 17 : 100 + static_cast<size_t>(i) * 4099;
        const std::string data = RandomBytes(size, static_cast<uint64_t>(t * 100 + i));
        const std::string path = fmt::format("/t{}-{}", t, i);
        client::PutOptions po;
        po.replication = 2;
        po.chunk_size = kChunk;
        auto put = c->Put(std::as_bytes(std::span(data)), path, po);
        if (!put) {
          err = path + ": " + put.error().ToString();
          break;
        }
        auto got = read_back(*c, path);
        if (!got) err = path + ": " + got.error().ToString();
        else if (*got != data) err = path + ": read back different bytes";
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(errors[static_cast<size_t>(t)], "") << "thread " << t;
  auto later = ConnectClient(cluster_.master_address());
  ASSERT_TRUE(later);
  auto got = read_back(*later, "/t1-5");
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_TRUE(*got == RandomBytes(3 * kChunk + 17, 105));
}

// 16 chunks at once want 16 x 4 MiB of credit from nodes that have 8 MiB
// each: most opens are answered Busy. The put waits for credit instead of
// taking the nodes for failed (it used to exclude them and give up).
TEST(DataCreditTest, AParallelPutWaitsForBusyNodes) {
  MiniCluster cluster({.nodes = 3, .node_args = {"--credit-pool", "8M"}});
  ASSERT_TRUE(cluster.Start());
  const std::string data = RandomBytes(64 << 20, 77);
  const std::string local = cluster.root() + "/in";
  WriteLocal(local, data);
  auto p = cluster.Cli({"put", "-r", "3", "--chunk-size", "4M", "--parallel", "16", local, "/busy"}, 120s);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  auto c = cluster.Cli({"cat", "/busy"}, 60s);
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_TRUE(c.out == data) << "read " << c.out.size() << " bytes of " << data.size();
}

TEST_F(DataPutGetTest, PutOntoAnExistingFileNeedsForce) {
  Put("first", "/f", 1);
  WriteLocal(Local("second"), "second version");
  auto r = cluster_.Cli({"put", Local("second"), "/f"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "dfs-cli: file exists: /f (use -f to overwrite)\n");
  auto c = cluster_.Cli({"cat", "/f"});
  EXPECT_EQ(c.out, "first");
  r = cluster_.Cli({"put", "-f", Local("second"), "/f"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(cluster_.Cli({"cat", "/f"}).out, "second version");
}

TEST_F(DataPutGetTest, StdinPutAndStdoutGet) {
  const std::string data = RandomBytes(3 * kChunk + 123, 42);
  auto p = cluster_.Cli({"put", "--chunk-size", "256K", "-", "/piped"}, 60s, data);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  auto g = cluster_.Cli({"get", "/piped", "-"});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  EXPECT_TRUE(g.out == data);
  EXPECT_EQ(StatJson("/piped")["chunks"].size(), 4u);
  // An empty stdin makes an empty file.
  ASSERT_EQ(cluster_.Cli({"put", "-", "/empty"}, 60s, "").exit_code, 0);
  EXPECT_EQ(StatJson("/empty")["size"], 0);
}

TEST_F(DataPutGetTest, PutAndGetIntoDirectoriesAndSeedAliases) {
  ASSERT_EQ(cluster_.Cli({"mkdir", "/docs"}).exit_code, 0);
  WriteLocal(Local("notes.txt"), "seed style");
  // -u SERVER_DIR LOCAL (the path in dfs first): into the directory under the local name.
  auto u = cluster_.Cli({"-u", "/docs", Local("notes.txt")});
  ASSERT_EQ(u.exit_code, 0) << u.err;
  EXPECT_EQ(cluster_.Cli({"cat", "/docs/notes.txt"}).out, "seed style");
  // -d SERVER_FILE LOCAL_DIR.
  std::filesystem::create_directory(Local("down"));
  auto d = cluster_.Cli({"-d", "/docs/notes.txt", Local("down")});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_EQ(ReadLocal(Local("down/notes.txt")), "seed style");
  // No temporary is left beside it.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(Local("down")), {}), 1);
}

TEST_F(DataPutGetTest, FailuresAreOneLineNamingThePath) {
  auto g = cluster_.Cli({"get", "/missing", Local("x")});
  EXPECT_EQ(g.exit_code, 1);
  EXPECT_NE(g.err.find("/missing"), std::string::npos) << g.err;
  EXPECT_EQ(std::count(g.err.begin(), g.err.end(), '\n'), 1) << g.err;
  EXPECT_FALSE(std::filesystem::exists(Local("x")));
  auto c = cluster_.Cli({"cat", "/"});
  EXPECT_EQ(c.exit_code, 1);
  EXPECT_NE(c.err.find("is a directory: /"), std::string::npos) << c.err;
  auto p = cluster_.Cli({"put", Local("no-such-file"), "/x"});
  EXPECT_EQ(p.exit_code, 1);
  EXPECT_NE(p.err.find("no-such-file"), std::string::npos) << p.err;
  auto r = cluster_.Cli({"put", "-r", "4", "-", "/four"}, 60s, "data");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/four"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("-r"), std::string::npos) << r.err;
  EXPECT_EQ(cluster_.Cli({"stat", "/four"}).exit_code, 1);  // nothing partial is visible
  EXPECT_EQ(cluster_.Cli({"put"}).exit_code, 2);
}

TEST_F(DataPutGetTest, ConcurrentPutsOfDifferentFiles) {
  constexpr int kWriters = 4;
  std::vector<std::string> data;
  for (int i = 0; i < kWriters; ++i) {
    data.push_back(RandomBytes(10 * kChunk + static_cast<size_t>(i), 100 + static_cast<uint64_t>(i)));
    WriteLocal(Local("c" + std::to_string(i)), data.back());
  }
  std::vector<CommandResult> results(kWriters);
  std::vector<std::thread> threads;
  for (int i = 0; i < kWriters; ++i) {
    threads.emplace_back([&, i] {
      results[static_cast<size_t>(i)] = cluster_.Cli(
          {"put", "-r", "2", "--chunk-size", "256K", Local("c" + std::to_string(i)), "/c" + std::to_string(i)});
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kWriters; ++i) {
    ASSERT_EQ(results[static_cast<size_t>(i)].exit_code, 0) << results[static_cast<size_t>(i)].err;
    auto c = cluster_.Cli({"cat", "/c" + std::to_string(i)});
    EXPECT_TRUE(c.out == data[static_cast<size_t>(i)]) << "file " << i;
  }
}

// A producer slower than the write lease (tar | dfs-cli put -): the put
// keeps renewing while it waits for input, so the write still commits.
TEST(DataSlowWriterTest, TheLeaseOutlivesASlowProducer) {
  MiniCluster cluster({.nodes = 1, .master_args = {"--lease-time", "1s"}});
  ASSERT_TRUE(cluster.Start());
  const std::string data = RandomBytes(3 * kChunk + 1000, 9);
  PipedCli put({"--master", cluster.master_address(), "put", "-r", "1", "--chunk-size", "256K", "-", "/slow"},
               cluster.root());
  for (size_t off = 0; off < data.size(); off += kChunk + 500) {
    ASSERT_TRUE(put.Write(data.substr(off, kChunk + 500)));
    // The scenario itself: the producer stays quiet for longer than the lease.
    std::this_thread::sleep_for(1500ms);  // not a wait for a condition; nothing to poll
  }
  auto rc = put.Finish(60s);
  ASSERT_TRUE(rc.has_value());
  ASSERT_EQ(*rc, 0) << put.err();
  auto c = cluster.Cli({"cat", "/slow"});
  EXPECT_TRUE(c.out == data);
}

}  // namespace
}  // namespace dfs::test
