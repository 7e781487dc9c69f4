#include "bus/request_client.h"

#include <fmt/format.h>

namespace dfs::bus {

Status NoAnswer(const std::string& endpoint, const RetryPolicy& policy) {
  const auto total = policy.attempt_timeout * policy.attempts;
  return Status::TimedOut(fmt::format("no answer from {} after {} attempts ({:.1f} s)", endpoint, policy.attempts,
                                      total.count() / 1000.0));
}

}  // namespace dfs::bus
