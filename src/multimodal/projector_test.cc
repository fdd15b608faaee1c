// The vision embedder and audio projection against the golden embeddings llama.cpp computed
// (../shared/golden/multimodal), loading from the mmproj GGUF and from a model file.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "formats/gguf.h"
#include "multimodal/media.h"
#include "multimodal/resize.h"
#include "multimodal/synthetic_mmproj.h"
#include "multimodal/test_media.h"
#include "testutil.h"
#include "util/error.h"

namespace g4::mm {
namespace {

using nlohmann::json;

constexpr float kTol = 1e-5f;  // golden README: embeddings, fp32 engine

std::string Dir() { return g4::testing::SharedPath("golden/multimodal/"); }

float MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

class Golden : public ::testing::Test {
 protected:
  void SetUp() override {
    G4_REQUIRE_SHARED();
    proj_ = Projector::Open(Dir() + "mmproj-g4u-mm-tiny.f32.gguf");
  }
  ThreadPool pool_{2};
  std::unique_ptr<Projector> proj_;
};

TEST_F(Golden, ProjectorMetadata) {
  EXPECT_TRUE(proj_->has_vision());
  EXPECT_TRUE(proj_->has_audio());
  EXPECT_EQ(proj_->n_embd(), 256);
  EXPECT_EQ(proj_->tensors().size(), 11u);
}

class GoldenImageEmbd : public Golden, public ::testing::WithParamInterface<std::string> {};

// Per-patch embeddings from the exact pixels llama.cpp patchified.
TEST_P(GoldenImageEmbd, FromLlamaCppPixels) {
  const json c = json::parse(g4::testing::ReadText(Dir() + "cases/" + GetParam() + ".json"));
  const RgbImage px = DecodeImage(test::ReadBytes(Dir() + c["llama_cpp"]["resized_pixels"].get<std::string>()), "pixels");
  const Patches p = PatchifyChw(px, proj_->image_mean(), proj_->image_std());
  EXPECT_EQ(p.rows, c["llama_cpp"]["grid_rows"].get<int>());
  EXPECT_EQ(p.cols, c["llama_cpp"]["grid_cols"].get<int>());
  const std::vector<float> got = proj_->EmbedPatches(p, pool_, kernels::Math::kExact);
  const std::vector<float> want = g4::testing::ReadF32(Dir() + c["embd"].get<std::string>());
  ASSERT_EQ(got.size(), want.size());
  EXPECT_LE(MaxAbsDiff(got, want), kTol);
  // The fast path (F32 weights keep f32 activations) computes the same.
  EXPECT_LE(MaxAbsDiff(proj_->EmbedPatches(p, pool_, kernels::Math::kFast), want), kTol);
}

// The whole llama.cpp-mode pipeline from the original file (decode, resize, patchify, embed).
TEST_P(GoldenImageEmbd, FromTheFileInLlamaCppMode) {
  const json c = json::parse(g4::testing::ReadText(Dir() + "cases/" + GetParam() + ".json"));
  MediaEncoder enc(Projector::Open(Dir() + "mmproj-g4u-mm-tiny.f32.gguf"), kernels::Math::kExact);
  ImageOptions o;
  o.resize = ResizeMode::kLlamaCpp;
  const MediaEmbedding m = enc.EmbedImage(test::ReadBytes(Dir() + c["media"].get<std::string>()), GetParam(), o, pool_);
  EXPECT_EQ(m.n_tokens(), c["llama_cpp"]["n_tokens"].get<int64_t>());
  EXPECT_LE(MaxAbsDiff(m.embd, g4::testing::ReadF32(Dir() + c["embd"].get<std::string>())), kTol);
}

// The transformers-style preprocessing (the default) against the numpy reference where it is shipped;
// everywhere its grid.
TEST_P(GoldenImageEmbd, TransformersMode) {
  const json c = json::parse(g4::testing::ReadText(Dir() + "cases/" + GetParam() + ".json"));
  const json& hf = c["transformers_preprocessing"];
  MediaEncoder enc(Projector::Open(Dir() + "mmproj-g4u-mm-tiny.f32.gguf"), kernels::Math::kExact);
  const MediaEmbedding m = enc.EmbedImage(test::ReadBytes(Dir() + c["media"].get<std::string>()), GetParam(), {}, pool_);
  EXPECT_EQ(m.grid_rows, hf["grid_rows"].get<int>());
  EXPECT_EQ(m.grid_cols, hf["grid_cols"].get<int>());
  EXPECT_EQ(m.n_tokens(), hf["n_tokens"].get<int64_t>());
  if (hf.contains("embd_numpy")) {
    EXPECT_LE(MaxAbsDiff(m.embd, g4::testing::ReadF32(Dir() + hf["embd_numpy"].get<std::string>())), kTol);
  }
}

INSTANTIATE_TEST_SUITE_P(All, GoldenImageEmbd,
                         ::testing::Values("img_1x1.png", "img_200x120.png", "img_50x300.png", "img_640x480.jpg",
                                           "img_640x480.png", "img_96x96.png", "img_gray_120x90.png",
                                           "img_rgba_160x100.png"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& ch : s) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                           return s;
                         });

class GoldenAudioEmbd : public Golden, public ::testing::WithParamInterface<std::string> {};

// Per-frame embeddings. 16 kHz mono files are decoded here (bit-identical to llama.cpp); for other
// rates the 16 kHz samples llama.cpp's resampler produced are used (ours is a different resampler).
TEST_P(GoldenAudioEmbd, PerFrame) {
  const json c = json::parse(g4::testing::ReadText(Dir() + "cases/" + GetParam() + ".json"));
  const json& l = c["llama_cpp"];
  std::vector<float> pcm;
  if (l["pcm16k"].is_null()) {
    const AudioClip clip = DecodeAudio(test::ReadBytes(Dir() + c["media"].get<std::string>()), GetParam());
    EXPECT_EQ(clip.sample_rate, 16000);
    EXPECT_EQ(clip.channels, 1);
    pcm = ToMono16k(clip, GetParam());
  } else {
    pcm = g4::testing::ReadF32(Dir() + l["pcm16k"].get<std::string>());
    // Our own decode and resampling gives the same length and token count.
    const AudioClip clip = DecodeAudio(test::ReadBytes(Dir() + c["media"].get<std::string>()), GetParam());
    EXPECT_EQ(clip.sample_rate, c["source"]["sample_rate"].get<int>());
    EXPECT_EQ(clip.channels, c["source"]["channels"].get<int>());
    EXPECT_EQ(ToMono16k(clip, GetParam()).size(), pcm.size());
  }
  EXPECT_EQ(static_cast<int64_t>(pcm.size()), l["n_samples_16k"].get<int64_t>());
  const std::vector<float> want = g4::testing::ReadF32(Dir() + c["embd"].get<std::string>());
  const int64_t n_llama = l["n_tokens"].get<int64_t>();
  MediaEncoder enc(Projector::Open(Dir() + "mmproj-g4u-mm-tiny.f32.gguf"), kernels::Math::kExact);
  AudioOptions o;
  if (n_llama > kMaxAudioFrames) {
    // llama.cpp has no 30 s cap (775 frames for 31 s). The reference caps at 750: without
    // --audio-chunk this is an error; with it, two clips whose frames are the same rows.
    EXPECT_THROW(enc.EmbedSamples(pcm, GetParam(), o, pool_), Error);
    EXPECT_EQ(c["transformers_n_tokens"].get<int64_t>(), kMaxAudioFrames);
    o.chunk = true;
  }
  const MediaEmbedding m = enc.EmbedSamples(pcm, GetParam(), o, pool_);
  EXPECT_EQ(m.n_tokens(), n_llama);
  if (n_llama > kMaxAudioFrames) {
    EXPECT_EQ(m.blocks, (std::vector<int64_t>{750, n_llama - 750}));
  }
  EXPECT_LE(MaxAbsDiff(m.embd, want), kTol);
}

INSTANTIATE_TEST_SUITE_P(All, GoldenAudioEmbd,
                         ::testing::Values("aud_16k_mono_pcm16_1s.wav", "aud_16k_mono_pcm16_31s.wav",
                                           "aud_44k1_stereo_pcm16_2.5s.wav", "aud_8k_mono_f32_0.3s.wav"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& ch : s) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                           return s;
                         });

// The same tensors inside a model file are found and give the same embeddings.
TEST_F(Golden, FromTheModelFile) {
  auto model = gguf::File::Open(Dir() + "g4u-mm-tiny.f32.gguf");
  EXPECT_EQ(Projector::FromModelFile(*model), nullptr);
  auto mmproj = gguf::File::Open(Dir() + "mmproj-g4u-mm-tiny.f32.gguf");
  gguf::Writer w;
  for (const auto& kv : model->kvs()) w.CopyValue(kv.key, kv.value);
  for (const auto* f : {model.get(), mmproj.get()}) {
    for (const auto& t : f->tensors()) {
      const gguf::TensorInfo* ti = &t;
      w.AddTensor(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims),
                  [ti](uint8_t* dst, size_t n) { std::memcpy(dst, ti->data, n); });
    }
  }
  const std::string path = g4::testing::TempDir() + "/combined.gguf";
  w.Write(path);
  auto combined = gguf::File::Open(path);
  auto p = Projector::FromModelFile(*combined);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(p->has_vision() && p->has_audio());
  const json c = json::parse(g4::testing::ReadText(Dir() + "cases/img_96x96.png.json"));
  const RgbImage px = DecodeImage(test::ReadBytes(Dir() + c["llama_cpp"]["resized_pixels"].get<std::string>()), "pixels");
  const Patches patches = PatchifyChw(px, p->image_mean(), p->image_std());
  EXPECT_LE(MaxAbsDiff(p->EmbedPatches(patches, pool_, kernels::Math::kExact),
                       g4::testing::ReadF32(Dir() + c["embd"].get<std::string>())),
            kTol);
}

TEST_F(Golden, RefusesOtherFiles) {
  try {
    Projector::Open(Dir() + "g4u-mm-tiny.f32.gguf");
    ADD_FAILURE() << "a text model was accepted as a projector";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("general.architecture is 'gemma4', expected 'clip'"), std::string::npos) << e.what();
  }
}

// A synthetic projector (what `gemma4 create --mmproj` writes) loads, and quantized matrices work
// and stay close to the f32 result.
TEST(Synthetic, WritesLoadableProjectorsInAnyType) {
  ThreadPool pool(2);
  const std::string dir = g4::testing::TempDir();
  std::vector<std::vector<float>> results;
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::Q8_0}) {
    SyntheticMmprojOptions o;
    o.n_embd = 64;
    o.matrix_type = t;
    o.seed = 7;
    const std::string path = dir + "/mmproj-" + TypeName(t) + ".gguf";
    WriteSyntheticMmproj(o, path);
    auto p = Projector::Open(path);
    EXPECT_EQ(p->n_embd(), 64);
    const Patches patches = PatchifyChw(test::Pattern(96, 48, 3), p->image_mean(), p->image_std());
    std::vector<float> e = p->EmbedPatches(patches, pool, kernels::Math::kExact);
    const std::vector<float> a = p->EmbedFrames(test::Sine(300, 0.3, 16000, 1280).data(), 2, pool, kernels::Math::kExact);
    e.insert(e.end(), a.begin(), a.end());
    ASSERT_EQ(e.size(), (2u + 2u) * 64);
    for (float v : e) ASSERT_TRUE(std::isfinite(v));
    results.push_back(e);
  }
  EXPECT_GT(MaxAbsDiff(results[0], results[1]), 0.0f);  // different weights precision, different numbers
  EXPECT_LT(MaxAbsDiff(results[0], results[1]), 0.05f);
  EXPECT_LT(MaxAbsDiff(results[0], results[2]), 0.1f);
}

}  // namespace
}  // namespace g4::mm
