// zmq_throughput: what ZeroMQ itself moves on this machine, the limit the
// data path is measured against (bench/limits.sh). Raw cppzmq on purpose:
// it measures the transport, not dfs's bus.
//   stream of 1 MiB messages, PUSH -> PULL over tcp://127.0.0.1, two
//     contexts (as two processes would be): copied into each message, and
//     zero-copy (the message points at the buffer, as a frame filled by
//     pread does);
//   4 KiB request/reply round trips, one in flight (a small file's cost);
//   the CPU one message costs with both cores busy: 4 request/reply pairs
//   at once (as 4 clients would be), each end with its own context and I/O
//   thread (as separate processes would be), with 4 KiB and with 64 KiB
//   messages, CPU time of every thread (user + system) per message sent.
//   That is the floor under a small file's cost: dfs-bench small sends a
//   known number of messages per file (bench/limits.sh).
// Prints one JSON document.
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <sys/resource.h>

#include <zmq.hpp>

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double Stream(size_t size, int count, bool zero_copy) {
  zmq::context_t rctx(1), sctx(1);
  zmq::socket_t pull(rctx, zmq::socket_type::pull);
  pull.set(zmq::sockopt::rcvhwm, 64);
  pull.bind("tcp://127.0.0.1:*");
  const std::string ep = pull.get(zmq::sockopt::last_endpoint);
  std::vector<char> buf(size, 'x');
  std::thread sender([&] {
    zmq::socket_t push(sctx, zmq::socket_type::push);
    push.set(zmq::sockopt::sndhwm, 64);
    push.connect(ep);
    for (int i = 0; i < count; ++i) {
      zmq::message_t m = zero_copy ? zmq::message_t(buf.data(), buf.size(), nullptr, nullptr)
                                   : zmq::message_t(buf.data(), buf.size());
      (void)push.send(m, zmq::send_flags::none);
    }
  });
  zmq::message_t m;
  (void)pull.recv(m);  // the clock starts once the connection carries data
  const auto t0 = Clock::now();
  for (int i = 1; i < count; ++i) (void)pull.recv(m);
  const double s = Seconds(Clock::now() - t0);
  sender.join();
  return static_cast<double>(size) * (count - 1) / s / (1024.0 * 1024.0);
}

// One request/reply pair, each end with its own context (as two processes
// would be), echoing `size`-byte messages for `seconds` after a warm-up
// that connects. Returns the round trips made and the time they took.
std::pair<long, double> EchoLoop(size_t size, double seconds) {
  zmq::context_t rctx(1), sctx(1);
  zmq::socket_t rep(rctx, zmq::socket_type::rep);
  rep.bind("tcp://127.0.0.1:*");
  const std::string ep = rep.get(zmq::sockopt::last_endpoint);
  std::thread server([&] {
    zmq::message_t m;
    while (rep.recv(m)) {
      const bool last = m.size() == 0;
      (void)rep.send(m, zmq::send_flags::none);
      if (last) return;
    }
  });
  zmq::socket_t req(sctx, zmq::socket_type::req);
  req.connect(ep);
  std::vector<char> buf(size, 'y');
  zmq::message_t reply;
  (void)req.send(zmq::buffer(buf), zmq::send_flags::none);  // warm-up: connect
  (void)req.recv(reply);
  long n = 0;
  const auto t0 = Clock::now();
  double elapsed = 0;
  while (elapsed < seconds) {
    (void)req.send(zmq::buffer(buf), zmq::send_flags::none);
    (void)req.recv(reply);
    if (++n % 256 == 0) elapsed = Seconds(Clock::now() - t0);
  }
  elapsed = Seconds(Clock::now() - t0);
  (void)req.send(zmq::message_t(), zmq::send_flags::none);
  (void)req.recv(reply);
  server.join();
  return {n, elapsed};
}

double RoundTrips(size_t size, double seconds) {
  auto [n, elapsed] = EchoLoop(size, seconds);
  return static_cast<double>(n) / elapsed;
}

double CpuSeconds() {
  rusage r{};
  ::getrusage(RUSAGE_SELF, &r);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return s(r.ru_utime) + s(r.ru_stime);
}

// Microseconds of CPU (all threads) per message, `pairs` round-trip loops
// of `size`-byte messages running at once for `seconds`.
double CpuPerMessage(size_t size, int pairs, double seconds) {
  std::vector<std::thread> loops;
  std::vector<long> counts(static_cast<size_t>(pairs), 0);
  const double cpu0 = CpuSeconds();
  for (int p = 0; p < pairs; ++p) {
    loops.emplace_back([&, p] { counts[static_cast<size_t>(p)] = EchoLoop(size, seconds).first; });
  }
  for (auto& t : loops) t.join();
  long total = 0;
  for (long c : counts) total += c;
  // The warm-up and closing round trips cost CPU too.
  return (CpuSeconds() - cpu0) / (2.0 * static_cast<double>(total + 2 * pairs)) * 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  const int count = argc > 1 ? std::stoi(argv[1]) : 4096;  // 1 MiB messages per stream run
  const double copy = Stream(1 << 20, count, false);
  const double zero = Stream(1 << 20, count, true);
  const double rtt = RoundTrips(4096, 2.0);
  const double cpu_4k = CpuPerMessage(4096, 4, 1.5);
  const double cpu_64k = CpuPerMessage(64 << 10, 4, 1.5);
  std::printf(
      "{\"zmq_1mib_copy_mib_per_s\":%.1f,\"zmq_1mib_zerocopy_mib_per_s\":%.1f,"
      "\"zmq_4k_round_trips_per_s\":%.0f,\"zmq_4k_cpu_us_per_message\":%.1f,"
      "\"zmq_64k_cpu_us_per_message\":%.1f}\n",
      copy, zero, rtt, cpu_4k, cpu_64k);
  return 0;
}
