// A deterministic, generated set of conversations for comparing the native renderers with the
// official templates under Jinja (render_test.cc). Each case is
//   {"template": "gemma4" | "gemma4_interleaved" | "gemma3", "messages": [...], "tools": [...] | null,
//    "add_generation_prompt": bool, "bos_token": "<bos>", "enable_thinking": bool (optional)}
// which is also the input format of render_reference.py.
#pragma once

#include "chat/json.h"

namespace g4::chat::testing {

// Hundreds of conversations: every short role sequence, random multi-turn conversations with tools,
// tool calls of every argument type, tool responses of every shape, thinking in earlier turns,
// content as parts, whitespace and Unicode edge cases; each under each template and option set.
Json GenerateRenderCases();

}  // namespace g4::chat::testing
