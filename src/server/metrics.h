// Prometheus metrics for GET /metrics: requests by endpoint and status, tokens in and out, queue
// depth and slots, time to first token, time per output token, request duration, recent tokens/s,
// and KV cache use. Counters of the engine come from the scheduler's statistics; the rest is
// recorded by the HTTP handlers. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "engine/scheduler.h"

namespace g4::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double v);
  // Appends the _bucket, _sum and _count lines (the caller writes HELP and TYPE).
  void Render(const std::string& name, std::string* out) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative)
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();

  // One answered HTTP request. Unknown paths are counted as "other" so that the label set stays small.
  void CountRequest(const std::string& path, int status);
  // A finished generation (one choice).
  void ObserveGeneration(const RequestResult& r);
  // Generated tokens as they are delivered (the recent tokens/s gauge).
  void CountTokens(int n, double now);
  void CountQueueFull();

  // The whole exposition. `stats` are the scheduler's; without a model (loading) pass nullptr.
  std::string Render(const SchedulerStats* stats, double now) const;

 private:
  double RecentTokensPerSecond(double now) const;

  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  uint64_t queue_full_ = 0;
  Histogram ttft_, tpot_, duration_, queue_wait_;
  // Tokens per whole second over the last kWindow seconds.
  static constexpr int kWindow = 10;
  int64_t token_second_[kWindow] = {};
  uint64_t token_count_[kWindow] = {};
};

// The endpoint label of a path ("other" for anything not served).
std::string EndpointLabel(const std::string& path);

}  // namespace g4::server
