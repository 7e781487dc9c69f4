// Flag helpers shared by the binaries' mains (CLI11): validators for our
// units, and parsing that exits 2 on a usage error as DESIGN.md promises.
#pragma once

#include <cstdio>
#include <optional>
#include <string>
#include <utility>

#include <CLI/CLI.hpp>

#include "common/fault_env.h"
#include "common/units.h"

namespace dfs {

// A validator from a parser returning Result<T>: its error is the message.
template <typename Parse>
CLI::Validator ParsedFlag(Parse parse, std::string name) {
  return CLI::Validator(
      [parse](const std::string& v) -> std::string {
        auto r = parse(v);
        return r ? "" : r.error().message();
      },
      std::move(name));
}

inline CLI::Validator SizeFlag() {
  return ParsedFlag([](const std::string& v) { return ParseSize(v); }, "SIZE");
}
// A size within [lo, hi], said in human sizes when it is not.
inline CLI::Validator SizeInRange(uint64_t lo, uint64_t hi) {
  return CLI::Validator(
      [lo, hi](const std::string& v) -> std::string {
        auto r = ParseSize(v);
        if (r && *r >= lo && *r <= hi) return "";
        return "must be " + FormatSize(lo) + " to " + FormatSize(hi);
      },
      "SIZE");
}
inline CLI::Validator DurationFlag() {
  return ParsedFlag([](const std::string& v) { return ParseDuration(v); }, "DURATION");
}

// A count: CLI11's own range check, so "-1" is a usage error rather than a
// number wrapped around to 2^64 - 1.
inline CLI::Validator CountFlag() { return CLI::Range(uint64_t{0}, uint64_t{1} << 40); }

// The disk fault flags both daemons take (common/fault_env.h). UNSAFE:
// for tests; each logs a warning at start-up.
inline void AddDiskFaultFlags(CLI::App& app, DiskFaults& f) {
  app.add_option("--unsafe-fault-eio-after-writes", f.eio_after_writes,
                 "UNSAFE (tests): disk writes after the first N fail with EIO, and the disk stays failed")
      ->check(CountFlag());
  app.add_option("--unsafe-fault-enospc-after-writes", f.enospc_after_writes,
                 "UNSAFE (tests): disk writes after the first N fail with ENOSPC")
      ->check(CountFlag());
  app.add_option("--unsafe-fault-fsync-fail-after", f.fsync_fail_after,
                 "UNSAFE (tests): fsyncs after the first N fail with EIO")
      ->check(CountFlag());
  app.add_option("--unsafe-fault-torn-write-after", f.torn_write_after,
                 "UNSAFE (tests): disk write N+1 lands only its first half and fails with EIO")
      ->check(CountFlag());
  app.add_option("--unsafe-fault-path", f.path_glob,
                 "UNSAFE (tests): the faults above hit only paths matching this glob (default: every path)");
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
