// End to end on the golden tiny multimodal model: the logits with an image and with audio against
// llama.cpp's (logits_exact_gelu), the bidirectional image mask on its own, prompt expansion and the
// generator's mixed prefill.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "engine/generator.h"
#include "model/context.h"
#include "multimodal/media.h"
#include "multimodal/synthetic_mmproj.h"
#include "multimodal/test_media.h"
#include "multimodal/tiny_mm_test.h"
#include "testutil.h"
#include "util/error.h"

namespace g4::mm {
namespace {

using nlohmann::json;

constexpr float kLogitTol = 1e-4f;  // golden README: logits vs logits_exact_gelu

std::string Dir() { return MmDir(); }

class E2e : public TinyMm {
 protected:
  // All-position logits of tokens_before + media rows + tokens_after, evaluated as one batch.
  std::vector<float> Logits(const std::vector<int32_t>& before, const std::vector<float>& rows,
                            const std::vector<int32_t>& after, int32_t group) {
    Context ctx(*model_, Exact());
    Batch b;
    int64_t pos = 0;
    for (int32_t t : before) b.Add(t, 0, pos++, true);
    const int64_t E = model_->config().n_embd;
    for (size_t r = 0; r < rows.size() / E; ++r) b.AddEmbedding(rows.data() + r * E, E, 0, pos++, true, group);
    for (int32_t t : after) b.Add(t, 0, pos++, true);
    ctx.Decode(b);
    const int64_t V = model_->config().n_vocab;
    std::vector<float> out(static_cast<size_t>(pos * V));
    for (int64_t i = 0; i < pos; ++i) std::copy_n(ctx.Logits(static_cast<int>(i)), V, out.begin() + i * V);
    return out;
  }
};

void ExpectLogits(const std::vector<float>& got, const std::vector<float>& want, const json& c, int64_t V) {
  ASSERT_EQ(got.size(), want.size());
  float worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]));
  EXPECT_LE(worst, kLogitTol);
  // Argmax agrees wherever the reference margin is above the tolerance.
  const auto argmax = c["argmax_exact_gelu"].get<std::vector<int>>();
  const auto margins = c["top1_top2_margins_exact_gelu"].get<std::vector<double>>();
  ASSERT_EQ(argmax.size(), got.size() / V);
  for (size_t p = 0; p < argmax.size(); ++p) {
    if (margins[p] <= kLogitTol) continue;
    const float* row = got.data() + p * V;
    EXPECT_EQ(std::max_element(row, row + V) - row, argmax[p]) << "position " << p;
  }
}

// The whole path: the image file decoded, resized the llama.cpp way, embedded, prefilled with a
// bidirectional group between the image markers.
TEST_F(E2e, ImageLogits) {
  const json c = json::parse(g4::testing::ReadText(Dir() + "cases/e2e_image.json"));
  ImageOptions o;
  o.resize = ResizeMode::kLlamaCpp;
  const MediaEmbedding m = enc_->EmbedImage(test::ReadBytes(Dir() + c["media"].get<std::string>()), "image", o, pool_);
  ASSERT_EQ(m.n_tokens(), c["n_media_tokens"].get<int64_t>());
  const auto before = c["tokens_before"].get<std::vector<int32_t>>();
  const auto after = c["tokens_after"].get<std::vector<int32_t>>();
  EXPECT_EQ(before.back(), tok_->Lookup("<|image>"));
  EXPECT_EQ(after.front(), tok_->Lookup("<image|>"));
  const std::vector<float> want = g4::testing::ReadF32(Dir() + c["logits_exact_gelu"].get<std::string>());
  ExpectLogits(Logits(before, m.embd, after, 1), want, c, model_->config().n_vocab);
}

TEST_F(E2e, AudioLogits) {
  const json c = json::parse(g4::testing::ReadText(Dir() + "cases/e2e_audio.json"));
  const MediaEmbedding m = enc_->EmbedAudio(test::ReadBytes(Dir() + c["media"].get<std::string>()), "audio", {}, pool_);
  ASSERT_EQ(m.n_tokens(), c["n_media_tokens"].get<int64_t>());
  const auto before = c["tokens_before"].get<std::vector<int32_t>>();
  const auto after = c["tokens_after"].get<std::vector<int32_t>>();
  EXPECT_EQ(before.back(), tok_->Lookup("<|audio>"));
  const std::vector<float> want = g4::testing::ReadF32(Dir() + c["logits_exact_gelu"].get<std::string>());
  ExpectLogits(Logits(before, m.embd, after, 0), want, c, model_->config().n_vocab);
}

// The mask on its own: changing the last image row changes what the first image token computes when
// the image is one group, and nothing earlier; text never sees later tokens.
TEST_F(E2e, BidirectionalImageMask) {
  const json c = json::parse(g4::testing::ReadText(Dir() + "cases/e2e_image.json"));
  const auto before = c["tokens_before"].get<std::vector<int32_t>>();
  const auto after = c["tokens_after"].get<std::vector<int32_t>>();
  std::vector<float> rows = g4::testing::ReadF32(Dir() + c["media_embd"].get<std::string>());
  const int64_t V = model_->config().n_vocab, E = model_->config().n_embd;
  const int64_t nb = static_cast<int64_t>(before.size()), ni = static_cast<int64_t>(rows.size()) / E;
  std::vector<float> changed = rows;
  for (int64_t d = 0; d < E; ++d) changed[(ni - 1) * E + d] = -changed[(ni - 1) * E + d];
  auto row_diff = [&](const std::vector<float>& a, const std::vector<float>& b, int64_t p) {
    float m = 0;
    for (int64_t v = 0; v < V; ++v) m = std::max(m, std::abs(a[p * V + v] - b[p * V + v]));
    return m;
  };
  for (int32_t group : {1, 0}) {
    const std::vector<float> a = Logits(before, rows, after, group), b = Logits(before, changed, after, group);
    for (int64_t p = 0; p < nb; ++p) EXPECT_EQ(row_diff(a, b, p), 0.0f) << "text before the image, position " << p;
    if (group) {
      // Every image token, the first included, sees the changed last one.
      for (int64_t p = nb; p < nb + ni; ++p) EXPECT_GT(row_diff(a, b, p), 1e-3f) << "image token " << p - nb;
    } else {
      for (int64_t p = nb; p < nb + ni - 1; ++p) EXPECT_EQ(row_diff(a, b, p), 0.0f) << "causal image token " << p - nb;
    }
    EXPECT_GT(row_diff(a, b, nb + ni), 1e-3f) << "the text after the image sees it";
  }
  // A later text token never changes an earlier position, inside the image or not.
  std::vector<int32_t> after2 = after;
  after2[5] = after2[5] == 100 ? 101 : 100;
  const std::vector<float> a = Logits(before, rows, after, 1), b = Logits(before, rows, after2, 1);
  for (int64_t p = 0; p < nb + ni + 5; ++p) EXPECT_EQ(row_diff(a, b, p), 0.0f) << "position " << p;
  EXPECT_GT(row_diff(a, b, nb + ni + 5), 1e-3f);
}

// Prompt expansion from a placeholder, and the generator's mixed prefill with prefix reuse.
TEST_F(E2e, ExpandAndPrefill) {
  const json c = json::parse(g4::testing::ReadText(Dir() + "cases/e2e_image.json"));
  const auto before = c["tokens_before"].get<std::vector<int32_t>>();
  const auto after = c["tokens_after"].get<std::vector<int32_t>>();
  const std::vector<float> want = g4::testing::ReadF32(Dir() + c["logits_exact_gelu"].get<std::string>());
  const int64_t V = model_->config().n_vocab;
  ImageOptions o;
  o.resize = ResizeMode::kLlamaCpp;
  const MediaEmbedding m = enc_->EmbedImage(test::ReadBytes(Dir() + c["media"].get<std::string>()), "image", o, pool_);
  // tokens_before without <|image>, the placeholder, tokens_after without <image|>.
  std::vector<int32_t> prompt(before.begin(), before.end() - 1);
  prompt.push_back(tok_->Lookup("<|image|>"));
  prompt.insert(prompt.end(), after.begin() + 1, after.end());
  const std::vector<PromptPiece> pieces = ExpandPrompt(*tok_, prompt, {m});
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[0].tokens, before);
  EXPECT_TRUE(pieces[1].bidirectional);
  EXPECT_EQ(pieces[1].embd, m.embd);
  EXPECT_EQ(pieces[2].tokens, after);

  Context ctx(*model_, Exact(64));  // batches of 64: the 49-token image must not be split
  Generator gen(ctx, *tok_);
  // First a prefix that ends 5 tokens early, then the whole prompt: only 5 positions run again.
  std::vector<PromptPiece> shorter = pieces;
  shorter[2].tokens.resize(after.size() - 5);
  const int64_t n_short = static_cast<int64_t>(before.size() + 49 + after.size() - 5);
  EXPECT_EQ(gen.Prefill(shorter), n_short);
  auto expect_row = [&](int64_t p) {
    float worst = 0;
    for (int64_t v = 0; v < V; ++v) worst = std::max(worst, std::abs(ctx.Logits(0)[v] - want[p * V + v]));
    EXPECT_LE(worst, kLogitTol) << "position " << p;
  };
  expect_row(n_short - 1);
  EXPECT_EQ(gen.Prefill(pieces), 5);
  expect_row(n_short + 4);
  EXPECT_EQ(gen.cached()[before.size()], -1);  // embedding rows have no token id
  // The same image embedded again has the same key: reused. Another image: everything from it runs.
  std::vector<PromptPiece> other = pieces;
  other[1].embd[0] += 1.0f;
  other[1].key ^= 1;
  EXPECT_EQ(gen.Prefill(other), static_cast<int>(49 + after.size()));
  // An image larger than a batch is an error, not a split.
  Context small(*model_, Exact(32));
  Generator g2(small, *tok_);
  try {
    g2.Prefill(pieces);
    ADD_FAILURE() << "a 49-token image was split over batches of 32";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("an image of 49 soft tokens must be evaluated in one batch"), std::string::npos) << e.what();
  }
}

TEST_F(E2e, ExpansionRules) {
  const int32_t bos = tok_->bos(), ph = tok_->Lookup("<|image|>"), aph = tok_->Lookup("<|audio|>");
  MediaEmbedding img;
  img.kind = MediaKind::kImage;
  img.n_embd = 256;
  img.embd.assign(2 * 256, 0.5f);
  img.blocks = {2};
  MediaEmbedding aud = img;
  aud.kind = MediaKind::kAudio;
  aud.embd.assign(3 * 256, 0.25f);
  aud.blocks = {2, 1};  // two clips
  // No placeholder: media after BOS, in order, each clip in its own markers.
  auto p = ExpandPrompt(*tok_, std::vector<int32_t>{bos, 300, 301}, {img, aud});
  ASSERT_EQ(p.size(), 7u);
  EXPECT_EQ(p[0].tokens, (std::vector<int32_t>{bos, tok_->Lookup("<|image>")}));
  EXPECT_TRUE(p[1].bidirectional);
  EXPECT_EQ(p[2].tokens, (std::vector<int32_t>{tok_->Lookup("<image|>"), tok_->Lookup("<|audio>")}));
  EXPECT_FALSE(p[3].bidirectional);
  EXPECT_EQ(p[3].embd.size(), 2u * 256);
  EXPECT_EQ(p[4].tokens, (std::vector<int32_t>{tok_->Lookup("<audio|>"), tok_->Lookup("<|audio>")}));
  EXPECT_EQ(p[5].embd.size(), 1u * 256);
  EXPECT_EQ(p[6].tokens, (std::vector<int32_t>{tok_->Lookup("<audio|>"), 300, 301}));
  // Placeholders: by kind, in order.
  p = ExpandPrompt(*tok_, std::vector<int32_t>{bos, aph, 300, ph}, {img, aud});
  ASSERT_EQ(p.size(), 7u);
  EXPECT_EQ(p[1].embd.size(), 2u * 256);
  EXPECT_FALSE(p[1].bidirectional);
  EXPECT_TRUE(p[5].bidirectional);
  // Counts must match.
  EXPECT_THROW(ExpandPrompt(*tok_, std::vector<int32_t>{bos, ph, ph}, {img}), Error);
  EXPECT_THROW(ExpandPrompt(*tok_, std::vector<int32_t>{bos, aph}, {img}), Error);
}

TEST_F(E2e, WidthMismatchIsAClearError) {
  const std::string path = g4::testing::TempDir() + "/mmproj-64.gguf";
  SyntheticMmprojOptions so;
  so.n_embd = 64;
  WriteSyntheticMmproj(so, path);
  try {
    MediaEncoder::Create(*model_, path);
    ADD_FAILURE() << "a 64-wide projector was accepted for a 256-wide model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("embeddings of 64 values but the model's hidden size is 256"), std::string::npos) << e.what();
  }
  try {
    MediaEncoder::Create(*model_, "");
    ADD_FAILURE() << "a model without projector tensors was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("pass the multimodal projector with --mmproj FILE"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace g4::mm
