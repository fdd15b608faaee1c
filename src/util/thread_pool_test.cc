#include "util/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace g4 {
namespace {

TEST(ThreadPool, RunOnAllVisitsEveryThreadOnce) {
  ThreadPool pool(3);
  for (int rep = 0; rep < 200; ++rep) {
    std::vector<std::atomic<int>> hits(3);
    pool.RunOnAll([&](int i, int n) {
      EXPECT_EQ(n, 3);
      hits[i].fetch_add(1);
    });
    for (auto& h : hits) EXPECT_EQ(h.load(), 1);
  }
}

TEST(ThreadPool, ParallelForCoversRangeExactlyOnce) {
  ThreadPool pool(2);
  for (int64_t n : {1, 2, 7, 64, 1000, 4097}) {
    std::vector<std::atomic<int>> seen(static_cast<size_t>(n));
    pool.ParallelFor(n, 3, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) seen[static_cast<size_t>(i)].fetch_add(1);
    });
    for (auto& s : seen) EXPECT_EQ(s.load(), 1);
  }
}

TEST(ThreadPool, SingleThreadRunsInline) {
  ThreadPool pool(1);
  int calls = 0;
  pool.ParallelFor(10, 1, [&](int64_t b, int64_t e) { calls += static_cast<int>(e - b); });
  EXPECT_EQ(calls, 10);
}

}  // namespace
}  // namespace g4

namespace g4 {
namespace {

TEST(ThreadPool, RunCoversEveryTaskOnceManyTimes) {
  ThreadPool pool(3);
  for (int rep = 0; rep < 2000; ++rep) {
    const int64_t n = 1 + rep % 37;
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    pool.Run(n, [&](int64_t i) { hits[static_cast<size_t>(i)].fetch_add(1); });
    for (auto& h : hits) ASSERT_EQ(h.load(), 1);
  }
}

// More threads than cores and two pools competing: calls still complete, and every task runs once.
TEST(ThreadPool, OversubscribedPoolsMakeProgress) {
  auto body = [] {
    ThreadPool pool(8);
    int64_t total = 0;
    std::atomic<int64_t> sum{0};
    for (int rep = 0; rep < 500; ++rep) {
      pool.ParallelFor(100, 1, [&](int64_t b, int64_t e) { sum.fetch_add(e - b); });
      total += 100;
    }
    EXPECT_EQ(sum.load(), total);
  };
  std::thread a(body), b(body);
  a.join();
  b.join();
}

}  // namespace
}  // namespace g4
