// The master's two request ports and what travels on each: clients (and a
// node's first hello) on the client port, nodes' registration, heartbeats
// and chunk reports on the node port. Each port has an envelope of its own
// (messages/common.proto, HEADER).
#pragma once

#include "bus/outbox.h"
#include "client_master.pb.h"
#include "node_master.pb.h"

namespace dfs::master {

using ClientMessage = bus::Message<msg::ClientEnvelope>;
using NodeMessage = bus::Message<msg::NodeEnvelope>;

}  // namespace dfs::master
