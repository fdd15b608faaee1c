#include "engine/conversation.h"

#include <cstdint>

#include "util/error.h"

namespace g4 {

Conversation::Conversation(const ChatSetup& setup, const Tokenizer& tok) : setup_(setup), tok_(&tok) {
  const auto& m = chat::MarkersFor(setup_.format);
  for (const std::string& name : {m.image, m.audio}) {
    const int32_t id = name.empty() ? -1 : tok.Lookup(name);
    if (id >= 0) placeholders_.push_back(id);
  }
}

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
void Conversation::SetMessages(const chat::Json& messages, std::vector<std::vector<PromptMedia>> media) {
  if (!messages.is_array()) Fail("a conversation must be a JSON array of messages");
  if (media.empty()) media.resize(messages.size());
  if (media.size() != messages.size()) Fail("%zu messages but media for %zu", messages.size(), media.size());
  messages_ = messages;
  media_ = std::move(media);
  rebuild_ = true;
}
void Conversation::Clear() {
  messages_ = chat::Json::array();
  media_.clear();
  stream_.clear();
  positions_ = 0;
  streamed_messages_ = 0;
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

void Conversation::AddUser(const chat::Json& content, std::vector<PromptMedia> media) {
  messages_.push_back({{"role", "user"}, {"content", content}});
  media_.push_back(std::move(media));
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
  media_.emplace_back();
  std::vector<int32_t> add = generated;
  const auto& m = chat::MarkersFor(setup_.format);
  const bool template_stop = stopped && (parsed.stop == m.turn_end || (!m.tool_response_start.empty() &&
                                                                       parsed.stop == m.tool_response_start));
  if (template_stop) {
    answer_stop_ = parsed.stop;
  } else {
    // The answer was cut (token limit, Ctrl-C) or ended with another token (<eos>): close the turn
    // as the template does, so the next turn starts where the template expects it.
    const int32_t end = tok_->Lookup(m.turn_end);
    if (end >= 0) add.push_back(end);
    answer_stop_ = m.turn_end;
  }
  positions_ += AppendWithMedia(&stream_, add, {}, {});
  streamed_messages_ = messages_.size();
  after_answer_ = Render(/*add_generation_prompt=*/false);
}

std::vector<PromptMedia> Conversation::MediaFrom(size_t message) const {
  std::vector<PromptMedia> out;
  for (size_t i = message; i < media_.size(); ++i) out.insert(out.end(), media_[i].begin(), media_[i].end());
  return out;
}

size_t Conversation::Append(std::vector<PromptPiece>* out, const std::string& text, size_t from) const {
  const std::vector<PromptMedia> media = MediaFrom(from);
  try {
    return AppendWithMedia(out, TokenizePrompt(*tok_, text), placeholders_, media);
  } catch (const Error& e) {
    Fail("%s (is <|image|> or <|audio|> written as text in a message?)", e.what());
  }
}

const std::vector<PromptPiece>& Conversation::NextPrompt() {
  Extend();
  return stream_;
}

bool Conversation::Extend() {
  const std::string full = Render(/*add_generation_prompt=*/true);
  const chat::ParserState state = chat::InitialStateForPrompt(full, setup_.format);
  // Incremental: the text from the end of the model's last stop marker to the new generation prompt.
  bool incremental = !rebuild_ && !stream_.empty() && full.compare(0, after_answer_.size(), after_answer_) == 0;
  size_t cut = std::string::npos;
  if (incremental) {
    cut = after_answer_.rfind(answer_stop_);
    incremental = cut != std::string::npos;
  }
  if (incremental) {
    const std::string tail = after_answer_.substr(cut + answer_stop_.size()) + full.substr(after_answer_.size());
    positions_ += Append(&stream_, tail, streamed_messages_);
  } else {
    std::vector<PromptPiece> fresh;  // the whole conversation, every message's media in place
    positions_ = Append(&fresh, full, 0);
    stream_ = std::move(fresh);
  }
  streamed_messages_ = messages_.size();
  parser_state_ = state;
  rebuild_ = false;
  return !incremental;
}

}  // namespace g4

namespace g4 {

namespace {
constexpr const char* kIndex = "g4_message_index";  // tags each message while turns are dropped
}  // namespace

const std::vector<PromptPiece>& Conversation::NextPrompt(int64_t limit, ContextOverflow policy, FitResult* fit) {
  *fit = FitResult{};
  const size_t pieces = stream_.size(), last_tokens = stream_.empty() ? 0 : stream_.back().tokens.size();
  const size_t positions = positions_, streamed = streamed_messages_;
  const bool rebuild = rebuild_;
  const bool rebuilt = Extend();
  fit->tokens = static_cast<int64_t>(positions_);
  if (fit->tokens <= limit) return stream_;
  // Back to the stream as it was (an incremental prompt only appended to it).
  const int64_t streamed_positions = fit->tokens;
  if (rebuilt) {
    rebuild_ = true;
  } else {
    stream_.resize(pieces);
    if (pieces > 0 && stream_.back().embd.empty()) stream_.back().tokens.resize(last_tokens);
    rebuild_ = rebuild;
  }
  positions_ = positions;
  streamed_messages_ = streamed;
  // The stream as it stands first (the model's own tokens, thinking included), then full re-renders
  // of the shortened conversation (the system prompt is not in messages_, so it always stays). Each
  // message is tagged with its index, to find the media of the messages that remain.
  chat::Json messages = messages_;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].is_object()) messages[i][kIndex] = i;
  }
  auto kept = [&](const chat::Json& candidate) {
    std::vector<size_t> idx;
    for (const auto& m : candidate) idx.push_back(m.is_object() && m.contains(kIndex) ? m.at(kIndex).get<size_t>() : SIZE_MAX);
    return idx;
  };
  bool first = true;
  auto count = [&](const chat::Json& candidate) -> int64_t {
    if (first) {
      first = false;
      return streamed_positions;
    }
    int64_t n = static_cast<int64_t>(TokenizePrompt(*tok_, Render(candidate, /*add_generation_prompt=*/true)).size());
    for (size_t i : kept(candidate)) {
      if (i == SIZE_MAX) continue;
      for (const PromptMedia& m : media_[i]) n += static_cast<int64_t>(m.positions) - 1;  // beyond its placeholder
    }
    return n;
  };
  *fit = FitConversation(&messages, limit, policy, count);
  std::vector<std::vector<PromptMedia>> media;
  for (size_t i : kept(messages)) media.push_back(i == SIZE_MAX ? std::vector<PromptMedia>{} : std::move(media_[i]));
  for (auto& m : messages) {
    if (m.is_object()) m.erase(kIndex);
  }
  messages_ = std::move(messages);
  media_ = std::move(media);
  rebuild_ = true;
  Extend();
  fit->tokens = static_cast<int64_t>(positions_);
  return stream_;
}

}  // namespace g4
