// Internal: grow-only 64-byte-aligned buffers for per-thread scratch memory, so that steady-state
// kernel calls never allocate.
//
// The growth path is out of line (scratch.cc, compiled for the baseline ISA) on purpose: the SIMD
// translation units use this class, and an inline function they emitted out of line would be
// compiled with their -m flags and could be the copy the linker keeps for every caller.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace g4::kernels {

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer();

  // At least `count` elements of T, 64-byte aligned. Contents are kept only while no growth is
  // needed; growth discards them.
  template <typename T>
  T* Get(size_t count) {
    return static_cast<T*>(count * sizeof(T) <= capacity_ ? data_ : Grow(count * sizeof(T)));
  }

  // Number of growths (allocations) of any AlignedBuffer so far: tests check that steady-state
  // kernel calls do not allocate.
  static uint64_t GrowCount() { return grow_count_.load(std::memory_order_relaxed); }

 private:
  void* Grow(size_t bytes);
  static std::atomic<uint64_t> grow_count_;
  void* data_ = nullptr;
  size_t capacity_ = 0;
};

// The scratch memory of one MatMul worker: decoded weight chunks, f32 panels, packed tiles of an
// unpacked matrix, row buffers of the scalar kernels. MatMul keeps one per (thread pool, task slot),
// so whichever OS thread runs a slot finds memory already grown for the shapes that slot has run.
struct KernelScratch {
  AlignedBuffer q, f0, f1, i0, i1, fpanel, packed, rowb, rowf;
};

}  // namespace g4::kernels
