#include "common/net.h"

#include <charconv>

#include <fmt/format.h>

namespace dfs {
namespace {

Result<uint16_t> ParsePort(std::string_view text, std::string_view whole) {
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || value > 65535) {
    return Status::InvalidArgument(fmt::format("invalid port in '{}'", whole));
  }
  return static_cast<uint16_t>(value);
}

}  // namespace

Result<HostAndPort> ParseHostPort(std::string_view text, uint16_t default_port) {
  if (text.starts_with("tcp://")) text.remove_prefix(6);
  if (text.empty()) return Status::InvalidArgument("empty address");
  HostAndPort out;
  out.port = default_port;
  if (text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return Status::InvalidArgument(fmt::format("invalid address '{}'", text));
    out.host = std::string(text.substr(1, close - 1));
    auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return Status::InvalidArgument(fmt::format("invalid address '{}'", text));
      DFS_ASSIGN_OR_RETURN(out.port, ParsePort(rest.substr(1), text));
    }
  } else {
    auto colon = text.rfind(':');
    if (colon != std::string_view::npos && text.find(':') != colon) {
      return Status::InvalidArgument(fmt::format("invalid address '{}' (write IPv6 as [ADDR]:PORT)", text));
    }
    out.host = std::string(text.substr(0, colon));
    if (colon != std::string_view::npos) {
      DFS_ASSIGN_OR_RETURN(out.port, ParsePort(text.substr(colon + 1), text));
    }
  }
  if (out.host.empty()) return Status::InvalidArgument(fmt::format("invalid address '{}': no host", text));
  return out;
}

std::string HostPort(std::string_view host, uint16_t port) {
  if (host.find(':') != std::string_view::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

std::string TcpEndpoint(std::string_view host, uint16_t port) { return "tcp://" + HostPort(host, port); }

Result<uint16_t> PortOfEndpoint(std::string_view endpoint) {
  auto colon = endpoint.rfind(':');
  if (colon == std::string_view::npos) return Status::InvalidArgument(fmt::format("no port in '{}'", endpoint));
  return ParsePort(endpoint.substr(colon + 1), endpoint);
}

bool IsLoopbackHost(std::string_view host) {
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

}  // namespace dfs
