// The multimodal command-line forms: `gemma4 embed`, `gemma4 generate --image/--audio`,
// `gemma4 create --mmproj` and `gemma4 info` on a projector.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "multimodal/test_media.h"
#include "testutil.h"

namespace g4::mm {
namespace {

using nlohmann::json;
using g4::testing::RunCommand;

std::string Dir() { return g4::testing::SharedPath("golden/multimodal/"); }
std::string Cli() { return g4::testing::CliPath(); }

float MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

TEST(CliEmbed, ImageWithoutResizeAndAudio) {
  G4_REQUIRE_SHARED();
  const std::string out = g4::testing::TempDir() + "/e.f32";
  const std::string mmproj = Dir() + "mmproj-g4u-mm-tiny.f32.gguf";
  auto r = RunCommand(Cli() + " embed --mmproj " + mmproj + " --image " + Dir() +
                      "cases/img_640x480.png.llamacpp_resized.png --no-resize -o " + out + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("grid: 10 x 13"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("embeddings: 130 x 256 float32"), std::string::npos) << r.out;
  EXPECT_LE(MaxAbsDiff(g4::testing::ReadF32(out), g4::testing::ReadF32(Dir() + "cases/img_640x480.png.embd.f32")), 1e-5f);
  // The default (transformers) grid of the original file.
  r = RunCommand(Cli() + " embed --mmproj " + mmproj + " --image " + Dir() + "media/img_50x300.png -o " + out + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("grid: 40 x 6"), std::string::npos) << r.out;
  EXPECT_LE(MaxAbsDiff(g4::testing::ReadF32(out), g4::testing::ReadF32(Dir() + "cases/img_50x300.png.hf_embd.f32")), 1e-5f);
  r = RunCommand(Cli() + " embed --mmproj " + mmproj + " --audio " + Dir() + "media/aud_16k_mono_pcm16_1s.wav -o " + out + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("embeddings: 25 x 256 float32"), std::string::npos) << r.out;
  EXPECT_LE(MaxAbsDiff(g4::testing::ReadF32(out), g4::testing::ReadF32(Dir() + "cases/aud_16k_mono_pcm16_1s.wav.embd.f32")), 1e-5f);
}

TEST(CliEmbed, ClearErrors) {
  G4_REQUIRE_SHARED();
  const std::string mmproj = Dir() + "mmproj-g4u-mm-tiny.f32.gguf";
  auto r = RunCommand(Cli() + " embed --mmproj " + mmproj + " --audio " + Dir() + "media/aud_16k_mono_pcm16_31s.wav 2>&1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("pass --audio-chunk"), std::string::npos) << r.out;
  r = RunCommand(Cli() + " embed --mmproj " + mmproj + " --audio " + Dir() + "media/aud_16k_mono_pcm16_31s.wav --audio-chunk 2>&1");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("775 tokens in 2 clips"), std::string::npos) << r.out;
  r = RunCommand(Cli() + " embed --mmproj " + mmproj + " --image " + Dir() + "media/img_640x480.png --no-resize 2>&1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("without resizing, the sides must be multiples of 48, but the image is 640x480"), std::string::npos) << r.out;
  const std::string bad = g4::testing::TempDir() + "/cut.png";
  const test::Bytes png = test::ReadBytes(Dir() + "media/img_96x96.png");
  g4::testing::WriteBytes(bad, std::string(png.begin(), png.begin() + 5000));
  r = RunCommand(Cli() + " embed --mmproj " + mmproj + " --image " + bad + " 2>&1");
  EXPECT_EQ(r.status, 1);
  std::string want = "error: ";
  want += bad;
  want += ": truncated PNG";
  EXPECT_NE(r.out.find(want), std::string::npos) << r.out;
  r = RunCommand(Cli() + " embed --mmproj " + Dir() + "g4u-mm-tiny.f32.gguf --image " + bad + " 2>&1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("not a multimodal projector"), std::string::npos) << r.out;
}

// generate with an image at the prompt's placeholder: greedy, exact numerics, the first token is
// llama.cpp's argmax at that position.
TEST(CliGenerate, ImageAtThePlaceholder) {
  G4_REQUIRE_SHARED();
  const json c = json::parse(g4::testing::ReadText(Dir() + "cases/e2e_image.json"));
  const auto before = c["tokens_before"].get<std::vector<int>>();
  const auto after = c["tokens_after"].get<std::vector<int>>();
  const auto argmax = c["argmax_exact_gelu"].get<std::vector<int>>();
  const auto margins = c["top1_top2_margins_exact_gelu"].get<std::vector<double>>();
  // The longest prefix of tokens_after whose next-token margin is safely above the tolerance.
  size_t k = after.size();
  while (margins[before.size() + 49 + k - 1] < 1e-2) --k;
  std::string ids;
  for (size_t i = 0; i + 1 < before.size(); ++i) ids += std::to_string(before[i]) + ",";
  ids += "57";  // <|image|>
  for (size_t i = 1; i < k; ++i) {
    ids += ',';
    ids += std::to_string(after[i]);
  }
  const auto r = RunCommand(Cli() + " generate -m " + Dir() + "g4u-mm-tiny.f32.gguf --mmproj " + Dir() +
                            "mmproj-g4u-mm-tiny.f32.gguf --image " + Dir() + "media/img_96x96.png --resize llamacpp --exact "
                            "--temp 0 -n 1 --ids --tokens " + ids + " 2>/dev/null");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out, std::to_string(argmax[before.size() + 49 + k - 1]) + "\n");
}

// A synthetic model with its projector, end to end through the CLI.
TEST(CliCreate, SyntheticModelWithProjector) {
  const std::string dir = g4::testing::TempDir();
  auto r = RunCommand(Cli() + " create --preset tiny -o " + dir + "/m.gguf --mmproj " + dir + "/p.gguf 2>&1");
  ASSERT_EQ(r.status, 0) << r.out;
  r = RunCommand(Cli() + " info " + dir + "/p.gguf --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["n_embd"], 256);
  EXPECT_EQ(j["vision"], true);
  EXPECT_EQ(j["audio"], true);
  EXPECT_EQ(j["tensors"].size(), 11u);
  const std::string img = dir + "/i.bmp", wav = dir + "/a.wav";
  const test::Bytes bmp = test::EncodeBmp(test::Pattern(100, 60, 1));
  g4::testing::WriteBytes(img, std::string(bmp.begin(), bmp.end()));
  const test::Bytes w = test::EncodeWav(test::Sine(440, 0.3, 22050, 22050), 22050, 1, 1, 16);
  g4::testing::WriteBytes(wav, std::string(w.begin(), w.end()));
  r = RunCommand(Cli() + " generate -m " + dir + "/m.gguf --mmproj " + dir + "/p.gguf --image " + img + " --audio " + wav +
                 " -p 'Describe <|image|> and <|audio|>' -n 3 --temp 0 --ids 2>&1");
  ASSERT_EQ(r.status, 0) << r.out;
  // 100x60 -> 1008x576 (21 x 12 = 252 soft tokens); 1 s of audio = 25; plus 4 markers and the text.
  EXPECT_NE(r.out.find("prompt: "), std::string::npos) << r.out;
  const size_t at = r.out.find("prompt: ");
  EXPECT_GT(std::stoi(r.out.substr(at + 8)), 252 + 25 + 4) << r.out;
  // Placeholder counts must match the media given.
  r = RunCommand(Cli() + " generate -m " + dir + "/m.gguf --mmproj " + dir + "/p.gguf --image " + img +
                 " -p '<|image|><|image|>' -n 1 2>&1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("2 image and 0 audio placeholders"), std::string::npos) << r.out;
  // gemma3 presets have no such projector.
  r = RunCommand(Cli() + " create --preset tiny-gemma3 -o " + dir + "/g3.gguf --mmproj " + dir + "/p3.gguf 2>&1");
  EXPECT_EQ(r.status, 1);
}

}  // namespace
}  // namespace g4::mm
