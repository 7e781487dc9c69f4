// How dfs-cli speaks: one JSON document on stdout with --json, a table
// otherwise; errors are one line on stderr naming the path and the reason.
#pragma once

#include <initializer_list>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace dfs::cli {

struct Output {
  bool json = false;
};

// Columns padded to the widest cell, two spaces apart; the first row is the
// header. Columns whose index is in `right` are right-aligned (numbers,
// sizes), the rest left-aligned; the last column is not padded.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows, std::initializer_list<size_t> right = {});
void PrintJson(const nlohmann::json& doc);
// "dfs-cli: <message>" on stderr.
void PrintError(const std::string& message);
// Standard output is a pipe whose reader has gone (`dfs-cli cat F | head`
// after head read its lines): writes fail with EPIPE, and like cat(1) the
// command should stop quietly.
bool StdoutReaderGone();

}  // namespace dfs::cli
