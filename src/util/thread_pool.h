// A fixed pool of worker threads for the forward pass. Work is a set of tasks claimed from a shared
// counter; the caller claims tasks too, and a call returns as soon as every task is done, without
// waiting for workers that never got to run. That matters when the machine is oversubscribed (tests
// in parallel, other programs): a worker that the OS has not scheduled yet simply finds nothing left,
// instead of stalling every operation of the forward pass by a scheduler time slice.
// Between jobs the workers spin for a short while before they sleep, so consecutive operations of one
// forward pass (hundreds per token) do not pay for a wake-up.
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

  // Runs task(i) for every i in [0, n_tasks) on the pool's threads and the caller; returns when all
  // are done. Tasks must not throw.
  void Run(int64_t n_tasks, const std::function<void(int64_t)>& task);

  // Runs fn(i, n_threads) for i in [0, n_threads): one task per thread, though any thread may run
  // any of them (a task must not rely on which OS thread runs it). fn must not throw.
  void RunOnAll(const std::function<void(int, int)>& fn);

  // Calls fn(begin, end) over [0, n) split into chunks of at least `grain` items, handed out
  // dynamically so faster threads take more. Returns when all chunks are done.
  void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  static int DefaultThreads();

 private:
  void WorkerLoop();
  // Claims and runs tasks of job `gen` until none is left; returns how many it ran.
  int64_t Work(uint64_t gen);

  int n_threads_ = 1;
  std::vector<std::thread> workers_;
  // The current job: claim_ packs [generation:24][n_tasks:20][next task:20]; a task is claimed by a
  // compare-and-swap that also checks the generation, so a late worker can never take a task of a
  // job that is over. fn_ and done_ belong to the job whose tasks are still being claimed.
  std::atomic<uint64_t> claim_{0};
  std::atomic<int64_t> done_{0};
  const std::function<void(int64_t)>* fn_ = nullptr;
  uint64_t gen_ = 0;                       // generation of the last job (caller side)
  std::atomic<uint64_t> wake_{0};          // bumped for every job, workers wait on it
  std::atomic<bool> stop_{false};
};

}  // namespace g4
