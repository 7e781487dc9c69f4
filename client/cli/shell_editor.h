// The shell's line editor: libedit (BSD editline) in emacs mode, with a
// history file, Tab bound to the shell's completer, and a read loop of our
// own (EL_GETCFN) that waits on the terminal, the Ctrl-C pipe and the
// master's events at once, so a notice shows above the prompt the moment
// it arrives and Ctrl-C clears the line being typed.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "client/cli/shell_complete.h"
#include "common/status.h"

namespace dfs::cli {

struct EditorHooks {
  std::function<std::string()> prompt;
  std::function<Completion(std::string_view line)> complete;
  // Waits until one of `fds` is readable or an event came; returns the
  // readable fds (empty: woken for an event, a signal, or the timeout).
  std::function<Result<std::vector<int>>(std::span<const int> fds, std::chrono::milliseconds timeout)> wait;
  // Lines to show now (node notices); empty when none.
  std::function<std::vector<std::string>()> notices;
  // The Ctrl-C flag: set by the SIGINT handler, taken (cleared) here.
  std::function<bool()> take_interrupt;
  int interrupt_fd = -1;  // readable after a SIGINT (a self-pipe)
};

class LineEditor {
 public:
  // On stdin/stdout, which must be a terminal. `history`: the file to load
  // and save ("" keeps no history).
  static Result<std::unique_ptr<LineEditor>> Open(std::string history_file, EditorHooks hooks);
  ~LineEditor();
  LineEditor(const LineEditor&) = delete;
  LineEditor& operator=(const LineEditor&) = delete;

  // One line without its newline; nullopt on Ctrl-D at an empty line (or
  // when the terminal goes away).
  std::optional<std::string> ReadLine();
  // Into the history (and its file, at once: a crash keeps it).
  void Remember(const std::string& line);

  struct Impl;

 private:
  explicit LineEditor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Candidates laid out in columns for a terminal `width` wide, as ls does.
std::string Columns(const std::vector<std::string>& words, size_t width);

}  // namespace dfs::cli
