#include "engine/scheduler_test_util.h"

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <utility>

namespace g4::test {

SchedulerOptions Opts(int slots, int64_t batch, bool exact) {
  SchedulerOptions o;
  o.n_slots = slots;
  o.n_ctx = 512;
  o.n_batch = batch;
  o.n_threads = 2;
  o.math = exact ? kernels::Math::kExact : kernels::Math::kFast;
  o.type_k = o.type_v = exact ? GgmlType::F32 : GgmlType::F16;
  return o;
}

std::vector<int32_t> Prompt(int n, uint32_t seed, bool repetitive) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t{2};
  while (static_cast<int>(t.size()) < n) {
    t.push_back(repetitive && t.size() > 8 && rng() % 3 ? t[t.size() - 7] : 3 + static_cast<int32_t>(rng() % 500));
  }
  return t;
}

RequestSpec Spec(const std::vector<int32_t>& prompt, int max_tokens) {
  RequestSpec s;
  s.prompt.push_back({prompt, {}, false, 0});
  s.sampling.temperature = 0;
  s.stop.max_tokens = max_tokens;
  return s;
}

uint64_t Waiter::Submit(Scheduler& s, RequestSpec spec) {
  spec.on_done = [this, then = std::move(spec.on_done)](const RequestResult& r) {
    if (then) then(r);
    std::lock_guard<std::mutex> l(mu_);
    done_[r.id] = r;
    cv_.notify_all();
  };
  return s.Submit(std::move(spec));
}

RequestResult Waiter::Wait(uint64_t id) {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait_for(l, std::chrono::seconds(120), [&] { return done_.count(id) > 0; });
  EXPECT_TRUE(done_.count(id)) << "request " << id << " did not finish";
  return done_[id];
}

std::vector<RequestResult> RunAll(const Model& model, const Tokenizer& tok, const SchedulerOptions& o,
                                  std::vector<RequestSpec> specs, SchedulerStats* stats) {
  Scheduler s(model, tok, o);
  Waiter w;
  std::vector<uint64_t> ids;
  for (auto& spec : specs) ids.push_back(w.Submit(s, std::move(spec)));
  std::vector<RequestResult> out;
  for (uint64_t id : ids) out.push_back(w.Wait(id));
  if (stats) *stats = s.Stats();
  return out;
}

}  // namespace g4::test
