// dfs-bench large and small: the data path end to end through libdfs_client.
//   large: one file of --size from a buffer generated in memory (so the local
//          disk does not bound the put), then read back and compared byte for
//          byte; MiB/s for each.
//   small: C client threads each put their share of N files of --size, then
//          C threads read them all back (checked against the expected CRC);
//          files/s for each.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "bench/report.h"
#include "bench/workloads.h"
#include "common/checksum.h"
#include "common/random_id.h"

namespace dfs::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }
double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Incompressible-looking bytes fast (xorshift64*), so generating 1 GiB costs
// a fraction of a second.
std::vector<std::byte> Generate(uint64_t size, uint64_t seed) {
  std::vector<std::byte> out(size);
  uint64_t x = seed | 1;
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    uint64_t v = x * 0x2545F4914F6CDD1DULL;
    std::memcpy(out.data() + i, &v, 8);
  }
  for (; i < size; ++i) out[i] = static_cast<std::byte>(i * 131);
  return out;
}

// sync + drop_caches: the get then reads the nodes' disks, not their page
// cache. Only root may; the report says whether it happened.
bool DropPageCache() {
  ::sync();
  std::ofstream f("/proc/sys/vm/drop_caches");
  if (!f) return false;
  f << "3\n";
  f.flush();
  return static_cast<bool>(f);
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "dfs-bench: %s\n", message.c_str());
  return 1;
}

}  // namespace

int RunLarge(const LargeOptions& o, bool json) {
  Report report;
  report.workload = "large";
  auto c = client::Client::Connect(o.client);
  if (!c) return Fail(c.error().message());
  const std::vector<std::byte> data = Generate(o.size, RandomU64());
  const uint32_t crc = Crc32c(std::span<const std::byte>(data));
  const std::string dir = "/dfs-bench";
  if (auto r = (*c)->Mkdir(dir, true); !r) return Fail(r.error().message());
  const std::string path = fmt::format("{}/large-{}", dir, RandomHex(4));

  client::PutOptions po;
  po.replication = o.replication;
  po.chunk_size = o.chunk_size;
  po.parallel = o.parallel;
  auto t0 = Clock::now();
  auto put = (*c)->Put(std::span<const std::byte>(data), path, po);
  auto t1 = Clock::now();
  if (!put) return Fail(put.error().message());
  if (put->checksum != crc || put->size != o.size) {
    return Fail(fmt::format("{} committed as {} bytes crc {:08x}; sent {} bytes crc {:08x}", path, put->size,
                            put->checksum, o.size, crc));
  }
  report.phases.push_back(Phase{"put", 1, 0, o.size, Seconds(t1 - t0), {Ms(t1 - t0)}});

  const bool dropped = o.drop_caches && DropPageCache();
  client::GetOptions go;
  go.parallel = o.parallel;
  std::atomic<uint64_t> got{0};
  // Read checks every frame, chunk and the whole file against the master's
  // CRCs, and the master's file CRC was checked against `crc` above; the
  // byte comparison (--verify-bytes) costs a memcmp pass on top.
  auto sink = [&](uint64_t off, std::span<const std::byte> bytes) {
    if (off + bytes.size() > data.size() ||
        (o.verify_bytes && std::memcmp(data.data() + off, bytes.data(), bytes.size()) != 0)) {
      return Status::Corruption(fmt::format("{}: bytes at {} differ from what was put", path, off));
    }
    got += bytes.size();
    return Status::OK();
  };
  t0 = Clock::now();
  auto get = (*c)->Read(path, go, /*in_order=*/false, sink);
  t1 = Clock::now();
  if (!o.keep) IgnoreError((*c)->Remove(path).status());  // best effort cleanup
  if (!get) return Fail(get.error().message());
  if (got != o.size) return Fail(fmt::format("{}: read {} bytes of {}", path, got.load(), o.size));
  report.phases.push_back(Phase{"get", 1, 0, o.size, Seconds(t1 - t0), {Ms(t1 - t0)}});
  report.extra["size"] = o.size;
  report.extra["replication"] = put->replication;
  report.extra["chunks"] = put->chunks.size();
  report.extra["parallel"] = o.parallel;
  report.extra["verified"] = o.verify_bytes ? "byte for byte" : "crc32c of every frame, chunk and the file";
  report.extra["page_cache_dropped_before_get"] = dropped;
  report.Print(json);
  return 0;
}

int RunSmall(const SmallOptions& o, bool json) {
  Report report;
  report.workload = "small";
  auto setup = client::Client::Connect(o.client);
  if (!setup) return Fail(setup.error().message());
  const std::string base = "/dfs-bench/small-" + RandomHex(4);
  if (auto r = (*setup)->Mkdir(base, true); !r) return Fail(r.error().message());
  const int clients = std::max(1, o.clients);
  const uint64_t per = std::max<uint64_t>(1, o.files / static_cast<uint64_t>(clients));
  // One buffer; each file differs in its first 8 bytes (its number), so a
  // file read back under another's name would not pass.
  std::vector<std::byte> content = Generate(o.size, RandomU64());
  auto file_bytes = [&](uint64_t n, std::vector<std::byte>& buf) {
    buf = content;
    std::memcpy(buf.data(), &n, std::min<size_t>(8, buf.size()));
  };
  auto path = [&](int cl, uint64_t i) { return fmt::format("{}/c{}/f{}", base, cl, i); };
  for (int cl = 0; cl < clients; ++cl) {
    if (auto r = (*setup)->Mkdir(fmt::format("{}/c{}", base, cl)); !r) return Fail(r.error().message());
  }

  std::mutex mu;
  std::string first_error;
  auto run_phase = [&](const std::string& name, bool write) {
    Phase phase;
    phase.name = name;
    std::vector<std::thread> threads;
    std::vector<std::vector<double>> lat(static_cast<size_t>(clients));
    std::atomic<uint64_t> errors{0}, bytes{0};
    auto t0 = Clock::now();
    for (int cl = 0; cl < clients; ++cl) {
      threads.emplace_back([&, cl] {
        auto conn = client::Client::Connect(o.client);
        if (!conn) {
          errors += per;
          std::lock_guard lock(mu);
          if (first_error.empty()) first_error = conn.error().message();
          return;
        }
        std::vector<std::byte> buf;
        for (uint64_t i = 0; i < per; ++i) {
          const uint64_t n = static_cast<uint64_t>(cl) * per + i;
          file_bytes(n, buf);
          auto s0 = Clock::now();
          Status st;
          if (write) {
            client::PutOptions po;
            po.replication = o.replication;
            po.fan_out = !o.chain;
            st = (*conn)->Put(std::span<const std::byte>(buf), path(cl, i), po).status();
          } else {
            std::vector<std::byte> got;
            got.reserve(buf.size());
            auto sink = [&](uint64_t, std::span<const std::byte> b) {
              got.insert(got.end(), b.begin(), b.end());
              return Status::OK();
            };
            st = (*conn)->Read(path(cl, i), {}, /*in_order=*/true, sink).status();
            // memcmp: vector<std::byte>'s operator== compares byte by byte
            // here: tens of microseconds per 64 KiB, on the cores the cluster shares.
            if (st.ok() && (got.size() != buf.size() || std::memcmp(got.data(), buf.data(), buf.size()) != 0)) {
              st = Status::Corruption(path(cl, i) + ": read back different bytes");
            }
          }
          lat[static_cast<size_t>(cl)].push_back(Ms(Clock::now() - s0));
          if (!st.ok()) {
            ++errors;
            std::lock_guard lock(mu);
            if (first_error.empty()) first_error = st.message();
          } else {
            bytes += buf.size();
          }
        }
      });
    }
    for (auto& t : threads) t.join();
    phase.seconds = Seconds(Clock::now() - t0);
    phase.ops = per * static_cast<uint64_t>(clients);
    phase.errors = errors;
    phase.bytes = bytes;
    for (auto& l : lat) phase.latencies_ms.insert(phase.latencies_ms.end(), l.begin(), l.end());
    report.phases.push_back(std::move(phase));
  };
  run_phase("put", true);
  if (first_error.empty()) {
    if (o.drop_caches) report.extra["page_cache_dropped_before_get"] = DropPageCache();
    run_phase("get", false);
  }
  IgnoreError((*setup)->Remove(base, true).status());  // best effort cleanup
  report.extra["files"] = per * static_cast<uint64_t>(clients);
  report.extra["size"] = o.size;
  report.extra["clients"] = clients;
  report.extra["replication"] = o.replication;
  report.extra["chain"] = o.chain;
  report.Print(json);
  if (!first_error.empty()) return Fail(first_error);
  return 0;
}

}  // namespace dfs::bench
