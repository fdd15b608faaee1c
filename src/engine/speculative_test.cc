// Speculative decoding gives exactly the target's output: greedy tokens identical to plain decoding
// with every kind of drafter, and sampled tokens with the target's distribution.
#include "engine/speculative.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

#include "chi_square.h"
#include "testutil.h"
#include "util/error.h"

namespace g4 {
namespace {

std::string Golden(const std::string& rel) { return g4::testing::SharedPath("golden/" + rel); }

ContextOptions Exact(bool hidden) {
  ContextOptions o;
  o.math = kernels::Math::kExact;
  o.kv.type_k = o.kv.type_v = GgmlType::F32;
  o.kv.n_ctx = 1024;
  o.n_batch = 64;
  o.keep_hidden = hidden;
  o.n_threads = 2;
  return o;
}

std::vector<int32_t> Prompt(int n, uint32_t seed, bool repetitive = false) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t{2};
  while (static_cast<int>(t.size()) < n) {
    t.push_back(repetitive && t.size() > 8 && rng() % 3 ? t[t.size() - 7] : 3 + static_cast<int32_t>(rng() % 500));
  }
  return t;
}

struct Models {
  std::unique_ptr<Model> target, assistant, other;
  std::unique_ptr<Tokenizer> tok;
  Models() {
    target = Model::Load(Golden("g4u-tiny/g4u-tiny.f32.gguf"));
    assistant = Model::Load(Golden("g4u-assistant-tiny/g4u-assistant-tiny.f32.gguf"));
    other = Model::Load(Golden("g4-e2b-tiny/g4-e2b-tiny.f32.gguf"));
    tok = std::make_unique<Tokenizer>(Tokenizer::FromGguf(target->file()));
  }
};

std::vector<int32_t> Plain(Models& s, const std::vector<int32_t>& prompt, int n, const SamplingParams& sp) {
  Context ctx(*s.target, Exact(false));
  Generator g(ctx, *s.tok);
  StopCriteria stop;
  stop.max_tokens = n;
  return g.Generate(prompt, sp, stop, nullptr).tokens;
}

std::vector<int32_t> Spec(Models& s, const std::string& kind, const std::vector<int32_t>& prompt, int n,
                          const SamplingParams& sp, SpeculativeStats* st = nullptr) {
  Context ctx(*s.target, Exact(kind == "assistant"));
  std::unique_ptr<Drafter> d;
  if (kind == "assistant") d = std::make_unique<MtpDrafter>(*s.assistant, *s.target, ctx);
  if (kind == "model") d = std::make_unique<ModelDrafter>(*s.other, *s.target, Exact(false));
  if (kind == "ngram") d = std::make_unique<NgramDrafter>();
  SpeculativeOptions so;
  so.draft_max = 6;
  SpeculativeGenerator g(ctx, *s.tok, *d, so);
  StopCriteria stop;
  stop.max_tokens = n;
  auto r = g.Generate(prompt, sp, stop, nullptr);
  if (st) *st = g.stats();
  return r.tokens;
}

class Greedy : public ::testing::TestWithParam<std::string> {};

TEST_P(Greedy, IdenticalToPlainDecoding) {
  G4_REQUIRE_SHARED();
  Models s;
  SamplingParams sp;
  sp.temperature = 0;
  for (uint32_t seed : {1u, 2u}) {
    const auto prompt = Prompt(40, seed, GetParam() == "ngram");
    SpeculativeStats st;
    const auto want = Plain(s, prompt, 300, sp);
    const auto got = Spec(s, GetParam(), prompt, 300, sp, &st);
    EXPECT_EQ(got, want) << GetParam() << " seed " << seed;
    EXPECT_GT(st.drafted, 0);
    EXPECT_LT(st.target_forwards, 300) << "drafts were never accepted";
  }
}

INSTANTIATE_TEST_SUITE_P(Drafters, Greedy, ::testing::Values("assistant", "model", "ngram"),
                         [](const auto& i) { return i.param; });

// Always proposes one token that the target never produces in the continuation: a drafter that is
// never right, like a mismatched draft model.
class WrongDrafter : public Drafter {
 public:
  explicit WrongDrafter(int32_t token) : token_(token) {}
  const char* name() const override { return "wrong"; }
  void Propose(const DraftRequest& req, Draft* out) override {
    out->tokens.assign(static_cast<size_t>(req.k), token_);
    out->dists.clear();
    ++calls;
  }
  int calls = 0;

 private:
  int32_t token_;
};

TEST(Speculative, UselessDraftsPauseDrafting) {
  G4_REQUIRE_SHARED();
  Models s;
  SamplingParams sp;
  sp.temperature = 0;
  const auto prompt = Prompt(40, 5);
  const auto want = Plain(s, prompt, 400, sp);
  int32_t never = 0;
  while (std::find(want.begin(), want.end(), never) != want.end()) ++never;
  Context ctx(*s.target, Exact(false));
  WrongDrafter d(never);
  SpeculativeOptions so;
  so.draft_max = 6;
  SpeculativeGenerator g(ctx, *s.tok, d, so);
  StopCriteria stop;
  stop.max_tokens = 400;
  EXPECT_EQ(g.Generate(prompt, sp, stop, nullptr).tokens, want);
  // Without the pause every step would draft (about 400 proposals of 1 to 6 tokens); with it,
  // rejected probes back off exponentially up to one per 64 tokens.
  EXPECT_GT(d.calls, 0);
  EXPECT_LT(g.stats().drafted, 60) << "drafting did not back off";
}

TEST(Speculative, RejectionSamplingKeepsTheTargetDistribution) {
  // p and q differ; over many draws the accepted-or-resampled token follows p exactly.
  const std::vector<TokenProb> p = {{0, 0.5f}, {1, 0.3f}, {2, 0.2f}};
  const std::vector<TokenProb> q = {{0, 0.1f}, {1, 0.6f}, {2, 0.3f}};
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0, 1);
  std::map<int32_t, int> counts;
  const int N = 200000;
  for (int i = 0; i < N; ++i) {
    // Draw d from q, then accept or resample.
    const double r = u(rng);
    const int32_t d = r < 0.1 ? 0 : r < 0.7 ? 1 : 2;
    bool acc;
    counts[SpeculativeAccept(p, q, d, u(rng), u(rng), &acc)]++;
  }
  for (const auto& tp : p) EXPECT_NEAR(counts[tp.token] / double(N), tp.prob, 0.005) << tp.token;
}

// End to end: the first three sampled tokens have the same distribution with and without drafting.
// A chi-square test over the joint outcomes of many seeded runs (enough to detect a 10% distortion).
TEST(Speculative, SampledOutputHasTheTargetDistribution) {
  G4_REQUIRE_SHARED();
  Models s;
  const auto prompt = Prompt(8, 11);
  SamplingParams sp;
  sp.temperature = 1.0f;
  sp.top_k = 4;
  sp.top_p = 1.0f;
  const int runs = 600;
  g4::testing::Counts plain, spec;
  // One context per arm, reused: the plain generator keeps the prompt cached between runs.
  Context pctx(*s.target, Exact(false));
  Generator pgen(pctx, *s.tok);
  Context sctx(*s.target, Exact(true));
  MtpDrafter drafter(*s.assistant, *s.target, sctx);
  SpeculativeOptions so;
  so.draft_start = 2;
  SpeculativeGenerator sgen(sctx, *s.tok, drafter, so);
  StopCriteria stop;
  stop.max_tokens = 2;
  for (int i = 0; i < runs; ++i) {
    sp.seed = 1000 + i;
    plain[pgen.Generate(prompt, sp, stop, nullptr).tokens]++;
    sp.seed = 900000 + i;
    spec[sgen.Generate(prompt, sp, stop, nullptr).tokens]++;
  }
  // Chi-square homogeneity test, pooling outcomes seen fewer than 10 times in total.
  const auto same = g4::testing::Homogeneity(plain, spec);
  ASSERT_GT(same.dof, 3);
  EXPECT_GT(same.p, 1e-3) << same.ToString();
}

TEST(Speculative, MismatchedDraftVocabularyIsAClearError) {
  G4_REQUIRE_SHARED();
  auto target = Model::Load(Golden("g4u-tiny/g4u-tiny.f32.gguf"));
  auto vocab_only = g4::testing::SharedPath("tokenizer/gemma4-vocab.gguf");
  (void)vocab_only;
  // A real-vocabulary synthetic model cannot draft for a 512-token target.
  const std::string path = g4::testing::TempDir() + "/big.gguf";
  ASSERT_EQ(g4::testing::RunCommand(g4::testing::CliPath() + " create --preset tiny -o " + path + " --vocab " +
                                    vocab_only + " 2>&1").status, 0);
  auto draft = Model::Load(path);
  EXPECT_THROW(ModelDrafter(*draft, *target, Exact(false)), Error);
}

}  // namespace
}  // namespace g4
