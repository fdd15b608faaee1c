// Sampling in the server's scheduler with speculative decoding: many seeded sampled requests, eight
// at a time with all their drafts verified in shared forward passes, give tokens with the target's
// distribution (chi-square tests against the exact distribution and against the scheduler without
// drafting; the same statistic rejects a wrong acceptance rule), and a request's seed gives the same
// tokens with or without drafting, whatever else is in the batch.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>

#include "chi_square.h"
#include "engine/scheduler_test_util.h"
#include "testutil.h"

namespace g4 {
namespace {

using g4::testing::Counts;
using g4::testing::Outcome;
using g4::testing::Probs;

struct Target {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tok;
  Target() {
    model = Model::Load(g4::testing::SharedPath("golden/g4u-tiny/g4u-tiny.f32.gguf"));
    tok = std::make_unique<Tokenizer>(Tokenizer::FromGguf(model->file()));
  }
};

struct Setting {
  const char* name;
  float temperature;
  int top_k;
  float top_p;
  float presence_penalty;  // makes each token's distribution depend on the tokens before it
};

SamplingParams Params(const Setting& s, uint64_t seed) {
  SamplingParams p;
  p.temperature = s.temperature;
  p.top_k = s.top_k;
  p.top_p = s.top_p;
  p.presence_penalty = s.presence_penalty;
  p.seed = seed;
  return p;
}

constexpr int kTokens = 4;    // per request: the first verification checks two drafts
constexpr int kDepth = 3;      // the outcome: the first three tokens (a draft, a draft or the residual, ...)
constexpr int kRuns = 600;    // requests per arm
constexpr double kAlpha = 1e-3;

std::vector<int32_t> TestPrompt() { return test::Prompt(8, 11); }

// Eight requests at a time, on one thread (the model is tiny: more would only wait on each other).
SchedulerOptions Plain(int slots = 8) {
  SchedulerOptions o = test::Opts(slots);
  o.n_threads = 1;
  return o;
}

// The draft model is the target itself: it drafts the target's most likely tokens, which a sampled
// request keeps with that token's probability, so drafts are both accepted and rejected.
SchedulerOptions Drafting(const Model& target, int slots = 8) {
  SchedulerOptions o = Plain(slots);
  o.draft_mode = DraftMode::kModel;
  o.draft_model = &target;
  o.draft_max = 4;
  return o;
}

// Runs `n` requests seeded first_seed, first_seed + 1, ... together and counts their first kDepth tokens.
Counts Sample(const Target& t, SchedulerOptions o, const Setting& s, uint64_t first_seed, SchedulerStats* st) {
  o.max_queue = kRuns;
  std::vector<RequestSpec> specs;
  for (int i = 0; i < kRuns; ++i) {
    RequestSpec r = test::Spec(TestPrompt(), kTokens);
    r.sampling = Params(s, first_seed + static_cast<uint64_t>(i));
    r.stop.ignore_eos = true;
    specs.push_back(std::move(r));
  }
  Counts c;
  for (const RequestResult& r : test::RunAll(*t.model, *t.tok, o, std::move(specs), st)) {
    EXPECT_EQ(r.tokens.size(), static_cast<size_t>(kTokens));
    if (r.tokens.size() >= kDepth) c[Outcome(r.tokens.begin(), r.tokens.begin() + kDepth)]++;
  }
  return c;
}

// The exact distribution of the first kDepth tokens: every prefix the sampler can produce, with the
// target's logits after it and the sampler's own distribution (its filters and penalties).
Probs Exact(const Model& m, const Setting& s) {
  ContextOptions co;
  co.math = kernels::Math::kExact;
  co.kv.type_k = co.kv.type_v = GgmlType::F32;
  co.kv.n_ctx = 64;
  co.n_batch = 64;
  co.n_threads = 2;
  Context ctx(m, co);
  Probs out;
  std::vector<int32_t> seq = TestPrompt();
  const size_t n_prompt = seq.size();
  std::function<void(double)> visit = [&](double prob) {
    if (seq.size() == n_prompt + kDepth) {
      out[Outcome(seq.begin() + static_cast<std::ptrdiff_t>(n_prompt), seq.end())] += prob;
      return;
    }
    ctx.kv().Clear(0);
    Batch b;
    for (size_t i = 0; i < seq.size(); ++i) b.Add(seq[i], 0, static_cast<int64_t>(i), i + 1 == seq.size());
    ctx.Decode(b);
    Sampler sampler(Params(s, 0), m.config().n_vocab);
    for (int32_t t : seq) sampler.Accept(t);
    std::vector<TokenProb> dist;
    sampler.Distribution(ctx.Logits(0), &dist);
    for (const TokenProb& tp : dist) {
      seq.push_back(tp.token);
      visit(prob * tp.prob);
      seq.pop_back();
    }
  };
  visit(1.0);
  return out;
}

const Setting kTopK{"TopK", 1.0f, 4, 1.0f, 0.0f};
const Setting kTopPPenalty{"TopPPenalty", 0.8f, 12, 0.9f, 1.0f};

class SpeculativeSampling : public ::testing::TestWithParam<Setting> {};

// The first three tokens of 600 drafted requests (eight at a time) against the exact distribution,
// and against 600 requests (other seeds) without drafting; the plain ones against the exact
// distribution too. Every test at the significance kAlpha; the seeds make the outcome fixed.
TEST_P(SpeculativeSampling, SameDistributionAsTheTargetAndAsWithoutDrafting) {
  G4_REQUIRE_SHARED();
  Target t;
  const Setting& s = GetParam();
  const Probs exact = Exact(*t.model, s);
  SchedulerStats st;
  const Counts spec = Sample(t, Drafting(*t.model), s, 1, &st);
  const Counts plain = Sample(t, Plain(), s, 1000000, nullptr);
  const auto spec_fit = g4::testing::GoodnessOfFit(spec, exact);
  const auto plain_fit = g4::testing::GoodnessOfFit(plain, exact);
  const auto same = g4::testing::Homogeneity(spec, plain);
  std::printf("%s: %zu outcomes; drafted %llu, accepted %llu\n  drafting vs exact: %s\n  plain vs exact: %s\n"
              "  drafting vs plain: %s\n",
              s.name, exact.size(), (unsigned long long)st.draft_tokens, (unsigned long long)st.draft_accepted,
              spec_fit.ToString().c_str(), plain_fit.ToString().c_str(), same.ToString().c_str());
  // Both ways out of a verification were taken many times: drafts kept, and drafts rejected.
  EXPECT_GT(st.draft_accepted, kRuns / 2u);
  EXPECT_GT(st.draft_tokens - st.draft_accepted, kRuns / 2u);
  // Enough cells for the tests to mean something, and no cell the target cannot produce.
  EXPECT_GE(spec_fit.dof, 8);
  EXPECT_GT(spec_fit.p, kAlpha) << spec_fit.ToString();
  EXPECT_GT(plain_fit.p, kAlpha) << plain_fit.ToString();
  EXPECT_GT(same.p, kAlpha) << same.ToString();
}

INSTANTIATE_TEST_SUITE_P(Scheduler, SpeculativeSampling,
                         ::testing::Values(kTopK, kTopPPenalty),
                         [](const auto& i) { return std::string(i.param.name); });

// The same statistic, on drafted requests whose drafts are kept by a wrong rule, rejects them clearly:
// keeping every draft, and keeping a rejected draft about one time in five (a distortion of the size
// of the classic mistake of drawing the replacement from p instead of p without the draft).
TEST(SpeculativeSampling, StatisticDetectsAWrongAcceptanceRule) {
  G4_REQUIRE_SHARED();
  Target t;
  const Setting s = kTopK;
  const Probs exact = Exact(*t.model, s);
  SchedulerOptions o = Drafting(*t.model);
  o.test_keep_draft = [](int32_t, int32_t) { return true; };
  const auto every = g4::testing::GoodnessOfFit(Sample(t, o, s, 1, nullptr), exact);
  o.test_keep_draft = [](int32_t d, int32_t drawn) { return drawn == d || (d * 7 + drawn) % 5 == 0; };
  const auto some = g4::testing::GoodnessOfFit(Sample(t, o, s, 1, nullptr), exact);
  std::printf("keeping every draft: %s\nkeeping some rejected drafts: %s\n", every.ToString().c_str(),
              some.ToString().c_str());
  EXPECT_LT(every.p, 1e-9) << every.ToString();
  EXPECT_LT(some.p, kAlpha * kAlpha) << some.ToString();
}

// A seeded sampled request gives the same tokens alone with drafting, without drafting, and among
// other requests (greedy and sampled, prompts being read in chunks) in a batch too small for all
// their drafts.
TEST(SpeculativeSampling, SeedGivesTheSameTokensWhateverTheBatch) {
  G4_REQUIRE_SHARED();
  Target t;
  auto request = [](const std::vector<int32_t>& prompt, uint64_t seed) {
    RequestSpec r = test::Spec(prompt, 40);
    r.sampling = Params(kTopPPenalty, seed);
    r.stop.ignore_eos = true;
    return r;
  };
  auto alone = [&](const SchedulerOptions& o) {
    std::vector<RequestSpec> one;
    one.push_back(request(test::Prompt(12, 3), 42));
    return test::RunAll(*t.model, *t.tok, o, std::move(one))[0];
  };
  const RequestResult drafted = alone(Drafting(*t.model, 1)), plain = alone(Plain(1));
  std::vector<RequestSpec> many;
  many.push_back(test::Spec(test::Prompt(30, 4), 40));
  many.push_back(request(test::Prompt(9, 5), 7));
  many.push_back(request(test::Prompt(12, 3), 42));
  many.push_back(request(test::Prompt(50, 6, /*repetitive=*/true), 8));
  many.push_back(request(test::Prompt(20, 7), 9));
  SchedulerOptions o = Drafting(*t.model, 4);
  o.n_batch = 6;  // four generating requests leave room for two drafts in all
  const auto busy = test::RunAll(*t.model, *t.tok, o, std::move(many));
  EXPECT_GT(drafted.n_draft_accepted, 0);
  EXPECT_LT(drafted.n_draft_accepted, drafted.n_drafted);
  EXPECT_EQ(drafted.tokens, plain.tokens);
  EXPECT_EQ(busy[2].tokens, plain.tokens);
}

}  // namespace
}  // namespace g4
