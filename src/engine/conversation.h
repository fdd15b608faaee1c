// A chat conversation as a token stream the model has seen. Each turn only its new tokens are
// evaluated: the stream keeps exactly what the model read and wrote (its thinking included), and the
// next turn's prompt is the template's text from the end of the model's answer to the new generation
// prompt (e.g. "\n<|turn>user\n...<turn|>\n<|turn>model\n"), rendered by the native template.
// The messages themselves (OpenAI-style JSON) are kept too, for /save, /load and re-rendering.
#pragma once

#include <string>
#include <vector>

#include "chat/json.h"
#include "chat/output_parser.h"
#include "chat/render.h"
#include "engine/chat.h"
#include "engine/context_overflow.h"
#include "tokenizer/tokenizer.h"

namespace g4 {

class Conversation {
 public:
  Conversation(const ChatSetup& setup, const Tokenizer& tok);

  void SetSystem(const std::string& system);  // "" for none; re-renders from scratch
  void SetTools(const chat::Json& tools);     // a JSON array of OpenAI tools, or null
  void SetThinking(bool on);
  bool thinking() const { return thinking_; }

  void AddUser(const chat::Json& content);  // a string or a list of content parts
  // The result of a tool call of the last model message (a JSON object, or any other value).
  void AddToolResult(const std::string& call_id, const std::string& name, const chat::Json& content);
  // Records what the model generated: its tokens (ending with the stop token when it stopped on one)
  // and the parsed turn.
  void AddAssistant(const std::vector<int32_t>& generated, bool stopped, const chat::ParsedOutput& parsed);

  // The full token sequence to run for the next answer: the stream so far plus the new prompt text.
  // Also sets the state the output parser starts in.
  std::vector<int32_t> NextPrompt();
  chat::ParserState parser_state() const { return parser_state_; }
  // The same, at most `limit` tokens long: when it is longer, `policy` decides (context_overflow.h):
  // drop-oldest removes the oldest whole turns from the messages (the system prompt stays) and
  // re-renders; *fit says what went. Throws ContextOverflowError, leaving the conversation as it
  // was, when the prompt cannot be made to fit.
  std::vector<int32_t> NextPrompt(int64_t limit, ContextOverflow policy, FitResult* fit);

  const chat::Json& messages() const { return messages_; }
  // Replaces the conversation (e.g. /load); the stream is rebuilt on the next prompt.
  void SetMessages(const chat::Json& messages);
  void Clear();
  size_t n_tokens() const { return tokens_.size(); }
  int n_tool_calls() const { return n_calls_; }

 private:
  chat::Json AllMessages(const chat::Json& messages) const;  // system + messages
  std::string Render(bool add_generation_prompt) const;
  std::string Render(const chat::Json& messages, bool add_generation_prompt) const;

  ChatSetup setup_;
  const Tokenizer& tok_;
  std::string system_;
  chat::Json tools_;
  bool thinking_ = false;
  chat::Json messages_ = chat::Json::array();
  std::vector<int32_t> tokens_;   // what the model has read and written so far
  std::string after_answer_;      // render of the conversation ending at the last answer (no generation prompt)
  std::string answer_stop_;       // the stop text that ended the last answer in that render
  bool rebuild_ = true;           // the stream must be re-rendered from the messages
  chat::ParserState parser_state_ = chat::ParserState::kContent;
  int n_calls_ = 0;
};

}  // namespace g4
