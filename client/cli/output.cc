#include "client/cli/output.h"

#include <cstdio>

namespace dfs::cli {

std::string FormatTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
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
