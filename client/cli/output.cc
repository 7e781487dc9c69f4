#include "client/cli/output.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace dfs::cli {

std::string FormatTable(const std::vector<std::vector<std::string>>& rows, std::initializer_list<size_t> right) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      const std::string pad(width[i] - row[i].size(), ' ');
      const bool last = i + 1 == row.size();
      if (std::find(right.begin(), right.end(), i) != right.end()) {
        line += pad + row[i];
      } else {
        line += row[i];
        if (!last) line += pad;
      }
      if (!last) line += "  ";
    }
    out += line + "\n";
  }
  return out;
}

void PrintJson(const nlohmann::json& doc) {
  // replace: one odd byte in a name must not turn the whole answer into an exception.
  std::printf("%s\n", doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

void PrintError(const std::string& message) { std::fprintf(stderr, "dfs-cli: %s\n", message.c_str()); }

}  // namespace dfs::cli

namespace dfs::cli {

bool StdoutReaderGone() {
  // A pipe's writer polls POLLERR once no reader is left (Linux pipe_poll).
  pollfd p{STDOUT_FILENO, 0, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLERR) != 0;
}

}  // namespace dfs::cli
