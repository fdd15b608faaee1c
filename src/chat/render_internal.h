// Helpers shared by the renderers (not part of the public API).
#pragma once

#include <string>
#include <vector>

#include "chat/json.h"
#include "chat/pyvalue.h"

namespace g4::chat::internal {

// Path of a message element for error messages: "messages[3]", "messages[3].content".
std::string MessagePath(size_t index, const char* field = nullptr);

// The checks every format makes before rendering: messages is a non-empty array of objects whose
// roles are system, developer, user, assistant or tool.
void ValidateMessages(const Json& messages);

// tools is null or an array of {"function": {"name": non-empty string, "parameters": object?}}.
void ValidateTools(const Json& tools);

// `for x in v` in Jinja: a list's items, a dict's keys, a string's characters; Undefined yields
// nothing. Anything else is not iterable, which fails naming `path`.
std::vector<Json> Iterate(py::Value v, const std::string& path);

// The operand of a Python string concatenation ('...' + v): v must be a string.
const std::string& ConcatOperand(py::Value v, const std::string& path);

// Gemma 4 tool declarations: "<|tool>declaration:NAME{...}<tool|>" as format_function_declaration
// writes it; `interleaved` selects the -interleaved template's layout of nested schemas.
void AppendGemma4ToolDeclaration(const Json& tool, size_t index, bool interleaved, std::string* out);

}  // namespace g4::chat::internal
