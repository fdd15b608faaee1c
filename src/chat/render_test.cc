// The native renderers against the official templates rendered by Jinja (Debian's python3-jinja2 in
// the environment transformers builds), byte for byte, over a large generated set of conversations;
// plus the errors the renderer reports on bad input.
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <string>

#include "chat/render.h"
#include "chat/render_test_cases.h"
#include "testutil.h"
#include "util/error.h"

namespace g4::chat {
namespace {

const char* kPython = "/usr/bin/python3";

// python3-jinja2 is the reference; install it when we can (CI runs as root), skip otherwise.
bool EnsureJinja(std::string* why) {
  const std::string probe = std::string(kPython) + " -c 'import jinja2' >/dev/null 2>&1";
  if (std::system(probe.c_str()) == 0) return true;
  if (::geteuid() != 0) {
    *why = "python3-jinja2 is missing and this test is not root; install it with apt-get install python3-jinja2";
    return false;
  }
  std::system("apt-get install -y python3-jinja2 >/dev/null 2>&1 || "
              "(apt-get update >/dev/null 2>&1 && apt-get install -y python3-jinja2 >/dev/null 2>&1)");
  if (std::system(probe.c_str()) == 0) return true;
  *why = "python3-jinja2 could not be installed with apt-get";
  return false;
}

// Renders `cases` with render_reference.py; one {"ok", "text"|"error"} per case.
Json RenderWithJinja(const Json& cases) {
  const std::string dir = g4::testing::TempDir();
  Json spec = {
      {"templates",
       {{"gemma4", g4::testing::SharedPath("spec/templates/google-gemma-4-31B-it.jinja")},
        {"gemma4_interleaved", g4::testing::SharedPath("spec/templates/google-gemma-4-31B-it-interleaved.jinja")},
        {"gemma3", {{"tokenizer_config", g4::testing::SharedPath("tokenizer/gemma3-tokenizer_config.json")}}}}},
      {"cases", cases}};
  g4::testing::WriteBytes(dir + "/cases.json", spec.dump());
  const std::string cmd = std::string(kPython) + " " GEMMA4_SOURCE_DIR "/src/chat/testdata/render_reference.py " +
                          dir + "/cases.json " + dir + "/out.json 2>&1";
  const auto result = g4::testing::RunCommand(cmd);
  if (result.status != 0) throw std::runtime_error("render_reference.py failed: " + result.out);
  return Json::parse(g4::testing::ReadText(dir + "/out.json"));
}

std::string RenderCase(const Json& c, bool openai_compat) {
  RenderOptions o;
  o.add_generation_prompt = c.at("add_generation_prompt").get<bool>();
  o.enable_thinking = c.value("enable_thinking", false);
  o.bos_token = c.at("bos_token").get<std::string>();
  o.openai_compat = openai_compat;
  const std::string tmpl = c.at("template").get<std::string>();
  if (tmpl == "gemma4") return RenderGemma4(c.at("messages"), c.at("tools"), o);
  if (tmpl == "gemma4_interleaved") return RenderGemma4Interleaved(c.at("messages"), c.at("tools"), o);
  return RenderGemma3(c.at("messages"), o);
}

std::string Escaped(const std::string& s) { return Json(s).dump(); }

// Compares every case; returns {rendered, rejected} counts.
// Every template must see both outcomes at least min_rendered / min_rejected times for the comparison
// to mean something.
std::pair<int, int> CompareAll(const Json& cases, const Json& expected, bool openai_compat, const Json* inputs,
                               int min_rendered, int min_rejected) {
  int rendered = 0, rejected = 0, failures = 0;
  std::map<std::string, std::pair<int, int>> per_template;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Json& input = inputs != nullptr ? (*inputs)[i] : cases[i];
    const Json& want = expected[i];
    auto& counts = per_template[input["template"].get<std::string>()];
    ++(want["ok"].get<bool>() ? counts.first : counts.second);
    std::string got, error;
    try {
      got = RenderCase(input, openai_compat);
    } catch (const g4::Error& e) {
      error = e.what();
    }
    const std::string where = "case " + std::to_string(i) + ": " + input.dump(-1, ' ', true).substr(0, 3000);
    if (want["ok"].get<bool>()) {
      ++rendered;
      if (!error.empty()) {
        ADD_FAILURE() << where << "\n  jinja rendered it, C++ failed: " << error;
      } else if (got != want["text"].get<std::string>()) {
        ADD_FAILURE() << where << "\n  jinja: " << Escaped(want["text"]) << "\n  c++:   " << Escaped(got);
      } else {
        continue;
      }
    } else {
      ++rejected;
      if (!error.empty()) continue;
      ADD_FAILURE() << where << "\n  jinja failed (" << want["error"].get<std::string>()
                    << ") but C++ rendered: " << Escaped(got);
    }
    if (++failures >= 15) {
      ADD_FAILURE() << "stopping after 15 mismatches";
      break;
    }
  }
  for (const auto& [name, counts] : per_template) {
    std::printf("[ %-18s %4d rendered, %4d rejected by the template ]\n", name.c_str(), counts.first, counts.second);
    EXPECT_GE(counts.first, min_rendered) << name;
    EXPECT_GE(counts.second, min_rejected) << name;
  }
  return {rendered, rejected};
}

class RenderReferenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    G4_REQUIRE_SHARED();
    std::string why;
    if (!EnsureJinja(&why)) GTEST_SKIP() << why;
  }
};

TEST_F(RenderReferenceTest, GeneratedConversationsMatchJinjaByteForByte) {
  const Json cases = testing::GenerateRenderCases();
  ASSERT_GE(cases.size(), 1000u);
  const Json expected = RenderWithJinja(cases);
  ASSERT_EQ(expected.size(), cases.size());
  const auto [rendered, rejected] = CompareAll(cases, expected, /*openai_compat=*/false, nullptr, 300, 10);
  // Both outcomes must be well represented for the comparison to mean something.
  EXPECT_GE(rendered, 1000);
  EXPECT_GE(rejected, 50);
  std::printf("[ compared %zu conversations: %d rendered, %d rejected by the template ]\n", cases.size(),
              rendered, rejected);
}

// With openai_compat the renderer equals the template applied to NormalizeOpenAI's output.
TEST_F(RenderReferenceTest, OpenAICompatEqualsJinjaOnNormalizedMessages) {
  Json cases = testing::GenerateRenderCases();
  Json normalized = Json::array();
  Json originals = Json::array();
  for (size_t i = 0; i < cases.size(); i += 3) {
    Json c = cases[i];
    // Add the OpenAI-only shapes: image_url / input_audio parts and JSON-string arguments.
    for (Json& m : c["messages"]) {
      if (m.contains("content") && m["content"].is_array()) {
        for (Json& part : m["content"]) {
          if (part.is_object() && part.value("type", "") == "image") part = {{"type", "image_url"}, {"image_url", {{"url", "x"}}}};
          if (part.is_object() && part.value("type", "") == "audio") part = {{"type", "input_audio"}, {"input_audio", {{"data", "x"}}}};
        }
      }
      if (m.contains("tool_calls") && m["tool_calls"].is_array()) {
        for (Json& call : m["tool_calls"]) {
          Json& args = call["function"]["arguments"];
          if (args.is_object()) args = args.dump();
        }
      }
    }
    Json n = c;
    try {
      n["messages"] = NormalizeOpenAI(c["messages"]);
    } catch (const g4::Error&) {
      continue;  // a system message with media parts: covered by NormalizeRejects* below
    }
    originals.push_back(c);
    normalized.push_back(n);
  }
  ASSERT_GE(originals.size(), 300u);
  const Json expected = RenderWithJinja(normalized);
  const auto [rendered, rejected] = CompareAll(normalized, expected, /*openai_compat=*/true, &originals, 80, 1);
  EXPECT_GE(rendered, 300);
  (void)rejected;
}

// ---- Known outputs (from GEMMA4.md §3 and §2) ----

TEST(RenderGemma4, ToolRoundTripMatchesTheDocumentedLayout) {
  const Json messages = Json::parse(R"([
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "Weather in Tokyo?"},
    {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
      "function": {"name": "get_weather", "arguments": "{\"city\": \"Tokyo\", \"days\": 3}"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": {"temperature": 22, "unit": "C"}}
  ])");
  const Json tools = Json::parse(R"([{"type": "function", "function": {"name": "get_weather",
    "description": "Get the weather", "parameters": {"type": "object", "properties": {
      "city": {"type": "string", "description": "City"}}, "required": ["city"]}}}])");
  // The object content of the tool message is only renderable via tool_responses; use a string here.
  Json m = messages;
  m[3]["content"] = "22 C";
  EXPECT_EQ(RenderGemma4(m, tools),
            "<bos><|turn>system\nYou are helpful."
            "<|tool>declaration:get_weather{description:<|\"|>Get the weather<|\"|>,parameters:{properties:{"
            "city:{description:<|\"|>City<|\"|>,type:<|\"|>STRING<|\"|>}},required:[<|\"|>city<|\"|>],"
            "type:<|\"|>OBJECT<|\"|>}}<tool|><turn|>\n"
            "<|turn>user\nWeather in Tokyo?<turn|>\n"
            "<|turn>model\n<|tool_call>call:get_weather{city:<|\"|>Tokyo<|\"|>,days:3}<tool_call|>"
            "<|tool_response>response:get_weather{value:<|\"|>22 C<|\"|>}<tool_response|>");
}

TEST(RenderGemma4, ThinkingOnAndOff) {
  const Json messages = Json::parse(R"([{"role": "user", "content": " Hi "}])");
  RenderOptions on;
  on.enable_thinking = true;
  EXPECT_EQ(RenderGemma4(messages, nullptr, on), "<bos><|turn>system\n<|think|>\n<turn|>\n<|turn>user\nHi<turn|>\n<|turn>model\n");
  EXPECT_EQ(RenderGemma4(messages, nullptr), "<bos><|turn>user\nHi<turn|>\n<|turn>model\n<|channel>thought\n<channel|>");
  RenderOptions no_prompt;
  no_prompt.add_generation_prompt = false;
  no_prompt.bos_token = "";
  EXPECT_EQ(RenderGemma4(messages, nullptr, no_prompt), "<|turn>user\nHi<turn|>\n");
}

TEST(RenderGemma4, EarlierThinkingIsStripped) {
  const Json messages = Json::parse(R"([
    {"role": "user", "content": "a"},
    {"role": "assistant", "content": "<|channel>thought\nhmm<channel|>The answer.", "reasoning_content": "dropped"},
    {"role": "user", "content": "b"}])");
  EXPECT_EQ(RenderGemma4(messages, nullptr),
            "<bos><|turn>user\na<turn|>\n<|turn>model\nThe answer.<turn|>\n<|turn>user\nb<turn|>\n"
            "<|turn>model\n<|channel>thought\n<channel|>");
}

TEST(RenderGemma3, SystemPrefixAndImage) {
  const Json messages = Json::parse(R"([
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": " What is it? "}]},
    {"role": "assistant", "content": " A cat. "}, {"role": "user", "content": "Sure?"}])");
  EXPECT_EQ(RenderGemma3(messages),
            "<bos><start_of_turn>user\nBe brief.\n\n<start_of_image>What is it?<end_of_turn>\n"
            "<start_of_turn>model\nA cat.<end_of_turn>\n<start_of_turn>user\nSure?<end_of_turn>\n"
            "<start_of_turn>model\n");
}

// ---- Errors name the element ----

std::string ErrorOf(ChatFormat format, const std::string& messages, const std::string& tools = "") {
  try {
    RenderFromJsonText(format, messages, tools);
  } catch (const g4::Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(RenderErrors, NameTheElement) {
  const auto g4f = ChatFormat::kGemma4;
  EXPECT_NE(ErrorOf(g4f, "[{\"role\": \"user\", ").find("messages: not valid JSON"), std::string::npos);
  EXPECT_EQ(ErrorOf(g4f, "{\"role\": \"user\"}"), "messages: expected an array, or an object with a \"messages\" array");
  EXPECT_EQ(ErrorOf(g4f, "[]"), "messages: the conversation is empty");
  EXPECT_EQ(ErrorOf(g4f, "[\"hi\"]"), "messages[0]: must be an object");
  EXPECT_EQ(ErrorOf(g4f, "[{\"content\": \"x\"}]"), "messages[0]: missing role");
  EXPECT_EQ(ErrorOf(g4f, R"([{"role":"user","content":"a"},{"role":"user"},{"role":"user"},{"role":"robot"}])"),
            "messages[3].role: unknown role 'robot' (expected system, developer, user, assistant or tool)");
  const std::string user = R"([{"role":"user","content":"a"}])";
  EXPECT_EQ(ErrorOf(g4f, user, R"([{"type":"function","function":{"name":"a"}},{"type":"function","function":{"description":"x"}}])"),
            "tools[1]: missing function name");
  EXPECT_EQ(ErrorOf(g4f, user, R"([{"type":"function","function":{"name":"a","parameters":"oops"}}])"),
            "tools[0].function.parameters: must be an object");
  EXPECT_EQ(ErrorOf(g4f, user, R"([{"name":"a"}])"),
            "tools[0]: missing function (expected {\"type\": \"function\", \"function\": {...}})");
  EXPECT_EQ(ErrorOf(g4f, user, R"({"name":"a"})"), "tools: must be an array of tool objects");
  EXPECT_NE(ErrorOf(g4f, user, "[").find("tools: not valid JSON"), std::string::npos);
  EXPECT_EQ(ErrorOf(g4f, R"([{"role":"user","content":"a"},{"role":"assistant","tool_calls":[{"function":{"arguments":{}}}]}])"),
            "messages[1].tool_calls[0].function.name: missing");
  // (A call without an id does answer a tool message without a tool_call_id: None == None.)
  EXPECT_EQ(ErrorOf(g4f, R"([{"role":"user","content":"a"},{"role":"assistant","tool_calls":[{"id":"a","function":{"name":"f"}}]},
                             {"role":"tool","tool_call_id":"b","content":"r"}])"),
            "messages[2]: the tool response has no function name: give it a \"name\" or a \"tool_call_id\" that "
            "matches the id of one of the calls");
  EXPECT_EQ(ErrorOf(ChatFormat::kGemma3, R"([{"role":"user","content":"a"},{"role":"user","content":"b"}])"),
            "messages[1].role: Gemma 3 conversations must alternate user/assistant/user/assistant/... (after an "
            "optional first system message); expected a non-user role here, got 'user'");
  EXPECT_EQ(ErrorOf(ChatFormat::kGemma3, R"([{"role":"system","content":"s"},{"role":"assistant","content":"b"}])"),
            "messages[1].role: Gemma 3 conversations must alternate user/assistant/user/assistant/... (after an "
            "optional first system message); expected user here, got 'assistant'");
  EXPECT_EQ(ErrorOf(ChatFormat::kGemma3, user, R"([{"type":"function","function":{"name":"a"}}])"),
            "tools: the Gemma 3 chat format has no tool calling");
  EXPECT_EQ(ErrorOf(g4f, R"([{"role":"system","content":[{"type":"image_url"}]},{"role":"user","content":"a"}])"),
            "messages[0].content[0]: a system message can only hold text parts");
}

TEST(RenderFromJsonText, AcceptsAWholeRequestObject) {
  const std::string request = R"({"messages": [{"role": "user", "content": "hi"}],
    "tools": [{"type": "function", "function": {"name": "f"}}]})";
  EXPECT_EQ(RenderFromJsonText(ChatFormat::kGemma4, request, ""),
            "<bos><|turn>system\n<|tool>declaration:f{description:<|\"|><|\"|>}<tool|><turn|>\n"
            "<|turn>user\nhi<turn|>\n<|turn>model\n<|channel>thought\n<channel|>");
}

TEST(RenderGemma4, AcceptsPlainNlohmannJson) {
  // nlohmann::json converts to the ordered Json the renderer takes (keys then compare bytewise,
  // which only matters for keys that differ in case alone).
  const nlohmann::json messages = nlohmann::json::parse(R"([{"role": "user", "content": "hi"}])");
  EXPECT_EQ(RenderGemma4(messages, nullptr), "<bos><|turn>user\nhi<turn|>\n<|turn>model\n<|channel>thought\n<channel|>");
  EXPECT_EQ(Render(ChatFormat::kGemma3, messages, nullptr), "<bos><start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n");
}

TEST(ChatFormat, NamesAndDetection) {
  EXPECT_EQ(ParseChatFormat("gemma4"), ChatFormat::kGemma4);
  EXPECT_EQ(ParseChatFormat("gemma4_unified"), ChatFormat::kGemma4);
  EXPECT_EQ(ParseChatFormat("gemma4-interleaved"), ChatFormat::kGemma4Interleaved);
  EXPECT_EQ(ParseChatFormat("gemma3"), ChatFormat::kGemma3);
  EXPECT_THROW(ParseChatFormat("llama"), g4::Error);
  G4_REQUIRE_SHARED();
  ChatFormat f;
  ASSERT_TRUE(DetectChatFormat(g4::testing::ReadText(g4::testing::SharedPath("spec/templates/google-gemma-4-31B-it.jinja")), &f));
  EXPECT_EQ(f, ChatFormat::kGemma4);
  ASSERT_TRUE(DetectChatFormat(
      g4::testing::ReadText(g4::testing::SharedPath("spec/templates/google-gemma-4-31B-it-interleaved.jinja")), &f));
  EXPECT_EQ(f, ChatFormat::kGemma4Interleaved);
  const Json config = Json::parse(g4::testing::ReadText(g4::testing::SharedPath("tokenizer/gemma3-tokenizer_config.json")));
  ASSERT_TRUE(DetectChatFormat(config["chat_template"].get<std::string>(), &f));
  EXPECT_EQ(f, ChatFormat::kGemma3);
  EXPECT_FALSE(DetectChatFormat("{{ messages }}<|im_start|>", &f));
}

TEST(NormalizeOpenAI, ConvertsOnlyOpenAIShapes) {
  const Json in = Json::parse(R"([
    {"role": "system", "content": [{"type": "text", "text": " a "}, {"type": "text", "text": "b"}]},
    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}, {"type": "input_audio"}, {"type": "text", "text": "t"}]},
    {"role": "assistant", "thinking": "th", "tool_calls": [
      {"function": {"name": "f", "arguments": "{\"x\": 1}"}},
      {"function": {"name": "g", "arguments": "not json"}},
      {"function": {"name": "h", "arguments": "[1]"}}]}])");
  const Json out = NormalizeOpenAI(in);
  EXPECT_EQ(out[0]["content"], "ab");
  EXPECT_EQ(out[1]["content"][0], Json::parse(R"({"type": "image", "image_url": {"url": "u"}})"));
  EXPECT_EQ(out[1]["content"][1]["type"], "audio");
  EXPECT_EQ(out[1]["content"][2], in[1]["content"][2]);
  EXPECT_EQ(out[2]["reasoning_content"], "th");
  EXPECT_EQ(out[2]["tool_calls"][0]["function"]["arguments"], Json::parse(R"({"x": 1})"));
  EXPECT_EQ(out[2]["tool_calls"][1]["function"]["arguments"], "not json");
  EXPECT_EQ(out[2]["tool_calls"][2]["function"]["arguments"], "[1]");
  // Already in the template's shapes: unchanged.
  const Json plain = Json::parse(R"([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "x"}]}])");
  EXPECT_EQ(NormalizeOpenAI(plain), plain);
}

}  // namespace
}  // namespace g4::chat
