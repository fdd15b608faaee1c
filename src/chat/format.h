// Chat formats: which conversation layout a model was trained on, the marker strings it uses and the
// strings that end its turn. Everything here is text; token ids come later from the tokenizer, which
// looks the marker strings up by name. A model with another vocabulary (the project's small test
// models reuse these strings under different ids) therefore needs nothing from this file changed.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace g4::chat {

enum class ChatFormat {
  kGemma4,             // google-gemma-4-31B-it.jinja (also the 12B's template): the default
  kGemma4Interleaved,  // google-gemma-4-31B-it-interleaved.jinja: legacy tool_responses, reasoning kept
  kGemma3,             // the Gemma 3 instruction-tuned template
};

// The marker strings of a format. Empty strings are markers the format does not have.
struct Markers {
  std::string bos;
  std::string eos;
  std::string turn_start;           // "<|turn>" / "<start_of_turn>"
  std::string turn_end;             // "<turn|>" / "<end_of_turn>"
  std::string think;                // "<|think|>": enables thinking in the system turn
  std::string channel_start;        // "<|channel>": opens the thought channel
  std::string channel_end;          // "<channel|>"
  std::string tool_declaration_start;  // "<|tool>"
  std::string tool_declaration_end;    // "<tool|>"
  std::string tool_call_start;      // "<|tool_call>"
  std::string tool_call_end;        // "<tool_call|>"
  std::string tool_response_start;  // "<|tool_response>"
  std::string tool_response_end;    // "<tool_response|>"
  std::string string_delimiter;     // "<|\"|>": quotes strings in tool syntax
  std::string image;                // media placeholders as the template writes them
  std::string audio;
  std::string video;
  // The strings at which generation stops (their ids end the turn).
  std::vector<std::string> stop;
};

const Markers& MarkersFor(ChatFormat format);

// Generation stops at these strings: <turn|>, <eos> and <|tool_response> for Gemma 4 (the last
// because the host must run the tool and append its response), <end_of_turn> and <eos> for Gemma 3.
const std::vector<std::string>& StopStrings(ChatFormat format);

// "gemma4", "gemma4-interleaved", "gemma3" (also the GGUF architectures "gemma4", "gemma4_unified",
// "gemma3"). Throws g4::Error naming the accepted values.
ChatFormat ParseChatFormat(std::string_view name);
std::string_view ChatFormatName(ChatFormat format);

// Recognises the format of a chat template text (tokenizer.chat_template in a GGUF, or a .jinja
// file): returns false when the template is neither of the Gemma layouts.
bool DetectChatFormat(std::string_view chat_template, ChatFormat* format);

}  // namespace g4::chat
