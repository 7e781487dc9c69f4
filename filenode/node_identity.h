#pragma once

#include <string>

#include "common/env.h"
#include "common/status.h"

namespace dfs::filenode {

// The node's stable id: read from DIR/node.id, or made up (12 hex digits,
// random) and written there durably on first start. An id names the node's
// data, so it must never change while the folder lives.
Result<std::string> LoadOrCreateNodeId(const std::string& dir, Env* env);

}  // namespace dfs::filenode
