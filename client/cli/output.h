// How dfs-cli speaks: one JSON document on stdout with --json, a table
// otherwise; errors are one line on stderr naming the path and the reason.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace dfs::cli {

struct Output {
  bool json = false;
};

// Columns left-aligned, padded to the widest cell; first row is the header.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows);
void PrintJson(const nlohmann::json& doc);
// "dfs-cli: <message>" on stderr.
void PrintError(const std::string& message);

}  // namespace dfs::cli
