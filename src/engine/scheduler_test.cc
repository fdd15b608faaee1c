#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include <future>

#include "engine/scheduler_test_util.h"
#include "testutil.h"

namespace g4 {
namespace {

using test::Opts;
using test::Prompt;
using test::Spec;
using test::Waiter;

struct Fixture {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tok;
};

Fixture Load(const char* file = "golden/g4u-tiny/g4u-tiny.f32.gguf") {
  Fixture f;
  f.model = Model::Load(g4::testing::SharedPath(file));
  f.tok = std::make_unique<Tokenizer>(Tokenizer::FromGguf(f.model->file()));
  return f;
}

class Concurrent : public ::testing::TestWithParam<bool> {};

// Exactly equal, in both numerics: the kernels give every row the same result whatever else is in the
// batch, so batching never changes a greedy choice.
TEST_P(Concurrent, GreedyRequestsEqualEachAlone) {
  G4_REQUIRE_SHARED();
  const bool fast = GetParam();
  Fixture f = Load(fast ? "golden/g4u-tiny/g4u-tiny.q8_0.gguf" : "golden/g4u-tiny/g4u-tiny.f32.gguf");
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 6; ++i) prompts.push_back(Prompt(5 + 17 * i, 100 + i));
  std::vector<std::vector<int32_t>> alone;
  {
    Scheduler s(*f.model, *f.tok, Opts(1, 64, !fast));
    Waiter w;
    for (auto& p : prompts) alone.push_back(w.Wait(w.Submit(s, Spec(p, 24))).tokens);
  }
  // Six requests over four slots with a small batch: continuous batching, chunked prefill, queueing.
  Scheduler s(*f.model, *f.tok, Opts(4, 24, !fast));
  Waiter w;
  std::vector<uint64_t> ids;
  for (auto& p : prompts) ids.push_back(w.Submit(s, Spec(p, 24)));
  for (size_t i = 0; i < ids.size(); ++i) {
    const RequestResult r = w.Wait(ids[i]);
    EXPECT_EQ(r.tokens, alone[i]) << "request " << i;
    EXPECT_EQ(r.finish, FinishReason::kLength);
  }
  const auto st = s.Stats();
  EXPECT_EQ(st.requests_finished, 6u);
  EXPECT_EQ(st.active, 0);
  EXPECT_LT(st.forward_steps, 6u * 24u);  // requests really shared forward passes
}
INSTANTIATE_TEST_SUITE_P(Math, Concurrent, ::testing::Values(false, true),
                         [](const auto& i) { return i.param ? "Fast" : "Exact"; });

TEST(Scheduler, PrefixCachingReusesTheSharedPrompt) {
  G4_REQUIRE_SHARED();
  Fixture f = Load();
  auto system = Prompt(120, 7);
  auto a = system, b = system;
  a.insert(a.end(), {300, 301, 302});
  b.insert(b.end(), {400, 401});
  std::vector<int32_t> fresh_b;
  {
    Scheduler s(*f.model, *f.tok, Opts(1));
    Waiter w;
    fresh_b = w.Wait(w.Submit(s, Spec(b, 10))).tokens;
  }
  Scheduler s(*f.model, *f.tok, Opts(2));
  Waiter w;
  const auto ra = w.Wait(w.Submit(s, Spec(a, 10)));
  EXPECT_EQ(ra.n_cached, 0);
  const auto rb = w.Wait(w.Submit(s, Spec(b, 10)));
  EXPECT_EQ(rb.n_cached, 120);  // the shared system prompt came from the cache
  EXPECT_EQ(rb.tokens, fresh_b);
}

TEST(Scheduler, QueueFullAndPromptTooLong) {
  G4_REQUIRE_SHARED();
  Fixture f = Load();
  auto o = Opts(1);
  o.max_queue = 2;
  Scheduler s(*f.model, *f.tok, o);
  Waiter w;
  std::vector<uint64_t> ids;
  int refused = 0;
  for (int i = 0; i < 8; ++i) {
    try {
      ids.push_back(w.Submit(s, Spec(Prompt(40, i), 200)));
    } catch (const QueueFullError&) {
      ++refused;
    }
  }
  EXPECT_GT(refused, 0);
  for (auto id : ids) s.Cancel(id);
  for (auto id : ids) EXPECT_EQ(w.Wait(id).finish, FinishReason::kCancelled);
  try {
    w.Submit(s, Spec(Prompt(600, 1), 5));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the prompt has 600 tokens but a request's context holds 512"),
              std::string::npos);
  }
}

TEST(Scheduler, CancelFreesTheSlotAtOnce) {
  G4_REQUIRE_SHARED();
  Fixture f = Load();
  Scheduler s(*f.model, *f.tok, Opts(1));
  Waiter w;
  std::promise<void> started;
  bool once = false;
  auto spec = Spec(Prompt(10, 3), 100000);
  spec.on_token = [&](const TokenEvent&) {
    if (!once) started.set_value();
    once = true;
    return true;
  };
  const uint64_t id = w.Submit(s, std::move(spec));
  started.get_future().wait();
  s.Cancel(id);
  EXPECT_EQ(w.Wait(id).finish, FinishReason::kCancelled);
  // The single slot serves the next request.
  const auto r = w.Wait(w.Submit(s, Spec(Prompt(10, 4), 3)));
  EXPECT_EQ(r.tokens.size(), 3u);
}

// Only digit pieces, and exactly 6 bytes of them.
class Digits : public TokenConstraint {
 public:
  bool Allows(std::string_view t) const override {
    if (t.empty() || text_.size() + t.size() > 6) return false;
    for (char c : t) {
      if (c < '0' || c > '9') return false;
    }
    return true;
  }
  void Accept(std::string_view t) override { text_ += t; }
  bool Complete() const override { return text_.size() == 6; }
  bool MustEnd() const override { return text_.size() == 6; }
  std::string text_;
};

TEST(Scheduler, ConstrainedDecodingFollowsTheConstraint) {
  G4_REQUIRE_SHARED();
  Fixture f = Load();
  Scheduler s(*f.model, *f.tok, Opts(2));
  Waiter w;
  auto spec = Spec(Prompt(12, 5), 50);
  spec.sampling.temperature = 0.9f;
  spec.constraint = std::make_shared<Digits>();
  const auto r = w.Wait(w.Submit(s, std::move(spec)));
  ASSERT_EQ(r.text.size(), 6u) << r.text;
  for (char c : r.text) EXPECT_TRUE(c >= '0' && c <= '9') << r.text;
}

TEST(Scheduler, DrainFinishesInFlightRequests) {
  G4_REQUIRE_SHARED();
  Fixture f = Load();
  auto s = std::make_unique<Scheduler>(*f.model, *f.tok, Opts(2));
  Waiter w;
  const uint64_t a = w.Submit(*s, Spec(Prompt(20, 8), 16));
  const uint64_t b = w.Submit(*s, Spec(Prompt(20, 9), 16));
  s->Shutdown(/*drain=*/true);
  EXPECT_EQ(w.Wait(a).finish, FinishReason::kLength);
  EXPECT_EQ(w.Wait(b).finish, FinishReason::kLength);
  EXPECT_THROW(w.Submit(*s, Spec(Prompt(5, 1), 1)), Error);
}

}  // namespace
}  // namespace g4
