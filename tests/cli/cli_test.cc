// The gemma4 command line, run as a user would: the exact command forms tests, benchmarks and tools
// rely on, and the errors bad input gives.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "testutil.h"

namespace g4 {
namespace {

using g4::testing::CliPath;
using g4::testing::RunCommand;
using nlohmann::json;

std::string Quote(const std::string& s) {
  std::string q = "'";
  q += s;
  q += '\'';
  return q;
}

std::string Golden(const std::string& rel) { return g4::testing::SharedPath("golden/" + rel); }

std::string Join(const std::vector<int32_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(v[i]);
  }
  return s;
}

TEST(Cli, HelpListsCommands) {
  auto r = RunCommand(CliPath() + " --help");
  EXPECT_EQ(r.status, 0);
  for (const char* cmd : {"generate", "logits", "tokenize", "info", "create", "bench"}) {
    EXPECT_NE(r.out.find(cmd), std::string::npos) << cmd;
  }
}

TEST(Cli, GenerateIdsMatchesGoldenGreedy) {
  G4_REQUIRE_SHARED();
  for (const char* c : {"g4u-tiny/f32.prompt8.json", "g3-tiny/q8_0.prompt8.json", "g4-e2b-tiny/f32.seq100.json"}) {
    const json spec = json::parse(g4::testing::ReadText(Golden(c)));
    const std::string dir = std::filesystem::path(Golden(c)).parent_path().string();
    const auto prompt = spec["greedy"]["prompt"].get<std::vector<int32_t>>();
    const auto want = spec["greedy_exact_gelu"]["output"].get<std::vector<int32_t>>();
    const auto margins = spec["greedy_exact_gelu"]["top1_top2_margins"].get<std::vector<float>>();
    auto r = RunCommand(CliPath() + " generate -m " + Quote(dir + "/" + spec["model"].get<std::string>()) +
                        " --tokens " + Join(prompt) + " -n 32 --temp 0 --ids --ignore-eos --exact 2>/dev/null");
    ASSERT_EQ(r.status, 0) << c;
    std::vector<int32_t> got;
    std::stringstream ss(r.out);
    std::string item;
    while (std::getline(ss, item, ',')) got.push_back(std::stoi(item));
    ASSERT_EQ(got.size(), want.size()) << c;
    for (size_t i = 0; i < want.size(); ++i) {
      if (got[i] != want[i]) {
        EXPECT_LT(margins[i], 1e-3f) << c << " step " << i;
        break;
      }
    }
  }
}

TEST(Cli, LogitsWritesEveryPosition) {
  G4_REQUIRE_SHARED();
  const json spec = json::parse(g4::testing::ReadText(Golden("g4u-tiny/q8_0.seq100.json")));
  const std::string out = g4::testing::TempDir() + "/logits.f32";
  auto r = RunCommand(CliPath() + " logits -m " + Quote(Golden("g4u-tiny/g4u-tiny.q8_0.gguf")) + " --tokens " +
                      Join(spec["tokens"].get<std::vector<int32_t>>()) + " -o " + Quote(out) + " --exact 2>&1");
  ASSERT_EQ(r.status, 0) << r.out;
  const auto got = g4::testing::ReadF32(out);
  const auto ref = g4::testing::ReadF32(Golden("g4u-tiny/" + spec["logits_exact_gelu"].get<std::string>()));
  ASSERT_EQ(got.size(), ref.size());
  float m = 0;
  for (size_t i = 0; i < got.size(); ++i) m = std::max(m, std::fabs(got[i] - ref[i]));
  EXPECT_LE(m, 1e-3f);
}

TEST(Cli, TokenizePrintsJson) {
  G4_REQUIRE_SHARED();
  auto r = RunCommand(CliPath() + " tokenize -m " + Quote(g4::testing::SharedPath("tokenizer/gemma4-vocab.gguf")) +
                      " --text 'How are you doing?'");
  ASSERT_EQ(r.status, 0);
  EXPECT_EQ(json::parse(r.out), json::parse("[3910, 659, 611, 3490, 236881]"));
  r = RunCommand("printf '<bos>Hi' | " + CliPath() + " tokenize -m " +
                 Quote(g4::testing::SharedPath("tokenizer/gemma4-vocab.gguf")) + " --special");
  ASSERT_EQ(r.status, 0);
  EXPECT_EQ(json::parse(r.out)[0], 2);
}

TEST(Cli, CreateInfoGenerateRoundTrip) {
  const std::string dir = g4::testing::TempDir();
  for (const char* preset : {"tiny", "tiny-e2b", "tiny-moe", "tiny-gemma3"}) {
    const std::string path = dir + "/" + preset + ".gguf";
    auto r = RunCommand(CliPath() + " create --preset " + preset + " --type Q8_0 -o " + Quote(path) + " 2>&1");
    ASSERT_EQ(r.status, 0) << r.out;
    r = RunCommand(CliPath() + " info " + Quote(path) + " --json --ctx 1000");
    ASSERT_EQ(r.status, 0) << r.out;
    const json j = json::parse(r.out);
    EXPECT_EQ(j["memory"]["ctx"], 1000);
    EXPECT_GT(j["memory"]["weights_bytes"].get<uint64_t>(), 0u);
    EXPECT_TRUE(j["tensor_types"].contains("q8_0")) << preset;
    r = RunCommand(CliPath() + " generate -m " + Quote(path) + " -p 'Hello' -n 8 --temp 0.7 --seed 3 --ids 2>/dev/null");
    ASSERT_EQ(r.status, 0) << preset;
    auto r2 = RunCommand(CliPath() + " generate -m " + Quote(path) + " -p 'Hello' -n 8 --temp 0.7 --seed 3 --ids 2>/dev/null");
    EXPECT_EQ(r.out, r2.out) << "same seed, same tokens";
  }
}

// A bad input gives exit status 1 and one message that names what is wrong; never a crash.
void ExpectError(const std::string& args, const std::string& needle) {
  auto r = RunCommand(CliPath() + " " + args + " 2>&1");
  EXPECT_EQ(r.status, 1) << args << "\n" << r.out;
  EXPECT_NE(r.out.find(needle), std::string::npos) << args << "\n" << r.out;
}

TEST(Cli, BadInputGivesClearErrors) {
  const std::string dir = g4::testing::TempDir();
  ExpectError("info " + dir + "/missing.gguf", "missing.gguf: cannot open");
  g4::testing::WriteBytes(dir + "/bad.gguf", "GGML is not a GGUF file");
  ExpectError("info " + dir + "/bad.gguf", "bad.gguf: not a GGUF file: bad magic");
  const std::string tiny = dir + "/tiny.gguf";
  ASSERT_EQ(RunCommand(CliPath() + " create --preset tiny -o " + tiny + " 2>&1").status, 0);
  const std::string bytes = g4::testing::ReadText(tiny);
  g4::testing::WriteBytes(dir + "/cut.gguf", bytes.substr(0, bytes.size() / 2));
  ExpectError("info " + dir + "/cut.gguf", "extends past the end of the file");
  ExpectError("generate -m " + tiny + " --tokens 1,x,3", "--tokens: element 1 ('x') is not a token id");
  ExpectError("generate -m " + tiny + " --tokens 1,99999", "out of range");
  ExpectError("generate -m " + tiny, "give exactly one of -p/--prompt and --tokens");
  ExpectError("create --preset nope -o " + dir + "/x.gguf", "unknown preset 'nope'");
  ExpectError("create --preset tiny --type Q9 -o " + dir + "/x.gguf", "unknown file type 'Q9'");
  ExpectError("generate -m " + tiny + " -p hi --cache-type-k q7", "unknown cache type 'q7'");
  ExpectError("generate -m " + tiny + " -p hi -c 2 -n 10", "context");
}

// gemma4 serve checks its drafting flags and the draft file before it serves anything.
TEST(Cli, ServeBadDraftIsAClearError) {
  G4_REQUIRE_SHARED();
  const std::string target = Golden("g4u-tiny/g4u-tiny.f32.gguf");
  const std::string serve = "serve -m " + target + " --port 0 --no-log -t 1 ";
  ExpectError(serve + "--draft-mode ngram --draft " + target, "--draft-mode ngram drafts from the context itself");
  ExpectError(serve + "--draft-mode assistant", "--draft-mode assistant needs --draft FILE");
  ExpectError(serve + "--draft-mode assistant --draft " + Golden("g4-e2b-tiny/g4-e2b-tiny.f32.gguf"),
              "not a Gemma 4 assistant");
  ExpectError(serve + "--draft " + Golden("g4u-assistant-tiny/g4u-assistant-tiny.f32.gguf") + " --draft-mode model",
              "is an MTP assistant");
  ExpectError(serve + "--draft /nonexistent/d.gguf", "/nonexistent/d.gguf");
}

TEST(Cli, BenchJsonHasLlamaBenchFields) {
  const std::string tiny = g4::testing::TempDir() + "/tiny.gguf";
  ASSERT_EQ(RunCommand(CliPath() + " create --preset tiny -o " + tiny + " 2>&1").status, 0);
  auto r = RunCommand(CliPath() + " bench -m " + tiny + " -p 32 -n 8 -r 2 --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const json j = json::parse(r.out);
  ASSERT_EQ(j.size(), 2u);
  for (const auto& e : j) {
    for (const char* k : {"n_prompt", "n_gen", "n_threads", "avg_ts", "stddev_ts"}) EXPECT_TRUE(e.contains(k)) << k;
    EXPECT_GT(e["avg_ts"].get<double>(), 0);
    // Generation's roofline divides by the bandwidth read over the packed weights during the test.
    if (e["n_gen"].get<int>() > 0) {
      EXPECT_GT(e["test_read_bytes_per_s"].get<double>(), 0) << e.dump();
      EXPECT_GT(e["roofline_fraction"].get<double>(), 0) << e.dump();
      EXPECT_EQ(e["test_read_of"], "packed weights during the test") << e.dump();
    }
  }
}

TEST(Cli, BenchRunsEachTestAtEachDepth) {
  const std::string tiny = g4::testing::TempDir() + "/tiny.gguf";
  ASSERT_EQ(RunCommand(CliPath() + " create --preset tiny -o " + tiny + " 2>&1").status, 0);
  // Runs bench with `args` and the depth fill; every result has a positive speed.
  auto bench = [&](const std::string& args, const char* fill) {
    auto r = RunCommand(CliPath() + " bench -m " + tiny + args + " -r 2 --no-bandwidth --json --depth-fill " + fill);
    EXPECT_EQ(r.status, 0) << r.out;
    const json j = r.status == 0 ? json::parse(r.out) : json::array();
    for (const auto& e : j) EXPECT_GT(e["avg_ts"].get<double>(), 0) << args << " " << fill;
    return j;
  };
  for (const char* fill : {"compute", "synthetic"}) {
    // Depth 300 is beyond the tiny model's 32-token window, so the sliding ring wraps before the tests.
    const json j = bench(" -p 16 -n 4 -d 0,300", fill);
    ASSERT_EQ(j.size(), 4u) << fill;
    EXPECT_EQ(j[0]["test"], "pp16");
    EXPECT_EQ(j[1]["test"], "tg4");
    EXPECT_EQ(j[2]["test"], "pp16 @ d300");
    EXPECT_EQ(j[3]["test"], "tg4 @ d300");
    EXPECT_EQ(j[3]["n_depth"], 300);
    EXPECT_EQ(j[3]["depth_fill"], fill);
    // A test longer than the sliding ring's slack (512 positions beyond the 32-token window): the
    // bench keeps the engine's ring, so a synthetic depth is filled again between repetitions
    // instead of rolled back; a computed depth gets a ring that holds the whole test.
    const json long_test = bench(" -p 700 -n 0 -d 0,40", fill);
    ASSERT_EQ(long_test.size(), 2u) << fill;
    EXPECT_EQ(long_test[1]["test"], "pp700 @ d40");
  }
  const auto bad = RunCommand(CliPath() + " bench -m " + tiny + " -p 16 -n 0 -d 8 --depth-fill magic 2>&1");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.out.find("--depth-fill"), std::string::npos) << bad.out;
  const auto negative = RunCommand(CliPath() + " bench -m " + tiny + " -p 16 -n 0 -d 8,-5 --no-bandwidth 2>&1");
  EXPECT_NE(negative.status, 0);
  EXPECT_NE(negative.out.find("-d: element 1 ('-5')"), std::string::npos) << negative.out;
  // The tiny preset's context is 8192 positions.
  const auto deep = RunCommand(CliPath() + " bench -m " + tiny + " -p 16 -n 0 -d 9000 --no-bandwidth 2>&1");
  EXPECT_NE(deep.status, 0);
  EXPECT_NE(deep.out.find("more than the model's context of 8192"), std::string::npos) << deep.out;
}

}  // namespace
}  // namespace g4
