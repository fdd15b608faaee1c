// Logits and greedy continuations of the golden models (../shared/golden) against llama.cpp's
// reference values. See ../shared/golden/README.md for why logits_exact_gelu is the reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/context.h"
#include "model/model.h"
#include "testutil.h"

namespace g4 {
namespace {

using nlohmann::json;

struct Case {
  std::string dir, variant, name;  // e.g. g4u-tiny, q8_0, seq100
  std::string Json() const { return g4::testing::SharedPath("golden/" + dir + "/" + variant + "." + name + ".json"); }
  std::string File(const std::string& f) const { return g4::testing::SharedPath("golden/" + dir + "/" + f); }
};

std::vector<Case> AllCases() {
  std::vector<Case> out;
  for (const char* dir : {"g4u-tiny", "g4-e2b-tiny", "g3-tiny"}) {
    for (const char* variant : {"f32", "q8_0"}) {
      for (const char* name : {"prompt8", "seq100"}) out.push_back({dir, variant, name});
    }
  }
  return out;
}

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  std::string s = info.param.dir + "_" + info.param.variant + "_" + info.param.name;
  std::replace(s.begin(), s.end(), '-', '_');
  return s;
}

// --exact uses an F32 cache; the fast default is the model's default cache type.
ContextOptions Options(const Model& m, kernels::Math math, int64_t n_ctx = 512) {
  ContextOptions o;
  o.math = math;
  o.kv.n_ctx = n_ctx;
  o.kv.type_k = o.kv.type_v = math == kernels::Math::kExact ? GgmlType::F32 : m.DefaultCacheType();
  o.n_threads = 2;
  return o;
}

// All-position logits of `tokens` evaluated as one batch.
std::vector<float> BatchLogits(const Model& m, const std::vector<int32_t>& tokens, kernels::Math math) {
  Context ctx(m, Options(m, math));
  Batch b;
  for (size_t i = 0; i < tokens.size(); ++i) b.Add(tokens[i], 0, static_cast<int64_t>(i), true);
  ctx.Decode(b);
  const int64_t V = m.config().n_vocab;
  std::vector<float> out(tokens.size() * V);
  for (size_t i = 0; i < tokens.size(); ++i) std::copy_n(ctx.Logits(static_cast<int>(i)), V, out.begin() + i * V);
  return out;
}

int Argmax(const float* x, int64_t n) { return static_cast<int>(std::max_element(x, x + n) - x); }
float Margin(const float* x, int64_t n) {
  std::vector<float> v(x, x + n);
  std::partial_sort(v.begin(), v.begin() + 2, v.end(), std::greater<float>());
  return v[0] - v[1];
}

class Golden : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    G4_REQUIRE_SHARED();
    const Case& c = GetParam();
    spec_ = json::parse(g4::testing::ReadText(c.Json()));
    model_ = Model::Load(c.File(spec_["model"].get<std::string>()));
    tokens_ = spec_["tokens"].get<std::vector<int32_t>>();
    ref_ = g4::testing::ReadF32(c.File(spec_["logits_exact_gelu"].get<std::string>()));
    ASSERT_EQ(ref_.size(), tokens_.size() * static_cast<size_t>(model_->config().n_vocab));
  }
  json spec_;
  std::unique_ptr<Model> model_;
  std::vector<int32_t> tokens_;
  std::vector<float> ref_;
};

TEST_P(Golden, ExactLogitsMatchReference) {
  const auto got = BatchLogits(*model_, tokens_, kernels::Math::kExact);
  float max_diff = 0;
  for (size_t i = 0; i < got.size(); ++i) max_diff = std::max(max_diff, std::fabs(got[i] - ref_[i]));
  RecordProperty("max_abs_diff", std::to_string(max_diff));
  EXPECT_LE(max_diff, 1e-3f);
}

TEST_P(Golden, FastLogitsMatchReference) {
  const auto got = BatchLogits(*model_, tokens_, kernels::Math::kFast);
  const int64_t V = model_->config().n_vocab;
  if (GetParam().variant == "f32") {
    float max_diff = 0;
    for (size_t i = 0; i < got.size(); ++i) max_diff = std::max(max_diff, std::fabs(got[i] - ref_[i]));
    EXPECT_LE(max_diff, 1e-3f);
  } else {
    // Quantized: activations are quantized too, so only the argmax is compared where it is clear.
    for (size_t t = 0; t < tokens_.size(); ++t) {
      const float* r = ref_.data() + t * V;
      if (Margin(r, V) <= 0.5f) continue;
      EXPECT_EQ(Argmax(got.data() + t * V, V), Argmax(r, V)) << "position " << t;
    }
  }
}

// Greedy decoding, one token per forward step, against greedy_exact_gelu.
TEST_P(Golden, GreedyMatchesReference) {
  const auto& g = spec_["greedy"];
  const auto prompt = g["prompt"].get<std::vector<int32_t>>();
  const auto want = spec_["greedy_exact_gelu"]["output"].get<std::vector<int32_t>>();
  const auto margins = spec_["greedy_exact_gelu"]["top1_top2_margins"].get<std::vector<float>>();
  Context ctx(*model_, Options(*model_, kernels::Math::kExact));
  Batch b;
  for (size_t i = 0; i < prompt.size(); ++i) b.Add(prompt[i], 0, static_cast<int64_t>(i), i + 1 == prompt.size());
  ctx.Decode(b);
  const int64_t V = model_->config().n_vocab;
  for (size_t step = 0; step < want.size(); ++step) {
    const int got = Argmax(ctx.Logits(0), V);
    if (got != want[step]) {
      ASSERT_LT(margins[step], 1e-3f) << "greedy step " << step << ": got " << got << ", want " << want[step];
      return;  // a tie decided the other way: the continuations legitimately diverge from here
    }
    b.Clear();
    b.Add(got, 0, static_cast<int64_t>(prompt.size() + step), true);
    ctx.Decode(b);
  }
}

INSTANTIATE_TEST_SUITE_P(All, Golden, ::testing::ValuesIn(AllCases()), CaseName);

}  // namespace
}  // namespace g4
