#include "common/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace dfs {

bool IsValidLogLevel(std::string_view level) {
  auto l = spdlog::level::from_str(std::string(level));
  // from_str answers "off" for anything it does not know.
  return l != spdlog::level::off || level == "off";
}

Status InitLogging(std::string_view component, std::string_view level) {
  if (!IsValidLogLevel(level)) {
    return Status::InvalidArgument(
        fmt::format("invalid log level '{}' (trace, debug, info, warn, error, critical, off)", level));
  }
  auto logger = spdlog::stderr_color_mt(std::string(component));
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%L%$ [%n] %v");
  logger->set_level(spdlog::level::from_str(std::string(level)));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  return Status::OK();
}

}  // namespace dfs
