// Flag helpers shared by the binaries' mains (CLI11): validators for our
// units, and parsing that exits 2 on a usage error as DESIGN.md promises.
#pragma once

#include <cstdio>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "common/cpu_affinity.h"
#include "common/units.h"

namespace dfs {

inline CLI::Validator SizeFlag() {
  return CLI::Validator(
      [](const std::string& v) -> std::string {
        auto r = ParseSize(v);
        return r ? "" : r.error().message();
      },
      "SIZE");
}

inline CLI::Validator DurationFlag() {
  return CLI::Validator(
      [](const std::string& v) -> std::string {
        auto r = ParseDuration(v);
        return r ? "" : r.error().message();
      },
      "DURATION");
}

inline CLI::Validator CpuFlag() {
  return CLI::Validator(
      [](const std::string& v) -> std::string {
        auto r = ParseCpuChoice(v);
        return r ? "" : r.error().message();
      },
      "auto|all|N");
}

// Parses argv; on --help prints it and returns 0, on a usage error prints one
// line naming the program and returns 2; nullopt means carry on.
inline std::optional<int> ParseFlags(CLI::App& app, int argc, char** argv, const char* program) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: %s (see --help)\n", program, e.what());
    return 2;
  }
  return std::nullopt;
}

}  // namespace dfs
