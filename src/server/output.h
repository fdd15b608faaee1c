// What one choice wrote, as the APIs report it: the model's tokens go through the chat output
// parser (thinking, answer, tool calls) incrementally, so a stream can send each piece as soon as it
// is final; logprobs are collected per token. The same object gives the totals for a non-streamed
// answer and the finish reason.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "chat/output_parser.h"
#include "engine/scheduler.h"
#include "server/http_util.h"
#include "tokenizer/tokenizer.h"

namespace g4::server {

struct OutputSetup {
  bool chat = true;  // parse thinking and tool calls (otherwise the text is the answer)
  chat::ChatFormat format = chat::ChatFormat::kGemma4;
  chat::ParserState initial = chat::ParserState::kContent;
  const Tokenizer* tok = nullptr;
  std::vector<int32_t> eog;  // end-of-generation tokens: not part of the answer, no logprobs
  bool logprobs = false;     // the request asked for logprobs
};

// A tool call the model made, with the id the API reports it under.
struct MadeCall {
  std::string id;
  std::string name;
  Json arguments;  // an object
};

// The part of the output one token (or the end) made final.
struct OutputDelta {
  std::string content, reasoning;
  std::vector<MadeCall> calls;
  Json logprobs = Json::array();  // OpenAI chat entries: {token, logprob, bytes, top_logprobs}
  bool empty() const { return content.empty() && reasoning.empty() && calls.empty() && logprobs.empty(); }
};

class ChoiceOutput {
 public:
  explicit ChoiceOutput(const OutputSetup& setup);

  OutputDelta Token(const TokenEvent& e);
  OutputDelta Finish(const RequestResult& r);

  bool finished() const { return finished_; }
  const RequestResult& result() const { return result_; }
  const std::string& content() const { return content_; }
  const std::string& reasoning() const { return reasoning_; }
  const std::vector<MadeCall>& calls() const { return calls_; }
  const Json& logprobs() const { return logprobs_; }
  const std::vector<std::string>& warnings() const { return warnings_; }
  // "stop", "length", "tool_calls", "error" (result().error says what), or "abort" (cancelled).
  std::string FinishReason() const;

 private:
  void Apply(const std::vector<chat::ParseEvent>& events, OutputDelta* d);
  Json LogprobEntry(int32_t token, float logprob) const;

  OutputSetup setup_;
  std::unique_ptr<chat::OutputParser> parser_;
  std::string content_, reasoning_;
  std::vector<MadeCall> calls_;
  std::vector<std::string> warnings_;
  Json logprobs_ = Json::array();
  RequestResult result_;
  bool finished_ = false;
};

}  // namespace g4::server
