// Long context (issue 9, point 6): on a synthetic model of the 12B's layout with a 16-token sliding
// window, a sequence of 20,000 tokens (1,250 windows) gives the same logits whether it is evaluated in
// one pass, in uneven chunks split into micro-batches, or token by token. The three paths exercise
// different things: one pass puts 20,000 queries against a ring of 20,016 sliding slots and the whole
// full-attention cache; chunks wrap the ring hundreds of times and stream attention over many KV
// chunks; token by token reuses each ring slot 1,250 times. Positions reach 20,000, so RoPE at large
// positions is part of what is compared.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <ostream>
#include <random>

#include "model/context.h"
#include "model/model.h"
#include "model/synthetic.h"
#include "testutil.h"

namespace g4 {
namespace {

constexpr int kTokens = 20000;

// The foundation's exact-mode tolerance for a model evaluated two ways (context_test.cc).
constexpr float kTolerance = 2e-4f;

// Exact math with an F32 cache (the foundation's reference mode), and fast math with the default F16
// cache (what users run).
struct Mode {
  kernels::Math math;
  GgmlType cache;
};

void PrintTo(const Mode& m, std::ostream* os) {
  *os << (m.math == kernels::Math::kExact ? "exact math, " : "fast math, ") << TypeName(m.cache) << " cache";
}

ContextOptions Opt(Mode mode, int64_t n_batch, int64_t slack) {
  ContextOptions o;
  o.math = mode.math;
  o.kv.type_k = o.kv.type_v = mode.cache;
  o.kv.n_ctx = kTokens;
  o.kv.slack = slack;
  o.n_batch = n_batch;
  o.n_threads = 2;
  return o;
}

// Logits of every position, evaluated in Decode calls of `step` tokens: [kTokens, n_vocab].
std::vector<float> Eval(const Model& m, const ContextOptions& o, const std::vector<int32_t>& tokens, int step) {
  Context ctx(m, o);
  const int64_t V = m.config().n_vocab;
  std::vector<float> out;
  out.reserve(tokens.size() * static_cast<size_t>(V));
  for (size_t i = 0; i < tokens.size(); i += static_cast<size_t>(step)) {
    Batch b;
    const size_t end = std::min(tokens.size(), i + static_cast<size_t>(step));
    for (size_t j = i; j < end; ++j) b.Add(tokens[j], 0, static_cast<int64_t>(j), true);
    ctx.Decode(b);
    for (int k = 0; k < b.size(); ++k) out.insert(out.end(), ctx.Logits(k), ctx.Logits(k) + V);
  }
  EXPECT_EQ(ctx.kv().SeqLen(0), static_cast<int64_t>(tokens.size()));
  return out;
}

// Largest |a - b| and the first position where it exceeds the tolerance (-1 when none).
struct Diff {
  float max = 0;
  int64_t first_bad = -1;
};
Diff Compare(const std::vector<float>& a, const std::vector<float>& b, int64_t V) {
  Diff d;
  EXPECT_EQ(a.size(), b.size());
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    const float e = std::fabs(a[i] - b[i]);
    d.max = std::max(d.max, e);
    if (e > kTolerance && d.first_bad < 0) d.first_bad = static_cast<int64_t>(i) / V;
  }
  return d;
}

class LongContext : public ::testing::TestWithParam<Mode> {};

TEST_P(LongContext, TwentyThousandTokensGiveTheSameLogitsInOnePassInChunksAndTokenByToken) {
  const Mode mode = GetParam();
  const std::string path = g4::testing::TempDir() + "/tiny-long.gguf";
  CreateOptions co;
  co.preset = "tiny-long";
  co.type = FileType::F32;
  co.seed = 7;
  CreateSyntheticModel(co, path);
  auto model = Model::Load(path);
  const int64_t V = model->config().n_vocab;
  ASSERT_EQ(model->config().sliding_window, 16);
  ASSERT_GE(model->config().n_ctx_train, kTokens);

  std::mt19937 rng(11);
  std::vector<int32_t> tokens{2};
  while (static_cast<int>(tokens.size()) < kTokens) tokens.push_back(3 + static_cast<int32_t>(rng() % (V - 3)));

  // One pass: a single Decode of every token (the ring holds the whole batch beyond the window).
  const auto one_pass = Eval(*model, Opt(mode, kTokens, kTokens), tokens, kTokens);
  // Chunks of 1,237 tokens (not a multiple of anything), split into micro-batches of 300.
  const auto chunked = Eval(*model, Opt(mode, 300, 300), tokens, 1237);
  // Token by token, with the smallest ring the window allows, on one thread (the thread count must not
  // change a result either).
  ContextOptions one = Opt(mode, 1, 1);
  one.n_threads = 1;
  const auto by_token = Eval(*model, one, tokens, 1);

  const Diff chunk_d = Compare(chunked, one_pass, V);
  const Diff token_d = Compare(by_token, one_pass, V);
  std::printf("max |logit diff| vs one pass over %d tokens: chunks %.3g, token by token %.3g\n", kTokens,
              chunk_d.max, token_d.max);
  EXPECT_LE(chunk_d.max, kTolerance) << "first position over the tolerance: " << chunk_d.first_bad;
  EXPECT_LE(token_d.max, kTolerance) << "first position over the tolerance: " << token_d.first_bad;

  // The logits must also depend on the position (a model that ignored RoPE or the cache would pass
  // the comparison trivially): the same token at two far-apart positions gives different logits.
  float spread = 0;
  for (int64_t t = 0; t < V; ++t) {
    spread = std::max(spread, std::fabs(one_pass[static_cast<size_t>(100 * V + t)] -
                                        one_pass[static_cast<size_t>((kTokens - 1) * V + t)]));
  }
  EXPECT_GT(spread, 0.01f);
}

INSTANTIATE_TEST_SUITE_P(Modes, LongContext,
                         ::testing::Values(Mode{kernels::Math::kExact, GgmlType::F32},
                                           Mode{kernels::Math::kFast, GgmlType::F16}),
                         [](const auto& info) {
                           return std::string(info.param.math == kernels::Math::kExact ? "ExactF32Cache"
                                                                                        : "FastF16Cache");
                         });

}  // namespace
}  // namespace g4
