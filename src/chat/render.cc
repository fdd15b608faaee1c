#include "chat/render.h"

#include "util/error.h"

namespace g4::chat {
namespace {

Json ParseJsonText(std::string_view text, const char* what) {
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    Fail("%s: not valid JSON: %s", what, e.what());
  }
}

}  // namespace

std::string Render(ChatFormat format, const Json& messages, const Json& tools, const RenderOptions& options) {
  switch (format) {
    case ChatFormat::kGemma4:
      return RenderGemma4(messages, tools, options);
    case ChatFormat::kGemma4Interleaved:
      return RenderGemma4Interleaved(messages, tools, options);
    case ChatFormat::kGemma3:
      if (!tools.is_null() && !(tools.is_array() && tools.empty())) {
        Fail("tools: the Gemma 3 chat format has no tool calling");
      }
      return RenderGemma3(messages, options);
  }
  Fail("unknown chat format");
}

std::string RenderFromJsonText(ChatFormat format, std::string_view messages_json, std::string_view tools_json,
                               const RenderOptions& options) {
  Json messages = ParseJsonText(messages_json, "messages");
  Json tools = nullptr;
  if (messages.is_object()) {
    // A whole request: {"messages": [...], "tools": [...]}.
    if (!messages.contains("messages")) Fail("messages: expected an array, or an object with a \"messages\" array");
    if (messages.contains("tools")) tools = messages["tools"];
    Json inner = std::move(messages["messages"]);
    messages = std::move(inner);
  }
  if (!tools_json.empty()) {
    if (!tools.is_null()) Fail("tools: given both in the request object and separately");
    tools = ParseJsonText(tools_json, "tools");
  }
  return Render(format, messages, tools, options);
}

}  // namespace g4::chat
