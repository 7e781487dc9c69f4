#include "client/cli/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <fmt/format.h>

#include "common/units.h"

namespace dfs::cli {
namespace {

// The rate is measured over this much of the recent past.
constexpr std::chrono::seconds kRateWindow{3};

size_t TerminalWidth() {
  winsize ws{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
  return 80;
}

// Keeps the end of a path (the file's name), marking the cut with "...".
std::string Shorten(const std::string& s, size_t width) {
  if (s.size() <= width) return s;
  if (width <= 3) return s.substr(s.size() - width);
  return "..." + s.substr(s.size() - (width - 3));
}

}  // namespace

bool ProgressWanted(bool quiet) { return !quiet && ::isatty(STDERR_FILENO) == 1; }

std::string HumanDuration(double seconds) {
  if (!(seconds >= 0)) seconds = 0;
  if (seconds < 60) return fmt::format("{:.1f} s", seconds);
  const auto s = static_cast<uint64_t>(std::llround(seconds));
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
}

std::string ClockDuration(double seconds) {
  if (!(seconds >= 0) || seconds > 99 * 3600) return "--:--";
  const auto s = static_cast<uint64_t>(std::ceil(seconds));
  if (s < 3600) return fmt::format("{}:{:02}", s / 60, s % 60);
  return fmt::format("{}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60);
}

ProgressBar::ProgressBar(bool enabled, std::string label)
    : enabled_(enabled), label_(std::move(label)), start_(Clock::now()) {}

ProgressBar::~ProgressBar() {
  if (drawn_) Finish(false);
}

client::ProgressFn ProgressBar::Hook() {
  if (!enabled_) return {};
  return [this](const client::Progress& p) { Update(p); };
}

double ProgressBar::Rate(Clock::time_point now, uint64_t done) {
  samples_.emplace_back(now, done);
  while (samples_.size() > 2 && now - samples_[1].first >= kRateWindow) samples_.pop_front();
  const auto& [t0, d0] = samples_.front();
  const double secs = std::chrono::duration<double>(now - t0).count();
  if (secs < 0.05 || done < d0) return 0;
  return static_cast<double>(done - d0) / secs;
}

std::string ProgressBar::Line(const client::Progress& p, double rate, size_t width) const {
  const std::string rate_s = rate > 0 ? FormatSize(static_cast<uint64_t>(rate)) + "/s" : "--/s";
  std::string tail;
  std::string pct;
  double fraction = 0;
  if (p.total_known) {
    fraction = p.total == 0 ? 1.0 : static_cast<double>(p.done) / static_cast<double>(p.total);
    pct = fmt::format("{:3.0f}%", std::floor(fraction * 100));
    const double left = rate > 0 ? static_cast<double>(p.total - std::min(p.done, p.total)) / rate : -1;
    tail = fmt::format(" {} / {}  {}  ETA {}", FormatSize(p.done), FormatSize(p.total), rate_s,
                       ClockDuration(left));
  } else {
    const double secs = std::chrono::duration<double>(Clock::now() - start_).count();
    tail = fmt::format(" {}  {}  {}", FormatSize(p.done), rate_s, ClockDuration(secs));
  }
  // label  45% [=========>          ] 45.0 MiB / 100.0 MiB  112.3 MiB/s  ETA 0:01
  const size_t label_w = std::min<size_t>(label_.size(), std::max<size_t>(width / 4, 12));
  std::string line = Shorten(label_, label_w) + "  " + pct;
  const size_t fixed = line.size() + tail.size() + 4;  // " [", "]", and the last column left free
  if (p.total_known && width > fixed + 10) {
    const size_t bar_w = std::min<size_t>(width - fixed, 40);
    const auto full = static_cast<size_t>(fraction * static_cast<double>(bar_w));
    std::string bar(full, '=');
    if (full < bar_w) bar += '>';
    bar.resize(bar_w, ' ');
    line += " [" + bar + "]";
  }
  line += tail;
  if (line.size() > width - 1) line.resize(width - 1);  // never wrap: \r must return to this line
  return line;
}

void ProgressBar::Update(const client::Progress& p) {
  if (!enabled_) return;
  last_done_ = p.done;
  const double rate = Rate(Clock::now(), p.done);
  const std::string line = Line(p, rate, TerminalWidth());
  std::fprintf(stderr, "\r%s\x1b[K", line.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::Note(const std::string& line) {
  if (drawn_) std::fputs("\r\x1b[K", stderr);
  drawn_ = false;
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

void ProgressBar::Finish(bool ok) {
  if (!enabled_) return;
  if (drawn_) std::fputs("\r\x1b[K", stderr);
  drawn_ = false;
  if (ok) {
    const double secs = std::chrono::duration<double>(Clock::now() - start_).count();
    const double rate = secs > 0 ? static_cast<double>(last_done_) / secs : 0;
    std::fprintf(stderr, "%s: %s in %s (%s/s)\n", label_.c_str(), FormatSize(last_done_).c_str(),
                 HumanDuration(secs).c_str(), FormatSize(static_cast<uint64_t>(rate)).c_str());
  }
  std::fflush(stderr);
  enabled_ = false;
}

}  // namespace dfs::cli
