// Runs one phase of metadata operations from C client threads, each with its
// own MetaPipeline keeping up to `depth` requests in flight.
#pragma once

#include <functional>
#include <string>

#include "bench/report.h"
#include "client/meta_pipeline.h"

namespace dfs::bench {

struct DriverOptions {
  client::ClientOptions client;
  int clients = 4;
  int depth = 32;
};

// make(client, i) builds the i-th request of client `client` (i < per_client).
Phase RunMetaPhase(const std::string& name, const DriverOptions& options, uint64_t per_client,
                   const std::function<client::MetaRequest(int client, uint64_t i)>& make,
                   std::string* first_error);

}  // namespace dfs::bench
