// MeasureReadBandwidth: the streaming read rate a bandwidth-bound GEMV can reach at best.
#include <algorithm>
#include <vector>

#include "kernels/kernels.h"
#include "util/thread_pool.h"
#include "util/timer.h"

namespace g4::kernels {

double MeasureReadBandwidth(ThreadPool& pool, size_t bytes, int reps) {
  const size_t floats = std::max<size_t>(bytes / sizeof(float), 1 << 20);
  std::vector<float> buf(floats);  // written once, so every page is resident before timing
  for (size_t i = 0; i < floats; ++i) buf[i] = static_cast<float>(i & 7);
  std::vector<float> sums(static_cast<size_t>(pool.size()));
  double best = 0;
  for (int r = 0; r < std::max(reps, 1); ++r) {
    const double t0 = NowSeconds();
    pool.RunOnAll([&](int i, int nt) {
      const size_t begin = floats * static_cast<size_t>(i) / static_cast<size_t>(nt);
      const size_t end = floats * static_cast<size_t>(i + 1) / static_cast<size_t>(nt);
      // A dot product of the slice with itself: each element is loaded from memory once.
      sums[static_cast<size_t>(i)] = DotF32(buf.data() + begin, buf.data() + begin, static_cast<int64_t>(end - begin));
    });
    const double sec = NowSeconds() - t0;
    if (sec > 0) best = std::max(best, static_cast<double>(floats * sizeof(float)) / sec);
  }
  volatile float sink = sums[0];  // keeps the reads
  (void)sink;
  return best;
}

}  // namespace g4::kernels
