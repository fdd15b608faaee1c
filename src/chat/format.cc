#include "chat/format.h"

#include "util/error.h"

namespace g4::chat {
namespace {

Markers MakeGemma4() {
  Markers m;
  m.bos = "<bos>";
  m.eos = "<eos>";
  m.turn_start = "<|turn>";
  m.turn_end = "<turn|>";
  m.think = "<|think|>";
  m.channel_start = "<|channel>";
  m.channel_end = "<channel|>";
  m.tool_declaration_start = "<|tool>";
  m.tool_declaration_end = "<tool|>";
  m.tool_call_start = "<|tool_call>";
  m.tool_call_end = "<tool_call|>";
  m.tool_response_start = "<|tool_response>";
  m.tool_response_end = "<tool_response|>";
  m.string_delimiter = "<|\"|>";
  m.image = "<|image|>";
  m.audio = "<|audio|>";
  m.video = "<|video|>";
  m.stop = {m.turn_end, m.eos, m.tool_response_start};
  return m;
}

Markers MakeGemma3() {
  Markers m;
  m.bos = "<bos>";
  m.eos = "<eos>";
  m.turn_start = "<start_of_turn>";
  m.turn_end = "<end_of_turn>";
  m.image = "<start_of_image>";
  m.stop = {m.turn_end, m.eos};
  return m;
}

}  // namespace

const Markers& MarkersFor(ChatFormat format) {
  static const Markers gemma4 = MakeGemma4();
  static const Markers gemma3 = MakeGemma3();
  return format == ChatFormat::kGemma3 ? gemma3 : gemma4;
}

const std::vector<std::string>& StopStrings(ChatFormat format) { return MarkersFor(format).stop; }

ChatFormat ParseChatFormat(std::string_view name) {
  if (name == "gemma4" || name == "gemma4_unified" || name == "gemma4-unified") return ChatFormat::kGemma4;
  if (name == "gemma4-interleaved" || name == "gemma4_interleaved") return ChatFormat::kGemma4Interleaved;
  if (name == "gemma3") return ChatFormat::kGemma3;
  Fail("unknown chat format '%.*s' (expected gemma4, gemma4-interleaved or gemma3)",
       static_cast<int>(name.size()), name.data());
}

std::string_view ChatFormatName(ChatFormat format) {
  switch (format) {
    case ChatFormat::kGemma4:
      return "gemma4";
    case ChatFormat::kGemma4Interleaved:
      return "gemma4-interleaved";
    case ChatFormat::kGemma3:
      return "gemma3";
  }
  return "?";
}

bool DetectChatFormat(std::string_view chat_template, ChatFormat* format) {
  if (chat_template.find("<|turn>") != std::string_view::npos) {
    // The canonical template scans role:"tool" messages forward from the assistant turn; the
    // interleaved one only knows tool_responses embedded in the assistant message.
    *format = chat_template.find("format_tool_response_block") != std::string_view::npos
                  ? ChatFormat::kGemma4
                  : ChatFormat::kGemma4Interleaved;
    return true;
  }
  if (chat_template.find("<start_of_turn>") != std::string_view::npos) {
    *format = ChatFormat::kGemma3;
    return true;
  }
  return false;
}

}  // namespace g4::chat
