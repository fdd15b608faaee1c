// The incremental output parser: value syntax, markers, several calls, split invariance, malformed
// and truncated calls, and agreement with what the renderer writes.
#include "chat/output_parser.h"

#include <gtest/gtest.h>

#include <random>

#include "chat/render.h"

namespace g4::chat {
namespace {

using Kind = ParseEvent::Kind;

const std::string Q = "<|\"|>";

Json Args(const std::string& call_text) {
  const ParsedOutput out = ParseFull("<|tool_call>" + call_text + "<tool_call|>");
  EXPECT_TRUE(out.warnings.empty()) << call_text << ": " << (out.warnings.empty() ? "" : out.warnings[0]);
  EXPECT_EQ(out.tool_calls.size(), 1u) << call_text;
  return out.tool_calls.empty() ? Json() : out.tool_calls[0].arguments;
}

TEST(OutputParser, EveryValueType) {
  EXPECT_EQ(Args("call:f{key:" + Q + "text" + Q + ",n:3,neg:-12,f:2.5,e:1e-05,E:1E+3,flag:true,no:false,x:null,"
                 "py:None,obj:{a:{b:[]}},arr:[1," + Q + "s" + Q + ",[true],{}],empty:" + Q + Q + "}"),
            Json::parse(R"({"key":"text","n":3,"neg":-12,"f":2.5,"e":1e-05,"E":1000.0,"flag":true,"no":false,"x":null,
                           "py":null,"obj":{"a":{"b":[]}},"arr":[1,"s",[true],{}],"empty":""})"));
  EXPECT_EQ(Args("call:f{}"), Json::object());
  EXPECT_EQ(Args(" call:f{ a : 1 , b : [ 2 , 3 ] }"), Json::parse(R"({"a":1,"b":[2,3]})"));
  EXPECT_EQ(Args("call:f{" + Q + "quoted key" + Q + ":1}"), Json::parse(R"({"quoted key":1})"));
  EXPECT_EQ(Args("call:f{big:123456789012345678901234567890}")["big"].get<double>(), 1.2345678901234568e29);
  const ParsedOutput named = ParseFull("<|tool_call>call:lookup-user.v2{}<tool_call|>");
  ASSERT_EQ(named.tool_calls.size(), 1u);
  EXPECT_EQ(named.tool_calls[0].name, "lookup-user.v2");
}

TEST(OutputParser, StringsHoldAnything) {
  const std::string nasty = "a}b{c]d[e,f:g\"h'i\\j\nk\tl<tool_call|>m<turn|x>n\u00e9\U0001F642";
  const Json args = Args("call:f{s:" + Q + nasty + Q + ",t:" + Q + "}" + Q + "}");
  EXPECT_EQ(args["s"], nasty);
  EXPECT_EQ(args["t"], "}");
  // The JSON is valid: quotes, backslashes and control characters are escaped.
  EXPECT_EQ(Json::parse(args.dump()), args);
  EXPECT_NE(args.dump().find("\\\"h'i\\\\j\\nk\\tl"), std::string::npos);
  // Adjacent delimiters: an empty string, then a string right before the closing brace.
  EXPECT_EQ(Args("call:f{a:" + Q + Q + ",b:[" + Q + "x" + Q + "," + Q + Q + "]}"), Json::parse(R"({"a":"","b":["x",""]})"));
  // Invalid UTF-8 inside a string becomes U+FFFD so the arguments always serialise.
  EXPECT_EQ(Args("call:f{s:" + Q + "a\xff" "b" + Q + "}")["s"], "a\xEF\xBF\xBD" "b");
}

TEST(OutputParser, ThinkingContentAndSeveralCalls) {
  const std::string text = "<|channel>thought\nLet me check {both}.<channel|>Checking.<|tool_call>call:get_weather{city:" +
                           Q + "Tokyo" + Q + "}<tool_call|><|tool_call>call:get_time{tz:" + Q + "JST" + Q +
                           "}<tool_call|><|tool_response>ignored";
  const ParsedOutput out = ParseFull(text);
  EXPECT_EQ(out.thinking, "Let me check {both}.");
  EXPECT_EQ(out.content, "Checking.");
  ASSERT_EQ(out.tool_calls.size(), 2u);
  EXPECT_EQ(out.tool_calls[0].ToJson(), Json::parse(R"({"name":"get_weather","arguments":{"city":"Tokyo"}})"));
  EXPECT_EQ(out.tool_calls[1].ToJson(), Json::parse(R"({"name":"get_time","arguments":{"tz":"JST"}})"));
  EXPECT_TRUE(out.warnings.empty());
  EXPECT_TRUE(out.ended);
  EXPECT_EQ(out.stop, "<|tool_response>");
}

TEST(OutputParser, StopStrings) {
  for (const std::string stop : {"<turn|>", "<eos>", "<|tool_response>"}) {
    const ParsedOutput out = ParseFull("Answer." + stop + "after the stop");
    EXPECT_EQ(out.content, "Answer.");
    EXPECT_EQ(out.stop, stop);
  }
  const ParsedOutput unended = ParseFull("no stop <tur");
  EXPECT_EQ(unended.content, "no stop <tur");
  EXPECT_FALSE(unended.ended);
  // A stop inside the thought channel ends the turn too.
  const ParsedOutput in_thought = ParseFull("<|channel>thought\nhm<eos>x");
  EXPECT_EQ(in_thought.thinking, "hm");
  EXPECT_EQ(in_thought.stop, "<eos>");
  EXPECT_EQ(StopStrings(ChatFormat::kGemma4), (std::vector<std::string>{"<turn|>", "<eos>", "<|tool_response>"}));
  EXPECT_EQ(StopStrings(ChatFormat::kGemma3), (std::vector<std::string>{"<end_of_turn>", "<eos>"}));
}

TEST(OutputParser, StartsInAGivenState) {
  const ParsedOutput out = ParseFull("still thinking<channel|>Done.<turn|>", ChatFormat::kGemma4, ParserState::kThinking);
  EXPECT_EQ(out.thinking, "still thinking");
  EXPECT_EQ(out.content, "Done.");
  RenderOptions off, on;
  on.enable_thinking = true;
  const Json messages = Json::parse(R"([{"role": "user", "content": "hi"}])");
  EXPECT_EQ(InitialStateForPrompt(RenderGemma4(messages, nullptr, off), ChatFormat::kGemma4), ParserState::kContent);
  EXPECT_EQ(InitialStateForPrompt(RenderGemma4(messages, nullptr, on), ChatFormat::kGemma4), ParserState::kContent);
  EXPECT_EQ(InitialStateForPrompt("<|turn>model\n<|channel>thought\n", ChatFormat::kGemma4), ParserState::kThinking);
  // Marker text a user typed in an earlier turn does not count.
  EXPECT_EQ(InitialStateForPrompt("<|turn>user\n<|channel><turn|>\n<|turn>model\n", ChatFormat::kGemma4),
            ParserState::kContent);
}

TEST(OutputParser, ChannelHeaderEdgeCases) {
  EXPECT_EQ(ParseFull("<|channel>thought<channel|>answer").content, "answer");
  EXPECT_EQ(ParseFull("<|channel>thought<channel|>answer").thinking, "");
  // No newline within the header limit: everything after <|channel> is reasoning.
  const std::string long_text(100, 'x');
  EXPECT_EQ(ParseFull("<|channel>" + long_text + "<channel|>a").thinking, long_text);
  EXPECT_EQ(ParseFull("<|channel>thought\nA <|channel> inside<channel|>").thinking, "A <|channel> inside");
  EXPECT_EQ(ParseFull("stray <channel|> and <|\"|> and <tool_call|> in answer text").content,
            "stray <channel|> and <|\"|> and <tool_call|> in answer text");
}

TEST(OutputParser, MalformedCallsBecomeTextWithAWarning) {
  const std::vector<std::string> bad = {
      "call:f{a:1",                      // no closing brace
      "call:f{a:" + Q + "x}",            // unterminated string swallows the end marker: truncated
      "f{a:1}",                          // no call:
      "call:{a:1}",                      // no name
      "call:f g{a:1}",                   // space in the name
      "call:f{a 1}",                     // no colon
      "call:f{a:Tokyo}",                 // unquoted string
      "call:f{a:1,}",                    // trailing comma
      "call:f{a:01}",                    // not a JSON number
      "call:f{a:1e999}",                 // overflows a double
      "call:f{a:1}trailing",             // text after the arguments
      "call:f[1]",                       // arguments not an object
      "call:f{a:[1 2]}",                 // missing comma
      "call:f{" + std::string(200, '[') + std::string(200, ']') + "}",  // too deep
  };
  for (const std::string& call : bad) {
    const std::string text = "Before <|tool_call>" + call + "<tool_call|> after<turn|>";
    const ParsedOutput out = ParseFull(text);
    EXPECT_TRUE(out.tool_calls.empty()) << call;
    ASSERT_EQ(out.warnings.size(), 1u) << call;
    // The whole call comes out verbatim as answer text.
    if (call.find(Q + "x}") == std::string::npos) {
      EXPECT_EQ(out.content, "Before <|tool_call>" + call + "<tool_call|> after") << call;
      EXPECT_NE(out.warnings[0].find("malformed tool call"), std::string::npos) << out.warnings[0];
    } else {
      EXPECT_EQ(out.content, "Before <|tool_call>" + call + "<tool_call|> after") << call;
      EXPECT_NE(out.warnings[0].find("unfinished tool call before <turn|>"), std::string::npos) << out.warnings[0];
    }
    EXPECT_EQ(out.stop, "<turn|>");
  }
  // Truncated: the stream ends (or stops) inside a call.
  const ParsedOutput cut = ParseFull("x<|tool_call>call:f{a:" + Q + "par");
  EXPECT_EQ(cut.content, "x<|tool_call>call:f{a:" + Q + "par");
  ASSERT_EQ(cut.warnings.size(), 1u);
  EXPECT_NE(cut.warnings[0].find("unfinished tool call at the end"), std::string::npos);
  const ParsedOutput stopped = ParseFull("<|tool_call>call:f{a:1<eos>");
  EXPECT_EQ(stopped.content, "<|tool_call>call:f{a:1");
  EXPECT_EQ(stopped.stop, "<eos>");
  // A good call after a bad one still parses.
  const ParsedOutput mixed = ParseFull("<|tool_call>call:f{a:b}<tool_call|><|tool_call>call:g{a:1}<tool_call|>");
  ASSERT_EQ(mixed.tool_calls.size(), 1u);
  EXPECT_EQ(mixed.tool_calls[0].name, "g");
}

std::vector<ParseEvent> FeedPieces(const std::string& text, const std::vector<size_t>& cuts,
                                   ParserState initial = ParserState::kContent) {
  OutputParser parser(ChatFormat::kGemma4, initial);
  std::vector<ParseEvent> events;
  size_t from = 0;
  for (size_t cut : cuts) {
    parser.Feed(std::string_view(text).substr(from, cut - from), &events);
    from = cut;
  }
  parser.Feed(std::string_view(text).substr(from), &events);
  parser.Finish(&events);
  return CoalesceEvents(events);
}

const std::vector<std::string>& Samples() {
  static const std::vector<std::string> samples = {
      "<|channel>thought\nThe user wants {weather}; call it.<channel|>Let me look.<|tool_call>call:get_weather{city:" +
          Q + "Tokyo, \"JP\"\n}" + Q + ",days:3,opts:{units:[" + Q + "C" + Q + "],exact:false,x:null}}<tool_call|>"
          "<|tool_call>call:get_time{}<tool_call|><|tool_response>",
      "Plain answer with <angle> brackets, <|\"|> and a < at the end <",
      "<|channel>thought\nhm<channel|>Bad call <|tool_call>call:f{a:b}<tool_call|> then ok<turn|>",
      "<|tool_call>call:f{s:" + Q + "<tool_call|> inside" + Q + "}<tool_call|>tail<eos>",
      "truncated <|tool_call>call:f{a:" + Q + "open",
  };
  return samples;
}

TEST(OutputParser, EverySplitPointGivesTheSameEvents) {
  for (const std::string& text : Samples()) {
    const std::vector<ParseEvent> whole = FeedPieces(text, {});
    for (size_t i = 0; i <= text.size(); ++i) {
      ASSERT_EQ(FeedPieces(text, {i}), whole) << "split at " << i << " of " << text;
    }
    for (size_t i = 0; i < text.size(); ++i) {
      for (size_t j = i; j < std::min(text.size(), i + 20); ++j) {
        ASSERT_EQ(FeedPieces(text, {i, j}), whole) << "split at " << i << "," << j << " of " << text;
      }
    }
  }
}

TEST(OutputParser, OneTwoAndRandomBytePiecesGiveTheSameEvents) {
  std::mt19937 rng(7);
  for (const std::string& text : Samples()) {
    const std::vector<ParseEvent> whole = FeedPieces(text, {});
    for (size_t step : {1, 2, 3}) {
      std::vector<size_t> cuts;
      for (size_t i = step; i < text.size(); i += step) cuts.push_back(i);
      EXPECT_EQ(FeedPieces(text, cuts), whole) << step << "-byte pieces of " << text;
    }
    for (int trial = 0; trial < 200; ++trial) {
      std::vector<size_t> cuts;
      for (size_t i = 0;;) {
        i += 1 + rng() % 9;
        if (i >= text.size()) break;
        cuts.push_back(i);
      }
      ASSERT_EQ(FeedPieces(text, cuts), whole) << "random pieces of " << text;
    }
  }
}

TEST(OutputParser, EventsStreamAsTheyComplete) {
  OutputParser parser(ChatFormat::kGemma4);
  std::vector<ParseEvent> events;
  parser.Feed("<|channel>thought\nab", &events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0], (ParseEvent{Kind::kThinking, "ab", {}}));
  events.clear();
  parser.Feed("c<chan", &events);  // "<chan" may be the start of <channel|>: held back
  EXPECT_EQ(events, (std::vector<ParseEvent>{{Kind::kThinking, "c", {}}}));
  events.clear();
  parser.Feed("nel|>Hi <|tool_call>call:f{a:1}", &events);
  EXPECT_EQ(events, (std::vector<ParseEvent>{{Kind::kContent, "Hi ", {}}}));
  events.clear();
  parser.Feed("<tool_call|>", &events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kToolCall);
  EXPECT_EQ(events[0].call.arguments, Json::parse(R"({"a":1})"));
  events.clear();
  parser.Feed("<turn|>more", &events);
  EXPECT_EQ(events, (std::vector<ParseEvent>{{Kind::kEnd, "<turn|>", {}}}));
  EXPECT_TRUE(parser.ended());
  events.clear();
  parser.Feed("ignored", &events);
  parser.Finish(&events);
  EXPECT_TRUE(events.empty());
}

TEST(OutputParser, Gemma3IsAllContent) {
  const ParsedOutput out = ParseFull("<|channel>not special here<|tool_call>call:f{}<tool_call|><end_of_turn>x",
                                     ChatFormat::kGemma3);
  EXPECT_EQ(out.content, "<|channel>not special here<|tool_call>call:f{}<tool_call|>");
  EXPECT_TRUE(out.tool_calls.empty());
  EXPECT_EQ(out.stop, "<end_of_turn>");
}

// The renderer writes tool calls (format_argument, verified against Jinja in render_test.cc); the
// parser must read back exactly the arguments that went in.
TEST(OutputParser, ReadsBackWhatTheRendererWrites) {
  const Json args = Json::parse(R"({"city": "Tokyo, \"JP\"\n{}[]", "days": 3, "neg": -7, "ratio": 0.1, "tiny": 1e-7,
      "huge": 1e20, "whole": 2.0, "yes": true, "no": false, "none": null, "Nested": {"b": [1, {"c": "d"}], "A": {}},
      "list": [], "unicode": "\u00e9\u65e5\ud83d\ude42", "back\\slash": "\\"})");
  Json bare_args = args;
  bare_args.erase("back\\slash");  // bare keys cannot hold every character; the rest round-trips
  bare_args["backslash"] = "\\";
  const Json messages = {{{"role", "user"}, {"content", "q"}},
                         {{"role", "assistant"}, {"tool_calls", {{{"function", {{"name", "f"}, {"arguments", bare_args}}}}}}}};
  const std::string prompt = RenderGemma4(messages, nullptr);
  const size_t start = prompt.rfind("<|tool_call>");
  ASSERT_NE(start, std::string::npos) << prompt;
  const ParsedOutput out = ParseFull(prompt.substr(start));
  ASSERT_EQ(out.tool_calls.size(), 1u) << prompt;
  EXPECT_EQ(nlohmann::json(out.tool_calls[0].arguments), nlohmann::json(bare_args));
  EXPECT_EQ(out.stop, "<|tool_response>");
  EXPECT_EQ(FormatGemmaValue(Json::parse(R"({"b": null, "a": [1.5, "x", false]})")),
            "{a:[1.5," + Q + "x" + Q + ",false],b:None}");
}

}  // namespace
}  // namespace g4::chat
