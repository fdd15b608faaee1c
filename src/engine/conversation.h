// A chat conversation as a token stream the model has seen. Each turn only its new tokens are
// evaluated: the stream keeps exactly what the model read and wrote (its thinking included), and the
// next turn's prompt is the template's text from the end of the model's answer to the new generation
// prompt (e.g. "\n<|turn>user\n...<turn|>\n<|turn>model\n"), rendered by the native template.
// The messages themselves (OpenAI-style JSON) are kept too, for /save, /load and re-rendering.
//
// Images and audio: a user message's content parts {"type": "image"} / {"type": "audio"} (the shapes
// the server's requests normalize to; other fields such as "file" are kept) are written by the
// template as their placeholder tokens, and the stream holds, in their place, the inputs' embedded
// pieces (PromptMedia: markers and soft-token rows) given with the message. The embeddings are kept
// with the messages, so a later turn, a re-render (/load, thinking toggled) or dropping old turns
// never embeds them again, and the generator's prefix reuse (rows match by content key) never
// evaluates an unchanged prefix again.
#pragma once

#include <string>
#include <vector>

#include "chat/json.h"
#include "chat/output_parser.h"
#include "chat/render.h"
#include "engine/chat.h"
#include "engine/context_overflow.h"
#include "engine/prompt.h"
#include "tokenizer/tokenizer.h"

namespace g4 {

class Conversation {
 public:
  Conversation(const ChatSetup& setup, const Tokenizer& tok);

  void SetSystem(const std::string& system);  // "" for none; re-renders from scratch
  void SetTools(const chat::Json& tools);     // a JSON array of OpenAI tools, or null
  void SetThinking(bool on);
  bool thinking() const { return thinking_; }

  // A string or a list of content parts; `media` holds the embedded input of each image / audio part,
  // in the parts' order (checked against the template's placeholders when the prompt is made).
  void AddUser(const chat::Json& content, std::vector<PromptMedia> media = {});
  // The result of a tool call of the last model message (a JSON object, or any other value).
  void AddToolResult(const std::string& call_id, const std::string& name, const chat::Json& content);
  // Records what the model generated: its tokens (ending with the stop token when it stopped on one)
  // and the parsed turn.
  void AddAssistant(const std::vector<int32_t>& generated, bool stopped, const chat::ParsedOutput& parsed);

  // The full prompt to run for the next answer: the stream so far plus the new prompt text (media in
  // place). Also sets the state the output parser starts in. Fails, leaving the conversation as it
  // was, when the placeholders in the text do not pair up with the media given.
  const std::vector<PromptPiece>& NextPrompt();
  chat::ParserState parser_state() const { return parser_state_; }
  // The same, at most `limit` tokens long: when it is longer, `policy` decides (context_overflow.h):
  // drop-oldest removes the oldest whole turns from the messages (the system prompt stays) and
  // re-renders; *fit says what went. Throws ContextOverflowError, leaving the conversation as it
  // was, when the prompt cannot be made to fit.
  // Lengths are in positions (a soft token takes one).
  const std::vector<PromptPiece>& NextPrompt(int64_t limit, ContextOverflow policy, FitResult* fit);

  const chat::Json& messages() const { return messages_; }
  // Replaces the conversation (e.g. /load); the stream is rebuilt on the next prompt. `media`: per
  // message, as AddUser takes them (empty: no media at all).
  void SetMessages(const chat::Json& messages, std::vector<std::vector<PromptMedia>> media = {});
  const std::vector<std::vector<PromptMedia>>& media() const { return media_; }
  void Clear();
  size_t n_positions() const { return positions_; }
  int n_tool_calls() const { return n_calls_; }

 private:
  chat::Json AllMessages(const chat::Json& messages) const;  // system + messages
  std::string Render(bool add_generation_prompt) const;
  std::string Render(const chat::Json& messages, bool add_generation_prompt) const;
  // Brings the stream to the next prompt; returns true when it was rendered anew rather than appended.
  bool Extend();
  // Appends rendered text to `out`, its placeholders taking the media of messages [from, end);
  // returns the positions appended.
  size_t Append(std::vector<PromptPiece>* out, const std::string& text, size_t from) const;
  std::vector<PromptMedia> MediaFrom(size_t message) const;  // the media of messages [message, end)

  ChatSetup setup_;
  const Tokenizer* tok_;  // a pointer, so a conversation can be copied back (Chat::Turn on failure)
  std::string system_;
  chat::Json tools_;
  bool thinking_ = false;
  chat::Json messages_ = chat::Json::array();
  std::vector<std::vector<PromptMedia>> media_;  // per message of messages_
  std::vector<int32_t> placeholders_;            // the template's media placeholder tokens
  std::vector<PromptPiece> stream_;  // what the model has read and written so far
  size_t positions_ = 0;             // positions in stream_
  size_t streamed_messages_ = 0;     // messages whose media are in stream_
  std::string after_answer_;      // render of the conversation ending at the last answer (no generation prompt)
  std::string answer_stop_;       // the stop text that ended the last answer in that render
  bool rebuild_ = true;           // the stream must be re-rendered from the messages
  chat::ParserState parser_state_ = chat::ParserState::kContent;
  int n_calls_ = 0;
};

}  // namespace g4
