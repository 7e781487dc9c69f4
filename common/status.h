// Status and Result<T>: the one error type at every module boundary.
//
// A Status is OK or a code plus a human message that already names the path,
// node or endpoint involved ("no such file or directory: /a/b"). Callers add
// context with Prepend(). No exception crosses a module boundary.
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace dfs {

// Wire-stable: the numbers are the values of msg::Status::Code.
enum class Code : int {
  kOk = 0,
  kInvalidArgument = 1,
  kNotFound = 2,
  kAlreadyExists = 3,
  kNotADirectory = 4,
  kIsADirectory = 5,
  kNotEmpty = 6,
  kBusy = 7,
  kPermissionDenied = 8,
  kUnavailable = 9,
  kTimedOut = 10,
  kIOError = 11,
  kCorruption = 12,
  kProtocolError = 13,
  kNoSpace = 14,
  kUnsupportedVersion = 15,
  kInternal = 16,
  kCancelled = 17,  // the caller asked to stop (Client::set_interrupt)
};

// The highest Code; a number above it from a peer is a protocol error.
inline constexpr Code kLastCode = Code::kCancelled;

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status OK() { return {}; }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
  static Status Busy(std::string m) { return {Code::kBusy, std::move(m)}; }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status TimedOut(std::string m) { return {Code::kTimedOut, std::move(m)}; }
  static Status IOError(std::string m) { return {Code::kIOError, std::move(m)}; }
  static Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status ProtocolError(std::string m) { return {Code::kProtocolError, std::move(m)}; }
  static Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }
  static Status Cancelled(std::string m) { return {Code::kCancelled, std::move(m)}; }
  // An errno-based failure of a system call on `what` (a path, usually).
  static Status FromErrno(int err, std::string_view what);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // "context: message", keeping the code.
  Status Prepend(std::string_view context) const;
  // "NotFound: message" for logs; users see message() alone.
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// std::expected with a Status error that converts implicitly, so a function
// returning Result<T> can `return Status::NotFound(...)`.
template <typename T>
class [[nodiscard]] Result : public std::expected<T, Status> {
 public:
  using Base = std::expected<T, Status>;
  using Base::Base;
  Result(Status s) : Base(std::unexpect, std::move(s)) {}  // NOLINT: implicit on purpose
  // The error as a Status; OK when the result holds a value.
  Status status() const { return this->has_value() ? Status::OK() : this->error(); }
};

// Marks a Status ignored on purpose; say why at the call.
inline void IgnoreError(const Status&) {}

}  // namespace dfs

#define DFS_CONCAT_INNER(a, b) a##b
#define DFS_CONCAT(a, b) DFS_CONCAT_INNER(a, b)

#define DFS_RETURN_IF_ERROR(expr)                 \
  do {                                            \
    ::dfs::Status dfs_status_ = (expr);           \
    if (!dfs_status_.ok()) return dfs_status_;    \
  } while (0)

#define DFS_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.has_value()) return std::move(tmp).error(); \
  lhs = std::move(*tmp)

#define DFS_ASSIGN_OR_RETURN(lhs, expr) \
  DFS_ASSIGN_OR_RETURN_IMPL(DFS_CONCAT(dfs_result_, __LINE__), lhs, expr)
