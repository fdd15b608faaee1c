#include "gemma4.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "testutil.h"

namespace {

TEST(CApi, LoadDecodeLogitsTruncate) {
  G4_REQUIRE_SHARED();
  gemma4_model* m = gemma4_model_load(g4::testing::SharedPath("golden/g4u-tiny/g4u-tiny.f32.gguf").c_str());
  ASSERT_NE(m, nullptr) << gemma4_last_error();
  EXPECT_EQ(gemma4_model_n_vocab(m), 512);
  EXPECT_EQ(gemma4_token_lookup(m, "<turn|>"), 106);
  gemma4_context_params p = gemma4_context_default_params();
  p.exact = 1;
  gemma4_context* c = gemma4_context_new(m, p);
  ASSERT_NE(c, nullptr) << gemma4_last_error();
  const std::vector<int32_t> toks = {2, 447, 200, 368, 483, 86, 251, 86};
  std::vector<int32_t> seq(toks.size(), 0), pos;
  std::vector<int8_t> want(toks.size(), 0);
  for (size_t i = 0; i < toks.size(); ++i) pos.push_back(static_cast<int32_t>(i));
  want.back() = 1;
  ASSERT_EQ(gemma4_decode(c, toks.data(), seq.data(), pos.data(), want.data(), 8), 0) << gemma4_last_error();
  const float* l = gemma4_get_logits(c, 0);
  ASSERT_NE(l, nullptr);
  int best = 0;
  for (int i = 1; i < 512; ++i) best = l[i] > l[best] ? i : best;
  EXPECT_EQ(best, 181);  // the golden greedy continuation's first token
  EXPECT_EQ(gemma4_seq_length(c, 0), 8);
  EXPECT_EQ(gemma4_seq_truncate(c, 0, 5), 0);
  EXPECT_EQ(gemma4_seq_length(c, 0), 5);
  // Errors come back as codes with a message.
  EXPECT_EQ(gemma4_get_logits(c, 3), nullptr);
  EXPECT_NE(std::string(gemma4_last_error()).find("output 3 of 1"), std::string::npos);
  int32_t bad_tok = 9999, s0 = 0, p5 = 5;
  int8_t w = 1;
  EXPECT_EQ(gemma4_decode(c, &bad_tok, &s0, &p5, &w, 1), -1);
  EXPECT_NE(std::string(gemma4_last_error()).find("out of range"), std::string::npos);
  gemma4_context_free(c);
  gemma4_model_free(m);
  EXPECT_EQ(gemma4_model_load("/nonexistent.gguf"), nullptr);
  EXPECT_NE(std::string(gemma4_last_error()).find("cannot open"), std::string::npos);
}

TEST(CApi, Tokenize) {
  G4_REQUIRE_SHARED();
  gemma4_model* m = gemma4_model_load(g4::testing::SharedPath("golden/g4u-tiny/g4u-tiny.f32.gguf").c_str());
  ASSERT_NE(m, nullptr);
  int32_t out[4];
  const std::string text = "<bos>";
  EXPECT_EQ(gemma4_tokenize(m, text.data(), text.size(), 1, 0, out, 4), 1);
  EXPECT_EQ(out[0], 2);
  EXPECT_LT(gemma4_tokenize(m, "abcdefgh", 8, 0, 0, out, 1), 0);  // too small: -(needed)
  char buf[16];
  ASSERT_EQ(gemma4_token_to_piece(m, 494, buf, sizeof(buf)), 2);  // "▁t" -> " t"
  EXPECT_EQ(std::string(buf, 2), " t");
  gemma4_model_free(m);
}

}  // namespace
