// Parsing what the model writes, incrementally, as it is generated. The model's turn is
//   [<|channel>thought\n REASONING <channel|>] ANSWER [<|tool_call>call:NAME{ARGS}<tool_call|>]...
// followed by a stop string (<turn|>, <eos>, or <|tool_response> when it wants a tool's answer).
// The parser is fed decoded text pieces and emits events: thinking and answer text as it streams,
// each tool call once complete (name plus JSON arguments), warnings, and the end of the turn.
//
// Piece boundaries do not matter: special tokens arrive as their literal text, but the parser only
// ever looks at the concatenated text, holding back a tail that could still become a marker, so the
// same text split anywhere yields the same events (text deltas may be cut differently; joined, they
// are identical). A malformed or unfinished tool call never throws: it is reported as a warning and
// its text passes through as answer text.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "chat/format.h"
#include "chat/gemma_syntax.h"

namespace g4::chat {

enum class ParserState {
  kContent,   // answer text: the start after a generation prompt (with thinking off the 12B/31B
              // template has already closed an empty thought channel)
  kThinking,  // inside the thought channel, after its "thought\n" header
};

struct ParseEvent {
  enum class Kind {
    kThinking,  // text: a piece of reasoning
    kContent,   // text: a piece of the answer
    kToolCall,  // call: a complete tool call
    kWarning,   // text: what was wrong (the offending text also comes out as kContent)
    kEnd,       // text: the stop string that ended the turn, or "" when the stream just ended
  };
  Kind kind;
  std::string text;
  ToolCall call;

  bool operator==(const ParseEvent& other) const = default;
};

class OutputParser {
 public:
  explicit OutputParser(ChatFormat format, ParserState initial = ParserState::kContent);
  // With another set of markers. No marker may contain another one (true of both Gemma formats): the
  // parser decides as soon as a whole marker is in view.
  explicit OutputParser(const Markers& markers, ParserState initial = ParserState::kContent);

  // Feeds the next decoded text; appends what it completes to *events. Text after the end of the
  // turn is ignored.
  void Feed(std::string_view text, std::vector<ParseEvent>* events);

  // The stream ended without a stop string (token limit, cancellation): flushes the held-back text,
  // reports an unfinished tool call, and emits kEnd with an empty stop string. Idempotent.
  void Finish(std::vector<ParseEvent>* events);

  bool ended() const { return state_ == State::kDone; }

 private:
  enum class State { kContent, kChannelHeader, kThinking, kToolCall, kDone };

  void Process(bool final, std::vector<ParseEvent>* events);
  // One step; false when it needs more input.
  bool Step(bool final, std::vector<ParseEvent>* events);
  bool StepText(bool final, ParseEvent::Kind kind, std::vector<ParseEvent>* events);
  bool StepChannelHeader(bool final, std::vector<ParseEvent>* events);
  bool StepToolCall(bool final, std::vector<ParseEvent>* events);
  void FinishToolCall(std::vector<ParseEvent>* events);
  void AbandonToolCall(const std::string& why, std::vector<ParseEvent>* events);
  void End(const std::string& stop, std::vector<ParseEvent>* events);

  // The earliest of `candidates` in buf_ (ties: the longest); false if none is there yet.
  bool FindMarker(const std::vector<const std::string*>& candidates, size_t* pos, const std::string** which) const;
  // How many trailing bytes of buf_ could be the start of one of `candidates`.
  size_t HeldBack(const std::vector<const std::string*>& candidates) const;

  Markers m_;
  State state_;
  std::string buf_;        // text not yet consumed
  std::string call_raw_;   // the tool call so far, after <|tool_call>
  bool in_string_ = false; // inside a <|"|> string of the tool call
};

// Emits events of the same text kind one after another as a single event, so that the results of
// feeding the same text in different pieces can be compared.
std::vector<ParseEvent> CoalesceEvents(const std::vector<ParseEvent>& events);

// Everything the model wrote in one turn, parsed at once.
struct ParsedOutput {
  std::string thinking;
  std::string content;
  std::vector<ToolCall> tool_calls;
  std::vector<std::string> warnings;
  std::string stop;    // the stop string that ended the turn ("" if none)
  bool ended = false;  // a stop string was seen
};
ParsedOutput ParseFull(std::string_view text, ChatFormat format = ChatFormat::kGemma4,
                       ParserState initial = ParserState::kContent);

// Where the model's output starts, given the rendered prompt: inside the thought channel when the
// prompt leaves one open (a <|channel> after the last <channel|>), else in answer text.
ParserState InitialStateForPrompt(std::string_view prompt, ChatFormat format);

}  // namespace g4::chat
