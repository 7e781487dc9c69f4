// small_put_disk_model: the most small files per second this disk allows
// with dfs's syncs and no messages at all, for bench/limits.sh.
//
// C client threads each put F/C files one after another, as dfs-bench small
// does. A file costs what it costs dfs's disks at -r R: one record of SIZE
// bytes appended to each of R node volumes, then, once all are durable, a
// 200-byte record in the master's journal. Each volume and the journal has a
// thread of its own with group commit (take every waiting record, one write,
// one fdatasync, done), as dfs's volume lanes and journal writer do; the
// journal writes over space zeroed and synced beforehand, as dfs's does.
//
//   small_put_disk_model DIR CLIENTS FILES SIZE REPLICAS
// prints one JSON object: files_per_s, node_syncs_per_file, journal_syncs_per_file.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

// One file and the thread that appends to it with group commit.
class Lane {
 public:
  Lane(const std::string& path, size_t record, uint64_t prepare) : path_(path), record_(record) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      std::perror(path.c_str());
      std::exit(1);
    }
    const std::vector<char> zeros(1 << 20, 0);
    for (uint64_t at = 0; at < prepare; at += zeros.size()) Check(::pwrite(fd_, zeros.data(), zeros.size(), at));
    if (prepare > 0) Check(::fdatasync(fd_));
    thread_ = std::thread([this] { Run(); });
  }
  ~Lane() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  // Queues one record; Wait(ticket) returns once it is durable.
  uint64_t Submit() {
    std::lock_guard lock(mu_);
    cv_.notify_all();
    return ++queued_;
  }
  void Wait(uint64_t ticket) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return done_ >= ticket; });
  }
  uint64_t syncs() const { return syncs_; }

 private:
  static void Check(long r) {
    if (r < 0) {
      std::perror("small_put_disk_model");
      std::exit(1);
    }
  }
  void Run() {
    std::vector<char> batch;
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || queued_ > done_; });
      if (stop_) return;
      const uint64_t upto = queued_;
      const size_t n = upto - done_;
      lock.unlock();
      batch.assign(n * record_, 7);
      Check(::pwrite(fd_, batch.data(), batch.size(), static_cast<off_t>(end_)));
      Check(::fdatasync(fd_));
      end_ += batch.size();
      ++syncs_;
      lock.lock();
      done_ = upto;
      cv_.notify_all();
    }
  }

  std::string path_;
  size_t record_;
  int fd_ = -1;
  uint64_t end_ = 0;
  uint64_t syncs_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t queued_ = 0, done_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s DIR CLIENTS FILES SIZE REPLICAS\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const int clients = std::max(1, std::atoi(argv[2]));
  const int files = std::max(clients, std::atoi(argv[3]));
  const size_t size = static_cast<size_t>(std::strtoull(argv[4], nullptr, 10));
  const int replicas = std::max(1, std::atoi(argv[5]));
  constexpr size_t kRecordHeader = 64, kJournalRecord = 200;

  std::vector<std::unique_ptr<Lane>> nodes;
  for (int i = 0; i < replicas; ++i) {
    nodes.push_back(std::make_unique<Lane>(dir + "/model.volume" + std::to_string(i), size + kRecordHeader, 0));
  }
  Lane journal(dir + "/model.journal", kJournalRecord, static_cast<uint64_t>(files) * kJournalRecord + (1 << 20));

  const int per = files / clients;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      std::vector<uint64_t> tickets(nodes.size());
      for (int i = 0; i < per; ++i) {
        for (size_t n = 0; n < nodes.size(); ++n) tickets[n] = nodes[n]->Submit();
        for (size_t n = 0; n < nodes.size(); ++n) nodes[n]->Wait(tickets[n]);
        journal.Wait(journal.Submit());
      }
    });
  }
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double done = static_cast<double>(per) * clients;
  uint64_t node_syncs = 0;
  for (const auto& n : nodes) node_syncs += n->syncs();
  std::printf("{\"files_per_s\":%.1f,\"node_syncs_per_file\":%.3f,\"journal_syncs_per_file\":%.3f}\n",
              done / seconds, static_cast<double>(node_syncs) / done, static_cast<double>(journal.syncs()) / done);
  return 0;
}
