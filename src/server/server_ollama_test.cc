// The Ollama API end to end (NDJSON streaming and not, tools, format, load requests, the listing
// endpoints), and images and audio through both APIs with the golden multimodal tiny model.
#include <fstream>
#include <sstream>

#include "server/http_util.h"
#include "server/json_schema.h"
#include "server/server_test_util.h"
#include "testutil.h"

namespace g4::server {
namespace {

using test::Get;
using test::NdjsonObjects;
using test::Post;
using test::TestOptions;
using test::TestServer;

Json OllamaChat(const std::string& user, bool stream, int num_predict) {
  return Json{{"model", "tiny"},
              {"messages", Json::array({{{"role", "user"}, {"content", user}}})},
              {"stream", stream},
              {"options", {{"temperature", 0}, {"num_predict", num_predict}}}};
}

TEST(OllamaE2E, ChatStreamedAndNot) {
  G4_REQUIRE_SHARED();
  TestServer s;
  test::Reply plain = Post(s.port(), "/api/chat", OllamaChat("hello", false, 12).dump());
  ASSERT_EQ(plain.status, 200) << plain.body;
  const Json p = plain.json();
  EXPECT_EQ(p["model"], "tiny");
  EXPECT_TRUE(p["done"].get<bool>());
  EXPECT_EQ(p["message"]["role"], "assistant");
  EXPECT_TRUE(p["done_reason"] == "stop" || p["done_reason"] == "length");
  EXPECT_GT(p["eval_count"].get<int>(), 0);
  EXPECT_GT(p["prompt_eval_count"].get<int>(), 0);
  EXPECT_GE(p["total_duration"].get<int64_t>(), p["eval_duration"].get<int64_t>());

  test::Reply streamed = Post(s.port(), "/api/chat", OllamaChat("hello", true, 12).dump());
  ASSERT_EQ(streamed.status, 200);
  const std::vector<Json> lines = NdjsonObjects(streamed.body);
  ASSERT_GE(lines.size(), 2u);
  std::string content;
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["done"].get<bool>(), i + 1 == lines.size()) << lines[i];
    content += lines[i]["message"]["content"].get<std::string>();
  }
  EXPECT_EQ(content, p["message"]["content"].get<std::string>());
  EXPECT_EQ(lines.back()["done_reason"], p["done_reason"]);
  EXPECT_EQ(lines.back()["eval_count"], p["eval_count"]);
  // "model:latest" names the same model; another name is a 404 with Ollama's error shape.
  Json latest = OllamaChat("hello", false, 2);
  latest["model"] = "tiny:latest";
  EXPECT_EQ(Post(s.port(), "/api/chat", latest.dump()).status, 200);
  latest["model"] = "llama3";
  test::Reply missing = Post(s.port(), "/api/chat", latest.dump());
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.json()["error"], "the model 'llama3' does not exist; this server serves: tiny");
  // No messages: Ollama's "load the model" request.
  const Json load = Post(s.port(), "/api/chat", R"({"model": "tiny"})").json();
  EXPECT_EQ(load["done_reason"], "load");
  EXPECT_EQ(Post(s.port(), "/api/chat", R"({"messages": [{"role": "nobody", "content": ""}]})").json()["error"],
            "messages[0].role: unknown role 'nobody' (expected system, user, assistant or tool)");
}

TEST(OllamaE2E, ToolsFormatAndThinking) {
  G4_REQUIRE_SHARED();
  TestServer s;
  // A JSON schema as "format": the answer validates.
  Json req = OllamaChat("json please", false, 250);
  const Json schema = Json::parse(R"({"type": "object", "properties": {"ok": {"type": "boolean"}, "n": {"enum": [1, 2, 3]}},
                                      "required": ["ok", "n"], "additionalProperties": false})");
  req["format"] = schema;
  const Json r = Post(s.port(), "/api/chat", req.dump()).json();
  ASSERT_EQ(r["done_reason"], "stop") << r;
  EXPECT_EQ(Schema::Compile(schema, "s", true)->Validate(Json::parse(r["message"]["content"].get<std::string>())), "");
  // A tool result in Ollama's shape (no ids; tool_name) renders and answers.
  Json chat = OllamaChat("weather?", false, 4);
  chat["tools"] = Json::parse(R"([{"type": "function", "function": {"name": "get_weather",
      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])");
  chat["messages"].push_back({{"role", "assistant"}, {"content", ""},
                              {"tool_calls", Json::array({{{"function", {{"name", "get_weather"}, {"arguments", {{"city", "Oslo"}}}}}}})}});
  chat["messages"].push_back({{"role", "tool"}, {"tool_name", "get_weather"}, {"content", "{\"temp\": -3}"}});
  chat["think"] = true;
  test::Reply t = Post(s.port(), "/api/chat", chat.dump());
  ASSERT_EQ(t.status, 200) << t.body;
  EXPECT_TRUE(t.json()["done"].get<bool>());
}

TEST(OllamaE2E, GenerateWithContextAndListings) {
  G4_REQUIRE_SHARED();
  TestServer s;
  const Json first = Post(s.port(), "/api/generate", R"({"model": "tiny", "prompt": "Hi", "stream": false,
                                                        "options": {"num_predict": 4, "temperature": 0}})")
                         .json();
  ASSERT_TRUE(first["context"].is_array()) << first;
  const int n_context = static_cast<int>(first["context"].size());
  EXPECT_EQ(n_context, first["prompt_eval_count"].get<int>() + first["eval_count"].get<int>());
  Json next = {{"model", "tiny"}, {"prompt", "And then?"}, {"context", first["context"]}, {"stream", true},
               {"options", {{"num_predict", 3}, {"temperature", 0}}}};
  const std::vector<Json> lines = NdjsonObjects(Post(s.port(), "/api/generate", next.dump()).body);
  ASSERT_FALSE(lines.empty());
  EXPECT_TRUE(lines.back()["done"].get<bool>());
  EXPECT_GT(lines.back()["prompt_eval_count"].get<int>(), n_context);  // the exchange so far, then the new turn
  for (size_t i = 0; i + 1 < lines.size(); ++i) EXPECT_TRUE(lines[i].contains("response"));
  const Json raw = Post(s.port(), "/api/generate", R"({"prompt": "<bos>raw", "raw": true, "stream": false,
                                                      "options": {"num_predict": 2}})")
                       .json();
  EXPECT_EQ(raw["prompt_eval_count"], 4);  // <bos> r a w: no template
  EXPECT_EQ(Post(s.port(), "/api/generate", R"({"model": "tiny"})").json()["done_reason"], "load");

  const Json tags = Get(s.port(), "/api/tags").json();
  EXPECT_EQ(tags["models"][0]["name"], "tiny");
  EXPECT_EQ(tags["models"][0]["details"]["format"], "gguf");
  const Json show = Post(s.port(), "/api/show", R"({"model": "tiny"})").json();
  EXPECT_EQ(show["model_info"]["general.architecture"], "gemma4");
  EXPECT_EQ(show["capabilities"], Json::parse(R"(["completion", "tools", "thinking"])"));
  EXPECT_EQ(Post(s.port(), "/api/show", R"({"model": "other"})").status, 404);
  EXPECT_TRUE(Get(s.port(), "/api/version").json()["version"].is_string());
  EXPECT_EQ(Get(s.port(), "/api/ps").json()["models"][0]["name"], "tiny");
}

std::string Base64(const std::string& bytes) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int k = 3; k >= 0; --k) out += a[(v >> (6 * k)) & 63];
  }
  if (i + 1 == bytes.size()) {
    const uint32_t v = uint8_t(bytes[i]) << 16;
    out += a[(v >> 18) & 63];
    out += a[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8);
    out += a[(v >> 18) & 63];
    out += a[(v >> 12) & 63];
    out += a[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

TEST(MediaE2E, ImagesAndAudioThroughBothApis) {
  G4_REQUIRE_SHARED();
  TestOptions o;
  o.model = "golden/multimodal/g4u-mm-tiny.f32.gguf";
  o.mmproj = "golden/multimodal/mmproj-g4u-mm-tiny.f32.gguf";
  o.ctx = 2048;
  o.slots = 1;
  TestServer s(o);
  const std::string png = Base64(g4::testing::ReadText(g4::testing::SharedPath("golden/multimodal/media/img_96x96.png")));
  const std::string wav =
      Base64(g4::testing::ReadText(g4::testing::SharedPath("golden/multimodal/media/aud_16k_mono_pcm16_1s.wav")));
  auto prompt_tokens = [&](const Json& content) {
    Json req = {{"messages", Json::array({{{"role", "user"}, {"content", content}}})}, {"max_tokens", 2}, {"temperature", 0}};
    test::Reply r = Post(s.port(), "/v1/chat/completions", req.dump());
    EXPECT_EQ(r.status, 200) << r.body.substr(0, 400);
    return r.status == 200 ? r.json()["usage"]["prompt_tokens"].get<int>() : -1;
  };
  const int text = prompt_tokens("What is this?");
  const int image = prompt_tokens(Json::array({{{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64," + png}}}},
                                               {{"type", "text"}, {"text", "What is this?"}}}));
  const int audio = prompt_tokens(Json::array({{{"type", "input_audio"}, {"input_audio", {{"data", wav}, {"format", "wav"}}}},
                                               {{"type", "text"}, {"text", "What is this?"}}}));
  EXPECT_GT(image, text + 4);  // the image's soft tokens between its markers
  EXPECT_GT(audio, text + 4);
  // Ollama's images.
  Json ollama = {{"messages", Json::array({{{"role", "user"}, {"content", "What is this?"}, {"images", Json::array({png})}}})},
                 {"stream", false}, {"options", {{"num_predict", 2}}}};
  const Json r = Post(s.port(), "/api/chat", ollama.dump()).json();
  EXPECT_EQ(r["prompt_eval_count"], image);
  // Broken media is a 400 naming where it came from.
  test::Reply bad = Post(s.port(), "/v1/chat/completions",
                         Json{{"messages", Json::array({{{"role", "user"}, {"content", Json::array({{{"type", "image_url"},
                                                         {"image_url", {{"url", "data:image/png;base64,AAAA"}}}}})}}})}}
                             .dump());
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.json()["error"]["param"], "messages[0].content[0].image_url");
}

TEST(MediaE2E, TextOnlyModelRefusesImages) {
  G4_REQUIRE_SHARED();
  TestServer s;
  test::Reply r = Post(s.port(), "/v1/chat/completions",
                       Json{{"messages", Json::array({{{"role", "user"}, {"content", Json::array({{{"type", "image_url"},
                                                       {"image_url", {{"url", "data:image/png;base64,AAAA"}}}}})}}})}}
                           .dump());
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json()["error"]["message"], "this server's model takes no images or audio (start it with --mmproj FILE)");
}

}  // namespace
}  // namespace g4::server
