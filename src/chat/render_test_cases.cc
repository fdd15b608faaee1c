#include "chat/render_test_cases.h"

#include <cstdint>
#include <string>
#include <vector>

namespace g4::chat::testing {
namespace {

// xorshift64*: small, deterministic on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t Next() {
    s_ ^= s_ >> 12;
    s_ ^= s_ << 25;
    s_ ^= s_ >> 27;
    return s_ * 2685821657736338717ull;
  }
  size_t Below(size_t n) { return static_cast<size_t>(Next() % n); }
  bool Chance(int percent) { return Below(100) < static_cast<size_t>(percent); }
  template <typename T>
  const T& Pick(const std::vector<T>& v) { return v[Below(v.size())]; }

 private:
  uint64_t s_;
};

const std::vector<std::string>& Texts() {
  static const std::vector<std::string> texts = {
      "Hello",
      "What is the weather in Tokyo?",
      "  padded with spaces  ",
      "",
      "\n\nleading newlines and trailing\n\n",
      "multi\nline\ntext",
      "tabs\tand\r\nCRLF\r\n",
      "quotes ' \" and a backslash \\ here",
      "braces {a:1} [x] and commas, colons:",
      "a <|\"|> delimiter inside",
      "thinking <|channel>secret thoughts<channel|>visible answer",
      "<|channel>only thoughts<channel|>",
      "two <|channel>a<channel|> channels <|channel>b<channel|> here",
      "unclosed <|channel>tail",
      "stray close<channel|> after",
      "unicode: h\u00e9llo w\u00f6rld \u00f1 \u65e5\u672c\u8a9e \U0001F642",
      "\u00a0non-breaking and ideographic spaces\u3000",
      "\u2028line separator\u2029",
      "\x1f unit separator and vertical tab \x0b",
      "Straße ΑΣ ΣΑ σ",
      "ends with a newline\n",
      "<turn|> a marker in user text <|turn>",
      "tab-only\t",
      "0",
  };
  return texts;
}

Json Part(const std::string& type, Rng& rng) {
  if (type == "text") return Json{{"type", "text"}, {"text", rng.Pick(Texts())}};
  return Json{{"type", type}};
}

// Content as a string, null, missing (nullptr result means "omit"), or a list of parts.
bool MakeContent(Rng& rng, bool allow_media, Json* content) {
  const size_t kind = rng.Below(10);
  if (kind < 5) {
    *content = rng.Pick(Texts());
  } else if (kind == 5) {
    *content = nullptr;
  } else if (kind == 6) {
    return false;
  } else {
    Json parts = Json::array();
    const size_t n = 1 + rng.Below(3);
    static const std::vector<std::string> media = {"image", "audio", "video", "unknown"};
    for (size_t i = 0; i < n; ++i) {
      parts.push_back(allow_media && rng.Chance(40) ? Part(rng.Pick(media), rng) : Part("text", rng));
    }
    if (rng.Chance(4)) parts.push_back(Json{{"type", "text"}});  // text part without text
    *content = parts;
  }
  return true;
}

// Argument values of every type the syntax has.
Json ArgValue(Rng& rng, int depth) {
  static const std::vector<Json> scalars = {
      "Tokyo", "", "with \"quotes\" and 'single'", "braces } { ] [ , :", "line\nbreak", "back\\slash",
      "\u00e9t\u00e9 \u65e5\u672c", 0, 3, -42, 9007199254740993LL, 1.5, -0.25, 0.1, 1e-7, 1e16, 1e20,
      123456789.125, -0.0, 2.0, true, false, nullptr,
  };
  const size_t kind = depth > 2 ? 0 : rng.Below(10);
  if (kind < 7) return rng.Pick(scalars);
  if (kind < 9) {
    Json obj = Json::object();
    static const std::vector<std::string> keys = {"b", "a", "B", "Zeta", "alpha", "_x", "k1", "K1", "\u00c9mile",
                                                  "\u03a9mega", "\u03c9x", "emile"};
    const size_t n = rng.Below(4);
    for (size_t i = 0; i < n; ++i) obj[rng.Pick(keys)] = ArgValue(rng, depth + 1);
    return obj;
  }
  Json arr = Json::array();
  const size_t n = rng.Below(4);
  for (size_t i = 0; i < n; ++i) arr.push_back(ArgValue(rng, depth + 1));
  return arr;
}

Json Arguments(Rng& rng) {
  const size_t kind = rng.Below(10);
  if (kind == 0) return R"({"city": "Paris", "n": 2})";  // a JSON string: copied verbatim
  if (kind == 1) return nullptr;
  Json args = Json::object();
  static const std::vector<std::string> keys = {"city", "days", "units", "Query", "query", "opts", "list", "x"};
  const size_t n = rng.Below(5);
  for (size_t i = 0; i < n; ++i) args[rng.Pick(keys)] = ArgValue(rng, 0);
  return args;
}

const std::vector<std::string>& ToolNames() {
  static const std::vector<std::string> names = {"get_weather", "search", "calc", "lookup-user", "ns.tool"};
  return names;
}

// A tool declaration exercising one corner of format_function_declaration / format_parameters.
Json Tool(size_t kind, const std::string& name) {
  Json fn = {{"name", name}, {"description", "Does " + name + "."}};
  switch (kind % 16) {
    case 0:
      fn["parameters"] = Json::parse(R"({"type": "object", "properties": {
          "city": {"type": "string", "description": "The city, e.g. \"Tokyo\""},
          "days": {"type": "integer", "description": "How many days"},
          "units": {"type": "string", "enum": ["C", "F"], "description": "Units"}},
        "required": ["city"]})");
      break;
    case 1:
      break;  // no parameters at all
    case 2:
      fn["parameters"] = Json::object();
      break;
    case 3:
      fn["parameters"] = Json::parse(R"({"type": "object", "properties": {}})");
      break;
    case 4:
      fn["parameters"] = Json::parse(R"({"type": "object", "properties": {
          "filter": {"type": "object", "description": "Nested", "properties": {
              "Zeta": {"type": "number"}, "alpha": {"type": "boolean", "nullable": true},
              "Beta": {"type": "object", "properties": {"deep": {"type": "string", "enum": ["x", "y"]}},
                       "required": ["deep"]}},
            "required": ["alpha", "Zeta"]}},
        "required": ["filter"]})");
      break;
    case 5:
      fn["parameters"] = Json::parse(R"({"type": "object", "properties": {
          "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "description": "Tags"},
          "points": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "number"},
              "y": {"type": "number"}}, "required": ["x", "y"], "description": "A point", "extra": null}},
          "matrix": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
          "any": {"type": "array"}, "multi": {"type": "array", "items": {"type": ["string", "null"]}}}})");
      break;
    case 6:
      fn["parameters"] = Json::parse(R"({"type": "object", "properties": {
          "description": {"type": "string"}, "type": {"type": "string"}, "required": {"type": "boolean"},
          "nullable": {"type": "string"}, "properties": {"type": "object"}, "ok": {"type": "string"}}})");
      break;
    case 7:
      fn["parameters"] = Json::parse(R"({"type": "object", "properties": {
          "maybe": {"type": ["string", "null"], "description": "A list type"},
          "flag": true, "nothing": null, "num": 3,
          "map": {"type": "object", "additionalProperties": {"type": "string"}, "title": "Map"}}})");
      break;
    case 8:
      fn["description"] = nullptr;
      fn["parameters"] = Json::parse(R"({"type": "OBJECT", "properties": {"q": {"type": "STRING"}}})");
      break;
    case 9:
      fn.erase("description");
      fn["parameters"] = Json::parse(R"({"properties": {"q": {"type": "string"}}, "required": ["q"]})");
      break;
    case 10:
      fn["parameters"] = Json::parse(R"({"type": "object", "properties": {"q": {"type": "string"}}})");
      fn["response"] = Json::parse(R"({"type": "object", "description": "The result"})");
      break;
    case 11:
      fn["parameters"] = Json::parse(R"({"type": "object", "properties": {"q": {"type": "string"}}})");
      fn["response"] = Json::parse(R"({"type": "string"})");
      break;
    case 12:
      fn["description"] = "Unicode \u00e9 \u65e5\u672c and <|\"|> and {braces}\nnewline";
      fn["parameters"] = Json::parse(R"({"type": "object", "properties": {
          "\u00e9t\u00e9": {"type": "string", "description": "accented key"},
          "Emile": {"type": "string"}, "\u00c9mile": {"type": "string"}, "zed": {"type": "string"}}})");
      break;
    case 13:
      fn["parameters"] = Json::parse(R"({"type": "object", "properties": {
          "mode": {"type": "string", "enum": ["fast", "slow", "it's"], "description": ""},
          "limit": {"type": "integer", "nullable": false, "minimum": 1},
          "obj": {"type": "object", "nullable": true, "required": ["a"]}}, "required": ["mode", "limit"]})");
      break;
    case 14:
      fn["parameters"] = Json::parse(R"({"type": "object", "required": [], "properties": {"x": {}}})");
      break;
    default:
      fn["parameters"] = Json::parse(R"({"type": "object", "properties": {
          "items_obj": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
          "str_req": {"type": "array", "items": {"required": "ab", "type": "object"}},
          "desc_list": {"type": "string", "description": ["not", "a", "string"]}}})");
      break;
  }
  return Json{{"type", "function"}, {"function", fn}};
}

Json ToolCall(Rng& rng, const std::string& id) {
  Json call = {{"id", id}, {"type", "function"}, {"function", {{"name", rng.Pick(ToolNames())}}}};
  Json args = Arguments(rng);
  if (!args.is_null() || rng.Chance(50)) call["function"]["arguments"] = args;
  if (rng.Chance(10)) call.erase("id");
  return call;
}

// The role:"tool" answer to a call, with every content shape the template distinguishes.
Json ToolMessage(Rng& rng, const Json& call) {
  Json msg = {{"role", "tool"}};
  const size_t kind = rng.Below(9);
  if (call.contains("id") && rng.Chance(80)) msg["tool_call_id"] = call["id"];
  if (!msg.contains("tool_call_id") || rng.Chance(30)) msg["name"] = call["function"]["name"];
  if (kind < 3) {
    msg["content"] = rng.Pick(std::vector<Json>{"22 degrees", R"({"temperature": 22})", "", "  spaced  "});
  } else if (kind == 3) {
    msg["content"] = Json::array({Json{{"type", "text"}, {"text", "part one "}},
                                  Json{{"type", "image"}}, Json{{"type", "text"}, {"text", " two"}}});
  } else if (kind == 4) {
    msg["content"] = rng.Pick(std::vector<Json>{3, 2.5, true, nullptr});
  } else if (kind == 5) {
    msg["content"] = Json::object();
  } else if (kind == 6) {
    msg["content"] = Json::array();
  } else if (kind == 7) {
    // no content at all
    if (rng.Chance(10)) msg["content"] = Json{{"temperature", 22}};  // the template cannot render this
    if (rng.Chance(5)) {
      msg.erase("name");
      msg["tool_call_id"] = "no such call";  // nor this: no name to give the response
    }
  } else {
    msg["content"] = rng.Pick(Texts());
  }
  return msg;
}

Json AssistantMessage(Rng& rng, bool with_calls, int* next_id, std::vector<Json>* followers) {
  Json msg = {{"role", "assistant"}};
  Json content;
  if (MakeContent(rng, false, &content)) msg["content"] = content;
  if (rng.Chance(30)) msg[rng.Chance(50) ? "reasoning_content" : "reasoning"] = "I should think about it.\n";
  if (rng.Chance(5)) msg["reasoning"] = "";
  if (with_calls) {
    Json calls = Json::array();
    const size_t n = 1 + rng.Below(3);
    for (size_t i = 0; i < n; ++i) calls.push_back(ToolCall(rng, "call_" + std::to_string((*next_id)++)));
    msg["tool_calls"] = calls;
    const size_t answered = rng.Chance(85) ? n : rng.Below(n + 1);
    for (size_t i = 0; i < answered; ++i) followers->push_back(ToolMessage(rng, calls[i]));
    if (rng.Chance(10)) {
      // Gemma's native form: responses embedded in the assistant message.
      Json responses = Json::array();
      responses.push_back(Json{{"name", calls[0]["function"]["name"]}, {"response", {{"temperature", 22}, {"Unit", "C"}}}});
      responses.push_back(Json{{"response", "plain"}});
      msg["tool_responses"] = responses;
    }
  } else if (rng.Chance(5)) {
    msg["tool_calls"] = Json::array();
  }
  return msg;
}

void AddVariants(const Json& messages, const Json& tools, Rng& rng, bool all_options, Json* cases) {
  static const char* kTemplates[] = {"gemma4", "gemma4_interleaved", "gemma3"};
  for (const char* tmpl : kTemplates) {
    const bool g3 = std::string(tmpl) == "gemma3";
    const int variants = all_options ? 4 : 1;
    for (int v = 0; v < variants; ++v) {
      const int opt = all_options ? v : static_cast<int>(rng.Below(4));
      Json c = {{"template", tmpl}, {"messages", messages}, {"tools", g3 ? Json(nullptr) : tools},
                {"add_generation_prompt", opt != 3}, {"bos_token", "<bos>"}};
      if (opt == 1) c["enable_thinking"] = true;
      if (opt == 2) c["enable_thinking"] = false;
      cases->push_back(std::move(c));
    }
  }
}

}  // namespace

Json GenerateRenderCases() {
  Json cases = Json::array();
  Rng rng(20250701);
  int next_id = 0;

  // Every role sequence of length 1..3 (with simple contents), under every option set.
  static const std::vector<std::string> roles = {"system", "developer", "user", "assistant", "tool"};
  for (size_t len = 1; len <= 3; ++len) {
    size_t total = 1;
    for (size_t i = 0; i < len; ++i) total *= roles.size();
    for (size_t code = 0; code < total; ++code) {
      Json messages = Json::array();
      size_t c = code;
      for (size_t i = 0; i < len; ++i) {
        const std::string& role = roles[c % roles.size()];
        c /= roles.size();
        Json msg = {{"role", role}, {"content", role + " text " + std::to_string(i)}};
        if (role == "tool") msg["name"] = "search";
        messages.push_back(msg);
      }
      AddVariants(messages, code % 3 == 0 ? Json::array({Tool(0, "get_weather")}) : Json(nullptr), rng, true, &cases);
    }
  }

  // Every tool declaration shape, alone and together.
  Json all_tools = Json::array();
  for (size_t k = 0; k < 16; ++k) {
    const Json tool = Tool(k, ToolNames()[k % ToolNames().size()] + std::to_string(k));
    all_tools.push_back(tool);
    AddVariants(Json::array({Json{{"role", "user"}, {"content", "hi"}}}), Json::array({tool}), rng, false, &cases);
  }
  AddVariants(Json::array({Json{{"role", "system"}, {"content", "  Be brief.  "}}, Json{{"role", "user"}, {"content", "hi"}}}),
              all_tools, rng, true, &cases);

  // dictsort corner cases: keys equal when lower-cased keep their order; Greek capital sigma lowers
  // to the final form at the end of a word; multi-code-point mappings (İ lowers to i + dot).
  const Json tricky_args = Json::parse(R"({"\u03b1\u03c3": 1, "\u0391\u03a3": 2, "b": 3, "B": 4, "\u0130x": 5,
      "iy": 6, "\u00c9": 7, "f": 8, "\u0416": 9, "\u0430": 10, "\u1e9e": 11, "\u00df": 12})");
  AddVariants(Json::array({Json{{"role", "user"}, {"content", "x"}},
                           Json{{"role", "assistant"}, {"tool_calls", Json::array({Json{{"id", "1"},
                               {"function", {{"name", "f"}, {"arguments", tricky_args}}}}})}},
                           Json{{"role", "tool"}, {"tool_call_id", "1"}, {"content", 1}}}),
              nullptr, rng, true, &cases);

  // Odd shapes the templates still accept (or reject) in their own way.
  static const char* kOdd[] = {
      R"([{"role": "system", "content": [{"type": "text", "text": "it's \"q\"\u00e9\u0007\u00ad"}, {"type": "image"}]},
          {"role": "user", "content": "x"}])",
      R"([{"role": "system", "content": null}, {"role": "user", "content": 3}])",
      R"([{"role": "developer", "content": {"k": [1.5, true, null]}}, {"role": "user"}])",
      R"([{"role": "system", "content": 1e-7}, {"role": "user", "content": [{"type": "text", "text": null}, "str", 5]}])",
      R"([{"role": "user", "content": "q"}, {"role": "assistant", "reasoning_content": 5,
          "tool_calls": [{"function": {"name": "f", "arguments": {}}}]}])",
      R"([{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": {"function": {"name": "f"}}}])",
      R"([{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"id": 1, "function": {"name": "f",
          "arguments": [1, 2]}}]}, {"role": "tool", "tool_call_id": 1.0, "content": "r"}])",
      R"([{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f"}}]},
          {"role": "tool", "tool_call_id": "b", "name": 7, "content": "r"}])",
      R"([{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f"}}]},
          {"role": "tool", "tool_call_id": "a", "content": [{"type": "text"}]}])",
      R"([{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f"}}]},
          {"role": "tool", "tool_call_id": "a", "content": ["not a part"]}])",
      R"([{"role": "user", "content": "q"}, {"role": "assistant", "content": "", "tool_responses": "ab"}])",
      R"([{"role": "user", "content": "q"}, {"role": "assistant", "content": "c", "tool_responses": [{"name": null, "response": 1}]}])",
      R"([{"role": "user", "content": "q"}, {"role": "assistant", "content": [{"type": "text", "text": 5}]}])",
      R"([{"role": "user", "content": "q"}, {"role": "assistant", "content": [{"type": "text"}, {"type": "image"}]}])",
      R"([{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"function": {"name": "f"}}],
          "content": [{"type": "image"}]}, {"role": "user", "content": "next"}])",
      R"([{"role": "tool", "name": "f", "content": "orphan"}, {"role": "user", "content": "q"}])",
      R"([{"role": "system", "content": "only a system message"}])",
  };
  for (const char* odd : kOdd) AddVariants(Json::parse(odd), nullptr, rng, true, &cases);

  // Gemma 3 conversations: alternating user/assistant turns after an optional system message, with
  // now and then a slip the template rejects.
  for (int n = 0; n < 120; ++n) {
    Json messages = Json::array();
    if (rng.Chance(40)) {
      Json sys = {{"role", "system"}};
      if (rng.Chance(70)) {
        sys["content"] = rng.Pick(Texts());
      } else {
        sys["content"] = Json::array({Part("text", rng), Part("text", rng)});
      }
      messages.push_back(sys);
    }
    const size_t turns = 1 + rng.Below(6);
    for (size_t t = 0; t < turns; ++t) {
      const bool user = t % 2 == 0;
      Json msg = {{"role", user ? "user" : "assistant"}};
      Json content;
      if (MakeContent(rng, user, &content)) msg["content"] = content;
      if (rng.Chance(50)) msg["content"] = rng.Pick(Texts());
      if (rng.Chance(3)) msg["role"] = user ? "assistant" : "user";
      messages.push_back(msg);
    }
    for (int opt = 0; opt < 2; ++opt) {
      cases.push_back(Json{{"template", "gemma3"}, {"messages", messages}, {"tools", nullptr},
                           {"add_generation_prompt", opt == 0}, {"bos_token", opt == 0 ? "<bos>" : ""}});
    }
  }

  // Random multi-turn conversations.
  for (int n = 0; n < 220; ++n) {
    Json messages = Json::array();
    if (rng.Chance(40)) {
      Json sys = {{"role", rng.Chance(70) ? "system" : "developer"}};
      Json content;
      if (MakeContent(rng, false, &content)) sys["content"] = content;
      if (rng.Chance(60)) sys["content"] = rng.Pick(Texts());
      messages.push_back(sys);
    }
    const size_t turns = 1 + rng.Below(4);
    for (size_t t = 0; t < turns; ++t) {
      Json user = {{"role", "user"}};
      Json content;
      if (MakeContent(rng, true, &content)) user["content"] = content;
      if (rng.Chance(70)) user["content"] = rng.Pick(Texts());
      messages.push_back(user);
      if (t + 1 == turns && rng.Chance(50)) break;  // end on a user message
      const size_t steps = rng.Chance(40) ? 1 + rng.Below(3) : 1;
      for (size_t s = 0; s < steps; ++s) {
        std::vector<Json> followers;
        const bool calls = s + 1 < steps || rng.Chance(40);
        messages.push_back(AssistantMessage(rng, calls, &next_id, &followers));
        for (Json& f : followers) messages.push_back(std::move(f));
      }
      if (rng.Chance(5)) messages.push_back(Json{{"role", "system"}, {"content", "A later system message."}});
    }
    Json tools = nullptr;
    if (rng.Chance(50)) {
      tools = Json::array();
      const size_t nt = 1 + rng.Below(3);
      for (size_t i = 0; i < nt; ++i) tools.push_back(Tool(rng.Below(16), rng.Pick(ToolNames())));
    } else if (rng.Chance(10)) {
      tools = Json::array();
    }
    AddVariants(messages, tools, rng, n % 4 == 0, &cases);
  }
  return cases;
}

}  // namespace g4::chat::testing
