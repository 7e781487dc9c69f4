#include "common/status.h"

#include <cstring>

namespace dfs {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "OK";
    case Code::kInvalidArgument: return "InvalidArgument";
    case Code::kNotFound: return "NotFound";
    case Code::kAlreadyExists: return "AlreadyExists";
    case Code::kNotADirectory: return "NotADirectory";
    case Code::kIsADirectory: return "IsADirectory";
    case Code::kNotEmpty: return "NotEmpty";
    case Code::kBusy: return "Busy";
    case Code::kPermissionDenied: return "PermissionDenied";
    case Code::kUnavailable: return "Unavailable";
    case Code::kTimedOut: return "TimedOut";
    case Code::kIOError: return "IOError";
    case Code::kCorruption: return "Corruption";
    case Code::kProtocolError: return "ProtocolError";
    case Code::kNoSpace: return "NoSpace";
    case Code::kUnsupportedVersion: return "UnsupportedVersion";
    case Code::kInternal: return "Internal";
    case Code::kCancelled: return "Cancelled";
  }
  return "Unknown";
}

Status Status::FromErrno(int err, std::string_view what) {
  std::string m = std::string(what) + ": " + std::strerror(err);
  switch (err) {
    case ENOENT: return {Code::kNotFound, m};
    case EEXIST: return {Code::kAlreadyExists, m};
    case ENOTDIR: return {Code::kNotADirectory, m};
    case EISDIR: return {Code::kIsADirectory, m};
    case ENOTEMPTY: return {Code::kNotEmpty, m};
    case EACCES:
    case EPERM: return {Code::kPermissionDenied, m};
    case ENOSPC:
    case EDQUOT: return {Code::kNoSpace, m};
    case EWOULDBLOCK: return {Code::kBusy, m};
    default: return {Code::kIOError, m};
  }
}

Status Status::Prepend(std::string_view context) const {
  if (ok()) return *this;
  return {code_, std::string(context) + ": " + message_};
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(CodeName(code_)) + ": " + message_;
}

}  // namespace dfs
