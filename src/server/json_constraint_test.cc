// The JSON-schema subset, the incremental matcher and the output constraints: valid values are
// accepted however they are split, random walks through what the matcher allows never reach a dead
// end and always end in a value that parses and validates, and markers never slip into an answer.
#include <gtest/gtest.h>

#include <random>

#include "chat/gemma_syntax.h"
#include "server/constraints.h"
#include "server/json_matcher.h"
#include "server/json_schema.h"
#include "util/error.h"

namespace g4::server {
namespace {

std::shared_ptr<const Schema> Compile(const char* text, bool strict = true) {
  return Schema::Compile(Json::parse(text), "schema", strict);
}

bool Matches(const std::shared_ptr<const Schema>& s, std::string_view text, Dialect d = Dialect::kJson) {
  JsonMatcher m(s, s->root(), d);
  return m.Feed(text) && m.Complete();
}

std::string CompileError(const char* text, bool strict = true) {
  try {
    Compile(text, strict);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(JsonSchema, CompileErrorsNameTheKeyword) {
  EXPECT_EQ(CompileError(R"({"type": "strin"})"),
            "schema.type: unknown type 'strin' (expected null, boolean, integer, number, string, array or object)");
  EXPECT_NE(CompileError(R"({"properties": {"a": {"pattern": "x+"}}})").find("schema.properties.a.pattern: this keyword "
                                                                            "is not supported"),
            std::string::npos);
  EXPECT_EQ(CompileError(R"({"properties": {"a": {"pattern": "x+"}}})", /*strict=*/false), "");
  EXPECT_EQ(CompileError(R"({"type": "string", "minLength": 3, "maxLength": 2})"),
            "schema: minLength is greater than maxLength");
  EXPECT_EQ(CompileError(R"({"type": "integer", "minimum": 1.2, "maximum": 1.8})"),
            "schema: no integer lies between minimum and maximum");
  EXPECT_NE(CompileError(R"({"type": "object", "required": ["x"], "additionalProperties": false})").find("'x' is required"),
            std::string::npos);
  EXPECT_NE(CompileError(R"({"$ref": "http://example.com/s.json"})").find("only references into the same schema"),
            std::string::npos);
  EXPECT_NE(CompileError(R"({"type": "string", "enum": [1, 2]})").find("no value of enum/const"), std::string::npos);
  EXPECT_EQ(CompileError("false"), "schema: the schema allows no value");
  EXPECT_EQ(CompileError("3"), "schema: a schema must be an object or a boolean");
}

TEST(JsonSchema, ValidatesTheSubset) {
  auto s = Compile(R"({"type": "object", "properties": {
      "name": {"type": "string", "minLength": 1, "maxLength": 5},
      "age": {"type": "integer", "minimum": 0, "exclusiveMaximum": 150},
      "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2},
      "pet": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/pet"}]}},
    "required": ["name"], "additionalProperties": false,
    "$defs": {"pet": {"type": "object", "properties": {"kind": {"const": "cat"}}, "required": ["kind"]}}})");
  EXPECT_EQ(s->Validate(Json::parse(R"({"name": "Ann", "age": 3, "tags": ["a"], "pet": {"kind": "cat"}})")), "");
  EXPECT_EQ(s->Validate(Json::parse(R"({"name": "Ann", "pet": null})")), "");
  EXPECT_EQ(s->Validate(Json::parse(R"({"age": 3})")), "/: missing required property 'name'");
  EXPECT_EQ(s->Validate(Json::parse(R"({"name": "Annabel"})")), "/name: longer than maxLength");
  EXPECT_EQ(s->Validate(Json::parse(R"({"name": "A", "age": 150})")), "/age: above the maximum");
  EXPECT_EQ(s->Validate(Json::parse(R"({"name": "A", "age": 1.5})")), "/age: wrong type number");
  EXPECT_EQ(s->Validate(Json::parse(R"({"name": "A", "x": 1})")), "/: property 'x' is not allowed");
  EXPECT_EQ(s->Validate(Json::parse(R"({"name": "A", "tags": ["c"]})")), "/tags/0: not one of the enum values");
  EXPECT_NE(s->Validate(Json::parse(R"({"name": "A", "pet": {"kind": "dog"}})")), "");
}

TEST(JsonMatcher, AcceptsValidAndRefusesInvalidJson) {
  auto s = Compile(R"({"type": "object", "properties": {
      "name": {"type": "string", "maxLength": 3}, "n": {"type": "integer", "minimum": -5, "maximum": 20},
      "x": {"type": "number"}, "ok": {"type": "boolean"}, "e": {"enum": ["red", "green", 7]}},
    "required": ["name"], "additionalProperties": false})");
  EXPECT_TRUE(Matches(s, R"({"name": "abc"})"));
  EXPECT_TRUE(Matches(s, "{ \"n\" : 20 ,\n \"name\":\"\\u00e9\\ud83d\\ude00\", \"e\": 7, \"ok\": false}"));
  EXPECT_TRUE(Matches(s, R"({"name": "", "x": -12.5e-3, "e": "green"})"));
  EXPECT_FALSE(Matches(s, R"({"name": "abcd"})"));          // maxLength
  EXPECT_FALSE(Matches(s, R"({"n": 1})"));                  // name is required
  EXPECT_FALSE(Matches(s, R"({"name": "a", "n": 21})"));    // maximum
  EXPECT_FALSE(Matches(s, R"({"name": "a", "n": 1.0})"));   // an integer has no fraction
  EXPECT_FALSE(Matches(s, R"({"name": "a", "n": 05})"));    // leading zero
  EXPECT_FALSE(Matches(s, R"({"name": "a", "name": "b"})")); // duplicate key
  EXPECT_FALSE(Matches(s, R"({"name": "a", "z": 1})"));     // additionalProperties
  EXPECT_FALSE(Matches(s, R"({"name": "a", "e": "blue"})")); // enum
  EXPECT_FALSE(Matches(s, "{\"name\": \"\\udc00\"}"));      // lone low surrogate
  EXPECT_FALSE(Matches(s, "{\"name\": \"\xc3\x28\"}"));     // invalid UTF-8
  EXPECT_FALSE(Matches(s, "{\"name\": \"a\nb\"}"));         // raw control character
  // A number is refused as soon as no completion can be in range.
  JsonMatcher m(s, s->root(), Dialect::kJson);
  ASSERT_TRUE(m.Feed(R"({"n": )"));
  EXPECT_TRUE(m.Accepts('2'));
  EXPECT_TRUE(m.Accepts('-'));
  ASSERT_TRUE(m.Feed("-"));
  EXPECT_TRUE(m.Accepts('5'));
  EXPECT_FALSE(m.Accepts('6'));
  EXPECT_TRUE(m.Accepts('0'));  // -0 is in range
}

TEST(JsonMatcher, GemmaSyntax) {
  auto s = Compile(R"({"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"},
                       "units": {"type": "array", "items": {"enum": ["C", "F"]}}}, "required": ["city"]})");
  EXPECT_TRUE(Matches(s, "{city:<|\"|>Tokyo<|\"|>,days:3,units:[<|\"|>C<|\"|>]}", Dialect::kGemma));
  EXPECT_TRUE(Matches(s, "{city:<|\"|>a <b> <|x|> \"q\"<|\"|>,extra:true}", Dialect::kGemma));
  EXPECT_FALSE(Matches(s, "{days:3}", Dialect::kGemma));
  EXPECT_FALSE(Matches(s, "{city:\"Tokyo\"}", Dialect::kGemma));
  EXPECT_FALSE(Matches(s, "{city:<|\"|>a<|\"|>,units:[<|\"|>K<|\"|>]}", Dialect::kGemma));
}

TEST(JsonMatcher, ClosedAndCompleteAtTheTop) {
  auto num = Compile(R"({"type": "integer", "maximum": 99})");
  JsonMatcher m(num, num->root(), Dialect::kJson);
  ASSERT_TRUE(m.Feed("42"));
  EXPECT_TRUE(m.Complete());
  EXPECT_FALSE(m.Closed());      // a number ends only when something else comes...
  EXPECT_FALSE(m.Accepts('0'));  // ...and here no digit may follow: 420 > 99
  auto obj = Schema::AnyObject();
  JsonMatcher o(obj, obj->root(), Dialect::kJson);
  EXPECT_FALSE(o.Accepts('['));
  ASSERT_TRUE(o.Feed("{\"a\": [1, {}]}"));
  EXPECT_TRUE(o.Closed());
  EXPECT_FALSE(o.Accepts(' '));
}

// ---- Random schemas and values -------------------------------------------------------------------

class Gen {
 public:
  explicit Gen(uint32_t seed) : rng_(seed) {}
  int Int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool Coin(double p = 0.5) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  std::mt19937& rng() { return rng_; }

  std::string Word() {
    std::string w;
    const int n = Int(1, 6);
    for (int i = 0; i < n; ++i) w += static_cast<char>('a' + Int(0, 25));
    return w;
  }

  Json Schema(int depth) {
    const int kind = Int(0, depth > 2 ? 5 : 8);
    switch (kind) {
      case 0: return {{"type", "null"}};
      case 1: return {{"type", "boolean"}};
      case 2: {
        Json s = {{"type", "integer"}};
        if (Coin()) s["minimum"] = Int(-50, 10);
        if (Coin()) s["maximum"] = Int(11, 300);
        if (Coin(0.2)) s["exclusiveMinimum"] = Int(-60, -51);
        return s;
      }
      case 3: {
        Json s = {{"type", "number"}};
        if (Coin()) s["minimum"] = Int(-100, 0) / 4.0;
        if (Coin()) s["maximum"] = Int(1, 100) / 8.0;
        return s;
      }
      case 4: {
        Json s = {{"type", "string"}};
        if (Coin()) s["minLength"] = Int(0, 3);
        if (Coin()) s["maxLength"] = Int(3, 8);
        return s;
      }
      case 5: {
        Json e = Json::array();
        const int n = Int(1, 4);
        for (int i = 0; i < n; ++i) e.push_back(Coin(0.7) ? Json(Word()) : Json(Int(-20, 1000)));
        return Coin(0.2) ? Json{{"const", e[0]}} : Json{{"enum", e}};
      }
      case 6: {
        Json s = {{"type", "array"}, {"items", Schema(depth + 1)}};
        if (Coin()) s["minItems"] = Int(0, 2);
        if (Coin()) s["maxItems"] = Int(2, 4);
        return s;
      }
      case 7: {
        Json s = {{"type", "object"}};
        Json props = Json::object(), req = Json::array();
        const int n = Int(0, 4);
        for (int i = 0; i < n; ++i) {
          const std::string k = Word() + std::to_string(i);
          props[k] = Schema(depth + 1);
          if (Coin()) req.push_back(k);
        }
        s["properties"] = props;
        if (!req.empty()) s["required"] = req;
        if (Coin(0.6)) s["additionalProperties"] = false;
        return s;
      }
      default: {  // anyOf with branches of different types (so that oneOf would agree)
        Json s = {{"anyOf", Json::array({{{"type", "null"}}, Schema(depth + 1)})}};
        if (s["anyOf"][1].value("type", "") == "null") s["anyOf"][1] = {{"type", "boolean"}};
        return s;
      }
    }
  }

  Json Value(const SchemaNode* n, int depth = 0) {
    if (!n) return Int(0, 9);
    if (!n->any_of.empty()) return Value(n->any_of[static_cast<size_t>(Int(0, static_cast<int>(n->any_of.size()) - 1))], depth);
    if (n->has_enum) return n->enum_values[static_cast<size_t>(Int(0, static_cast<int>(n->enum_values.size()) - 1))];
    std::vector<uint8_t> types;
    for (uint8_t t : {SchemaNode::kNull, SchemaNode::kBoolean, SchemaNode::kInteger, SchemaNode::kNumber,
                      SchemaNode::kString, SchemaNode::kArray, SchemaNode::kObject}) {
      if ((n->types & t) && !(depth > 3 && (t == SchemaNode::kArray || t == SchemaNode::kObject))) types.push_back(t);
    }
    if (types.empty()) types.push_back(SchemaNode::kNull);
    switch (types[static_cast<size_t>(Int(0, static_cast<int>(types.size()) - 1))]) {
      case SchemaNode::kNull: return nullptr;
      case SchemaNode::kBoolean: return Coin();
      case SchemaNode::kInteger: {
        double lo = n->minimum ? std::ceil(*n->minimum) : -1000, hi = n->maximum ? std::floor(*n->maximum) : 1000;
        if (n->exclusive_minimum && lo == *n->minimum) lo += 1;
        if (n->exclusive_maximum && hi == *n->maximum) hi -= 1;
        return static_cast<int64_t>(lo + std::floor((hi - lo + 1) * std::uniform_real_distribution<double>(0, 0.999)(rng_)));
      }
      case SchemaNode::kNumber: {
        const double lo = n->minimum ? *n->minimum : -1000, hi = n->maximum ? *n->maximum : 1000;
        double v = std::round((lo + (hi - lo) * std::uniform_real_distribution<double>(0.01, 0.99)(rng_)) * 64) / 64;
        if (v <= lo || v >= hi) v = (lo + hi) / 2;
        return v;
      }
      case SchemaNode::kString: {
        const int64_t lo = n->min_length, hi = n->max_length >= 0 ? n->max_length : lo + 6;
        const int64_t len = lo + Int(0, static_cast<int>(hi - lo));
        static const char* kPieces[] = {"a", "Z", " ", "\"", "\\", "/", "\n", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "<", "|", "\x01"};
        std::string s;
        for (int64_t i = 0; i < len; ++i) s += kPieces[Int(0, 12)];
        return s;
      }
      case SchemaNode::kArray: {
        const int64_t lo = n->min_items, hi = n->max_items >= 0 ? n->max_items : lo + 3;
        Json a = Json::array();
        const int64_t len = lo + Int(0, static_cast<int>(hi - lo));
        for (int64_t i = 0; i < len; ++i) a.push_back(Value(n->items, depth + 1));
        return a;
      }
      default: {
        Json o = Json::object();
        for (const auto& [k, child] : n->properties) {
          if (n->IsRequired(k) || Coin()) o[k] = Value(child, depth + 1);
        }
        if (n->additional_allowed && Coin(0.3)) o["zz" + Word()] = Value(n->additional, depth + 1);
        return o;
      }
    }
  }

  // JSON text with random whitespace between tokens.
  std::string Spaced(const Json& v) {
    std::string out;
    auto ws = [&] {
      if (Coin(0.3)) out += Coin() ? " " : "\n  ";
    };
    if (v.is_object()) {
      out += '{';
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) out += ',';
        first = false;
        ws();
        out += Json(it.key()).dump();
        ws();
        out += ':';
        ws();
        out += Spaced(*it);
        ws();
      }
      out += '}';
    } else if (v.is_array()) {
      out += '[';
      for (size_t i = 0; i < v.size(); ++i) {
        if (i) out += ',';
        ws();
        out += Spaced(v[i]);
      }
      out += ']';
    } else if (v.is_string() && Coin(0.3)) {
      out += v.dump(-1, ' ', /*ensure_ascii=*/true);  // \uXXXX escapes, surrogate pairs included
    } else {
      out += v.dump();
    }
    return out;
  }

  // Feeds text in random pieces.
  bool FeedSplit(JsonMatcher& m, const std::string& text) {
    size_t i = 0;
    while (i < text.size()) {
      const size_t n = std::min(text.size() - i, static_cast<size_t>(Int(1, 6)));
      if (!m.Feed(std::string_view(text).substr(i, n))) return false;
      i += n;
    }
    return true;
  }

 private:
  std::mt19937 rng_;
};

TEST(JsonMatcher, RandomValuesOfRandomSchemasAreAccepted) {
  Gen g(1234);
  for (int round = 0; round < 400; ++round) {
    const Json sj = g.Schema(0);
    auto s = Schema::Compile(sj, "schema", true);
    for (int k = 0; k < 5; ++k) {
      const Json v = g.Value(s->root());
      ASSERT_EQ(s->Validate(v), "") << sj.dump() << "\n" << v.dump();
      const std::string json = g.Spaced(v);
      JsonMatcher m(s, s->root(), Dialect::kJson);
      ASSERT_TRUE(g.FeedSplit(m, json) && m.Complete()) << sj.dump() << "\n" << json;
      if (!v.is_number()) {
        EXPECT_TRUE(m.Closed()) << json;
      }
      // The Gemma spelling (strings without escapes) of the same value.
      if (v.dump().find("\\u") == std::string::npos) {
        const std::string gemma = chat::FormatGemmaValue(v);
        JsonMatcher mg(s, s->root(), Dialect::kGemma);
        ASSERT_TRUE(g.FeedSplit(mg, gemma) && mg.Complete()) << sj.dump() << "\n" << gemma;
      }
    }
  }
}

// Bytes a walk may pick: structure, digits, letters, escapes, the Gemma delimiter, UTF-8 pieces.
const std::string& Alphabet() {
  static const std::string a = [] {
    std::string s = "{}[],:\" \n\\/-+.EU<|>\x01\xc3\xe2\xf0\x80\x82\x90\x9f\xa9\xac\xbfN";
    for (char c = 'a'; c <= 'z'; ++c) s += c;
    for (char c = '0'; c <= '9'; ++c) s += c;
    return s;
  }();
  return a;
}

// Walks through what the matcher accepts until the value is complete: there is always a next byte,
// and what comes out parses and validates.
void Walk(Gen& g, const std::shared_ptr<const Schema>& s, Dialect d, const std::string& schema_text) {
  JsonMatcher m(s, s->root(), d);
  std::string text;
  for (int step = 0; step < 2000; ++step) {
    if (m.Closed() || (m.Complete() && g.Coin(0.3))) break;
    std::vector<uint8_t> ok;
    for (char c : Alphabet()) {
      if (m.Accepts(static_cast<uint8_t>(c))) ok.push_back(static_cast<uint8_t>(c));
    }
    if (ok.empty()) {
      ASSERT_TRUE(m.Complete()) << "dead end after '" << text << "' for " << schema_text;
      break;
    }
    // Lean towards closing things so that walks end.
    uint8_t b = ok[static_cast<size_t>(g.Int(0, static_cast<int>(ok.size()) - 1))];
    if (g.Coin(0.75)) {
      for (uint8_t pref : {'"', '>', '}', ']', '1', ',', 'n', 't', 'f'}) {
        if (std::find(ok.begin(), ok.end(), pref) != ok.end()) {
          b = pref;
          break;
        }
      }
    }
    ASSERT_TRUE(m.FeedByte(b));
    text += static_cast<char>(b);
  }
  if (!m.Complete()) return;  // a long walk cut short: nothing to check
  Json v;
  if (d == Dialect::kJson) {
    ASSERT_NO_THROW(v = Json::parse(text)) << text;
  } else {
    std::string err;
    ASSERT_TRUE(chat::ParseGemmaValue(text, chat::kGemmaStringDelimiter, &v, &err)) << err << ": " << text;
  }
  EXPECT_EQ(s->Validate(v), "") << text << " for " << schema_text;
}

TEST(JsonMatcher, RandomWalksAlwaysEndInValidValues) {
  Gen g(99);
  for (int round = 0; round < 200; ++round) {
    const Json sj = g.Schema(0);
    auto s = Schema::Compile(sj, "schema", true);
    for (int k = 0; k < 3; ++k) {
      Walk(g, s, Dialect::kJson, sj.dump());
      Walk(g, s, Dialect::kGemma, sj.dump());
      if (HasFatalFailure()) return;
    }
  }
}

// ---- Output constraints ---------------------------------------------------------------------------

std::shared_ptr<const ConstraintVocab> TestVocab() {
  auto v = std::make_shared<ConstraintVocab>();
  v->hidden = {"<|turn>", "<mask>"};
  v->stops = {"<turn|>", "<eos>", "<|tool_response>"};
  v->channel_start = "<|channel>";
  v->channel_end = "<channel|>";
  v->tool_call_start = "<|tool_call>";
  v->tool_call_end = "<tool_call|>";
  v->answer_markers = {"<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>", "<turn|>", "<eos>", "<|tool_response>"};
  return v;
}

bool FeedTokens(TokenConstraint& c, const std::vector<std::string>& tokens) {
  for (const auto& t : tokens) {
    if (!c.Allows(t)) return false;
    c.Accept(t);
  }
  return true;
}

TEST(OutputConstraint, ToolCallsFollowTheFunctions) {
  std::vector<ToolSpec> tools = {
      {"get_weather", Compile(R"({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})")},
      {"get_time", nullptr}};
  auto c = OutputConstraint::ToolCalls(tools, /*several=*/false, /*allow_thought=*/false, TestVocab());
  EXPECT_FALSE(c->Allows("Sure"));
  EXPECT_FALSE(c->Allows("<|turn>"));
  ASSERT_TRUE(FeedTokens(*c, {"<|tool_call>", "call", ":", "get_", "weather", "{", "city", ":", "<|\"|>", "Paris",
                              "<|\"|>", "}"}));
  EXPECT_FALSE(c->Complete());
  EXPECT_TRUE(c->Allows("<tool_call|>"));
  c->Accept("<tool_call|>");
  EXPECT_TRUE(c->Complete());
  EXPECT_TRUE(c->MustEnd());
  // An unknown function, and missing required arguments, are refused.
  auto d = OutputConstraint::ToolCalls(tools, true, false, TestVocab());
  ASSERT_TRUE(FeedTokens(*d, {"<|tool_call>", "call:get_"}));
  EXPECT_FALSE(d->Allows("stock{"));
  ASSERT_TRUE(FeedTokens(*d, {"weather{"}));
  EXPECT_FALSE(d->Allows("}"));
  ASSERT_TRUE(FeedTokens(*d, {"city:<|\"|>x<|\"|>}<tool_call|>"}));
  EXPECT_TRUE(d->Complete());
  EXPECT_FALSE(d->MustEnd());  // "required": another call may follow
  EXPECT_TRUE(FeedTokens(*d, {"<|tool_call>", "call:get_time{}", "<tool_call|>"}));
}

TEST(OutputConstraint, JsonAnswerNeverContainsMarkers) {
  auto c = OutputConstraint::Json(Schema::AnyObject(), /*allow_thought=*/true, TestVocab());
  EXPECT_FALSE(c->Allows("Hello"));
  ASSERT_TRUE(FeedTokens(*c, {"<|channel>", "thought\nI will <|tool_call> answer"}));
  EXPECT_FALSE(c->Allows("<|channel>"));  // no thought inside a thought
  EXPECT_FALSE(c->Allows("<eos>"));
  ASSERT_TRUE(FeedTokens(*c, {"<channel|>"}));
  EXPECT_FALSE(c->Allows("<turn|>"));
  ASSERT_TRUE(FeedTokens(*c, {"{\"", "a\": \"x"}));
  EXPECT_FALSE(c->Allows("<|tool_call>"));
  EXPECT_FALSE(c->Allows("<mask>"));
  ASSERT_TRUE(FeedTokens(*c, {"<", "|tool", "_call"}));
  EXPECT_FALSE(c->Allows(">"));  // the marker spelled over several tokens
  ASSERT_TRUE(FeedTokens(*c, {" >\"}"}));
  EXPECT_TRUE(c->Complete());
  EXPECT_TRUE(c->MustEnd());
  // Without thinking the answer starts at once.
  auto d = OutputConstraint::Json(Schema::AnyObject(), false, TestVocab());
  EXPECT_FALSE(d->Allows("<|channel>"));
  EXPECT_TRUE(d->Allows(" {"));
}

}  // namespace
}  // namespace g4::server
