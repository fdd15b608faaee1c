// The multimodal command-line forms: `gemma4 embed`, `gemma4 generate --image/--audio`,
// `gemma4 run --image/--audio` and its /image, /audio commands, `gemma4 create --mmproj` (and
// --mmproj-only) and `gemma4 info` on a projector.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "multimodal/test_media.h"
#include "terminal.h"
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

// A projector alone, for a model already written: the same file `create --mmproj` writes beside it.
TEST(CliCreate, ProjectorOnly) {
  const std::string dir = g4::testing::TempDir();
  auto r = RunCommand(Cli() + " create --preset tiny -o " + dir + "/m.gguf --mmproj " + dir + "/p.gguf --type Q8_0 2>&1");
  ASSERT_EQ(r.status, 0) << r.out;
  r = RunCommand(Cli() + " create --preset tiny --mmproj " + dir + "/only.gguf --mmproj-only --type Q8_0 2>&1");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out.find("wrote " + dir + "/m"), std::string::npos) << r.out;
  EXPECT_EQ(g4::testing::ReadText(dir + "/only.gguf"), g4::testing::ReadText(dir + "/p.gguf"));
  r = RunCommand(Cli() + " create --preset tiny --mmproj-only 2>&1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("--mmproj-only needs --mmproj FILE"), std::string::npos) << r.out;
  r = RunCommand(Cli() + " create --preset tiny --mmproj " + dir + "/x.gguf --mmproj-only -o " + dir + "/x2.gguf 2>&1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("leave out -o"), std::string::npos) << r.out;
}

std::string RunFlags() {
  return " -m " + Dir() + "g4u-mm-tiny.f32.gguf --mmproj " + Dir() + "mmproj-g4u-mm-tiny.f32.gguf --exact --temp 0 -t 1";
}

// run --image: the chat's answer is generate's for the rendered conversation with the same image
// (greedy, exact numerics); bad media are clear errors naming the file.
TEST(CliRun, ImageFlagAnswersWhatGenerateAnswers) {
  G4_REQUIRE_SHARED();
  const std::string dir = g4::testing::TempDir();
  const std::string img = Dir() + "media/img_96x96.png";
  // The message run sends: the image part, then the text.
  g4::testing::WriteBytes(dir + "/m.json", R"([{"role":"user","content":[{"type":"image"},{"type":"text","text":"What is this?"}]}])");
  auto r = RunCommand(Cli() + " render -m " + Dir() + "g4u-mm-tiny.f32.gguf --messages " + dir + "/m.json --tokens");
  ASSERT_EQ(r.status, 0) << r.out;
  std::string ids;
  for (int id : json::parse(r.out)) ids += (ids.empty() ? "" : ",") + std::to_string(id);
  const auto gen = RunCommand(Cli() + " generate" + RunFlags() + " --image " + img + " -n 6 --tokens " + ids + " 2>/dev/null");
  ASSERT_EQ(gen.status, 0) << gen.out;
  const auto run = RunCommand(Cli() + " run" + RunFlags() + " --image " + img + " -n 6 'What is this?' 2>&1");
  ASSERT_EQ(run.status, 0) << run.out;
  EXPECT_NE(run.out.find(img + ": image 96x96 -> 768x768, grid 16x16 = 256 tokens\n"), std::string::npos) << run.out;
  EXPECT_EQ(run.out.substr(run.out.find("tokens\n") + 7), gen.out);
  r = RunCommand(Cli() + " run" + RunFlags() + " --image " + dir + "/missing.png hi 2>&1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("error: " + dir + "/missing.png: cannot open the file"), std::string::npos) << r.out;
  r = RunCommand(Cli() + " run -m " + Dir() + "g4u-mm-tiny.f32.gguf --image " + img + " hi 2>&1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("pass the multimodal projector with --mmproj FILE"), std::string::npos) << r.out;
}

// /image and /audio in the interactive chat: bad files are errors that change nothing, a good one
// goes with the next message, /save keeps its file and /load reads it again.
TEST(CliRun, ChatImageAndAudioCommands) {
  G4_REQUIRE_SHARED();
  if (!g4::testing::HaveTmux()) GTEST_SKIP() << "tmux is not installed (scripts/install-deps.sh installs it)";
  const std::string dir = g4::testing::TempDir();
  const std::string img = Dir() + "media/img_96x96.png", wav = Dir() + "media/aud_16k_mono_pcm16_1s.wav";
  const test::Bytes png = test::ReadBytes(img);
  g4::testing::WriteBytes(dir + "/cut.png", std::string(png.begin(), png.begin() + 5000));
  g4::testing::Terminal t(Cli() + " run" + RunFlags() + " -n 3");
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(t.WaitFor(">>>")) << t.Screen();
  t.Line("/image " + dir + "/missing.png");
  ASSERT_TRUE(t.WaitFor("error: " + dir + "/missing.png: cannot open the file")) << t.Screen();
  t.Line("/image " + dir + "/cut.png");
  ASSERT_TRUE(t.WaitFor("error: " + dir + "/cut.png: truncated PNG")) << t.Screen();
  t.Line("/audio " + img);
  ASSERT_TRUE(t.WaitFor("error: " + img + ": ")) << t.Screen();
  t.Line("Hello");
  t.Line("/save " + dir + "/one.json");
  ASSERT_TRUE(t.WaitFor("saved 2 messages")) << t.Screen();
  EXPECT_TRUE(json::parse(g4::testing::ReadText(dir + "/one.json"))[0]["content"].is_string());  // nothing attached
  t.Line("/image " + img);
  ASSERT_TRUE(t.WaitFor("attached " + img + ": image 96x96 -> 768x768, grid 16x16 = 256 tokens")) << t.Screen();
  t.Line("/audio " + wav);
  ASSERT_TRUE(t.WaitFor("attached " + wav + ": audio 16000 Hz x 1 ch")) << t.Screen();
  t.Line("What is this?");
  t.Line("/save " + dir + "/two.json");
  ASSERT_TRUE(t.WaitFor("saved 4 messages")) << t.Screen();
  const json two = json::parse(g4::testing::ReadText(dir + "/two.json"));
  EXPECT_EQ(two[2]["content"], json::parse(R"([{"type":"image","file":")" + img + R"("},{"type":"audio","file":")" + wav +
                                           R"("},{"type":"text","text":"What is this?"}])"));
  t.Line("/stats");
  ASSERT_TRUE(t.WaitFor("context: ")) << t.Screen();
  // A conversation whose image is gone cannot be loaded, and the chat goes on as it was.
  json gone = two;
  gone[2]["content"][0]["file"] = dir + "/gone.png";
  g4::testing::WriteBytes(dir + "/gone.json", gone.dump());
  t.Line("/load " + dir + "/gone.json");
  ASSERT_TRUE(t.WaitFor("error: " + dir + "/gone.png: cannot open the file")) << t.Screen();
  t.Line("/load " + dir + "/two.json");
  ASSERT_TRUE(t.WaitFor("loaded 4 messages")) << t.Screen();
  t.Line("And now?");
  t.Line("/save " + dir + "/three.json");
  ASSERT_TRUE(t.WaitFor("saved 6 messages")) << t.Screen();
  EXPECT_EQ(json::parse(g4::testing::ReadText(dir + "/three.json"))[2]["content"], two[2]["content"]);
  t.Line("/bye");
  ASSERT_TRUE(t.WaitFor("EXIT=0")) << t.Screen();
}

}  // namespace
}  // namespace g4::mm
