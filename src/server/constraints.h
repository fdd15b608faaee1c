// Constrained decoding for the server, on the scheduler's TokenConstraint hook:
//   * JSON output (response_format json_object / json_schema, Ollama format): the answer is one JSON
//     value matching the schema;
//   * forced tool calls (tool_choice "required" or a named function): the answer is
//     <|tool_call>call:NAME{ARGS}<tool_call|> with NAME one of the allowed functions and ARGS, in
//     the Gemma syntax, matching its parameters schema; "required" allows several calls in a row.
// With thinking on, the answer may start with a thought block (<|channel>...<channel|>, free text).
//
// The output the client sees goes through the chat output parser, which splits thinking, answer and
// tool calls at the format's markers, so a marker must never appear where the parser would act on it
// (e.g. "<|tool_call>" inside a JSON string); the constraint refuses such text even when spelled over
// several tokens. Tokens that decode to nothing (control and unused tokens) are refused too, so what
// the constraint accepts is exactly what the client receives.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "chat/format.h"
#include "engine/scheduler.h"
#include "server/json_matcher.h"
#include "tokenizer/tokenizer.h"

namespace g4::server {

// What the constraints need to know about a model's vocabulary and chat format; built once.
struct ConstraintVocab {
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_set<std::string, Hash, std::equal_to<>> hidden;  // texts of tokens the output never shows
  std::vector<std::string> stops;                                 // stop markers of the format
  std::vector<std::string> answer_markers;                        // markers the parser acts on in an answer
  std::string channel_start, channel_end, tool_call_start, tool_call_end;

  static std::shared_ptr<const ConstraintVocab> Make(const Tokenizer& tok, chat::ChatFormat format);
};

struct ToolSpec {
  std::string name;
  std::shared_ptr<const Schema> params;  // the arguments object
};

class OutputConstraint final : public TokenConstraint {
 public:
  static std::shared_ptr<OutputConstraint> Json(std::shared_ptr<const Schema> schema, bool allow_thought,
                                                std::shared_ptr<const ConstraintVocab> vocab);
  // several: one call or more ("required"); otherwise exactly one (a named function).
  static std::shared_ptr<OutputConstraint> ToolCalls(std::vector<ToolSpec> tools, bool several, bool allow_thought,
                                                     std::shared_ptr<const ConstraintVocab> vocab);

  bool Allows(std::string_view text) const override;
  void Accept(std::string_view text) override;
  bool Complete() const override;
  bool MustEnd() const override;

 private:
  struct State {
    enum Stage : uint8_t { kStart, kThought, kBody };
    enum Call : uint8_t { kOpen, kName, kArgs, kClose, kAfter };
    Stage stage = kStart;
    bool allow_thought = false;
    std::string tail;   // the last bytes written, to find markers spelled over several tokens
    // JSON output.
    std::optional<JsonMatcher> json;
    // Tool calls.
    bool tools = false, several = false;
    Call call = kOpen;
    size_t pos = 0;  // bytes of the opening / closing text matched
    std::string name;
    std::optional<JsonMatcher> args;
    std::shared_ptr<const std::vector<ToolSpec>> specs;

    bool Feed(std::string_view text, const ConstraintVocab& v);
    bool FeedBody(uint8_t b, const ConstraintVocab& v);
    bool Complete() const;
    bool Closed() const;
  };

  explicit OutputConstraint(std::shared_ptr<const ConstraintVocab> vocab) : vocab_(std::move(vocab)) {}
  bool FirstByteOk(uint8_t b) const;

  std::shared_ptr<const ConstraintVocab> vocab_;
  State s_;
  bool broken_ = false;
  mutable bool first_valid_ = false;  // first_ describes the current state
  mutable std::vector<uint8_t> first_;
};

}  // namespace g4::server
