// Private to bus/: what a Context holds, for the bus's own .cc files.
#pragma once

#include <zmq.hpp>

#include "bus/socket.h"

namespace dfs::bus {

struct Context::Impl {
  zmq::context_t ctx;
};

}  // namespace dfs::bus
