#include "util/thread_pool.h"

#include <sched.h>

#include <algorithm>
#include <chrono>

#include "util/error.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace g4 {

namespace {
inline void CpuRelax() {
#if defined(__x86_64__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}
// How long an idle worker spins before it sleeps: long enough to cover the gap between two
// operations of a forward pass, short enough not to burn a core while the user types.
constexpr auto kSpinTime = std::chrono::microseconds(2000);

constexpr int kIdxBits = 20, kGenBits = 24;
constexpr uint64_t kIdxMask = (uint64_t{1} << kIdxBits) - 1;
constexpr uint64_t kGenMask = (uint64_t{1} << kGenBits) - 1;
constexpr int64_t kMaxTasks = int64_t{1} << kIdxBits;  // per job; larger jobs run in several rounds

inline uint64_t Gen(uint64_t c) { return c >> (2 * kIdxBits); }
inline uint64_t Count(uint64_t c) { return (c >> kIdxBits) & kIdxMask; }
inline uint64_t Next(uint64_t c) { return c & kIdxMask; }
}  // namespace

int ThreadPool::DefaultThreads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

ThreadPool::ThreadPool(int n_threads) {
  n_threads_ = n_threads <= 0 ? DefaultThreads() : n_threads;
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  wake_.fetch_add(1);
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

int64_t ThreadPool::Work(uint64_t gen) {
  int64_t ran = 0;
  for (;;) {
    uint64_t c = claim_.load(std::memory_order_acquire);
    if (Gen(c) != gen || Next(c) >= Count(c)) return ran;
    if (!claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel, std::memory_order_relaxed)) continue;
    // The task is ours and unfinished, so its job (and fn_) is still current.
    (*fn_)(static_cast<int64_t>(Next(c)));
    done_.fetch_add(1, std::memory_order_acq_rel);
    ++ran;
  }
}

void ThreadPool::WorkerLoop() {
  uint64_t seen = 0;
  for (;;) {
    uint64_t w = wake_.load(std::memory_order_acquire);
    if (w == seen) {
      const auto until = std::chrono::steady_clock::now() + kSpinTime;
      int spins = 0;
      while ((w = wake_.load(std::memory_order_acquire)) == seen) {
        CpuRelax();
        if (++spins % 256 == 0 && std::chrono::steady_clock::now() > until) {
          wake_.wait(seen, std::memory_order_acquire);
        }
      }
    }
    seen = w;
    if (stop_.load()) return;
    Work(Gen(claim_.load(std::memory_order_acquire)));
  }
}

void ThreadPool::Run(int64_t n_tasks, const std::function<void(int64_t)>& task) {
  if (n_tasks <= 0) return;
  if (n_threads_ == 1 || n_tasks == 1) {
    for (int64_t i = 0; i < n_tasks; ++i) task(i);
    return;
  }
  // Very large jobs run in rounds of kMaxTasks.
  for (int64_t base = 0; base < n_tasks; base += kMaxTasks) {
    const int64_t count = std::min(kMaxTasks, n_tasks - base);
    std::function<void(int64_t)> shifted;
    const std::function<void(int64_t)>* fn = &task;
    if (base > 0) {
      shifted = [&](int64_t i) { task(base + i); };
      fn = &shifted;
    }
    gen_ = (gen_ + 1) & kGenMask;
    fn_ = fn;
    done_.store(0, std::memory_order_relaxed);
    claim_.store((gen_ << (2 * kIdxBits)) | (static_cast<uint64_t>(count) << kIdxBits), std::memory_order_release);
    wake_.fetch_add(1, std::memory_order_acq_rel);
    wake_.notify_all();
    Work(gen_);
    // Wait for tasks other threads took; yield now and then so a preempted worker can finish.
    int spins = 0;
    while (done_.load(std::memory_order_acquire) < count) {
      if (++spins % 64 == 0) {
        sched_yield();
      } else {
        CpuRelax();
      }
    }
  }
}

void ThreadPool::RunOnAll(const std::function<void(int, int)>& fn) {
  const int n = n_threads_;
  Run(n, [&](int64_t i) { fn(static_cast<int>(i), n); });
}

void ThreadPool::ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  if (n_threads_ == 1 || n <= grain) {
    fn(0, n);
    return;
  }
  // Chunks: about 4 per thread so that uneven threads balance, but never below the grain.
  const int64_t chunk = std::max<int64_t>(grain, (n + 4 * n_threads_ - 1) / (4 * n_threads_));
  const int64_t tasks = (n + chunk - 1) / chunk;
  Run(tasks, [&](int64_t t) { fn(t * chunk, std::min(n, (t + 1) * chunk)); });
}

}  // namespace g4
