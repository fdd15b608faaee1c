// Request parsing and validation (OpenAI and Ollama), the streaming framings, base64 / data: URIs,
// the constant-time key comparison and the Prometheus text. No model needed.
#include <gtest/gtest.h>

#include <sstream>

#include "server/http_util.h"
#include "server/metrics.h"
#include "server/request.h"

namespace g4::server {
namespace {

RequestLimits Limits() {
  RequestLimits l;
  l.max_tokens = 100;
  l.max_n = 4;
  return l;
}

// The ApiError a body causes: "status param: message".
std::string ChatError(const std::string& body) {
  try {
    ParseOpenAIChat(ParseBody(body), Limits());
  } catch (const ApiError& e) {
    return std::to_string(e.status()) + " " + e.param() + ": " + e.what();
  }
  return "ok";
}

TEST(OpenAIRequest, ValidChatRequest) {
  const GenRequest r = ParseOpenAIChat(ParseBody(R"({
    "model": "m", "stream": true, "stream_options": {"include_usage": true},
    "messages": [{"role": "developer", "content": "Be brief."},
                 {"role": "user", "content": [{"type": "text", "text": "Hi"},
                                              {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAEC"}}]},
                 {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\": 1}"}}]},
                 {"role": "tool", "tool_call_id": "c1", "content": "42"}],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "tool_choice": {"type": "function", "function": {"name": "f"}},
    "temperature": 0.5, "top_p": 0.9, "max_completion_tokens": 50, "stop": ["x", "y"], "seed": -1, "n": 2,
    "presence_penalty": 1, "frequency_penalty": -1, "logit_bias": {"17": -100, "3": 5},
    "logprobs": true, "top_logprobs": 3, "reasoning_effort": "high",
    "response_format": {"type": "text"}})"),
                                     Limits());
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[1]["content"][1], Json({{"type", "image"}}));
  ASSERT_EQ(r.media.size(), 1u);
  EXPECT_EQ(r.media[0].bytes, (std::vector<uint8_t>{0, 1, 2}));
  EXPECT_EQ(r.media[0].field, "messages[1].content[1].image_url");
  EXPECT_EQ(r.messages[2]["tool_calls"][0]["function"]["arguments"], Json({{"a", 1}}));
  EXPECT_EQ(r.tool_choice, GenRequest::ToolChoice::kNamed);
  EXPECT_EQ(r.tool_name, "f");
  EXPECT_EQ(*r.temperature, 0.5f);
  EXPECT_EQ(r.max_tokens, 50);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(*r.seed, ~uint64_t{0});
  EXPECT_EQ(r.n, 2);
  EXPECT_EQ(r.logit_bias.at(17), -100.0f);
  EXPECT_EQ(r.top_logprobs, 3);
  EXPECT_TRUE(*r.thinking);
}

TEST(OpenAIRequest, ErrorsNameTheField) {
  EXPECT_EQ(ChatError("{"), "400 : the request body is not valid JSON: [json.exception.parse_error.101] parse error at "
                            "line 1, column 2: syntax error while parsing object key - unexpected end of input; "
                            "expected string literal");
  EXPECT_EQ(ChatError("[1]"), "400 : the request body must be a JSON object");
  EXPECT_EQ(ChatError(R"({"messages": []})"), "400 messages: messages: the list is empty: at least one message is needed");
  EXPECT_EQ(ChatError(R"({})"), "400 messages: messages: missing (an array of messages)");
  EXPECT_EQ(ChatError(R"({"messages": [{"role": "robot", "content": "x"}]})"),
            "400 messages[0].role: messages[0].role: unknown role 'robot' (expected system, developer, user, assistant or tool)");
  EXPECT_EQ(ChatError(R"({"messages": [{"role": "user"}]})"), "400 messages[0].content: messages[0].content: missing");
  EXPECT_EQ(ChatError(R"({"messages": [{"role": "user", "content": 5}]})"),
            "400 messages[0].content: messages[0].content: must be a string, an array of content parts or null");
  EXPECT_EQ(ChatError(R"({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"})"),
            "400 temperature: temperature: must be a number, not string");
  EXPECT_EQ(ChatError(R"({"messages": [{"role": "user", "content": "x"}], "temperature": 3})"),
            "400 temperature: temperature: 3 is out of range (0 to 2)");
  EXPECT_EQ(ChatError(R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 101})"),
            "400 max_tokens: max_tokens: 101 is more than this server allows (100)");
  EXPECT_EQ(ChatError(R"({"messages": [{"role": "user", "content": "x"}], "n": 5})"), "400 n: n: 5 is out of range (1 to 4)");
  EXPECT_EQ(ChatError(R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2})"),
            "400 top_logprobs: top_logprobs: needs logprobs: true");
  EXPECT_EQ(ChatError(R"({"messages": [{"role": "user", "content": "x"}], "logit_bias": {"abc": 1}})"),
            "400 logit_bias: logit_bias: key 'abc' is not a token id");
  EXPECT_EQ(ChatError(R"({"messages": [{"role": "user", "content": "x"}], "tool_choice": "required"})"),
            "400 tool_choice: tool_choice: a tool must be called but the request has no tools");
  EXPECT_EQ(ChatError(R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function",
                          "function": {"name": "a b"}}]})"),
            "400 tools[0].function.name: tools[0].function.name: 'a b' must be 1 to 64 letters, digits, '_', '-' or '.'");
  EXPECT_EQ(ChatError(R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function",
                          "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "g"}}})"),
            "400 tool_choice.function.name: tool_choice.function.name: 'g' is not one of the tools (f)");
  EXPECT_EQ(ChatError(R"({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_schema",
                          "json_schema": {"name": "s", "schema": {"type": "object", "properties": {"a": {"pattern": "x"}}}}}})"),
            "400 response_format.json_schema.schema.properties.a.pattern: response_format.json_schema.schema.properties.a."
            "pattern: this keyword is not supported for constrained output (supported: type, enum, const, properties, "
            "required, additionalProperties, items, minItems, maxItems, minLength, maxLength, minimum, maximum, "
            "exclusiveMinimum, exclusiveMaximum, anyOf, oneOf, $ref)");
  EXPECT_EQ(ChatError(R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}]})"),
            "400 messages[0].content[0].image_url.url: messages[0].content[0].image_url.url: only data: URIs are accepted "
            "(e.g. data:image/png;base64,...); the server does not fetch URLs or read files");
  EXPECT_EQ(ChatError(R"({"messages": [{"role": "user", "content": [{"type": "video", "text": "x"}]}]})"),
            "400 messages[0].content[0].type: messages[0].content[0].type: unknown content part type 'video' (expected "
            "text, image_url or input_audio)");
}

TEST(OpenAIRequest, ToolCallIdsMustMatch) {
  const std::string calls = R"({"role": "assistant", "content": "", "tool_calls": [
      {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
      {"id": "b", "type": "function", "function": {"name": "g", "arguments": {}}}]})";
  auto body = [&](const std::string& tail) {
    return std::string(R"({"messages": [{"role": "user", "content": "x"}, )") + calls + ", " + tail + "]}";
  };
  EXPECT_EQ(ChatError(body(R"({"role": "tool", "tool_call_id": "b", "content": "1"}, {"role": "tool", "tool_call_id": "a", "content": "2"})")), "ok");
  EXPECT_EQ(ChatError(body(R"({"role": "tool", "tool_call_id": "c", "content": "1"})")),
            "400 messages[2].tool_call_id: messages[2].tool_call_id: 'c' does not match a tool call of the assistant "
            "message before it (messages[1] made a, b)");
  EXPECT_EQ(ChatError(body(R"({"role": "tool", "content": "1"})")),
            "400 messages[2].tool_call_id: messages[2].tool_call_id: missing: a tool message answers a tool call by its id");
  EXPECT_EQ(ChatError(R"({"messages": [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "a", "content": "1"}]})"),
            "400 messages[1]: messages[1]: a tool message must follow an assistant message that made tool calls");
  EXPECT_EQ(ChatError(body(R"({"role": "user", "content": "y"}, {"role": "tool", "tool_call_id": "a", "content": "1"})")),
            "400 messages[3]: messages[3]: a tool message must follow an assistant message that made tool calls");
  EXPECT_NE(ChatError(std::string(R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"id": "a",
            "function": {"name": "f", "arguments": "not json"}}]}]})")).find("arguments: is not valid JSON"), std::string::npos);
}

TEST(OpenAIRequest, Completions) {
  GenRequest r = ParseOpenAICompletion(ParseBody(R"({"prompt": [[1, 2], [3]], "echo": true, "logprobs": 2})"), Limits());
  ASSERT_EQ(r.prompts.size(), 2u);
  EXPECT_TRUE(r.prompts[0].is_tokens);
  EXPECT_EQ(r.prompts[1].tokens, std::vector<int32_t>{3});
  EXPECT_EQ(r.max_tokens, 16);  // OpenAI's default
  EXPECT_TRUE(r.echo);
  EXPECT_EQ(r.top_logprobs, 2);
  r = ParseOpenAICompletion(ParseBody(R"({"prompt": "Once"})"), Limits());
  EXPECT_EQ(r.prompts[0].text, "Once");
  EXPECT_THROW(ParseOpenAICompletion(ParseBody(R"({"prompt": [1, -2]})"), Limits()), ApiError);
  EXPECT_THROW(ParseOpenAICompletion(ParseBody(R"({"prompt": "x", "suffix": "y"})"), Limits()), ApiError);
  EXPECT_THROW(ParseOpenAICompletion(ParseBody(R"({"prompt": []})"), Limits()), ApiError);
}

TEST(OllamaRequest, ChatAndGenerate) {
  GenRequest r = ParseOllamaChat(ParseBody(R"({"model": "m:latest", "think": "high", "format": "json",
      "messages": [{"role": "user", "content": "look", "images": ["AAEC"]},
                   {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1}}}]},
                   {"role": "tool", "content": "9"}],
      "options": {"temperature": 0, "num_predict": 7, "stop": ["z"], "seed": 3, "top_k": 5}})"),
                                 Limits());
  EXPECT_TRUE(r.stream);  // Ollama's default
  EXPECT_TRUE(*r.thinking);
  EXPECT_EQ(r.format, GenRequest::Format::kJsonObject);
  EXPECT_EQ(r.messages[0]["content"], Json::parse(R"([{"type": "image"}, {"type": "text", "text": "look"}])"));
  EXPECT_EQ(r.media.size(), 1u);
  EXPECT_EQ(r.messages[2]["tool_call_id"], r.messages[1]["tool_calls"][0]["id"]);
  EXPECT_EQ(r.messages[2]["name"], "f");
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_EQ(*r.top_k, 5);
  EXPECT_TRUE(ParseOllamaChat(ParseBody(R"({"model": "m"})"), Limits()).load_only);
  try {
    ParseOllamaChat(ParseBody(R"({"messages": [{"role": "user", "content": "x"}], "options": {"num_predict": 1000}})"), Limits());
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(std::string(e.what()), "options.num_predict: 1000 is more than this server allows (100)");
  }
  r = ParseOllamaGenerate(ParseBody(R"({"prompt": "hi", "system": "s", "context": [1, 2], "stream": false})"), Limits());
  EXPECT_FALSE(r.stream);
  EXPECT_TRUE(r.chat);
  EXPECT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.context, (std::vector<int32_t>{1, 2}));
  r = ParseOllamaGenerate(ParseBody(R"({"prompt": "raw text", "raw": true, "format": {"type": "object"}})"), Limits());
  EXPECT_FALSE(r.chat);
  EXPECT_EQ(r.prompts[0].text, "raw text");
  EXPECT_EQ(r.format, GenRequest::Format::kJsonSchema);
  EXPECT_THROW(ParseOllamaGenerate(ParseBody(R"({"prompt": "x", "template": "{{ .Prompt }}"})"), Limits()), ApiError);
}

TEST(HttpUtil, Framing) {
  EXPECT_EQ(SseEvent(Json{{"a", 1}}), "data: {\"a\":1}\n\n");
  EXPECT_EQ(SseDone(), "data: [DONE]\n\n");
  EXPECT_EQ(SseKeepAlive().rfind(':', 0), 0u);  // a comment: ignored by SSE clients
  EXPECT_EQ(NdjsonLine(Json{{"done", true}}), "{\"done\":true}\n");
  // Model output with invalid UTF-8 never breaks the framing.
  EXPECT_EQ(SseEvent(Json{{"t", std::string("\xff")}}), "data: {\"t\":\"\xef\xbf\xbd\"}\n\n");
}

TEST(HttpUtil, NestingAndBase64AndKeys) {
  EXPECT_TRUE(NestingWithin("[[[\"[[[[[[\"]]]", 3));
  EXPECT_FALSE(NestingWithin("[[[[]]]]", 3));
  EXPECT_THROW(ParseBody(std::string(100, '[') + std::string(100, ']')), ApiError);
  EXPECT_EQ(DecodeBase64("aGVsbG8=", "f"), (std::vector<uint8_t>{'h', 'e', 'l', 'l', 'o'}));
  EXPECT_EQ(DecodeBase64("aGVs\nbG8", "f"), (std::vector<uint8_t>{'h', 'e', 'l', 'l', 'o'}));
  EXPECT_THROW(DecodeBase64("a*b", "f"), ApiError);
  EXPECT_THROW(DecodeDataUri("data:image/png,abc", "f"), ApiError);
  EXPECT_THROW(DecodeDataUri("http://x/y.png", "f"), ApiError);
  EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secret2"));
  EXPECT_FALSE(ConstantTimeEquals("", "x"));
  EXPECT_EQ(RandomId("call_").size(), 29u);
}

// Prometheus text: every sample line is "name{labels} value" and histograms are cumulative.
TEST(Metrics, PrometheusText) {
  Metrics m;
  m.CountRequest("/v1/chat/completions", 200);
  m.CountRequest("/v1/chat/completions", 200);
  m.CountRequest("/etc/passwd", 404);
  m.CountQueueFull();
  RequestResult r;
  r.tokens = {1, 2, 3};
  r.t_first_token = 0.03;
  r.t_total = 0.33;
  m.ObserveGeneration(r);
  m.CountTokens(5, 1000.5);
  SchedulerStats s;
  s.n_slots = 4;
  s.active = 1;
  s.queued = 2;
  s.kv_positions = 100;
  s.kv_capacity = 400;
  s.generated_tokens = 50;
  s.busy_seconds = 2;
  s.drafting = true;
  s.draft_tokens = 40;
  s.draft_accepted = 30;
  s.decode_steps = 20;
  s.decode_tokens = 50;
  const std::string text = m.Render(&s, 1001.2);
  EXPECT_NE(text.find("gemma4_speculative_decoding 1\n"), std::string::npos);
  EXPECT_NE(text.find("gemma4_draft_tokens_total 40\n"), std::string::npos);
  EXPECT_NE(text.find("gemma4_draft_accepted_tokens_total 30\n"), std::string::npos);
  EXPECT_NE(text.find("gemma4_draft_acceptance_ratio 0.75\n"), std::string::npos);
  EXPECT_NE(text.find("gemma4_tokens_per_target_forward 2.5\n"), std::string::npos);
  EXPECT_NE(text.find("gemma4_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("gemma4_requests_total{endpoint=\"other\",status=\"404\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("gemma4_requests_rejected_queue_full_total 1\n"), std::string::npos);
  EXPECT_NE(text.find("gemma4_queue_depth 2\n"), std::string::npos);
  EXPECT_NE(text.find("gemma4_kv_cache_usage_ratio 0.25\n"), std::string::npos);
  EXPECT_NE(text.find("gemma4_decode_tokens_per_second 25\n"), std::string::npos);
  EXPECT_NE(text.find("gemma4_recent_tokens_per_second 0.5\n"), std::string::npos);
  EXPECT_NE(text.find("gemma4_time_to_first_token_seconds_bucket{le=\"0.025\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("gemma4_time_to_first_token_seconds_bucket{le=\"0.05\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("gemma4_time_to_first_token_seconds_bucket{le=\"+Inf\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("gemma4_time_per_output_token_seconds_sum 0.15\n"), std::string::npos);
  std::istringstream in(text);
  std::string line;
  int samples = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    ++samples;
    const size_t space = line.rfind(' ');
    ASSERT_NE(space, std::string::npos) << line;
    const std::string name = line.substr(0, line.find_first_of("{ "));
    EXPECT_EQ(name.rfind("gemma4_", 0), 0u) << line;
    EXPECT_NO_THROW((void)std::stod(line.substr(space + 1) == "+Inf" ? "0" : line.substr(space + 1))) << line;
  }
  EXPECT_GT(samples, 30);
  // Without a model (loading) the engine's metrics are absent but the page is still valid.
  EXPECT_NE(m.Render(nullptr, 1).find("gemma4_model_loaded 0\n"), std::string::npos);
}

}  // namespace
}  // namespace g4::server
