// The server end to end on loopback with the golden tiny model (random weights: the text means
// nothing, so the tests check structure, equality and the guarantees): OpenAI chat and completions
// streamed and not, errors, limits, the API key, the queue, disconnects, concurrency, constrained
// output, tool calls, thinking, logprobs, health, metrics and shutdown.
#include <atomic>
#include <cstdio>
#include <chrono>
#include <future>
#include <set>
#include <thread>

#include "server/json_schema.h"
#include "server/server_test_util.h"
#include "testutil.h"
#include "util/timer.h"

namespace g4::server {
namespace {

using test::Chat;
using test::Get;
using test::Post;
using test::PostStream;
using test::SseEvents;
using test::TestOptions;
using test::TestServer;

// The streamed answer put back together: content, reasoning, tool calls, finish reason, usage.
struct Streamed {
  std::string content, reasoning, finish;
  Json calls = Json::array();
  Json usage;
  int role_chunks = 0;
};

Streamed Collect(const std::vector<Json>& events) {
  Streamed s;
  for (const Json& e : events) {
    if (e.contains("usage") && !e["usage"].is_null()) s.usage = e["usage"];
    for (const Json& c : e["choices"]) {
      const Json& d = c["delta"];
      if (d.contains("role")) ++s.role_chunks;
      if (d.contains("content")) s.content += d["content"].get<std::string>();
      if (d.contains("reasoning_content")) s.reasoning += d["reasoning_content"].get<std::string>();
      if (d.contains("tool_calls")) {
        for (const Json& t : d["tool_calls"]) s.calls.push_back(t);
      }
      if (!c["finish_reason"].is_null()) s.finish = c["finish_reason"].get<std::string>();
    }
  }
  return s;
}

TEST(ServerE2E, HealthSaysLoadingUntilTheModelIsThere) {
  G4_REQUIRE_SHARED();
  TestOptions o;
  o.load = false;
  TestServer s(o);
  test::Reply h = Get(s.port(), "/health");
  EXPECT_EQ(h.status, 503);
  EXPECT_EQ(h.json()["status"], "loading");
  test::Reply r = Post(s.port(), "/v1/chat/completions", Chat("hi", 2).dump());
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.json()["error"]["message"], "the model is still loading; try again shortly");
  s.Load();
  h = Get(s.port(), "/health");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.json()["status"], "ok");
}

TEST(ServerE2E, ChatStreamedEqualsNotStreamed) {
  G4_REQUIRE_SHARED();
  TestServer s;
  const Json req = Chat("Tell me a story", 24);
  test::Reply plain = Post(s.port(), "/v1/chat/completions", req.dump());
  ASSERT_EQ(plain.status, 200) << plain.body;
  const Json p = plain.json();
  EXPECT_EQ(p["object"], "chat.completion");
  EXPECT_EQ(p["model"], "tiny");
  EXPECT_EQ(p["choices"][0]["message"]["role"], "assistant");
  const std::string finish = p["choices"][0]["finish_reason"];
  EXPECT_TRUE(finish == "stop" || finish == "length") << finish;
  const int completion = p["usage"]["completion_tokens"];
  EXPECT_GT(completion, 0);
  EXPECT_EQ(p["usage"]["total_tokens"], p["usage"]["prompt_tokens"].get<int>() + completion);

  Json sreq = req;
  sreq["stream"] = true;
  sreq["stream_options"] = {{"include_usage", true}};
  test::Reply streamed = PostStream(s.port(), "/v1/chat/completions", sreq.dump(), [](const std::string&) { return true; });
  ASSERT_EQ(streamed.status, 200);
  EXPECT_NE(streamed.body.find("data: "), std::string::npos);
  bool sse = false;
  for (const auto& [k, v] : streamed.headers) sse |= k == "Content-Type" && v.rfind("text/event-stream", 0) == 0;
  EXPECT_TRUE(sse);
  const std::vector<Json> events = SseEvents(streamed.body);
  for (const Json& e : events) {
    EXPECT_EQ(e["object"], "chat.completion.chunk");
    EXPECT_EQ(e["id"], events[0]["id"]);  // one id for the whole stream
  }
  const Streamed st = Collect(events);
  EXPECT_EQ(st.role_chunks, 1);
  EXPECT_EQ(st.content, p["choices"][0]["message"]["content"].get<std::string>());  // greedy: the same tokens
  EXPECT_EQ(st.finish, finish);
  ASSERT_TRUE(st.usage.is_object());
  EXPECT_EQ(st.usage["completion_tokens"], completion);
  // The same conversation again: its prompt comes from the prefix cache.
  test::Reply again = Post(s.port(), "/v1/chat/completions", req.dump());
  EXPECT_GT(again.json()["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(), 0);
}

TEST(ServerE2E, ErrorsAreOpenAIErrorObjects) {
  G4_REQUIRE_SHARED();
  TestOptions o;
  o.ctx = 128;
  o.max_tokens = 64;
  o.max_body = 4096;
  TestServer s(o);
  auto error = [&](const std::string& body, int status) {
    test::Reply r = Post(s.port(), "/v1/chat/completions", body);
    EXPECT_EQ(r.status, status) << body << " -> " << r.body;
    const Json j = r.json();
    EXPECT_TRUE(j["error"]["message"].is_string()) << r.body;
    EXPECT_TRUE(j["error"]["type"].is_string()) << r.body;
    EXPECT_TRUE(j["error"].contains("param") && j["error"].contains("code")) << r.body;
    return j["error"];
  };
  EXPECT_EQ(error("{\"messages\": ", 400)["message"].get<std::string>().rfind("the request body is not valid JSON", 0), 0u);
  EXPECT_EQ(error(R"({"messages": []})", 400)["param"], "messages");
  EXPECT_EQ(error(R"({"messages": [{"role": "bot", "content": "x"}]})", 400)["param"], "messages[0].role");
  EXPECT_EQ(error(R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": "5"})", 400)["param"], "max_tokens");
  EXPECT_EQ(error(R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 65})", 400)["message"],
            "max_tokens: 65 is more than this server allows (64)");
  EXPECT_EQ(error(R"({"messages": [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "z", "content": "1"}]})",
                  400)["param"],
            "messages[1]");
  const Json unknown = error(R"({"model": "gpt-5", "messages": [{"role": "user", "content": "x"}]})", 404);
  EXPECT_EQ(unknown["message"], "the model 'gpt-5' does not exist; this server serves: tiny");
  EXPECT_EQ(unknown["code"], "model_not_found");
  // A prompt that does not fit: how many tokens it has and how many fit.
  std::string many;
  for (int i = 0; i < 60; ++i) many += "abcdefghij";
  const Json long_prompt = error(Chat(many, 4).dump(), 400);
  EXPECT_NE(long_prompt["message"].get<std::string>().find(" over the context's 127 for the prompt"), std::string::npos)
      << long_prompt;
  EXPECT_EQ(long_prompt["code"], "context_length_exceeded");
  EXPECT_EQ(error(Chat(std::string(5000, 'a'), 4).dump(), 413)["message"], "the request body is larger than 4096 bytes");
  test::Reply nowhere = Get(s.port(), "/v1/nothing");
  EXPECT_EQ(nowhere.status, 404);
  EXPECT_EQ(nowhere.json()["error"]["message"], "no such endpoint: GET /v1/nothing");
  // A cross-site page in a browser may not use the server.
  test::Reply xsite = Post(s.port(), "/v1/chat/completions", Chat("x", 2).dump(), {{"Origin", "http://evil.example"}});
  EXPECT_EQ(xsite.status, 403);
  // The server kept serving through all of it.
  EXPECT_EQ(Post(s.port(), "/v1/chat/completions", Chat("x", 2).dump()).status, 200);
}

// --context-overflow and the request's context_overflow field: refuse naming the excess, or drop the
// oldest whole turns (keeping the system prompt) and say so in headers and usage.
TEST(ServerE2E, ContextOverflowPolicies) {
  G4_REQUIRE_SHARED();
  TestOptions o;
  o.ctx = 128;
  TestServer s(o);
  std::string long_text;
  for (int i = 0; i < 12; ++i) long_text += "abcdefghij";  // 120 characters: most of the context
  const Json sys = {{"role", "system"}, {"content", "Be brief."}};
  const Json newest = {{"role", "user"}, {"content", "And now?"}};
  const Json history = Json::array({sys,
                                    {{"role", "user"}, {"content", long_text}},
                                    {{"role", "assistant"}, {"content", long_text}},
                                    newest});
  auto body = [](const Json& messages, const char* policy) {
    Json b = {{"model", "tiny"}, {"messages", messages}, {"max_tokens", 4}, {"temperature", 0}};
    if (policy) b["context_overflow"] = policy;
    return b.dump();
  };
  // What the conversation is once its first turn is gone.
  const test::Reply kept = Post(s.port(), "/v1/chat/completions", body(Json::array({sys, newest}), nullptr));
  ASSERT_EQ(kept.status, 200) << kept.body;
  EXPECT_EQ(kept.headers.count("X-Context-Dropped-Turns"), 0u);
  EXPECT_FALSE(kept.json()["usage"].contains("context_dropped"));

  // error (the server's default): 400, how many tokens over.
  test::Reply r = Post(s.port(), "/v1/chat/completions", body(history, nullptr));
  ASSERT_EQ(r.status, 400) << r.body;
  const Json err = r.json()["error"];
  EXPECT_EQ(err["code"], "context_length_exceeded");
  EXPECT_EQ(err["param"], "messages");
  long long total = 0, over = 0;
  ASSERT_EQ(std::sscanf(err["message"].get<std::string>().c_str(), "the conversation is %lld tokens, %lld over", &total, &over), 2)
      << err;
  EXPECT_EQ(total - over, 127);  // the context less the one position left for the answer
  EXPECT_GT(over, 0);

  // drop-oldest for this request: the first turn (user + assistant) goes, the system prompt stays,
  // and the answer is the one the shortened conversation gets.
  r = Post(s.port(), "/v1/chat/completions", body(history, "drop-oldest"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers.find("X-Context-Dropped-Turns")->second, "1");
  EXPECT_EQ(r.headers.find("X-Context-Dropped-Messages")->second, "2");
  const Json j = r.json();
  EXPECT_EQ(j["usage"]["context_dropped"], Json({{"turns", 1}, {"messages", 2}}));
  EXPECT_EQ(j["usage"]["prompt_tokens"], kept.json()["usage"]["prompt_tokens"]);
  EXPECT_EQ(j["choices"][0]["message"]["content"], kept.json()["choices"][0]["message"]["content"]);

  // The newest turn alone over the context: refused even when dropping.
  r = Post(s.port(), "/v1/chat/completions",
           body(Json::array({sys, {{"role", "user"}, {"content", long_text + long_text}}}), "drop-oldest"));
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.json()["error"]["message"].get<std::string>().find("the newest turn alone is "), std::string::npos) << r.body;
  // A policy that does not exist is named.
  r = Post(s.port(), "/v1/chat/completions", body(history, "truncate"));
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(r.json()["error"]["param"], "context_overflow");

  // A server started with --context-overflow drop-oldest drops unless a request says error; the
  // Ollama chat endpoint reports it in the same headers.
  o.context_overflow = ContextOverflow::kDropOldest;
  TestServer d(o);
  r = Post(d.port(), "/v1/chat/completions", body(history, nullptr));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers.find("X-Context-Dropped-Turns")->second, "1");
  EXPECT_EQ(Post(d.port(), "/v1/chat/completions", body(history, "error")).status, 400);
  r = Post(d.port(), "/api/chat",
           Json({{"model", "tiny"}, {"messages", history}, {"stream", false}, {"options", {{"num_predict", 2}}}}).dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers.find("X-Context-Dropped-Messages")->second, "2");
}

TEST(ServerE2E, ApiKey) {
  G4_REQUIRE_SHARED();
  TestOptions o;
  o.api_key = "s3cret";
  TestServer s(o);
  test::Reply none = Post(s.port(), "/v1/chat/completions", Chat("x", 2).dump());
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.json()["error"]["type"], "authentication_error");
  bool challenge = false;
  for (const auto& [k, v] : none.headers) challenge |= k == "WWW-Authenticate";
  EXPECT_TRUE(challenge);
  EXPECT_EQ(Post(s.port(), "/v1/chat/completions", Chat("x", 2).dump(), {{"Authorization", "Bearer s3creT"}}).status, 401);
  EXPECT_EQ(Get(s.port(), "/api/tags").status, 401);
  EXPECT_EQ(Get(s.port(), "/api/tags").json()["error"], "a valid API key is needed: send 'Authorization: Bearer KEY'");
  EXPECT_EQ(Post(s.port(), "/v1/chat/completions", Chat("x", 2).dump(), {{"Authorization", "Bearer s3cret"}}).status, 200);
  EXPECT_EQ(Get(s.port(), "/health").status, 200);  // for supervisors
  EXPECT_EQ(Get(s.port(), "/").status, 200);        // the page asks for the key itself
}

TEST(ServerE2E, FullQueueAnswers429WithRetryAfter) {
  G4_REQUIRE_SHARED();
  TestOptions o;
  o.slots = 1;
  o.queue = 1;
  o.max_tokens = 100000;
  o.ctx = 4096;
  TestServer s(o);
  Json long_req = Chat("a long answer", 4000);
  long_req["stream"] = true;
  std::atomic<bool> stop{false};
  std::atomic<int> chunks{0};
  auto runner = [&] {
    return PostStream(s.port(), "/v1/chat/completions", long_req.dump(), [&](const std::string&) {
      ++chunks;
      return !stop.load();
    });
  };
  auto a = std::async(std::launch::async, runner);
  while (chunks.load() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(10));  // a has the slot
  auto b = std::async(std::launch::async, runner);  // b waits in the queue
  int queued = 0;
  for (int i = 0; i < 500 && queued == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    queued = Get(s.port(), "/health").json()["queued"].get<int>();
  }
  ASSERT_EQ(queued, 1);
  test::Reply full = Post(s.port(), "/v1/chat/completions", Chat("x", 2).dump());
  EXPECT_EQ(full.status, 429);
  EXPECT_EQ(full.json()["error"]["type"], "rate_limit_error");
  std::string retry;
  for (const auto& [k, v] : full.headers) {
    if (k == "Retry-After") retry = v;
  }
  EXPECT_FALSE(retry.empty());
  EXPECT_GE(std::stoi(retry), 1);
  stop = true;
  a.get();
  b.get();
}

TEST(ServerE2E, ClientThatDisconnectsFreesItsSlotAtOnce) {
  G4_REQUIRE_SHARED();
  TestOptions o;
  o.slots = 1;
  o.max_tokens = 100000;
  o.ctx = 8192;
  TestServer s(o);
  Json long_req = Chat("go on forever", 8000);
  long_req["stream"] = true;
  int seen = 0;
  test::Reply gone = PostStream(s.port(), "/v1/chat/completions", long_req.dump(), [&](const std::string& chunk) {
    seen += chunk.find("\"content\"") != std::string::npos;
    return seen < 3;  // hang up after a few tokens
  });
  EXPECT_EQ(gone.status, -1);
  // The only slot serves the next request at once (the first had ~8000 tokens to go).
  const double t0 = NowSeconds();
  test::Reply next = Post(s.port(), "/v1/chat/completions", Chat("next", 4).dump());
  EXPECT_EQ(next.status, 200);
  EXPECT_LT(NowSeconds() - t0, 30.0);
  const std::string metrics = Get(s.port(), "/metrics").body;
  EXPECT_NE(metrics.find("gemma4_generations_cancelled_total 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("gemma4_slots_active 0\n"), std::string::npos);
  // A non-streamed request whose client goes away is cancelled too (the server writes keep-alive
  // whitespace while it works, and notices the failed write).
  test::Reply gone2 = PostStream(s.port(), "/v1/chat/completions", Chat("again", 8000).dump(),
                                 [&](const std::string&) { return false; });
  EXPECT_EQ(gone2.status, -1);
  for (int i = 0; i < 200; ++i) {
    if (Get(s.port(), "/metrics").body.find("gemma4_generations_cancelled_total 2\n") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_NE(Get(s.port(), "/metrics").body.find("gemma4_generations_cancelled_total 2\n"), std::string::npos);
}

// N concurrent greedy requests give exactly what each gives alone: in exact numerics (f32 model,
// reference kernels) and in the default fast numerics (Q8_0 model, integer kernels).
class Concurrency : public ::testing::TestWithParam<bool> {};

TEST_P(Concurrency, GreedyRequestsEqualEachAlone) {
  G4_REQUIRE_SHARED();
  const bool fast = GetParam();
  TestOptions o;
  o.slots = 4;
  o.exact = !fast;
  o.model = fast ? "golden/g4u-tiny/g4u-tiny.q8_0.gguf" : "golden/g4u-tiny/g4u-tiny.f32.gguf";
  TestServer s(o);
  std::vector<std::string> bodies;
  for (int i = 0; i < 6; ++i) bodies.push_back(Chat("question number " + std::to_string(i * 7919), 20).dump());
  std::vector<std::string> alone;
  for (const auto& b : bodies) {
    test::Reply r = Post(s.port(), "/v1/chat/completions", b);
    ASSERT_EQ(r.status, 200);
    alone.push_back(r.json()["choices"][0]["message"]["content"]);
  }
  // Again, all at once (and a different slot may serve each: prefix caching must not change tokens).
  std::vector<std::future<test::Reply>> futures;
  for (const auto& b : bodies) futures.push_back(std::async(std::launch::async, [&, b] { return Post(s.port(), "/v1/chat/completions", b); }));
  for (size_t i = 0; i < futures.size(); ++i) {
    test::Reply r = futures[i].get();
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.json()["choices"][0]["message"]["content"], alone[i]) << "request " << i;
  }
}
INSTANTIATE_TEST_SUITE_P(Math, Concurrency, ::testing::Values(false, true),
                         [](const auto& i) { return i.param ? "Fast" : "Exact"; });

TEST(ServerE2E, JsonSchemaOutputAlwaysParsesAndValidates) {
  G4_REQUIRE_SHARED();
  TestServer s;
  const char* schemas[] = {
      R"({"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}, "n": {"type": "integer", "minimum": 0,
          "maximum": 9}, "ok": {"type": "boolean"}}, "required": ["answer", "n", "ok"], "additionalProperties": false})",
      R"({"type": "array", "items": {"type": "number", "minimum": -1, "maximum": 1}, "minItems": 1, "maxItems": 3})",
      R"({"type": "object", "properties": {"name": {"type": "string", "maxLength": 5},
          "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "maxItems": 2}},
          "required": ["name"], "additionalProperties": false,
          "$defs": {"tag": {"anyOf": [{"type": "null"}, {"const": "x"}]}}})",
  };
  for (const char* text : schemas) {
    const Json schema = Json::parse(text);
    auto compiled = Schema::Compile(schema, "schema", true);
    for (double temperature : {0.0, 0.9}) {
      if (temperature > 0 && text != schemas[0]) continue;  // sampled once, to keep the test short
      Json req = Chat("reply in JSON", 250, temperature);
      req["seed"] = 11;
      req["response_format"] = {{"type", "json_schema"}, {"json_schema", {{"name", "t"}, {"schema", schema}}}};
      test::Reply r = Post(s.port(), "/v1/chat/completions", req.dump());
      ASSERT_EQ(r.status, 200) << r.body;
      const Json choice = r.json()["choices"][0];
      ASSERT_EQ(choice["finish_reason"], "stop") << r.body;
      Json value;
      ASSERT_NO_THROW(value = Json::parse(choice["message"]["content"].get<std::string>())) << r.body;
      EXPECT_EQ(compiled->Validate(value), "") << value.dump() << " for " << text;
    }
  }
  // json_object: any object; a schema the decoder cannot enforce is refused up front.
  Json req = Chat("json", 250);
  req["response_format"] = {{"type", "json_object"}};
  const Json obj = Json::parse(Post(s.port(), "/v1/chat/completions", req.dump()).json()["choices"][0]["message"]["content"]
                                   .get<std::string>());
  EXPECT_TRUE(obj.is_object());
  req["response_format"] = {{"type", "json_schema"},
                            {"json_schema", {{"name", "t"}, {"schema", {{"type", "string"}, {"pattern", "a+"}}}}}};
  test::Reply refused = Post(s.port(), "/v1/chat/completions", req.dump());
  EXPECT_EQ(refused.status, 400);
  EXPECT_EQ(refused.json()["error"]["param"], "response_format.json_schema.schema.pattern");
}

const char* kTools = R"([
  {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
   "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 10},
                  "days": {"type": "integer", "minimum": 1, "maximum": 7}},
                  "required": ["city", "days"], "additionalProperties": false}}},
  {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {},
   "additionalProperties": false}}}])";

TEST(ServerE2E, ToolChoiceRequiredAndNamedAlwaysCall) {
  G4_REQUIRE_SHARED();
  TestOptions o;
  o.max_tokens = 512;
  TestServer s(o);
  const Json tools = Json::parse(kTools);
  auto weather = Schema::Compile(tools[0]["function"]["parameters"], "p", true);
  for (const Json& choice : {Json("required"), Json{{"type", "function"}, {"function", {{"name", "get_weather"}}}}}) {
    for (double temperature : {0.0, 1.0}) {
      if ((temperature > 0) != choice.is_string()) continue;  // required sampled, named greedy: short enough
      Json req = Chat("What's the weather in Paris?", 200, temperature);
      req["seed"] = 5;
      req["tools"] = tools;
      req["tool_choice"] = choice;
      req["parallel_tool_calls"] = false;  // one call (several: below)
      test::Reply r = Post(s.port(), "/v1/chat/completions", req.dump());
      ASSERT_EQ(r.status, 200) << r.body;
      const Json c = r.json()["choices"][0];
      EXPECT_EQ(c["finish_reason"], "tool_calls") << r.body;
      ASSERT_TRUE(c["message"]["tool_calls"].is_array() && !c["message"]["tool_calls"].empty()) << r.body;
      EXPECT_TRUE(c["message"]["content"].is_null()) << r.body;
      for (const Json& call : c["message"]["tool_calls"]) {
        EXPECT_EQ(call["type"], "function");
        EXPECT_EQ(call["id"].get<std::string>().rfind("call_", 0), 0u);
        const std::string name = call["function"]["name"];
        const Json args = Json::parse(call["function"]["arguments"].get<std::string>());  // a JSON string
        if (choice.is_object()) {
          EXPECT_EQ(name, "get_weather");
        }
        if (name == "get_weather") {
          EXPECT_EQ(weather->Validate(args), "") << args.dump();
        } else {
          EXPECT_EQ(name, "get_time");
          EXPECT_TRUE(args.is_object());
        }
      }
      if (choice.is_object()) {
        EXPECT_EQ(c["message"]["tool_calls"].size(), 1u);
      }
    }
  }
  // Streamed, and several calls allowed: each call arrives whole in a delta, with its index.
  Json req = Chat("weather?", 400);
  req["tools"] = tools;
  req["tool_choice"] = "required";
  req["stream"] = true;
  const Streamed st = Collect(SseEvents(PostStream(s.port(), "/v1/chat/completions", req.dump(), [](const std::string&) { return true; }).body));
  EXPECT_EQ(st.finish, "tool_calls");
  ASSERT_FALSE(st.calls.empty());
  for (size_t i = 0; i < st.calls.size(); ++i) EXPECT_EQ(st.calls[i]["index"], i);
  EXPECT_TRUE(st.calls[0]["function"]["arguments"].is_string());
  // The result goes back with the call's id; "none" never calls.
  Json follow = Chat("weather?", 8);
  follow["tools"] = tools;
  follow["tool_choice"] = "none";
  follow["messages"].push_back({{"role", "assistant"}, {"content", nullptr}, {"tool_calls", Json::array({{{"id", "call_1"},
                                {"type", "function"}, {"function", {{"name", "get_weather"}, {"arguments", "{\"city\":\"Paris\",\"days\":1}"}}}}})}});
  follow["messages"].push_back({{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "{\"temp\": 21}"}});
  test::Reply r = Post(s.port(), "/v1/chat/completions", follow.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_FALSE(r.json()["choices"][0]["message"].contains("tool_calls"));
  EXPECT_NE(r.json()["choices"][0]["finish_reason"], "tool_calls");
}

TEST(ServerE2E, ThinkingIsSwitchedPerRequestAndReturnedAsReasoning) {
  G4_REQUIRE_SHARED();
  TestServer s;
  Json off = Chat("think about it", 4);
  Json on = off;
  on["chat_template_kwargs"] = {{"enable_thinking", true}};
  const int prompt_off = Post(s.port(), "/v1/chat/completions", off.dump()).json()["usage"]["prompt_tokens"];
  const int prompt_on = Post(s.port(), "/v1/chat/completions", on.dump()).json()["usage"]["prompt_tokens"];
  EXPECT_GT(prompt_on, prompt_off);  // the system turn with <|think|>
  Json effort = off;
  effort["reasoning_effort"] = "low";
  EXPECT_EQ(Post(s.port(), "/v1/chat/completions", effort.dump()).json()["usage"]["prompt_tokens"], prompt_on);

  // A random model does not think on its own: make it open the thought channel (token 100 of this
  // vocabulary is <|channel>, raised by the bias), and let a JSON answer follow. What it writes
  // inside the channel comes back as reasoning_content, streamed as deltas too.
  Json think = on;
  think["max_tokens"] = 40;
  think["logit_bias"] = {{"100", 100}};
  think["response_format"] = {{"type", "json_object"}};
  test::Reply plain = Post(s.port(), "/v1/chat/completions", think.dump());
  ASSERT_EQ(plain.status, 200) << plain.body;
  const Json msg = plain.json()["choices"][0]["message"];
  ASSERT_TRUE(msg.contains("reasoning_content")) << plain.body;
  const std::string reasoning = msg["reasoning_content"];
  EXPECT_FALSE(reasoning.empty());
  EXPECT_EQ(reasoning.find("<|channel>"), std::string::npos);
  think["stream"] = true;
  const Streamed st = Collect(SseEvents(PostStream(s.port(), "/v1/chat/completions", think.dump(), [](const std::string&) { return true; }).body));
  EXPECT_EQ(st.reasoning, reasoning);
  EXPECT_EQ(st.content, msg["content"].get<std::string>());
  // With thinking off the same bias cannot open a thought: the answer is JSON from the start.
  Json no = think;
  no.erase("stream");
  no["chat_template_kwargs"] = {{"enable_thinking", false}};
  const Json m2 = Post(s.port(), "/v1/chat/completions", no.dump()).json()["choices"][0]["message"];
  EXPECT_FALSE(m2.contains("reasoning_content"));
}

TEST(ServerE2E, LogprobsSeedsAndChoices) {
  G4_REQUIRE_SHARED();
  TestServer s;
  Json req = Chat("numbers", 6, 1.0);
  req["logprobs"] = true;
  req["top_logprobs"] = 3;
  req["n"] = 3;
  req["seed"] = 42;
  test::Reply r = Post(s.port(), "/v1/chat/completions", req.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const Json j = r.json();
  ASSERT_EQ(j["choices"].size(), 3u);
  int total = 0;
  for (size_t i = 0; i < 3; ++i) {
    const Json& c = j["choices"][i];
    EXPECT_EQ(c["index"], i);
    const Json& lp = c["logprobs"]["content"];
    ASSERT_TRUE(lp.is_array());
    EXPECT_GE(lp.size(), 1u);
    for (const Json& e : lp) {
      EXPECT_LE(e["logprob"].get<double>(), 0.0);
      ASSERT_EQ(e["top_logprobs"].size(), 3u);
      EXPECT_GE(e["top_logprobs"][0]["logprob"].get<double>(), e["top_logprobs"][1]["logprob"].get<double>());
      EXPECT_TRUE(e["bytes"].is_array());
    }
    total += static_cast<int>(lp.size());
  }
  EXPECT_LE(total, j["usage"]["completion_tokens"].get<int>());
  EXPECT_EQ(j["usage"]["prompt_tokens"], Post(s.port(), "/v1/chat/completions", Chat("numbers", 1).dump()).json()["usage"]["prompt_tokens"]);
  // The same seed gives the same choices.
  const Json again = Post(s.port(), "/v1/chat/completions", req.dump()).json();
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(again["choices"][i]["message"], j["choices"][i]["message"]);
}

TEST(ServerE2E, CompletionsWithTextAndTokenPrompts) {
  G4_REQUIRE_SHARED();
  TestServer s;
  test::Reply r = Post(s.port(), "/v1/completions", R"({"prompt": "Once upon a time", "max_tokens": 5, "temperature": 0,
                                                       "echo": true, "logprobs": 2})");
  ASSERT_EQ(r.status, 200) << r.body;
  const Json c = r.json()["choices"][0];
  EXPECT_EQ(c["text"].get<std::string>().rfind("Once upon a time", 0), 0u);
  EXPECT_EQ(c["logprobs"]["tokens"].size(), c["logprobs"]["token_logprobs"].size());
  EXPECT_EQ(c["logprobs"]["text_offset"][0], 16);
  r = Post(s.port(), "/v1/completions", R"({"prompt": [[2, 300, 301], [2, 400]], "max_tokens": 3, "temperature": 0, "stream": true})");
  const std::vector<Json> events = SseEvents(r.body);
  std::set<int> indices;
  for (const Json& e : events) {
    EXPECT_EQ(e["object"], "text_completion");
    indices.insert(e["choices"][0]["index"].get<int>());
  }
  EXPECT_EQ(indices, (std::set<int>{0, 1}));
  EXPECT_EQ(Post(s.port(), "/v1/completions", R"({"prompt": [2, 999999]})").status, 400);
}

TEST(ServerE2E, ModelsMetricsAndPage) {
  G4_REQUIRE_SHARED();
  TestServer s;
  const Json models = Get(s.port(), "/v1/models").json();
  EXPECT_EQ(models["object"], "list");
  EXPECT_EQ(models["data"][0]["id"], "tiny");
  EXPECT_EQ(Get(s.port(), "/v1/models/tiny").json()["id"], "tiny");
  EXPECT_EQ(Get(s.port(), "/v1/models/other").status, 404);
  Post(s.port(), "/v1/chat/completions", Chat("x", 3).dump());
  const std::string m = Get(s.port(), "/metrics").body;
  for (const char* name : {"gemma4_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"} 1\n",
                           "gemma4_generated_tokens_total ", "gemma4_prompt_tokens_total ", "gemma4_queue_depth 0\n",
                           "gemma4_kv_cache_usage_ratio ", "gemma4_time_to_first_token_seconds_count 1\n",
                           "gemma4_decode_tokens_per_second ", "gemma4_slots_total 2\n"}) {
    EXPECT_NE(m.find(name), std::string::npos) << name;
  }
  test::Reply page = Get(s.port(), "/");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("<script src=\"/chat.js\">"), std::string::npos);
  EXPECT_NE(Get(s.port(), "/chat.js").body.find("/v1/chat/completions"), std::string::npos);
}

// Speculative decoding inside the server: the trained default model drafting with its trained
// assistant answers concurrent greedy requests (streamed and not) exactly as without drafting, and
// /metrics shows the drafted and accepted tokens and more than one token per target forward.
TEST(ServerE2E, DraftingServerAnswersIdenticallyAndReportsAcceptance) {
  const std::string models = std::string(GEMMA4_SOURCE_DIR) + "/models/";
  std::vector<std::string> bodies;
  for (const char* q : {"Tell me a story", "Count to ten", "What is the capital of France?"}) {
    bodies.push_back(Chat(q, 40).dump());
  }
  auto answers = [&](TestServer& s) {
    std::vector<std::future<test::Reply>> futures;
    for (const auto& b : bodies) {
      futures.push_back(std::async(std::launch::async, [&, b] { return Post(s.port(), "/v1/chat/completions", b); }));
    }
    // Tool-call ids are random per response; everything else must be identical.
    auto without_ids = [](Json calls) {
      if (calls.is_array()) {
        for (auto& c : calls) c.erase("id");
      }
      return calls;
    };
    std::vector<std::string> out;
    for (auto& f : futures) {
      const test::Reply r = f.get();
      EXPECT_EQ(r.status, 200) << r.body;
      Json msg = r.json()["choices"][0]["message"];  // content, reasoning, tool calls
      if (msg.contains("tool_calls")) msg["tool_calls"] = without_ids(msg["tool_calls"]);
      out.push_back(msg.dump());
    }
    Json streamed = Chat("Tell me a story", 40);
    streamed["stream"] = true;
    const Streamed st = Collect(SseEvents(
        PostStream(s.port(), "/v1/chat/completions", streamed.dump(), [](const std::string&) { return true; }).body));
    out.push_back(st.reasoning + "|" + st.content + "|" + without_ids(st.calls).dump() + "|" + st.finish);
    return out;
  };
  TestOptions plain_opt;
  plain_opt.model = models + "gemma4-tiny-chat.gguf";
  plain_opt.slots = 3;
  TestServer plain(plain_opt);
  const auto want = answers(plain);
  TestOptions o = plain_opt;
  o.draft_mode = "assistant";
  o.draft = models + "gemma4-tiny-chat-assistant.gguf";
  TestServer drafting(o);
  const auto got = answers(drafting);
  EXPECT_EQ(got, want);
  const std::string m = Get(drafting.port(), "/metrics").body;
  auto value = [&](const std::string& name) {
    const size_t p = m.find("\n" + name + " ");
    EXPECT_NE(p, std::string::npos) << name << " missing in\n" << m;
    return p == std::string::npos ? -1.0 : std::stod(m.substr(p + name.size() + 2));
  };
  EXPECT_EQ(value("gemma4_speculative_decoding"), 1);
  EXPECT_GT(value("gemma4_draft_tokens_total"), 0);
  EXPECT_GT(value("gemma4_draft_accepted_tokens_total"), 0);
  EXPECT_GT(value("gemma4_draft_acceptance_ratio"), 0);
  EXPECT_GT(value("gemma4_tokens_per_target_forward"), 1.0);
  // Without drafting the same metrics are there, at zero and one token per forward.
  const std::string pm = Get(plain.port(), "/metrics").body;
  EXPECT_NE(pm.find("\ngemma4_speculative_decoding 0\n"), std::string::npos);
  EXPECT_NE(pm.find("\ngemma4_draft_tokens_total 0\n"), std::string::npos);
  EXPECT_NE(pm.find("\ngemma4_tokens_per_target_forward 1\n"), std::string::npos);
}

TEST(ServerE2E, ShutdownFinishesRunningRequestsAndRefusesNewOnes) {
  G4_REQUIRE_SHARED();
  auto s = std::make_unique<TestServer>();
  Json req = Chat("keep going", 40);
  req["stream"] = true;
  std::promise<void> started;
  bool once = false;
  auto stream = std::async(std::launch::async, [&] {
    return PostStream(s->port(), "/v1/chat/completions", req.dump(), [&](const std::string& chunk) {
      if (!once && chunk.find("\"content\":\"") != std::string::npos) {
        once = true;
        started.set_value();
      }
      return true;
    });
  });
  started.get_future().wait();
  auto stopping = std::async(std::launch::async, [&] { s->server().Shutdown(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  test::Reply refused = Post(s->port(), "/v1/chat/completions", Chat("x", 2).dump());
  EXPECT_TRUE(refused.status == 503 || refused.status == -1) << refused.status;  // refused, or no longer listening
  const Streamed st = Collect(SseEvents(stream.get().body));
  EXPECT_TRUE(st.finish == "length" || st.finish == "stop") << st.finish;  // it ran to its end
  stopping.get();
}

}  // namespace
}  // namespace g4::server
