#include "engine/conversation.h"

#include "util/error.h"

namespace g4 {

Conversation::Conversation(const ChatSetup& setup, const Tokenizer& tok) : setup_(setup), tok_(tok) {}

void Conversation::SetSystem(const std::string& system) {
  system_ = system;
  rebuild_ = true;
}
void Conversation::SetTools(const chat::Json& tools) {
  tools_ = tools;
  rebuild_ = true;
}
void Conversation::SetThinking(bool on) {
  if (on != thinking_) rebuild_ = true;
  thinking_ = on;
}
void Conversation::SetMessages(const chat::Json& messages) {
  if (!messages.is_array()) Fail("a conversation must be a JSON array of messages");
  messages_ = messages;
  rebuild_ = true;
}
void Conversation::Clear() {
  messages_ = chat::Json::array();
  tokens_.clear();
  rebuild_ = true;
}

chat::Json Conversation::AllMessages(const chat::Json& messages) const {
  chat::Json all = chat::Json::array();
  if (!system_.empty()) all.push_back({{"role", "system"}, {"content", system_}});
  for (const auto& m : messages) all.push_back(m);
  return all;
}

std::string Conversation::Render(bool add_generation_prompt) const { return Render(messages_, add_generation_prompt); }

std::string Conversation::Render(const chat::Json& messages, bool add_generation_prompt) const {
  chat::RenderOptions ro;
  ro.add_generation_prompt = add_generation_prompt;
  ro.enable_thinking = thinking_;
  ro.bos_token = setup_.bos_text;
  const chat::Json tools = tools_.is_array() && !tools_.empty() ? tools_ : chat::Json();
  return chat::Render(setup_.format, AllMessages(messages), tools, ro);
}

void Conversation::AddUser(const chat::Json& content) {
  messages_.push_back({{"role", "user"}, {"content", content}});
}

void Conversation::AddToolResult(const std::string& call_id, const std::string& name, const chat::Json& content) {
  // Gemma's native form: the responses are attached to the model message that made the calls, so a
  // JSON object result renders as response:NAME{key:value,...} (an OpenAI tool message could only
  // carry it as a string, response:NAME{value:"..."}).
  if (messages_.empty() || messages_.back().value("role", "") != "assistant" || !messages_.back().contains("tool_calls")) {
    Fail("a tool result (call %s) must follow the model message that made the call", call_id.c_str());
  }
  chat::Json& msg = messages_.back();
  if (!msg.contains("tool_responses")) msg["tool_responses"] = chat::Json::array();
  msg["tool_responses"].push_back({{"name", name}, {"response", content}});
}

void Conversation::AddAssistant(const std::vector<int32_t>& generated, bool stopped, const chat::ParsedOutput& parsed) {
  chat::Json msg = {{"role", "assistant"}, {"content", parsed.content}};
  if (!parsed.thinking.empty()) msg["reasoning_content"] = parsed.thinking;
  if (!parsed.tool_calls.empty()) {
    chat::Json calls = chat::Json::array();
    for (const auto& c : parsed.tool_calls) {
      calls.push_back({{"id", "call_" + std::to_string(++n_calls_)},
                       {"type", "function"},
                       {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    }
    msg["tool_calls"] = calls;
  }
  messages_.push_back(msg);
  tokens_.insert(tokens_.end(), generated.begin(), generated.end());
  const auto& m = chat::MarkersFor(setup_.format);
  const bool template_stop = stopped && (parsed.stop == m.turn_end || (!m.tool_response_start.empty() &&
                                                                       parsed.stop == m.tool_response_start));
  if (template_stop) {
    answer_stop_ = parsed.stop;
  } else {
    // The answer was cut (token limit, Ctrl-C) or ended with another token (<eos>): close the turn
    // as the template does, so the next turn starts where the template expects it.
    const int32_t end = tok_.Lookup(m.turn_end);
    if (end >= 0) tokens_.push_back(end);
    answer_stop_ = m.turn_end;
  }
  after_answer_ = Render(/*add_generation_prompt=*/false);
}

std::vector<int32_t> Conversation::NextPrompt() {
  const std::string full = Render(/*add_generation_prompt=*/true);
  parser_state_ = chat::InitialStateForPrompt(full, setup_.format);
  // Incremental: the text from the end of the model's last stop marker to the new generation prompt.
  bool incremental = !rebuild_ && !tokens_.empty() && full.compare(0, after_answer_.size(), after_answer_) == 0;
  size_t cut = std::string::npos;
  if (incremental) {
    cut = after_answer_.rfind(answer_stop_);
    incremental = cut != std::string::npos;
  }
  if (incremental) {
    const std::string tail = after_answer_.substr(cut + answer_stop_.size()) + full.substr(after_answer_.size());
    const auto more = TokenizePrompt(tok_, tail);
    tokens_.insert(tokens_.end(), more.begin(), more.end());
  } else {
    tokens_ = TokenizePrompt(tok_, full);
  }
  rebuild_ = false;
  return tokens_;
}

}  // namespace g4

namespace g4 {

std::vector<int32_t> Conversation::NextPrompt(int64_t limit, ContextOverflow policy, FitResult* fit) {
  *fit = FitResult{};
  const std::vector<int32_t> saved_tokens = tokens_;
  const bool saved_rebuild = rebuild_;
  std::vector<int32_t> prompt = NextPrompt();
  fit->tokens = static_cast<int64_t>(prompt.size());
  if (fit->tokens <= limit) return prompt;
  // The stream as it stands first (the model's own tokens, thinking included), then full re-renders
  // of the shortened conversation (the system prompt is not in messages_, so it always stays).
  bool first = true;
  auto count = [&](const chat::Json& messages) -> int64_t {
    if (first) {
      first = false;
      return static_cast<int64_t>(prompt.size());
    }
    return static_cast<int64_t>(TokenizePrompt(tok_, Render(messages, /*add_generation_prompt=*/true)).size());
  };
  chat::Json messages = messages_;
  try {
    *fit = FitConversation(&messages, limit, policy, count);
  } catch (const Error&) {
    tokens_ = saved_tokens;
    rebuild_ = saved_rebuild;
    throw;
  }
  messages_ = std::move(messages);
  rebuild_ = true;
  prompt = NextPrompt();
  fit->tokens = static_cast<int64_t>(prompt.size());
  return prompt;
}

}  // namespace g4
