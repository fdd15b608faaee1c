#include "chat/parser_fuzz_check.h"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "chat/gemma_syntax.h"
#include "chat/output_parser.h"

namespace g4::chat {
namespace {

void Require(bool ok, const std::string& what) {
  if (!ok) throw std::logic_error(what);
}

std::vector<ParseEvent> Run(std::string_view text, ChatFormat format, ParserState initial,
                            const std::vector<size_t>& cuts) {
  OutputParser parser(format, initial);
  std::vector<ParseEvent> events;
  size_t from = 0;
  for (size_t cut : cuts) {
    parser.Feed(text.substr(from, cut - from), &events);
    from = cut;
  }
  parser.Feed(text.substr(from), &events);
  parser.Finish(&events);
  return CoalesceEvents(events);
}

void CheckRoundTrip(const Json& value) {
  const std::string written = FormatGemmaValue(value, /*quote_keys=*/true);
  Json back;
  std::string error;
  Require(ParseGemmaValue(written, kGemmaStringDelimiter, &back, &error), "re-reading " + written + ": " + error);
  // Written keys are sorted: compare as unordered objects.
  Require(nlohmann::json(back) == nlohmann::json(value), "round trip changed " + value.dump() + " into " + back.dump());
}

}  // namespace

void CheckParserProperties(std::string_view data) {
  if (data.empty()) return;
  const auto flags = static_cast<uint8_t>(data[0]);
  const std::string_view text = data.substr(1);
  const ChatFormat format = (flags & 1) ? ChatFormat::kGemma3 : ChatFormat::kGemma4;
  const ParserState initial = (flags & 2) ? ParserState::kThinking : ParserState::kContent;

  const std::vector<ParseEvent> whole = Run(text, format, initial, {});
  std::vector<size_t> bytes;
  for (size_t i = 1; i < text.size(); ++i) bytes.push_back(i);
  Require(Run(text, format, initial, bytes) == whole, "byte-by-byte feeding differs");
  std::vector<size_t> random;
  uint32_t state = flags * 2654435761u + 1;
  for (size_t i = 0;;) {
    state = state * 1103515245u + 12345u;
    i += 1 + (state >> 16) % 7;
    if (i >= text.size()) break;
    random.push_back(i);
  }
  Require(Run(text, format, initial, random) == whole, "random pieces differ");

  Require(!whole.empty() && whole.back().kind == ParseEvent::Kind::kEnd, "no kEnd at the end");
  for (size_t i = 0; i + 1 < whole.size(); ++i) Require(whole[i].kind != ParseEvent::Kind::kEnd, "kEnd before the end");

  const ParsedOutput full = ParseFull(text, format, initial);
  std::string content, thinking;
  size_t calls = 0;
  for (const ParseEvent& e : whole) {
    if (e.kind == ParseEvent::Kind::kContent) content += e.text;
    if (e.kind == ParseEvent::Kind::kThinking) thinking += e.text;
    if (e.kind != ParseEvent::Kind::kToolCall) continue;
    Require(!e.call.name.empty(), "tool call without a name");
    Require(e.call.arguments.is_object(), "tool call arguments are not an object");
    (void)e.call.ToJson().dump();  // throws on invalid UTF-8
    CheckRoundTrip(e.call.arguments);
    Require(calls < full.tool_calls.size() && full.tool_calls[calls] == e.call, "ParseFull tool calls differ");
    ++calls;
  }
  Require(calls == full.tool_calls.size(), "ParseFull found another number of tool calls");
  Require(content == full.content && thinking == full.thinking, "ParseFull text differs");
  if (text.find('<') == std::string_view::npos) {
    Require((initial == ParserState::kThinking ? thinking : content) == text, "plain text did not pass through");
  }

  Json value;
  std::string error;
  if (ParseGemmaValue(text, kGemmaStringDelimiter, &value, &error)) {
    (void)value.dump();
    CheckRoundTrip(value);
  }
}

}  // namespace g4::chat
