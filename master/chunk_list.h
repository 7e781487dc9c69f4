// A file's chunk ids in 16 bytes: one id inline (most files have one chunk),
// more on the heap. absl::InlinedVector<uint64_t, 1> takes 24, and those 8
// bytes decide whether an inode fits a 112-byte allocation (RSS per file is
// what bounds how many files one master holds).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>

namespace dfs::master {

class ChunkList {
 public:
  ChunkList() = default;
  ChunkList(const ChunkList& other) { *this = other; }
  ChunkList(ChunkList&& other) noexcept : size_(other.size_), capacity_(other.capacity_), u_(other.u_) {
    other.size_ = other.capacity_ = 0;
  }
  ChunkList& operator=(const ChunkList& other) {
    if (this == &other) return *this;
    clear();
    reserve(other.size_);
    for (uint64_t id : other) push_back(id);
    return *this;
  }
  ChunkList& operator=(ChunkList&& other) noexcept {
    if (this != &other) {
      clear();
      size_ = other.size_;
      capacity_ = other.capacity_;
      u_ = other.u_;
      other.size_ = other.capacity_ = 0;
    }
    return *this;
  }
  ~ChunkList() { clear(); }

  uint32_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const uint64_t* begin() const { return heap() ? u_.many : &u_.one; }
  const uint64_t* end() const { return begin() + size_; }
  uint64_t operator[](size_t i) const { return begin()[i]; }

  void reserve(uint32_t n) {
    if (n <= std::max<uint32_t>(capacity_, 1)) return;
    auto* grown = new uint64_t[n];
    if (size_ > 0) std::memcpy(grown, begin(), size_ * sizeof(uint64_t));
    if (heap()) delete[] u_.many;
    u_.many = grown;
    capacity_ = n;
  }
  void push_back(uint64_t id) {
    if (size_ == 0 && !heap()) {
      u_.one = id;
      size_ = 1;
      return;
    }
    if (size_ + 1 > std::max<uint32_t>(capacity_, 1)) reserve(std::max<uint32_t>(4, size_ * 2));
    u_.many[size_++] = id;
  }
  void clear() {
    if (heap()) delete[] u_.many;
    size_ = capacity_ = 0;
  }

 private:
  bool heap() const { return capacity_ > 0; }  // capacity_ 0: the inline slot
  uint32_t size_ = 0;
  uint32_t capacity_ = 0;
  union {
    uint64_t one;
    uint64_t* many;
  } u_{0};
};

}  // namespace dfs::master
