// A fixed pool of worker threads for the forward pass. The caller takes part in every job, so a
// pool of N threads runs N-1 workers. Between jobs the workers spin for a short while before they
// sleep, so consecutive operations of one forward pass (hundreds per token) do not pay for a wake-up.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace g4 {

class ThreadPool {
 public:
  // n_threads <= 0 means one thread per available core.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(thread_index, n_threads) once on every thread (the caller is thread 0) and returns when
  // all are done. fn must not throw; errors are reported through its own state.
  void RunOnAll(const std::function<void(int, int)>& fn);

  // Calls fn(begin, end) over [0, n) split into chunks of at least `grain` items, handed out
  // dynamically so faster threads take more. Returns when all chunks are done.
  void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  static int DefaultThreads();

 private:
  void WorkerLoop(int index);

  int n_threads_ = 1;
  std::vector<std::thread> workers_;
  const std::function<void(int, int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace g4
