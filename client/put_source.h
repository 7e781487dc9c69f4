// Private to libdfs_client: where Put reads its bytes. A source that knows its
// size (a regular file, a buffer) is read at any offset, so several chunks
// stream at once and a failed chunk is simply read again; a stream (a pipe,
// stdin) is read once, in order, and Put keeps each chunk's frames until the
// chunk is stored.
#pragma once

#include <cstddef>
#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "bus/socket.h"
#include "common/status.h"

namespace dfs::client {

class PutSource {
 public:
  virtual ~PutSource() = default;
  // The total size for sources read at offsets; nullopt for streams.
  virtual std::optional<uint64_t> size() const = 0;
  // Sized sources: exactly `length` bytes at `offset`, as one frame.
  virtual Result<bus::Frame> ReadAt(uint64_t offset, size_t length) = 0;
  // Streams: the next `max` bytes as one frame, fewer only at the end, and
  // an empty frame once the stream is exhausted. nullopt when a whole frame
  // is not there yet (a slow pipe): what arrived is kept for the next call,
  // and wait_fd() turns readable when more comes.
  virtual Result<std::optional<bus::Frame>> ReadNext(size_t max) = 0;
  // A descriptor to poll while ReadNext has nothing; -1 if it never waits.
  virtual int wait_fd() const { return -1; }
};

// A regular file is read at offsets (pread); anything else as a stream.
// `name` is for error messages ("-" for stdin). Does not own `fd`.
Result<std::unique_ptr<PutSource>> FdSource(int fd, std::string name);
// Does not own `data`; it must outlive the Put.
std::unique_ptr<PutSource> MemorySource(std::span<const std::byte> data);
std::unique_ptr<PutSource> StreamSource(std::istream& in);

}  // namespace dfs::client
