// A file's chunk ids in one 8-byte word (RSS per file is what bounds how many
// files one master holds, and most files have one chunk):
//   0                   no chunks
//   1 .. 2^63-1         one chunk: the word is its id (ids count up from 1)
//   kHeap | Block*      more, or one id of 0 or of 2^63 and over. A user-space
//                       pointer has its top bit clear on x86-64 and AArch64
//                       Linux; Allocate checks it.
// absl::InlinedVector<uint64_t, 1> takes 24 bytes, the 16-byte list this
// replaces 16; the word shares the inode's payload slot with a directory's
// children (namespace.h).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

namespace dfs::master {

class ChunkList {
 public:
  ChunkList() = default;
  ChunkList(const ChunkList& other) { *this = other; }
  ChunkList(ChunkList&& other) noexcept : word_(other.word_) { other.word_ = 0; }
  ChunkList& operator=(const ChunkList& other) {
    if (this == &other) return *this;
    clear();
    reserve(other.size());
    for (uint64_t id : other) push_back(id);
    return *this;
  }
  ChunkList& operator=(ChunkList&& other) noexcept {
    if (this != &other) {
      clear();
      word_ = other.word_;
      other.word_ = 0;
    }
    return *this;
  }
  ~ChunkList() { clear(); }

  uint32_t size() const { return heap() ? block()->size : word_ != 0 ? 1 : 0; }
  bool empty() const { return word_ == 0; }
  const uint64_t* begin() const { return heap() ? block()->ids() : &word_; }
  const uint64_t* end() const { return begin() + size(); }
  uint64_t operator[](size_t i) const { return begin()[i]; }

  void reserve(uint32_t n) {
    if (n <= capacity()) return;
    Block* grown = Allocate(n);
    grown->size = size();
    if (grown->size > 0) std::memcpy(grown->ids(), begin(), grown->size * sizeof(uint64_t));
    Free();
    word_ = kHeap | reinterpret_cast<uint64_t>(grown);
  }
  void push_back(uint64_t id) {
    if (word_ == 0 && id != 0 && (id & kHeap) == 0) {
      word_ = id;
      return;
    }
    const uint32_t count = size();
    if (!heap() || count == block()->capacity) reserve(std::max<uint32_t>(4, count * 2));
    block()->ids()[block()->size++] = id;
  }
  void clear() {
    Free();
    word_ = 0;
  }

 private:
  static constexpr uint64_t kHeap = uint64_t{1} << 63;
  struct Block {  // followed by `capacity` ids
    uint32_t size;
    uint32_t capacity;
    uint64_t* ids() { return reinterpret_cast<uint64_t*>(this + 1); }
  };
  static_assert(sizeof(Block) == sizeof(uint64_t));
  static Block* Allocate(uint32_t n) {
    void* p = ::operator new(sizeof(Block) + size_t{n} * sizeof(uint64_t));
    if ((reinterpret_cast<uint64_t>(p) & kHeap) != 0) std::abort();  // see the layout above
    auto* b = static_cast<Block*>(p);
    b->size = 0;
    b->capacity = n;
    return b;
  }
  void Free() {
    if (heap()) ::operator delete(block());
  }
  bool heap() const { return (word_ & kHeap) != 0; }
  Block* block() const { return reinterpret_cast<Block*>(word_ & ~kHeap); }
  // The word holds one id inline (if it fits; push_back checks).
  uint32_t capacity() const { return heap() ? block()->capacity : 1; }

  uint64_t word_ = 0;
};

}  // namespace dfs::master
