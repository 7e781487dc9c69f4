#include "client/cli/shell_editor.h"

#include <histedit.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cwchar>

#include "client/cli/shell_words.h"

namespace dfs::cli {
namespace {

// Keys our read loop hands libedit for what did not come from the keyboard:
// Ctrl-C (SIGINT, from the terminal's interrupt character) clears the
// line; kNoticeKey prints notices above the prompt. Ctrl-] is otherwise
// unbound in emacs mode; typed by hand it only redraws.
constexpr wchar_t kInterruptKey = 0x03;
constexpr wchar_t kNoticeKey = 0x1d;
constexpr size_t kHistorySize = 1000;
// More candidates than this are not all listed: a directory of 10,000
// entries would scroll the terminal away.
constexpr size_t kMaxListed = 200;

std::atomic<bool> g_resized{false};
void OnResize(int) { g_resized.store(true); }

size_t ScreenColumns() {
  winsize ws{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

}  // namespace

struct LineEditor::Impl {
  EditorHooks hooks;
  std::string history_path;
  EditLine* el = nullptr;
  History* hist = nullptr;
  std::string prompt;  // el's prompt function returns its c_str()
  std::vector<std::string> pending;  // notices waiting for kNoticeKey
  std::mbstate_t mb{};

  static Impl* Of(EditLine* el) {
    void* data = nullptr;
    el_get(el, EL_CLIENTDATA, &data);
    return static_cast<Impl*>(data);
  }

  static char* Prompt(EditLine* el) { return Of(el)->prompt.data(); }

  // EL_GETCFN: one character, 1; 0 at end of input; -1 on error.
  static int ReadChar(EditLine* el, wchar_t* out) { return Of(el)->Read(out); }

  int Read(wchar_t* out) {
    for (;;) {
      if (hooks.take_interrupt()) {
        *out = kInterruptKey;
        return 1;
      }
      if (g_resized.exchange(false)) el_resize(el);
      pending = hooks.notices();
      if (!pending.empty()) {
        *out = kNoticeKey;
        return 1;
      }
      const int fds[] = {STDIN_FILENO, hooks.interrupt_fd};
      auto ready = hooks.wait(std::span<const int>(fds, hooks.interrupt_fd >= 0 ? 2 : 1),
                              std::chrono::milliseconds(-1));
      if (!ready) return -1;
      if (std::find(ready->begin(), ready->end(), hooks.interrupt_fd) != ready->end()) {
        char drain[64];
        while (::read(hooks.interrupt_fd, drain, sizeof drain) > 0) {
        }
      }
      if (std::find(ready->begin(), ready->end(), STDIN_FILENO) == ready->end()) continue;
      char byte = 0;
      const ssize_t n = ::read(STDIN_FILENO, &byte, 1);
      if (n == 0) return 0;
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return -1;
      }
      wchar_t wc = 0;
      const size_t r = std::mbrtowc(&wc, &byte, 1, &mb);
      if (r == static_cast<size_t>(-2)) continue;  // more bytes of one character to come
      if (r == static_cast<size_t>(-1)) {
        mb = std::mbstate_t{};
        wc = static_cast<unsigned char>(byte);
      }
      *out = wc;
      return 1;
    }
  }

  // Ctrl-C at the prompt: the line goes, a fresh prompt comes.
  static unsigned char Interrupt(EditLine* el, int) {
    const LineInfo* li = el_line(el);
    el_cursor(el, static_cast<int>(li->lastchar - li->cursor));
    el_deletestr(el, static_cast<int>(li->lastchar - li->buffer));
    std::fputs("^C\n", stdout);
    std::fflush(stdout);
    return CC_REDISPLAY;
  }

  static unsigned char Notice(EditLine* el, int) {
    Impl* self = Of(el);
    if (self->pending.empty()) return CC_REDISPLAY;
    // Over the prompt's line, which libedit then draws again below.
    std::fputs("\r\x1b[K", stdout);
    for (const auto& line : self->pending) std::printf("%s\n", line.c_str());
    self->pending.clear();
    std::fflush(stdout);
    return CC_REDISPLAY;
  }

  static unsigned char Complete(EditLine* el, int) {
    Impl* self = Of(el);
    const LineInfo* li = el_line(el);
    const std::string before(li->buffer, li->cursor);
    Completion c = self->hooks.complete(before);
    if (c.candidates.empty()) return CC_REFRESH_BEEP;
    const std::string typed_raw = before.substr(c.word_start);
    std::string replacement;
    if (c.candidates.size() == 1 && c.more == 0) {
      replacement = QuoteWord(c.candidates.front());
      if (!replacement.ends_with('/')) replacement += ' ';
    } else {
      replacement = QuoteWord(CommonPrefix(c.candidates));
    }
    if (replacement.size() > typed_raw.size() || (c.candidates.size() == 1 && replacement != typed_raw)) {
      el_deletestr(el, static_cast<int>(typed_raw.size()));
      el_insertstr(el, replacement.c_str());
      return CC_REFRESH;
    }
    // Nothing to add: show the choices, then the line again.
    std::vector<std::string> shown;
    for (const auto& w : c.candidates) {
      if (shown.size() == kMaxListed) break;
      // Only the last part of a path: the directory is the one being typed.
      const size_t slash = w.find_last_of('/', w.size() > 1 ? w.size() - 2 : 0);
      shown.push_back(slash == std::string::npos ? w : w.substr(slash + 1));
    }
    std::fputs("\n", stdout);
    std::fputs(Columns(shown, ScreenColumns()).c_str(), stdout);
    const size_t left = c.candidates.size() - shown.size() + c.more;
    if (left > 0) std::printf("... and %zu more (type more of the name)\n", left);
    std::fflush(stdout);
    return CC_REDISPLAY;
  }
};

std::string Columns(const std::vector<std::string>& words, size_t width) {
  size_t widest = 1;
  for (const auto& w : words) widest = std::max(widest, w.size());
  const size_t col = widest + 2;
  const size_t per_row = std::max<size_t>(1, width / col);
  const size_t rows = (words.size() + per_row - 1) / per_row;
  std::string out;
  for (size_t r = 0; r < rows; ++r) {
    std::string line;
    for (size_t k = 0; k < per_row; ++k) {
      const size_t i = k * rows + r;  // down the columns, as ls does
      if (i >= words.size()) break;
      line += words[i];
      if (k + 1 < per_row && (k + 1) * rows + r < words.size()) line += std::string(col - words[i].size(), ' ');
    }
    out += line + "\n";
  }
  return out;
}

LineEditor::LineEditor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

LineEditor::~LineEditor() {
  if (impl_->el != nullptr) el_end(impl_->el);  // gives the terminal its modes back
  if (impl_->hist != nullptr) history_end(impl_->hist);
  std::signal(SIGWINCH, SIG_DFL);
}

Result<std::unique_ptr<LineEditor>> LineEditor::Open(std::string history_file, EditorHooks hooks) {
  auto impl = std::make_unique<Impl>();
  impl->hooks = std::move(hooks);
  impl->history_path = std::move(history_file);
  impl->el = el_init("dfs-cli", stdin, stdout, stderr);
  if (impl->el == nullptr) return Status::Internal("cannot set up line editing on this terminal");
  EditLine* el = impl->el;
  el_set(el, EL_CLIENTDATA, impl.get());
  el_set(el, EL_EDITOR, "emacs");
  el_set(el, EL_SIGNAL, 0);  // our handlers, not libedit's
  el_set(el, EL_PROMPT, &Impl::Prompt);
  el_set(el, EL_GETCFN, &Impl::ReadChar);
  // Wide strings: libedit keeps these pointers, and el_set's narrow form
  // converts them into copies it never frees (LeakSanitizer saw them).
  el_wset(el, EL_ADDFN, L"dfs-complete", L"complete a command, flag or path", &Impl::Complete);
  el_wset(el, EL_ADDFN, L"dfs-interrupt", L"clear the line (Ctrl-C)", &Impl::Interrupt);
  el_wset(el, EL_ADDFN, L"dfs-notice", L"show what the cluster said", &Impl::Notice);
  el_set(el, EL_BIND, "^I", "dfs-complete", nullptr);
  el_set(el, EL_BIND, "^C", "dfs-interrupt", nullptr);
  el_set(el, EL_BIND, "^]", "dfs-notice", nullptr);
  impl->hist = history_init();
  HistEvent ev;
  ::history(impl->hist, &ev, H_SETSIZE, static_cast<int>(kHistorySize));
  ::history(impl->hist, &ev, H_SETUNIQUE, 1);
  if (!impl->history_path.empty()) ::history(impl->hist, &ev, H_LOAD, impl->history_path.c_str());
  el_set(el, EL_HIST, ::history, impl->hist);
  el_source(el, nullptr);  // the user's ~/.editrc, as every libedit program reads it
  struct sigaction sa {};
  sa.sa_handler = OnResize;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGWINCH, &sa, nullptr);
  return std::unique_ptr<LineEditor>(new LineEditor(std::move(impl)));
}

std::optional<std::string> LineEditor::ReadLine() {
  impl_->prompt = impl_->hooks.prompt();
  // Edit mode now, even when keys typed during the last command are
  // waiting: el_gets skips it then (it expects a whole line typed ahead in
  // the terminal's own mode), and the line would be edited in cooked mode,
  // echoed twice, with Ctrl-C a signal and Ctrl-D an end of file.
  el_set(impl_->el, EL_PREP_TERM, 1);
  int count = 0;
  const char* line = el_gets(impl_->el, &count);
  if (line == nullptr || count <= 0) return std::nullopt;
  std::string s(line, static_cast<size_t>(count));
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

void LineEditor::Remember(const std::string& line) {
  if (line.find_first_not_of(" \t") == std::string::npos) return;
  HistEvent ev;
  ::history(impl_->hist, &ev, H_ENTER, line.c_str());
  if (!impl_->history_path.empty()) history(impl_->hist, &ev, H_SAVE, impl_->history_path.c_str());
}

}  // namespace dfs::cli
