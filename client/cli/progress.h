// A transfer's progress on stderr, as curl and rsync show it: one line
// redrawn in place (bytes, percent, a bar, rate, time left) while the
// library's progress hook reports, then a one-line summary (size, time,
// rate). Only on a terminal: ProgressWanted says when.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>

#include "client/dfs_client.h"

namespace dfs::cli {

// stderr is a terminal and the user did not ask for quiet (-q).
bool ProgressWanted(bool quiet);

// "1.2 s", "2m05s", "1h02m".
std::string HumanDuration(double seconds);
// "0:07", "12:34", "1:02:03": time left, as a clock.
std::string ClockDuration(double seconds);

class ProgressBar {
 public:
  using Clock = std::chrono::steady_clock;

  // Draws nothing when !enabled. `label` names the file (the bar shortens
  // it to fit the terminal).
  ProgressBar(bool enabled, std::string label);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // For PutOptions::progress / GetOptions::progress; empty when disabled,
  // so the library skips even the clock reads.
  client::ProgressFn Hook();
  // How often the library should call: a few redraws a second.
  static constexpr std::chrono::milliseconds kInterval{200};

  void Update(const client::Progress& p);
  // Clears the line; on success leaves "LABEL: SIZE in TIME (RATE)".
  void Finish(bool ok);
  // Prints `line` (and a newline) on stderr above the bar, which the next
  // Update draws again; printed when the bar is disabled too.
  void Note(const std::string& line);
  void set_label(std::string label) { label_ = std::move(label); }
  bool enabled() const { return enabled_; }

  // The line Update draws, `width` columns at most (for tests of the layout).
  std::string Line(const client::Progress& p, double rate, size_t width) const;

 private:
  double Rate(Clock::time_point now, uint64_t done);

  bool enabled_;
  std::string label_;
  Clock::time_point start_;
  uint64_t last_done_ = 0;
  bool drawn_ = false;
  // (time, bytes done) over the last few seconds: the rate shown is theirs,
  // so it follows a transfer that speeds up or stalls.
  std::deque<std::pair<Clock::time_point, uint64_t>> samples_;
};

}  // namespace dfs::cli
