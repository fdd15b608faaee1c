// Rendering conversations into prompt text exactly as the official chat templates do, natively.
//
// Messages are an OpenAI-style array: {"role": system|developer|user|assistant|tool, "content":
// string | null | [parts]}, assistant "tool_calls" ([{"id", "type", "function": {"name",
// "arguments"}}]), "reasoning_content" / "reasoning", and tool messages with "tool_call_id" / "name".
// Tools are OpenAI function tools: [{"type": "function", "function": {"name", "description",
// "parameters": JSON schema}}].
//
// With openai_compat off the output is byte for byte what the template renders under transformers'
// Jinja environment, including its quirks (see render_gemma4.cc). With it on (the default), the
// shapes OpenAI clients send that the template does not understand are first converted by
// NormalizeOpenAI, so that they render the way the model was trained to read them.
#pragma once

#include <string>
#include <string_view>

#include "chat/format.h"
#include "chat/json.h"

namespace g4::chat {

struct RenderOptions {
  // Ends the prompt with the opening of a model turn (and, with thinking off, the 12B/31B template's
  // empty thought channel), so that the model writes the next message.
  bool add_generation_prompt = true;
  // Gemma 4: puts <|think|> at the top of the system turn so the model thinks before answering.
  bool enable_thinking = false;
  // The text the templates render as {{ bos_token }}.
  std::string bos_token = "<bos>";
  // Apply NormalizeOpenAI to the messages first.
  bool openai_compat = true;
};

// Gemma 4 (12B/31B instruction template; ChatFormat::kGemma4). `tools` may be null or an array.
std::string RenderGemma4(const Json& messages, const Json& tools, const RenderOptions& options = {});
// The -interleaved variant of the Gemma 4 template (ChatFormat::kGemma4Interleaved).
std::string RenderGemma4Interleaved(const Json& messages, const Json& tools, const RenderOptions& options = {});
// Gemma 3: a system message becomes a prefix of the first user turn; roles must alternate.
std::string RenderGemma3(const Json& messages, const RenderOptions& options = {});

// Dispatches on the format. Gemma 3 has no tool calling: non-empty `tools` is an error there.
std::string Render(ChatFormat format, const Json& messages, const Json& tools, const RenderOptions& options = {});

// For the `gemma4 render` command and the server: parses the request text and renders it.
// `messages_json` is either the messages array or an object {"messages": [...], "tools": [...]};
// `tools_json` (may be empty) is a tools array. Every problem is a g4::Error naming the element.
std::string RenderFromJsonText(ChatFormat format, std::string_view messages_json, std::string_view tools_json,
                               const RenderOptions& options = {});

// Converts shapes that OpenAI-style clients send into the ones the templates read:
//  * content parts {"type": "image_url"} / {"type": "input_audio"} / {"type": "video_url"} become
//    {"type": "image"} / {"type": "audio"} / {"type": "video"} (other fields are kept, for the media
//    loader); the templates render those as <|image|>, <|audio|>, <|video|> (<start_of_image>).
//  * a tool call's "arguments" given as a JSON string that holds an object becomes that object (the
//    template copies a string verbatim, which would put raw JSON inside the call).
//  * a first system/developer message whose content is a list of text parts gets the concatenation
//    of the stripped texts as a string (the Gemma 4 template would print the list's Python repr, the
//    Gemma 3 one only its first part); any other part there is an error.
//  * "thinking" on an assistant message becomes "reasoning_content" when neither reasoning field is
//    set.
// Everything else passes through unchanged, so a conversation already in the template's shapes
// renders exactly as the template renders it.
Json NormalizeOpenAI(const Json& messages);

}  // namespace g4::chat
