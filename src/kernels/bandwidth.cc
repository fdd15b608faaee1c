// MeasureReadBandwidth: the streaming read rate a bandwidth-bound GEMV can reach at best.
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/kernels.h"
#include "util/thread_pool.h"
#include "util/timer.h"

namespace g4::kernels {

uint64_t ReadStream(const void* data, size_t bytes) {
  // Eight streams over eighths of the range, each with a software prefetch 2 KB ahead: the hardware
  // prefetchers follow every stream, so many more lines are in flight than one stream gets (on the
  // development machine one stream read at 11 GB/s on 2 threads, one with prefetch at 15, eight with
  // prefetch at 28; the GEMV kernels stream 23-28). 64-byte vectors of the baseline instruction set:
  // memory, not arithmetic, is the limit.
  typedef uint64_t U64x8 __attribute__((vector_size(64)));
  constexpr int kStreams = 8;
  constexpr size_t kAhead = 2048;
  const uint8_t* p = static_cast<const uint8_t*>(data);
  const size_t part = bytes / kStreams / 64 * 64;
  U64x8 acc[kStreams] = {};
  for (size_t i = 0; i < part; i += 64) {
#pragma GCC unroll 8
    for (int s = 0; s < kStreams; ++s) {
      const uint8_t* q = p + static_cast<size_t>(s) * part + i;
      __builtin_prefetch(q + kAhead);
      U64x8 v;
      std::memcpy(&v, q, 64);
      acc[s] ^= v;
    }
  }
  uint64_t sum = 0;
  for (size_t i = kStreams * part; i < bytes; ++i) sum += p[i];
  for (int s = 0; s < kStreams; ++s) {
    for (int j = 0; j < 8; ++j) sum ^= acc[s][j];
  }
  return sum;
}

double MeasureReadBandwidth(ThreadPool& pool, size_t bytes, int reps) {
  bytes = std::max<size_t>(bytes, size_t{4} << 20);
  std::vector<uint8_t> buf(bytes);  // written once, so every page is resident before timing
  for (size_t i = 0; i < bytes; ++i) buf[i] = static_cast<uint8_t>(i * 131);
  return MeasureReadBandwidthOver(pool, {ByteRange{buf.data(), bytes}}, reps);
}

double MeasureReadBandwidthOver(ThreadPool& pool, const std::vector<ByteRange>& ranges, int reps) {
  size_t total = 0;
  for (const ByteRange& r : ranges) total += r.bytes;
  if (total == 0) return 0;
  std::vector<uint64_t> sums(static_cast<size_t>(pool.size()));
  double best = 0;
  for (int rep = 0; rep < std::max(reps, 1); ++rep) {
    const double t0 = NowSeconds();
    pool.RunOnAll([&](int i, int nt) {
      // This thread's share [begin, end) of the ranges laid end to end, in whole 64-byte lines.
      const size_t begin = total * static_cast<size_t>(i) / static_cast<size_t>(nt) / 64 * 64;
      const size_t end = i + 1 == nt ? total : total * static_cast<size_t>(i + 1) / static_cast<size_t>(nt) / 64 * 64;
      uint64_t sum = 0;
      size_t at = 0;  // offset of range r in the concatenation
      for (const ByteRange& r : ranges) {
        const size_t lo = std::max(begin, at), hi = std::min(end, at + r.bytes);
        if (lo < hi) sum ^= ReadStream(static_cast<const uint8_t*>(r.data) + (lo - at), hi - lo);
        at += r.bytes;
      }
      sums[static_cast<size_t>(i)] = sum;
    });
    const double sec = NowSeconds() - t0;
    if (sec > 0) best = std::max(best, static_cast<double>(total) / sec);
  }
  volatile uint64_t sink = sums[0];  // keeps the reads
  (void)sink;
  return best;
}

}  // namespace g4::kernels
