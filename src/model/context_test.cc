// Properties of the forward pass and the KV cache that every later feature relies on: batching,
// incremental decoding, long sequences over a sliding window, and rollback.
#include "model/context.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kernels/kernels.h"
#include "testutil.h"
#include "util/error.h"

namespace g4 {
namespace {

std::unique_ptr<Model> LoadGolden(const std::string& rel) { return Model::Load(g4::testing::SharedPath(rel)); }

ContextOptions Opt(int n_seq = 1, int64_t n_batch = 512, int64_t slack = 0) {
  ContextOptions o;
  o.math = kernels::Math::kExact;
  o.kv.type_k = o.kv.type_v = GgmlType::F32;
  o.kv.n_seq = n_seq;
  o.kv.n_ctx = 2048;
  o.kv.slack = slack;
  o.n_batch = n_batch;
  o.n_threads = 2;
  return o;
}

std::vector<int32_t> RandomTokens(int n, uint32_t seed, int64_t vocab) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t{2};
  while (static_cast<int>(t.size()) < n) t.push_back(3 + static_cast<int32_t>(rng() % (vocab - 3)));
  return t;
}

// Logits of every position of `tokens` in sequence `seq` of ctx, evaluated in steps of `step` tokens.
std::vector<float> Eval(Context& ctx, const std::vector<int32_t>& tokens, int step, int seq = 0) {
  const int64_t V = ctx.config().n_vocab;
  std::vector<float> out;
  const int64_t start = ctx.kv().SeqLen(seq);
  for (size_t i = 0; i < tokens.size(); i += static_cast<size_t>(step)) {
    Batch b;
    const size_t end = std::min(tokens.size(), i + static_cast<size_t>(step));
    for (size_t j = i; j < end; ++j) b.Add(tokens[j], seq, start + static_cast<int64_t>(j), true);
    ctx.Decode(b);
    for (int k = 0; k < b.size(); ++k) out.insert(out.end(), ctx.Logits(k), ctx.Logits(k) + V);
  }
  return out;
}

float MaxDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

class ContextTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    G4_REQUIRE_SHARED();
    model_ = LoadGolden(GetParam());
  }
  std::unique_ptr<Model> model_;
};

TEST_P(ContextTest, TokenByTokenEqualsOneBatch) {
  const auto toks = RandomTokens(70, 1, model_->config().n_vocab);
  Context a(*model_, Opt()), b(*model_, Opt());
  EXPECT_LE(MaxDiff(Eval(a, toks, 70), Eval(b, toks, 1)), 2e-4f);
}

TEST_P(ContextTest, ChunkedPrefillEqualsOneBatch) {
  // Chunks smaller than the sliding window (16) and micro-batches of 7 with a ring slack of 7.
  const auto toks = RandomTokens(90, 2, model_->config().n_vocab);
  Context a(*model_, Opt()), b(*model_, Opt(1, 7, 7));
  EXPECT_LE(MaxDiff(Eval(a, toks, 90), Eval(b, toks, 13)), 2e-4f);
}

TEST_P(ContextTest, SeveralSequencesInOneBatchEqualEachAlone) {
  const int64_t V = model_->config().n_vocab;
  std::vector<std::vector<int32_t>> seqs = {RandomTokens(40, 3, V), RandomTokens(25, 4, V), RandomTokens(33, 5, V)};
  std::vector<std::vector<float>> alone;
  for (auto& s : seqs) {
    Context c(*model_, Opt());
    alone.push_back(Eval(c, s, static_cast<int>(s.size())));
  }
  // Interleave the three sequences token by token in one batch.
  Context c(*model_, Opt(3));
  Batch b;
  std::vector<std::vector<int>> out_index(3);
  int n_out = 0;
  for (size_t i = 0; i < 40; ++i) {
    for (int s = 0; s < 3; ++s) {
      if (i < seqs[s].size()) {
        b.Add(seqs[s][i], s, static_cast<int64_t>(i), true);
        out_index[s].push_back(n_out++);
      }
    }
  }
  c.Decode(b);
  for (int s = 0; s < 3; ++s) {
    std::vector<float> got;
    for (int k : out_index[s]) got.insert(got.end(), c.Logits(k), c.Logits(k) + V);
    EXPECT_LE(MaxDiff(got, alone[s]), 2e-4f) << "sequence " << s;
  }
  // Then continue all three by one token each in a mixed batch.
  b.Clear();
  for (int s = 0; s < 3; ++s) b.Add(7 + s, s, static_cast<int64_t>(seqs[s].size()), true);
  c.Decode(b);
  for (int s = 0; s < 3; ++s) {
    Context single(*model_, Opt());
    auto toks = seqs[s];
    toks.push_back(7 + s);
    const auto ref = Eval(single, toks, static_cast<int>(toks.size()));
    std::vector<float> last(ref.end() - V, ref.end());
    EXPECT_LE(MaxDiff(std::vector<float>(c.Logits(s), c.Logits(s) + V), last), 2e-4f);
  }
}

TEST_P(ContextTest, LongSequenceOverSlidingWindow) {
  // 400 tokens, 25 times the window of 16: token-by-token (ring reuse) equals chunked prefill.
  const auto toks = RandomTokens(400, 6, model_->config().n_vocab);
  Context a(*model_, Opt(1, 64, 64)), b(*model_, Opt(1, 512, 8));
  EXPECT_LE(MaxDiff(Eval(a, toks, 50), Eval(b, toks, 1)), 2e-4f);
  // Sliding layers stay bounded by window + slack, rounded up to whole chunks.
  EXPECT_EQ(a.kv().ring(), KvCache::kChunk);
}

TEST_P(ContextTest, RollbackThenReevaluateEqualsFreshRun) {
  const int64_t V = model_->config().n_vocab;
  const auto toks = RandomTokens(60, 7, V);
  auto other = RandomTokens(10, 8, V);
  Context c(*model_, Opt(1, 16, 16));
  Eval(c, std::vector<int32_t>(toks.begin(), toks.begin() + 50), 16);
  // Speculate 10 wrong tokens, roll them back, then evaluate the true continuation.
  Eval(c, std::vector<int32_t>(other.begin(), other.end()), 10);
  ASSERT_TRUE(c.kv().CanTruncate(0, 50));
  c.kv().Truncate(0, 50);
  EXPECT_EQ(c.kv().SeqLen(0), 50);
  const auto got = Eval(c, std::vector<int32_t>(toks.begin() + 50, toks.end()), 10);
  Context fresh(*model_, Opt());
  const auto ref = Eval(fresh, toks, 60);
  EXPECT_LE(MaxDiff(got, std::vector<float>(ref.end() - 10 * V, ref.end())), 2e-4f);
}

TEST_P(ContextTest, RollbackBeyondSlackIsRefused) {
  const auto toks = RandomTokens(600, 9, model_->config().n_vocab);
  Context c(*model_, Opt(1, 64, 8));
  Eval(c, toks, 64);
  // The ring holds `ring` positions; the next query needs the `window` before it.
  const int64_t most = c.kv().ring() - c.config().sliding_window;
  EXPECT_TRUE(c.kv().CanTruncate(0, 600 - most));
  EXPECT_FALSE(c.kv().CanTruncate(0, 600 - most - 1));
  EXPECT_THROW(c.kv().Truncate(0, 600 - most - 1), g4::Error);
  EXPECT_EQ(c.kv().SeqLen(0), 600);
}

TEST_P(ContextTest, InvalidBatchesAreClearErrors) {
  Context c(*model_, Opt(2));
  Batch b;
  b.Add(100000, 0, 0, true);
  EXPECT_THROW(c.Decode(b), g4::Error);
  b.Clear();
  b.Add(5, 0, 3, true);  // does not continue the empty sequence
  try {
    c.Decode(b);
    FAIL();
  } catch (const g4::Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not continue sequence 0"), std::string::npos);
  }
  b.Clear();
  b.Add(5, 7, 0, true);
  EXPECT_THROW(c.Decode(b), g4::Error);
  EXPECT_EQ(c.kv().SeqLen(0), 0);  // nothing was written
}

INSTANTIATE_TEST_SUITE_P(Golden, ContextTest,
                         ::testing::Values("golden/g4u-tiny/g4u-tiny.f32.gguf", "golden/g4-e2b-tiny/g4-e2b-tiny.f32.gguf",
                                           "golden/g3-tiny/g3-tiny.f32.gguf"),
                         [](const auto& info) {
                           std::string s = info.param.substr(info.param.rfind('/') + 1);
                           s = s.substr(0, s.find('.'));
                           for (char& ch : s) ch = ch == '-' ? '_' : ch;
                           return s;
                         });

TEST(KvCache, GrowsWithTokensAndBoundsSlidingLayers) {
  G4_REQUIRE_SHARED();
  auto m = LoadGolden("golden/g4u-tiny/g4u-tiny.f32.gguf");
  KvCacheOptions o;
  o.n_ctx = 100000;
  o.slack = 64;
  o.type_k = o.type_v = GgmlType::F16;
  KvCache kv(m->config(), o);
  EXPECT_EQ(kv.BytesAllocated(), 0u);
  kv.Extend(0, 10);
  const uint64_t small = kv.BytesAllocated();
  EXPECT_GT(small, 0u);
  kv.Extend(0, 5000);
  const uint64_t big = kv.BytesAllocated();
  kv.Extend(0, 10000);
  const uint64_t bigger = kv.BytesAllocated();
  // Only the 2 full layers grow: 5000 more positions * (K+V) * 1 head * 128 dims * 2 bytes * 2 layers.
  EXPECT_NEAR(static_cast<double>(bigger - big), 5000.0 * 2 * 128 * 2 * 2, 2 * 256 * 2 * 128 * 2 * 2);
  EXPECT_EQ(KvCache::BytesAtContext(m->config(), o, 10000), bigger);
  kv.Truncate(0, 9800);  // within the ring's slack; full layers free the chunks past the end
  EXPECT_LT(kv.BytesAllocated(), bigger);
  EXPECT_THROW(kv.Extend(0, 100001), g4::Error);
}

TEST(KvCache, SyntheticFillWritesEveryStoredRowAndDecodingContinues) {
  G4_REQUIRE_SHARED();
  auto m = LoadGolden("golden/g4u-tiny/g4u-tiny.f32.gguf");
  ContextOptions o = Opt();
  o.kv.type_k = GgmlType::Q8_0;
  o.kv.type_v = GgmlType::F16;
  Context c(*m, o);
  c.kv().FillSynthetic(0, 1000, 5);  // 62 windows: the sliding rings wrap
  ASSERT_EQ(c.kv().SeqLen(0), 1000);
  for (int li = 0; li < m->config().n_layer; ++li) {
    if (!m->config().layers[li].has_kv) continue;
    const int hd = m->config().layers[li].head_dim;
    std::vector<float> k(static_cast<size_t>(hd)), v(static_cast<size_t>(hd));
    for (int64_t p : {c.kv().FirstStored(li, 0), int64_t{999}}) {
      kernels::DequantizeRow(GgmlType::Q8_0, c.kv().K(li, 0, p, 0), k.data(), hd);
      kernels::DequantizeRow(GgmlType::F16, c.kv().V(li, 0, p, 0), v.data(), hd);
      double kk = 0, vv = 0;
      for (int i = 0; i < hd; ++i) kk += k[i] * k[i], vv += v[i] * v[i];
      // Unit-normal rows: a mean square near 1.
      EXPECT_NEAR(kk / hd, 1.0, 0.5) << "layer " << li << " position " << p;
      EXPECT_NEAR(vv / hd, 1.0, 0.5) << "layer " << li << " position " << p;
    }
  }
  Batch b;
  b.Add(5, 0, 1000, true);
  c.Decode(b);
  for (int64_t t = 0; t < m->config().n_vocab; ++t) ASSERT_TRUE(std::isfinite(c.Logits(0)[t]));
  EXPECT_EQ(c.kv().SeqLen(0), 1001);
}

}  // namespace
}  // namespace g4
