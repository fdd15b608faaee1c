// `gemma4 run` driven as a user drives it: through a terminal (tmux send-keys / capture-pane),
// including Ctrl-C in the middle of an answer; and in pipelines (prompt argument, piped stdin).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "terminal.h"
#include "testutil.h"

namespace g4 {
namespace {

using g4::testing::CliPath;
using g4::testing::HaveTmux;
using g4::testing::Terminal;
using g4::testing::RunCommand;

TEST(Run, InteractiveSessionWithCtrlC) {
  G4_REQUIRE_SHARED();
  if (!HaveTmux()) GTEST_SKIP() << "tmux is not installed (scripts/install-deps.sh installs it)";
  // Only Ctrl-C may end the two answers below: from a fresh conversation the golden tiny model's
  // greedy answer to "Hi" runs past 4,000 tokens and its answer to "one\ntwo" past 2,000 (about
  // 3 s at -t 1 on an idle development machine), far beyond the 1.5 s and 1 s before the Ctrl-C.
  // Both start from a fresh conversation, so what the model writes does not depend on how far an
  // earlier, interrupted answer got (that depends on the machine's speed).
  const std::string model = g4::testing::SharedPath("golden/g4u-tiny/g4u-tiny.f32.gguf");
  const std::string dir = g4::testing::TempDir();
  Terminal t(CliPath() + " run -m " + model + " --temp 0 -t 1");
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(t.WaitFor(">>>")) << t.Screen();
  t.Line("Hi");
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  t.Keys("C-c");
  ASSERT_TRUE(t.WaitFor("[stopped]")) << t.Screen();
  ASSERT_TRUE(t.WaitFor(">>>", 2)) << t.Screen();
  t.Line("/stats");
  ASSERT_TRUE(t.WaitFor("context: ")) << t.Screen();
  t.Line("/save " + dir + "/conv.json");
  ASSERT_TRUE(t.WaitFor("saved 2 messages")) << t.Screen();
  t.Line("/clear");
  ASSERT_TRUE(t.WaitFor("conversation cleared")) << t.Screen();
  // Multi-line input, then stop that answer too.
  t.Line("\"\"\"one");
  t.Line("two\"\"\"");
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  t.Keys("C-c");
  ASSERT_TRUE(t.WaitFor("[stopped]", 2)) << t.Screen();
  t.Line("/think on");
  ASSERT_TRUE(t.WaitFor("thinking on")) << t.Screen();
  t.Line("/load " + dir + "/conv.json");
  ASSERT_TRUE(t.WaitFor("loaded 2 messages")) << t.Screen();
  t.Line("/nonsense");
  ASSERT_TRUE(t.WaitFor("unknown command /nonsense")) << t.Screen();
  t.Keys("C-d");
  ASSERT_TRUE(t.WaitFor("EXIT=0")) << t.Screen();
  const auto saved = nlohmann::json::parse(g4::testing::ReadText(dir + "/conv.json"));
  ASSERT_EQ(saved.size(), 2u);
  EXPECT_EQ(saved[0]["role"], "user");
  EXPECT_EQ(saved[0]["content"], "Hi");
  EXPECT_EQ(saved[1]["role"], "assistant");
}

TEST(Run, OneShotPrintsOnlyTheAnswer) {
  G4_REQUIRE_SHARED();
  const std::string model = g4::testing::SharedPath("golden/g4u-tiny/g4u-tiny.f32.gguf");
  auto a = RunCommand(CliPath() + " run -m " + model + " 'Hello there' -n 12 --temp 0 2>/dev/null");
  ASSERT_EQ(a.status, 0);
  auto b = RunCommand("printf 'Hello there' | " + CliPath() + " run -m " + model + " -n 12 --temp 0 2>/dev/null");
  ASSERT_EQ(b.status, 0);
  EXPECT_EQ(a.out, b.out);
  EXPECT_FALSE(a.out.empty());
  EXPECT_EQ(a.out.find(">>>"), std::string::npos);  // no banner, no prompt: composes in pipelines
}

TEST(Run, BadToolsFileIsAClearError) {
  G4_REQUIRE_SHARED();
  const std::string model = g4::testing::SharedPath("golden/g4u-tiny/g4u-tiny.f32.gguf");
  const std::string dir = g4::testing::TempDir();
  g4::testing::WriteBytes(dir + "/tools.json", "[{\"type\":\"function\",\"function\":{\"description\":\"x\"}}]");
  auto r = RunCommand(CliPath() + " run -m " + model + " hi --tools " + dir + "/tools.json 2>&1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("tools[0]"), std::string::npos) << r.out;
  g4::testing::WriteBytes(dir + "/bad.json", "[{");
  r = RunCommand(CliPath() + " run -m " + model + " hi --tools " + dir + "/bad.json 2>&1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("not valid JSON"), std::string::npos) << r.out;
}

// --context-overflow: error names how many tokens are over; drop-oldest drops whole earlier turns,
// keeping the system prompt, and says so; the newest turn alone over the context is still an error.
TEST(Run, ContextOverflowErrorSaysHowManyTokensAreOver) {
  G4_REQUIRE_SHARED();
  const std::string model = g4::testing::SharedPath("golden/g4u-tiny/g4u-tiny.f32.gguf");
  std::string text;
  for (int i = 0; i < 12; ++i) text += "abcdefghij";
  const std::string base = CliPath() + " run -m " + model + " -c 64 -n 2 --temp 0 -t 1 '" + text + "'";
  auto r = RunCommand(base + " 2>&1");
  EXPECT_EQ(r.status, 1);
  long long total = 0, over = 0;
  const size_t at = r.out.find("the conversation is ");
  ASSERT_NE(at, std::string::npos) << r.out;
  ASSERT_EQ(std::sscanf(r.out.c_str() + at, "the conversation is %lld tokens, %lld over the context's 63", &total, &over), 2)
      << r.out;
  EXPECT_EQ(total - over, 63);
  EXPECT_GT(over, 0);
  r = RunCommand(base + " --context-overflow drop-oldest 2>&1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("the newest turn alone is " + std::to_string(total) + " tokens"), std::string::npos) << r.out;
  r = RunCommand(base + " --context-overflow truncate 2>&1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("--context-overflow: unknown policy 'truncate' (error, drop-oldest)"), std::string::npos) << r.out;
}

TEST(Run, ContextOverflowDropOldestKeepsTheSystemPrompt) {
  G4_REQUIRE_SHARED();
  if (!HaveTmux()) GTEST_SKIP() << "tmux is not installed (scripts/install-deps.sh installs it)";
  const std::string model = g4::testing::SharedPath("golden/g4u-tiny/g4u-tiny.f32.gguf");
  const std::string dir = g4::testing::TempDir();
  std::string text;
  for (int i = 0; i < 6; ++i) text += "abcdefghij";
  const nlohmann::json conv = nlohmann::json::array({{{"role", "user"}, {"content", text}},
                                                     {{"role", "assistant"}, {"content", text}},
                                                     {{"role", "user"}, {"content", "second"}},
                                                     {{"role", "assistant"}, {"content", "ok"}}});
  g4::testing::WriteBytes(dir + "/conv.json", conv.dump());
  Terminal t(CliPath() + " run -m " + model + " -c 96 -n 3 --temp 0 -t 1 --system Brief --context-overflow drop-oldest");
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(t.WaitFor(">>>")) << t.Screen();
  t.Line("/load " + dir + "/conv.json");
  ASSERT_TRUE(t.WaitFor("loaded 4 messages")) << t.Screen();
  t.Line("third");
  ASSERT_TRUE(t.WaitFor("[context: dropped the 1 oldest turn(s) (2 messages) to fit the context of 96 tokens")) << t.Screen();
  ASSERT_TRUE(t.WaitFor(">>>", 3)) << t.Screen();
  t.Line("/save " + dir + "/after.json");
  ASSERT_TRUE(t.WaitFor("saved 4 messages")) << t.Screen();
  t.Keys("C-d");
  ASSERT_TRUE(t.WaitFor("EXIT=0")) << t.Screen();
  const auto saved = nlohmann::json::parse(g4::testing::ReadText(dir + "/after.json"));
  ASSERT_EQ(saved.size(), 4u);
  EXPECT_EQ(saved[0]["content"], "second");  // the first turn went whole; the system prompt is not a message
  EXPECT_EQ(saved[2]["content"], "third");
}

// Speculative decoding in `gemma4 run`: a one-shot answer prints exactly the same with each kind of
// drafting (the trained default model with its trained assistant, a quantized copy of it as a draft
// model, prompt n-grams), and --draft-stats reports the acceptance on stderr only.
TEST(Run, DraftingPrintsExactlyWhatPlainDecodingPrints) {
  const std::string models = std::string(GEMMA4_SOURCE_DIR) + "/models/";
  const std::string base = CliPath() + " run -m " + models + "gemma4-tiny-chat.gguf -n 64 --temp 0 -t 1 " +
                           "'Write a short poem about the sea.'";
  const auto plain = RunCommand(base + " 2>/dev/null");
  ASSERT_EQ(plain.status, 0);
  ASSERT_FALSE(plain.out.empty());
  for (const std::string& flags : {"--draft " + models + "gemma4-tiny-chat-assistant.gguf",
                                   "--draft " + models + "gemma4-tiny-chat.q8_0.gguf --draft-mode model",
                                   std::string("--draft-mode ngram --draft-max 3")}) {
    const auto r = RunCommand(base + " " + flags + " 2>/dev/null");
    ASSERT_EQ(r.status, 0) << flags;
    EXPECT_EQ(r.out, plain.out) << flags;
  }
  const auto stats = RunCommand(base + " --draft " + models + "gemma4-tiny-chat-assistant.gguf --draft-stats 2>&1 >/dev/null");
  ASSERT_EQ(stats.status, 0);
  EXPECT_NE(stats.out.find("drafting (assistant), answer: "), std::string::npos) << stats.out;
  EXPECT_NE(stats.out.find("tokens per target forward"), std::string::npos) << stats.out;
}

TEST(Run, BadDraftFlagsAreClearErrors) {
  const std::string models = std::string(GEMMA4_SOURCE_DIR) + "/models/";
  const std::string run = CliPath() + " run -m " + models + "gemma4-tiny-chat.gguf hi ";
  const std::string assistant = models + "gemma4-tiny-chat-assistant.gguf";
  struct Case {
    std::string flags, message;
  };
  for (const Case& c : std::vector<Case>{
           {"--draft-mode ngram --draft " + assistant, "--draft-mode ngram drafts from the context itself"},
           {"--draft-mode magic", "--draft-mode: unknown mode 'magic'"},
           {"--draft-mode model", "--draft-mode model needs --draft FILE"},
           {"--draft /nonexistent/draft.gguf", "/nonexistent/draft.gguf"},
           {"--draft " + assistant + " --draft-mode model", "is an MTP assistant"},
           {"--draft " + models + "gemma4-tiny-chat.q8_0.gguf --draft-mode assistant", "not a Gemma 4 assistant"},
           {"--draft-mode ngram --draft-max 0", "--draft-max"}}) {
    const auto r = RunCommand(run + c.flags + " 2>&1");
    EXPECT_NE(r.status, 0) << c.flags << ": " << r.out;
    EXPECT_NE(r.out.find(c.message), std::string::npos) << c.flags << ": " << r.out;
  }
}

}  // namespace
}  // namespace g4
