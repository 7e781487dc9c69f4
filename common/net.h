// Addresses as users write them ("HOST:PORT", "[::1]:5550") and as the bus
// wants them ("tcp://HOST:PORT").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace dfs {

struct HostAndPort {
  std::string host;
  uint16_t port = 0;
};

// "HOST:PORT" or "[V6]:PORT"; a bare "HOST" takes default_port.
Result<HostAndPort> ParseHostPort(std::string_view text, uint16_t default_port);
std::string HostPort(std::string_view host, uint16_t port);
std::string TcpEndpoint(std::string_view host, uint16_t port);
// The port of a bound endpoint such as "tcp://127.0.0.1:41234".
Result<uint16_t> PortOfEndpoint(std::string_view endpoint);
// 127.0.0.0/8, ::1 or localhost.
bool IsLoopbackHost(std::string_view host);

}  // namespace dfs
