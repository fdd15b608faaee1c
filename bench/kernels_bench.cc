// Kernel micro-benchmarks (google benchmark): MatMul at Gemma 4 12B shapes for the weight types
// that matter, GEMV (n = 1, generation) and GEMM (n = 512, prompt processing), 1 and 2 threads, plus
// the machine's streaming-read bandwidth (the GEMV roofline).
//
// Counters: weights_B/s = weight bytes streamed per second (GEMV: compare with read_B/s of
// BM_MemoryRead); FLOP/s = 2 * rows * cols * n per second. Both use wall-clock time; the *_cpu
// variants divide by the process CPU time per thread instead, which stays meaningful when other
// processes compete for the cores (they exclude time the threads were descheduled; idle pool
// threads spin for a while, which counts as busy).
// GEMV rotates over enough copies of the weights to exceed 512 MB, more than the last-level cache,
// so every call streams from DRAM as in real generation; GEMM reuses one copy (compute-bound).
// The instruction set is the active one (GEMMA4_ISA=scalar|avx2|avx512 forces a lower level).
//
//   build-kern/bench/kernels_bench --benchmark_filter='Gemv.*Q4_K'
#include <benchmark/benchmark.h>

#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "util/thread_pool.h"
#include "util/timer.h"

namespace g4::kernels {
namespace {

constexpr size_t kColdBytes = size_t{512} << 20;  // > the 300 MB L3 of the development machine

double ProcessCpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Weight-like values: roughly N(0, 0.02^2) from a hash (fast to generate, reproducible).
void FillWeights(float* x, int64_t n, uint64_t seed) {
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t h = Mix(seed * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(i));
    const float u = static_cast<float>((h >> 40) & 0xffff) + static_cast<float>(h >> 56) - 127.5f - 32767.5f;
    x[i] = u * (0.02f / 18918.0f);
  }
}

// One quantized matrix of (type, rows, cols), replicated `copies` times (the most recent request
// is cached: quantizing a 15360 x 3840 k-quant matrix takes seconds).
// Each copy is also packed (PackMatrix), as models are at load; GGUF=1 in the environment measures
// the GGUF layout instead (packed on the fly, panel by panel).
struct WeightSet {
  GgmlType type;
  int64_t rows, cols;
  size_t bytes_per_copy;
  std::vector<std::unique_ptr<uint8_t[]>> copies;
  std::vector<std::unique_ptr<PackedBuffer>> packed;
  Matrix At(size_t i) const {
    static const bool gguf = std::getenv("GGUF") != nullptr;
    return Matrix{type, rows, cols, copies[i].get(), gguf ? nullptr : packed[i]->data()};
  }
};

const WeightSet& GetWeights(GgmlType type, int64_t rows, int64_t cols, size_t copies) {
  static std::unique_ptr<WeightSet> cache;
  if (cache && cache->type == type && cache->rows == rows && cache->cols == cols && cache->copies.size() >= copies) {
    return *cache;
  }
  auto w = std::make_unique<WeightSet>();
  w->type = type;
  w->rows = rows;
  w->cols = cols;
  const size_t rb = static_cast<size_t>(RowBytes(type, cols));
  w->bytes_per_copy = rb * static_cast<size_t>(rows);
  cache.reset();  // free the previous set first
  auto first = std::make_unique<uint8_t[]>(w->bytes_per_copy);
  ThreadPool pool(2);
  pool.ParallelFor(rows, 64, [&](int64_t r0, int64_t r1) {
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t r = r0; r < r1; ++r) {
      FillWeights(row.data(), cols, static_cast<uint64_t>(r));
      QuantizeRow(type, row.data(), first.get() + static_cast<size_t>(r) * rb, cols);
    }
  });
  w->copies.push_back(std::move(first));
  while (w->copies.size() < copies) {
    auto c = std::make_unique<uint8_t[]>(w->bytes_per_copy);
    std::memcpy(c.get(), w->copies[0].get(), w->bytes_per_copy);
    w->copies.push_back(std::move(c));
  }
  for (const auto& c : w->copies) {
    const Matrix m{type, rows, cols, c.get()};
    w->packed.push_back(std::make_unique<PackedBuffer>(static_cast<size_t>(PackedBytes(m))));
    PackMatrix(m, w->packed.back()->data(), pool);
  }
  cache = std::move(w);
  return *cache;
}

// state.range(0) = type, (1) = rows, (2) = cols, (3) = n tokens, (4) = threads.
void BM_MatMul(benchmark::State& state) {
  const auto type = static_cast<GgmlType>(state.range(0));
  const int64_t rows = state.range(1), cols = state.range(2), n = state.range(3);
  const int threads = static_cast<int>(state.range(4));
  const size_t copy_bytes = static_cast<size_t>(RowBytes(type, cols) * rows);
  const size_t copies = n == 1 ? std::max<size_t>(1, (kColdBytes + copy_bytes - 1) / copy_bytes) : 1;
  const WeightSet& w = GetWeights(type, rows, cols, copies);
  std::vector<float> x(static_cast<size_t>(n * cols)), y(static_cast<size_t>(n * rows));
  FillWeights(x.data(), n * cols, 12345);
  for (float& v : x) v *= 50.0f;  // activation-like magnitudes
  ThreadPool pool(threads);
  size_t next = 0;
  const double cpu0 = ProcessCpuSeconds();
  for (auto _ : state) {
    const Matrix m = w.At(next);
    next = (next + 1) % copies;
    MatMul(m, x.data(), cols, n, y.data(), rows, Math::kFast, pool);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double cpu_per_thread = (ProcessCpuSeconds() - cpu0) / threads;
  const double iters = static_cast<double>(state.iterations());
  const double bytes = iters * static_cast<double>(copy_bytes), flops = iters * 2.0 * static_cast<double>(rows * cols * n);
  state.counters["weights_B/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsRate);
  state.counters["FLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsRate);
  state.counters["weights_B/s_cpu"] = benchmark::Counter(bytes / cpu_per_thread);
  state.counters["FLOP/s_cpu"] = benchmark::Counter(flops / cpu_per_thread);
  state.SetLabel(std::string(TypeName(type)) + " " + std::to_string(rows) + "x" + std::to_string(cols) + " n=" +
                 std::to_string(n) + " threads=" + std::to_string(threads) + " isa=" + ActiveIsa());
}

// Gemma 4 12B shapes: FFN gate/up 3840 -> 15360 (rows 15360, cols 3840), attention Q 3840 -> 4096.
void MatMulArgs(benchmark::internal::Benchmark* b, int64_t n) {
  const GgmlType types[] = {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::Q4_0,
                            GgmlType::F16,  GgmlType::BF16, GgmlType::F32};
  for (GgmlType t : types) {
    for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{15360, 3840}, {4096, 3840}}) {
      for (int threads : {1, 2}) b->Args({static_cast<int64_t>(t), rows, cols, n, threads});
    }
  }
}

// Gemma 4 E2B shapes at 2 threads, generation: FFN gate/up (12288 x 1536), down (1536 x 12288),
// attention Q (2048 x 1536), K and V (256 x 1536) and output (1536 x 2048), and the tied LM head (262144 x 1536, Q6_K in a
// Q4_K_M file): small matrices, where the cost of starting and ending a job shows.
void E2bArgs(benchmark::internal::Benchmark* b) {
  for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{12288, 1536}, {1536, 12288}, {2048, 1536}, {1536, 2048}, {256, 1536}}) {
    for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q6_K}) b->Args({static_cast<int64_t>(t), rows, cols, 1, 2});
  }
  b->Args({static_cast<int64_t>(GgmlType::Q6_K), 262144, 1536, 1, 2});
}

BENCHMARK(BM_MatMul)
    ->Name("GemvE2B")
    ->Apply(E2bArgs)
    ->MinTime(0.3)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_MatMul)
    ->Name("Gemv")
    ->Apply([](benchmark::internal::Benchmark* b) { MatMulArgs(b, 1); })
    ->MinTime(0.3)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_MatMul)
    ->Name("Gemm")
    ->Apply([](benchmark::internal::Benchmark* b) { MatMulArgs(b, 512); })
    ->MinTime(0.3)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Generation's efficiency without the host's noise: each iteration times a GEMV over one copy of the
// weights and, right after it, a plain read (ReadStream, as MeasureReadBandwidth) of the next copy's
// packed bytes on the same pool. stream_fraction = read time / GEMV time over all iterations: the
// GEMV's speed as a fraction of the memory's at that moment (the bandwidth of a shared host changes
// by a fifth from second to second, so GEMV and read measured in separate runs are hard to compare).
void BM_GemvVsRead(benchmark::State& state) {
  const auto type = static_cast<GgmlType>(state.range(0));
  const int64_t rows = state.range(1), cols = state.range(2);
  const int threads = static_cast<int>(state.range(4));
  const size_t copy_bytes = static_cast<size_t>(RowBytes(type, cols) * rows);
  const size_t copies = std::max<size_t>(2, (kColdBytes + copy_bytes - 1) / copy_bytes);
  const WeightSet& w = GetWeights(type, rows, cols, copies);
  std::vector<float> x(static_cast<size_t>(cols)), y(static_cast<size_t>(rows));
  FillWeights(x.data(), cols, 12345);
  for (float& v : x) v *= 50.0f;
  ThreadPool pool(threads);
  size_t next = 0;
  double gemv_s = 0, read_s = 0;
  for (auto _ : state) {
    const double t0 = NowSeconds();
    MatMul(w.At(next), x.data(), cols, 1, y.data(), rows, Math::kFast, pool);
    const double t1 = NowSeconds();
    next = (next + 1) % copies;
    const double bw = MeasureReadBandwidthOver(pool, {ByteRange{w.packed[next]->data(), w.packed[next]->size()}}, 1);
    read_s += static_cast<double>(w.packed[next]->size()) / bw;
    gemv_s += t1 - t0;
    next = (next + 1) % copies;
    benchmark::DoNotOptimize(y.data());
  }
  const double bytes = static_cast<double>(state.iterations()) * static_cast<double>(copy_bytes);
  state.counters["weights_B/s"] = benchmark::Counter(bytes / gemv_s);
  state.counters["read_B/s"] = benchmark::Counter(bytes / read_s);
  state.counters["stream_fraction"] = benchmark::Counter(read_s / gemv_s);
  state.SetLabel(std::string(TypeName(type)) + " " + std::to_string(rows) + "x" + std::to_string(cols) +
                 " threads=" + std::to_string(threads));
}
BENCHMARK(BM_GemvVsRead)->Name("GemvVsReadE2B")->Apply(E2bArgs)->MinTime(1.0)->Unit(benchmark::kMillisecond);

// Streaming read of a buffer larger than the last-level cache, split over `threads` threads: the
// memory bandwidth a bandwidth-bound GEMV can reach at best (ReadStream, which `gemma4 bench` uses
// for its roofline).
void BM_MemoryRead(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  static std::unique_ptr<uint8_t[]> buf;
  if (!buf) {
    buf = std::make_unique<uint8_t[]>(kColdBytes);
    for (size_t i = 0; i < kColdBytes; ++i) buf[i] = static_cast<uint8_t>(i % 7);
  }
  ThreadPool pool(threads);
  std::vector<uint64_t> sums(static_cast<size_t>(threads));
  const double cpu0 = ProcessCpuSeconds();
  for (auto _ : state) {
    pool.RunOnAll([&](int i, int nt) {
      const size_t begin = kColdBytes * static_cast<size_t>(i) / static_cast<size_t>(nt);
      const size_t end = kColdBytes * static_cast<size_t>(i + 1) / static_cast<size_t>(nt);
      sums[static_cast<size_t>(i)] = ReadStream(buf.get() + begin, end - begin);
    });
    benchmark::DoNotOptimize(sums.data());
  }
  const double bytes = static_cast<double>(state.iterations()) * static_cast<double>(kColdBytes);
  state.counters["read_B/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsRate);
  state.counters["read_B/s_cpu"] = benchmark::Counter(bytes / ((ProcessCpuSeconds() - cpu0) / threads));
}
BENCHMARK(BM_MemoryRead)->Arg(1)->Arg(2)->MinTime(0.5)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace g4::kernels

BENCHMARK_MAIN();
