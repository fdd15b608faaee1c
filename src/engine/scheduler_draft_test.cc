// Speculative decoding inside continuous batching: with every kind of drafter, several concurrent
// greedy (and seeded sampled) requests get exactly the tokens they get without drafting (the bonus
// tokens and drafts of all of them verified in shared forward passes), the counters move, logprobs
// are unchanged, constrained requests are decoded without drafts, and bad drafter setups are clear
// errors.
#include <gtest/gtest.h>

#include "engine/scheduler_test_util.h"
#include "testutil.h"

namespace g4 {
namespace {

using test::Opts;
using test::Prompt;
using test::Spec;
using test::Waiter;

const std::string kModels = std::string(GEMMA4_SOURCE_DIR) + "/models/";

std::string Golden(const std::string& rel) { return g4::testing::SharedPath("golden/" + rel); }

// Greedy requests for `max_tokens` tokens, run together on a scheduler.
std::vector<RequestResult> RunAll(const Model& model, const Tokenizer& tok, const SchedulerOptions& o,
                                  const std::vector<std::vector<int32_t>>& prompts, int max_tokens,
                                  SchedulerStats* stats = nullptr) {
  std::vector<RequestSpec> specs;
  for (const auto& p : prompts) specs.push_back(Spec(p, max_tokens));
  return test::RunAll(model, tok, o, std::move(specs), stats);
}

struct Golden4 {
  std::unique_ptr<Model> target, assistant, other;
  std::unique_ptr<Tokenizer> tok;
  Golden4() {
    target = Model::Load(Golden("g4u-tiny/g4u-tiny.f32.gguf"));
    assistant = Model::Load(Golden("g4u-assistant-tiny/g4u-assistant-tiny.f32.gguf"));
    other = Model::Load(Golden("g4-e2b-tiny/g4-e2b-tiny.f32.gguf"));
    tok = std::make_unique<Tokenizer>(Tokenizer::FromGguf(target->file()));
  }
};

class DraftKinds : public ::testing::TestWithParam<std::string> {};

// Five requests over three slots (queueing, chunked prefill beside verification batches, prompts of
// different lengths), each greedy output identical to the scheduler without drafting.
TEST_P(DraftKinds, GreedyConcurrentRequestsIdenticalToNoDrafting) {
  G4_REQUIRE_SHARED();
  Golden4 g;
  const std::string kind = GetParam();
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 5; ++i) prompts.push_back(Prompt(9 + 23 * i, 40 + i, kind == "ngram"));
  const int n = 60;
  const auto plain = RunAll(*g.target, *g.tok, Opts(3), prompts, n);
  SchedulerOptions o = Opts(3);
  o.draft_mode = kind == "assistant" ? DraftMode::kAssistant : kind == "model" ? DraftMode::kModel : DraftMode::kNgram;
  o.draft_model = kind == "assistant" ? g.assistant.get() : kind == "model" ? g.other.get() : nullptr;
  o.draft_max = 6;
  SchedulerStats st;
  const auto spec = RunAll(*g.target, *g.tok, o, prompts, n, &st);
  int drafted = 0, accepted = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(spec[i].tokens, plain[i].tokens) << kind << " request " << i;
    EXPECT_EQ(spec[i].text, plain[i].text) << kind << " request " << i;
    EXPECT_EQ(spec[i].finish, FinishReason::kLength);
    drafted += spec[i].n_drafted;
    accepted += spec[i].n_draft_accepted;
  }
  EXPECT_TRUE(st.drafting);
  EXPECT_GT(st.draft_tokens, 0u);
  EXPECT_EQ(st.draft_tokens, static_cast<uint64_t>(drafted));
  EXPECT_EQ(st.draft_accepted, static_cast<uint64_t>(accepted));
  EXPECT_EQ(st.decode_tokens, st.decode_steps + st.draft_accepted);
  // The golden assistant has random weights (its drafts are almost never right); the draft model
  // and the n-grams are accepted on these prompts. The trained assistant's acceptance is tested below.
  if (kind != "assistant") {
    EXPECT_GT(st.draft_accepted, 0u) << "no draft was ever accepted";
    EXPECT_GT(st.decode_tokens, st.decode_steps) << "drafting never gave more than one token per target forward";
  }
  EXPECT_EQ(st.generated_tokens, 5u * n);
  EXPECT_EQ(st.active, 0);
}

INSTANTIATE_TEST_SUITE_P(Scheduler, DraftKinds, ::testing::Values("assistant", "model", "ngram"),
                         [](const auto& i) { return i.param; });

// The trained default model with its trained assistant (fast numerics, as served): chat prompts,
// hundreds of tokens in all, identical with and without drafting; the assistant is accepted often.
TEST(SchedulerDraft, TrainedModelWithItsAssistantIsIdentical) {
  auto target = Model::Load(kModels + "gemma4-tiny-chat.gguf");
  auto assistant = Model::Load(kModels + "gemma4-tiny-chat-assistant.gguf");
  Tokenizer tok = Tokenizer::FromGguf(target->file());
  std::vector<std::vector<int32_t>> prompts;
  for (const char* q : {"What is 37 * 12?", "Write a short poem about the sea.", "List three colours.",
                        "Explain what a prime number is."}) {
    const std::string text = std::string("<bos><|turn>user\n") + q + "<turn|>\n<|turn>model\n";
    prompts.push_back(tok.Encode(text, /*parse_special=*/true, /*add_bos=*/false));
  }
  const int n = 64;
  const auto plain = RunAll(*target, tok, Opts(4, 64, /*exact=*/false), prompts, n);
  for (DraftMode mode : {DraftMode::kAssistant, DraftMode::kNgram}) {
    SchedulerOptions o = Opts(4, 64, /*exact=*/false);
    o.draft_mode = mode;
    o.draft_model = mode == DraftMode::kAssistant ? assistant.get() : nullptr;
    SchedulerStats st;
    const auto spec = RunAll(*target, tok, o, prompts, n, &st);
    for (size_t i = 0; i < prompts.size(); ++i) {
      EXPECT_EQ(spec[i].tokens, plain[i].tokens) << DraftModeName(mode) << " request " << i;
      EXPECT_EQ(spec[i].text, plain[i].text) << DraftModeName(mode) << " request " << i;
    }
    if (mode == DraftMode::kAssistant) {
      EXPECT_GT(st.draft_tokens, 0u);
      // The committed assistant is barely trained (models/README.md: 11 steps); on these chat prompts
      // it is accepted some 5-20% of the time depending on the text, so only ask that it is at all.
      EXPECT_GT(st.draft_accepted, 0u) << "the trained assistant is never accepted";
      EXPECT_GT(st.decode_tokens, st.decode_steps);
    }
  }
}

// Logprobs come from the verification pass's rows: the same as without drafting. A constrained
// request is decoded without drafts beside drafting ones.
TEST(SchedulerDraft, LogprobsUnchangedAndConstrainedRequestsDoNotDraft) {
  G4_REQUIRE_SHARED();
  Golden4 g;
  const auto prompt = Prompt(40, 5, /*repetitive=*/true);
  auto run = [&](bool draft, std::vector<TokenEvent>* events, RequestResult* constrained) {
    SchedulerOptions o = Opts(2);
    if (draft) o.draft_mode = DraftMode::kNgram;
    Scheduler s(*g.target, *g.tok, o);
    Waiter w;
    RequestSpec a = Spec(prompt, 40);
    a.top_logprobs = 2;
    a.on_token = [events](const TokenEvent& e) {
      if (e.token >= 0) events->push_back(e);
      return true;
    };
    RequestSpec c = Spec(prompt, 40);
    struct Any : TokenConstraint {
      bool Allows(std::string_view t) const override { return !t.empty(); }
      void Accept(std::string_view) override {}
      bool Complete() const override { return true; }
      bool MustEnd() const override { return false; }
    };
    c.constraint = std::make_shared<Any>();
    const uint64_t ia = w.Submit(s, std::move(a));
    const uint64_t ic = w.Submit(s, std::move(c));
    const RequestResult ra = w.Wait(ia);
    *constrained = w.Wait(ic);
    return ra;
  };
  std::vector<TokenEvent> plain_ev, spec_ev;
  RequestResult plain_c, spec_c;
  const RequestResult plain = run(false, &plain_ev, &plain_c);
  const RequestResult spec = run(true, &spec_ev, &spec_c);
  EXPECT_EQ(spec.tokens, plain.tokens);
  EXPECT_GT(spec.n_draft_accepted, 0);
  ASSERT_EQ(spec_ev.size(), plain_ev.size());
  for (size_t i = 0; i < plain_ev.size(); ++i) {
    EXPECT_EQ(spec_ev[i].token, plain_ev[i].token);
    EXPECT_FLOAT_EQ(spec_ev[i].logprob, plain_ev[i].logprob) << i;
    ASSERT_EQ(spec_ev[i].top.size(), 2u);
    for (size_t j = 0; j < 2; ++j) {
      EXPECT_EQ(spec_ev[i].top[j].token, plain_ev[i].top[j].token);
      EXPECT_FLOAT_EQ(spec_ev[i].top[j].logprob, plain_ev[i].top[j].logprob);
    }
  }
  EXPECT_EQ(spec_c.n_drafted, 0);
  EXPECT_EQ(spec_c.tokens, plain_c.tokens);
}

// Sampled requests with the assistant drafting: every request completes with its length and gets the
// tokens its seed gives without drafting (the target draws each token as plain decoding does and
// keeps a draft when they agree). The distribution is tested in scheduler_sampling_test.cc.
TEST(SchedulerDraft, SampledRequestsGetTheTokensOfTheirSeed) {
  G4_REQUIRE_SHARED();
  Golden4 g;
  auto run = [&](bool draft) {
    SchedulerOptions o = Opts(2);
    if (draft) {
      o.draft_mode = DraftMode::kAssistant;
      o.draft_model = g.assistant.get();
    }
    std::vector<RequestSpec> specs;
    for (uint64_t seed : {1u, 2u, 3u}) {
      RequestSpec r = Spec(Prompt(20, static_cast<uint32_t>(seed), false), 30);
      r.sampling.temperature = 0.7f;
      r.sampling.top_k = 8;
      r.sampling.seed = seed;
      r.stop.ignore_eos = true;
      specs.push_back(std::move(r));
    }
    return test::RunAll(*g.target, *g.tok, o, std::move(specs));
  };
  const auto plain = run(false), spec = run(true);
  int drafted = 0;
  for (size_t i = 0; i < spec.size(); ++i) {
    EXPECT_EQ(spec[i].tokens.size(), 30u);
    EXPECT_EQ(spec[i].tokens, plain[i].tokens) << i;
    drafted += spec[i].n_drafted;
  }
  EXPECT_GT(drafted, 0);
}

TEST(SchedulerDraft, BadDrafterSetupsAreClearErrors) {
  G4_REQUIRE_SHARED();
  Golden4 g;
  auto expect_error = [&](SchedulerOptions o, const std::string& needle) {
    try {
      Scheduler s(*g.target, *g.tok, o);
      ADD_FAILURE() << "no error; expected: " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  SchedulerOptions o = Opts(2);
  o.draft_mode = DraftMode::kAssistant;
  expect_error(o, "needs a --draft file");
  o.draft_model = g.other.get();  // not an assistant
  expect_error(o, "not a Gemma 4 assistant");
  o.draft_mode = DraftMode::kModel;
  o.draft_model = g.assistant.get();
  expect_error(o, "is an MTP assistant");
  o.draft_mode = DraftMode::kNgram;
  o.draft_model = nullptr;
  o.draft_max = 0;
  expect_error(o, "--draft-max must be between 1 and 64");
}

}  // namespace
}  // namespace g4
