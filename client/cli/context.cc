#include "client/cli/commands.h"

#include <cstdlib>

#include "common/units.h"

namespace dfs::cli {

client::ClientOptions Context::Options() const {
  client::ClientOptions o;
  o.master = client::DefaultMaster(master_flag);
  o.timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  o.name = "dfs-cli";
  // A listing in as few round trips as the master allows (10,000 entries,
  // about 600 KiB, a page): `ls` of a folder of 10,000 is one request.
  o.list_page_size = 10000;
  return o;
}

Result<std::unique_ptr<client::Client>> Context::ConnectAnother() {
  DFS_ASSIGN_OR_RETURN(std::unique_ptr<client::Client> c, client::Client::Connect(Options()));
  c->set_interrupt(interrupt_);
  if (client_) DFS_RETURN_IF_ERROR(c->set_working_directory(client_->working_directory()));
  return c;
}

Result<client::Client*> Context::TryConnect() {
  if (client_) return client_.get();
  DFS_ASSIGN_OR_RETURN(client_, client::Client::Connect(Options()));
  client_->set_interrupt(interrupt_);
  return client_.get();
}

client::Client* Context::Connect() {
  auto c = TryConnect();
  if (!c) {
    Fail(c.error());
    return nullptr;
  }
  return *c;
}

client::FileCache* Context::Cache() {
  if (no_cache) return nullptr;
  if (const char* off = std::getenv("DFS_NO_CACHE"); off != nullptr && off[0] != '\0') return nullptr;
  if (!cache_tried_) {
    cache_tried_ = true;
    client::CacheOptions o;
    o.dir = cache_dir;
    o.ttl = *ParseDuration(cache_ttl);  // checked by the flag
    o.max_bytes = *ParseSize(cache_size);
    auto c = client::FileCache::Open(o, client::DefaultMaster(master_flag));
    if (c) cache_.emplace(std::move(*c));
    else PrintError(c.error().message() + "; going on without the cache (--no-cache says so)");
  }
  return cache_ ? &*cache_ : nullptr;
}

CLI::App* Examples(CLI::App* cmd, std::initializer_list<std::string_view> lines) {
  std::string text = "Example" + std::string(lines.size() > 1 ? "s" : "") + ":";
  for (std::string_view l : lines) text += "\n  " + std::string(l);
  cmd->footer(text);
  return cmd;
}

void Context::set_interrupt(const std::atomic<bool>* flag) {
  interrupt_ = flag;
  if (client_) client_->set_interrupt(flag);
}

void Context::Fail(const Status& status) {
  PrintError(status.message());
  exit_code = 1;
}

}  // namespace dfs::cli
