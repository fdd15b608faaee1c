// Helpers shared by the scheduler's tests: small-model options, random prompts, requests, and a
// Waiter that submits requests and collects their results.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "engine/scheduler.h"

namespace g4::test {

// n_ctx 512, two threads; exact numerics with F32 caches (the reference), or the fast ones with F16.
SchedulerOptions Opts(int slots, int64_t batch = 64, bool exact = true);

// `n` tokens: <bos> then random ids in [3, 503); `repetitive` repeats earlier stretches (what n-gram
// drafting feeds on).
std::vector<int32_t> Prompt(int n, uint32_t seed, bool repetitive = false);

// A greedy request for `max_tokens` tokens.
RequestSpec Spec(const std::vector<int32_t>& prompt, int max_tokens);

// Submits requests (chaining their on_done) and waits for their results.
class Waiter {
 public:
  uint64_t Submit(Scheduler& s, RequestSpec spec);
  RequestResult Wait(uint64_t id);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, RequestResult> done_;
};

// Runs the requests together on a fresh scheduler and returns their results in order.
std::vector<RequestResult> RunAll(const Model& model, const Tokenizer& tok, const SchedulerOptions& o,
                                  std::vector<RequestSpec> specs, SchedulerStats* stats = nullptr);

}  // namespace g4::test
