#include "kernels/scratch.h"

#include <cstdlib>
#include <new>

namespace g4::kernels {

std::atomic<uint64_t> AlignedBuffer::grow_count_{0};

AlignedBuffer::~AlignedBuffer() { std::free(data_); }

void* AlignedBuffer::Grow(size_t bytes) {
  grow_count_.fetch_add(1, std::memory_order_relaxed);
  bytes = (bytes + 63) / 64 * 64;
  std::free(data_);
  data_ = nullptr;
  capacity_ = 0;
  void* p = std::aligned_alloc(64, bytes == 0 ? 64 : bytes);
  if (p == nullptr) throw std::bad_alloc();
  data_ = p;
  capacity_ = bytes;
  return p;
}

}  // namespace g4::kernels
