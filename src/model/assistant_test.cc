// The MTP assistant against llama.cpp's golden drafting round (../shared/golden/g4u-assistant-tiny).
#include "model/assistant.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "testutil.h"
#include "util/error.h"

namespace g4 {
namespace {

std::string Golden(const std::string& rel) { return g4::testing::SharedPath("golden/" + rel); }

class AssistantGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(AssistantGolden, DraftTokensLogitsAndTargetHiddenMatch) {
  G4_REQUIRE_SHARED();
  const auto spec = nlohmann::json::parse(g4::testing::ReadText(Golden("g4u-assistant-tiny/" + GetParam())));
  auto target = Model::Load(Golden("g4u-tiny/g4u-tiny.f32.gguf"));
  auto assistant = Model::Load(Golden("g4u-assistant-tiny/g4u-assistant-tiny.f32.gguf"));
  ContextOptions o;
  o.math = kernels::Math::kExact;
  o.kv.type_k = o.kv.type_v = GgmlType::F32;
  o.kv.n_ctx = 512;
  o.keep_hidden = true;
  Context ctx(*target, o);
  const auto tokens = spec["tokens"].get<std::vector<int32_t>>();
  Batch b;
  for (size_t i = 0; i < tokens.size(); ++i) b.Add(tokens[i], 0, static_cast<int64_t>(i), true);
  ctx.Decode(b);
  const int64_t B = target->config().n_embd, V = target->config().n_vocab;
  // The target's final-normed hidden state at every position.
  const auto h_ref = g4::testing::ReadF32(Golden("g4u-assistant-tiny/" + spec["target_h_nextn_exact_gelu"].get<std::string>()));
  ASSERT_EQ(h_ref.size(), tokens.size() * B);
  float hd = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    for (int64_t d = 0; d < B; ++d) hd = std::max(hd, std::fabs(ctx.Hidden(static_cast<int>(i))[d] - h_ref[i * B + d]));
  }
  EXPECT_LE(hd, 1e-4f);
  const float* last = ctx.Logits(static_cast<int>(tokens.size()) - 1);
  int32_t t = static_cast<int32_t>(std::max_element(last, last + V) - last);
  EXPECT_EQ(t, spec["target_next_token"].get<int32_t>());

  AssistantRunner runner(*assistant, *target, ctx);
  std::vector<float> h(ctx.Hidden(static_cast<int>(tokens.size()) - 1), ctx.Hidden(static_cast<int>(tokens.size()) - 1) + B);
  const auto ref_logits = g4::testing::ReadF32(Golden("g4u-assistant-tiny/" + spec["draft_logits_exact_gelu"].get<std::string>()));
  const auto ref_tokens = spec["draft_tokens_exact_gelu"].get<std::vector<int32_t>>();
  const int64_t P = spec["draft_position"].get<int64_t>();
  std::vector<float> logits(V), next(B);
  for (size_t k = 0; k < ref_tokens.size(); ++k) {
    const int32_t seq = 0;
    runner.Step(1, &t, h.data(), &seq, &P, logits.data(), next.data());
    float m = 0;
    for (int64_t v = 0; v < V; ++v) m = std::max(m, std::fabs(logits[v] - ref_logits[k * V + v]));
    EXPECT_LE(m, 1e-4f) << "draft step " << k;
    t = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    EXPECT_EQ(t, ref_tokens[k]) << "draft step " << k;
    h = next;
  }
  EXPECT_EQ(ctx.kv().SeqLen(0), static_cast<int64_t>(tokens.size()));  // the drafter never writes the cache
}

INSTANTIATE_TEST_SUITE_P(Golden, AssistantGolden, ::testing::Values("f32.prompt8.json", "f32.seq100.json"),
                         [](const auto& i) { return i.param.substr(4, i.param.find(".json") - 4); });

TEST(Assistant, MismatchedTargetIsAClearError) {
  G4_REQUIRE_SHARED();
  auto wrong = Model::Load(Golden("g4-e2b-tiny/g4-e2b-tiny.f32.gguf"));  // hidden 256 but other layer shapes
  auto assistant = Model::Load(Golden("g4u-assistant-tiny/g4u-assistant-tiny.f32.gguf"));
  ContextOptions o;
  o.kv.n_ctx = 64;
  Context ctx(*wrong, o);
  try {
    AssistantRunner runner(*assistant, *wrong, ctx);
    FAIL() << "accepted a target it does not belong to";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expects 2 KV heads of size 64"), std::string::npos) << e.what();
  }
  auto g3 = Model::Load(Golden("g3-tiny/g3-tiny.f32.gguf"));
  Context ctx3(*g3, o);
  EXPECT_THROW(AssistantRunner(*assistant, *g3, ctx3), Error);
}

}  // namespace
}  // namespace g4
