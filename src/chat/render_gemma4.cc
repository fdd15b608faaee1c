// The Gemma 4 chat templates (google-gemma-4-31B-it.jinja, which the 12B uses, and its -interleaved
// variant), transcribed statement by statement. Behaviours worth knowing, all kept on purpose:
//  * A system turn is opened when thinking is on, tools are given, or the first message is a system
//    or developer message; only that first message goes into it (stripped). Later system messages
//    render as turns of their own.
//  * Assistant text loses everything between <|channel> and <channel|> (strip_thinking) and is
//    stripped. Reasoning ("reasoning" or "reasoning_content") is rendered only for assistant
//    messages with tool calls after the last user message; elsewhere it is dropped.
//  * Tool calls: arguments given as an object are written in Gemma syntax, sorted by key; given as a
//    string they are copied verbatim. After the calls, the role:"tool" messages that follow are
//    rendered inside the same model turn as <|tool_response>response:NAME{...}<tool_response|>, the
//    name taken from the call whose id matches tool_call_id (else the message's "name"). A string
//    result renders as {value:<|"|>...<|"|>}, a list of parts as the concatenation of its texts.
//  * A model turn that ends with tool responses and has no content stays open: the next assistant
//    message continues it, and the generation prompt adds nothing, so the model just goes on.
//  * A tool call without responses ends the turn with <|tool_response> (the model's stop token).
//  * With thinking off the generation prompt pre-fills an empty thought channel.
//  * The interleaved variant renders role:"tool" messages as <|turn>tool turns, knows responses
//    only as "tool_responses" on the assistant message, keeps reasoning_content (without a newline
//    before <channel|>), and always adds the empty channel when thinking is off.
#include "chat/format.h"
#include "chat/gemma_syntax.h"
#include "chat/render.h"
#include "chat/render_internal.h"
#include "util/error.h"

namespace g4::chat {
namespace {

using internal::ConcatOperand;
using internal::Iterate;
using internal::MessagePath;
using py::Item;
using py::Str;
using py::Truthy;
using py::Value;

// ns.prev_message_type
enum class Prev { kNone, kThink, kTool, kToolCall, kToolResponse, kMedia };

// dict.get(key): None (not Undefined) when missing.
Value Get(const Json& obj, const char* key) {
  static const Json kNone = nullptr;
  Value v = Item(&obj, key);
  return v == nullptr ? &kNone : v;
}

bool IsStr(Value v, std::string_view s) { return v != nullptr && v->is_string() && *v == s; }

class Gemma4Renderer {
 public:
  Gemma4Renderer(const Json& messages, const Json& tools, const RenderOptions& options, bool interleaved)
      : messages_(messages), tools_(tools), o_(options), interleaved_(interleaved),
        m_(MarkersFor(ChatFormat::kGemma4)) {}

  std::string Render() {
    internal::ValidateMessages(messages_);
    internal::ValidateTools(tools_);
    out_ = o_.bos_token;
    SystemTurn();
    last_user_ = -1;
    for (size_t i = first_; i < messages_.size(); ++i) {
      if (Role(i) == "user") last_user_ = static_cast<long>(i - first_);
    }
    for (size_t i = first_; i < messages_.size(); ++i) {
      if (interleaved_) {
        InterleavedMessage(i);
      } else {
        CanonicalMessage(i);
      }
    }
    if (o_.add_generation_prompt) {
      const bool model_turn_open =
          prev_ == Prev::kToolResponse || (!interleaved_ && prev_ == Prev::kToolCall);
      if (!model_turn_open) out_ += m_.turn_start + "model\n";
      // The canonical template pre-fills the empty channel only with the new turn; the interleaved
      // one always does.
      if (!o_.enable_thinking && (interleaved_ || !model_turn_open)) EmptyChannel();
    }
    return std::move(out_);
  }

 private:
  const std::string& Role(size_t i) const { return messages_[i]["role"].get_ref<const std::string&>(); }

  void EmptyChannel() { out_ += m_.channel_start + "thought\n" + m_.channel_end; }

  void SystemTurn() {
    const std::string& role0 = Role(0);
    const bool system_first = role0 == "system" || role0 == "developer";
    const bool has_tools = Truthy(&tools_);
    if (!o_.enable_thinking && !has_tools && !system_first) return;
    out_ += m_.turn_start + "system\n";
    if (o_.enable_thinking) {
      out_ += m_.think + "\n";
      prev_ = Prev::kThink;
    }
    if (system_first) {
      out_ += py::Strip(Str(Item(&messages_[0], "content")));
      first_ = 1;
    }
    if (has_tools) {
      for (size_t t = 0; t < tools_.size(); ++t) internal::AppendGemma4ToolDeclaration(tools_[t], t, interleaved_, &out_);
      prev_ = Prev::kTool;
    }
    out_ += m_.turn_end + "\n";
  }

  void CanonicalMessage(size_t i) {
    const Json& msg = messages_[i];
    if (Role(i) == "tool") return;  // rendered by the forward scan of the assistant message before it
    prev_ = Prev::kNone;
    const std::string role = Role(i) == "assistant" ? "model" : Role(i);
    // Another assistant message after tool responses continues the same model turn.
    const std::string* prev_role = nullptr;
    for (size_t j = i; j-- > first_;) {
      if (Role(j) != "tool") {
        prev_role = &Role(j);
        break;
      }
    }
    if (!(role == "model" && prev_role != nullptr && *prev_role == "assistant")) out_ += m_.turn_start + role + "\n";

    const long index = static_cast<long>(i - first_);
    Value tool_calls = Item(&msg, "tool_calls");
    const char* thinking_key = Truthy(Item(&msg, "reasoning")) ? "reasoning" : "reasoning_content";
    Value thinking = Item(&msg, thinking_key);
    if (Truthy(thinking) && index > last_user_ && Truthy(tool_calls)) {
      out_ += m_.channel_start + "thought\n" + ConcatOperand(thinking, MessagePath(i, thinking_key)) + "\n" +
              m_.channel_end;
    }
    if (Truthy(tool_calls)) {
      ToolCalls(tool_calls, i);
      prev_ = Prev::kToolCall;
    }

    bool responded = false;
    if (Value legacy = Item(&msg, "tool_responses"); Truthy(legacy)) {
      LegacyToolResponses(legacy, i);
      responded = true;
    } else if (Truthy(tool_calls)) {
      for (size_t k = i + 1; k < messages_.size() && Role(k) == "tool"; ++k) {
        ToolMessage(messages_[k], k, tool_calls);
        responded = true;
        prev_ = Prev::kToolResponse;
      }
    }

    Content(msg, i, role);

    if (prev_ == Prev::kToolCall && !responded) {
      out_ += m_.tool_response_start;
    } else if (!(responded && !Truthy(Get(msg, "content")))) {
      out_ += m_.turn_end + "\n";
    }
  }

  void InterleavedMessage(size_t i) {
    const Json& msg = messages_[i];
    const std::string role = Role(i) == "assistant" ? "model" : Role(i);
    Value tool_calls = Item(&msg, "tool_calls");
    if (!(prev_ == Prev::kToolResponse && Truthy(tool_calls))) out_ += m_.turn_start + role + "\n";
    prev_ = Prev::kNone;
    if (Truthy(tool_calls)) {
      Value reasoning = Item(&msg, "reasoning_content");
      if (Truthy(reasoning) && static_cast<long>(i - first_) > last_user_) {
        out_ += m_.channel_start + "thought\n" + Str(reasoning) + m_.channel_end;
      }
      ToolCalls(tool_calls, i);
      prev_ = Prev::kToolCall;
    }
    Value responses = Item(&msg, "tool_responses");
    if (Truthy(responses)) LegacyToolResponses(responses, i);
    Content(msg, i, role);
    if (!(Truthy(responses) && !Truthy(Item(&msg, "content")))) out_ += m_.turn_end + "\n";
  }

  void ToolCalls(Value tool_calls, size_t i) {
    const std::string path = MessagePath(i, "tool_calls");
    const std::vector<Json> calls = Iterate(tool_calls, path);
    for (size_t c = 0; c < calls.size(); ++c) {
      const std::string cpath = path + "[" + std::to_string(c) + "]";
      Value function = Item(&calls[c], "function");
      if (function == nullptr) Fail("%s: missing function", cpath.c_str());
      out_ += m_.tool_call_start + "call:" + ConcatOperand(Item(function, "name"), cpath + ".function.name") + "{";
      Value args = Item(function, "arguments");
      if (py::IsMapping(args)) {
        bool first = true;
        for (const auto& [key, value] : py::DictSort(*args)) {
          if (!first) out_ += ",";
          first = false;
          out_ += *key + ":";
          AppendGemmaValue(value, /*quote_keys=*/false, m_.string_delimiter, &out_);
        }
      } else if (py::IsString(args)) {
        out_ += args->get_ref<const std::string&>();
      }
      out_ += "}" + m_.tool_call_end;
    }
  }

  // format_tool_response_block
  void ToolResponse(const std::string& name, Value response) {
    out_ += m_.tool_response_start;
    if (py::IsMapping(response)) {
      out_ += "response:" + name + "{";
      bool first = true;
      for (const auto& [key, value] : py::DictSort(*response)) {
        if (!first) out_ += ",";
        first = false;
        out_ += *key + ":";
        AppendGemmaValue(value, false, m_.string_delimiter, &out_);
      }
      out_ += "}";
    } else {
      out_ += "response:" + name + "{value:";
      AppendGemmaValue(response, false, m_.string_delimiter, &out_);
      out_ += "}";
    }
    out_ += m_.tool_response_end;
  }

  // "tool_responses": [{"name", "response"}] on the assistant message (Gemma's native form).
  void LegacyToolResponses(Value responses, size_t i) {
    const std::string path = MessagePath(i, "tool_responses");
    const std::vector<Json> list = Iterate(responses, path);
    for (size_t r = 0; r < list.size(); ++r) {
      Value name = Item(&list[r], "name");
      const std::string resolved =
          name == nullptr ? "unknown" : ConcatOperand(name, path + "[" + std::to_string(r) + "].name");
      ToolResponse(resolved, Item(&list[r], "response"));
    }
    prev_ = Prev::kToolResponse;
  }

  // One role:"tool" message answering the calls of the assistant message before it.
  void ToolMessage(const Json& follow, size_t k, Value tool_calls) {
    Value name = Get(follow, "name");
    bool matched = false;
    if (tool_calls->is_array()) {
      for (const Json& tc : *tool_calls) {
        if (tc.is_object() && py::Equals(Get(tc, "id"), Get(follow, "tool_call_id"))) {
          name = Item(Item(&tc, "function"), "name");
          matched = true;
        }
      }
    }
    if (name == nullptr || name->is_null()) {
      Fail("%s: the tool response has no function name: give it a \"name\" or a \"tool_call_id\" that "
           "matches the id of one of the calls", MessagePath(k).c_str());
    }
    if (!matched && !name->is_string()) Fail("%s: must be a string", MessagePath(k, "name").c_str());
    const std::string& tool_name = name->get_ref<const std::string&>();
    Value body = Get(follow, "content");
    if (py::IsString(body)) {
      ToolResponse(tool_name, body);
    } else if (py::IsSequence(body)) {
      if (body->is_object() && !body->empty()) {
        Fail("%s: a tool message's content must be a string, a list of parts or a scalar (the template cannot "
             "render an object; put its JSON text in a string)", MessagePath(k, "content").c_str());
      }
      std::string text;
      for (size_t p = 0; p < body->size() && body->is_array(); ++p) {
        const Json& part = (*body)[p];
        const std::string ppath = MessagePath(k, "content") + "[" + std::to_string(p) + "]";
        if (!part.is_object()) Fail("%s: must be an object", ppath.c_str());
        if (IsStr(Get(part, "type"), "text")) text += ConcatOperand(Get(part, "text"), ppath + ".text");
      }
      const Json joined = text;
      ToolResponse(tool_name, &joined);
    } else {
      ToolResponse(tool_name, body);
    }
  }

  void Content(const Json& msg, size_t i, const std::string& role) {
    Value content = Item(&msg, "content");
    const bool model = role == "model";
    if (py::IsString(content)) {
      const std::string& text = content->get_ref<const std::string&>();
      out_ += model ? StripThinking(text) : py::Strip(text);
      return;
    }
    // Otherwise only a list renders anything: a dict iterates its keys and Undefined nothing.
    if (content == nullptr || !content->is_array()) return;
    for (size_t p = 0; p < content->size(); ++p) {
      const Json& item = (*content)[p];
      Value type = Item(&item, "type");
      if (IsStr(type, "text")) {
        Value text = Item(&item, "text");
        const std::string path = MessagePath(i, "content") + "[" + std::to_string(p) + "].text";
        out_ += model ? StripThinking(ConcatOperand(text, path)) : py::Strip(Str(text));
      } else if (IsStr(type, "image")) {
        out_ += m_.image;
        prev_ = Prev::kMedia;
      } else if (IsStr(type, "audio")) {
        out_ += m_.audio;
        prev_ = Prev::kMedia;
      } else if (IsStr(type, "video")) {
        out_ += m_.video;
        prev_ = Prev::kMedia;
      }
    }
  }

  // strip_thinking: drops every <|channel>...<channel|> span, then strips.
  std::string StripThinking(const std::string& text) const {
    std::string result;
    size_t start = 0;
    for (;;) {
      const size_t end = text.find(m_.channel_end, start);
      const std::string_view part = std::string_view(text).substr(start, end == std::string::npos ? std::string::npos : end - start);
      result += part.substr(0, part.find(m_.channel_start));
      if (end == std::string::npos) break;
      start = end + m_.channel_end.size();
    }
    return py::Strip(result);
  }

  const Json& messages_;
  const Json& tools_;
  const RenderOptions& o_;
  const bool interleaved_;
  const Markers& m_;
  std::string out_;
  Prev prev_ = Prev::kNone;
  size_t first_ = 0;     // loop_messages = messages[first_:]
  long last_user_ = -1;  // index of the last user message within loop_messages
};

}  // namespace

std::string RenderGemma4(const Json& messages, const Json& tools, const RenderOptions& options) {
  if (options.openai_compat) {
    const Json normalized = NormalizeOpenAI(messages);
    return Gemma4Renderer(normalized, tools, options, false).Render();
  }
  return Gemma4Renderer(messages, tools, options, false).Render();
}

std::string RenderGemma4Interleaved(const Json& messages, const Json& tools, const RenderOptions& options) {
  if (options.openai_compat) {
    const Json normalized = NormalizeOpenAI(messages);
    return Gemma4Renderer(normalized, tools, options, true).Render();
  }
  return Gemma4Renderer(messages, tools, options, true).Render();
}

}  // namespace g4::chat
