// The Gemma 4 tool syntax, both ways. Tool declarations, calls and responses are written in a
// JSON-like notation with bare keys and strings between <|"|> delimiters:
//   call:get_weather{city:<|"|>Tokyo<|"|>,days:3,units:[<|"|>C<|"|>],opts:{deep:true}}
// Writing follows the template's format_argument macro exactly (keys sorted case-insensitively,
// numbers as Python prints them, null as "None"); reading turns the model's output back into JSON.
#pragma once

#include <string>
#include <string_view>

#include "chat/json.h"
#include "chat/pyvalue.h"

namespace g4::chat {

inline constexpr std::string_view kGemmaStringDelimiter = "<|\"|>";

// format_argument(value, escape_keys=quote_keys): strings between delimiters, true/false, objects
// in dictsort order, lists, and anything else as Python's str() (None, 3, 2.5, 1e-05). Undefined
// (nullptr) writes "[]": in Jinja it passes the `sequence` test and has no items.
void AppendGemmaValue(py::Value value, bool quote_keys, std::string_view delimiter, std::string* out);
std::string FormatGemmaValue(const Json& value, bool quote_keys = false,
                             std::string_view delimiter = kGemmaStringDelimiter);

// A tool call the model wrote: the function name and its arguments as a JSON object.
struct ToolCall {
  std::string name;
  Json arguments = Json::object();

  // {"name": NAME, "arguments": {...}}
  Json ToJson() const;
  bool operator==(const ToolCall& other) const = default;
};

// Parses one value in the Gemma syntax: a <|"|>string<|"|> (any characters), a number, true, false,
// null (also the template's None, and Python's True/False), {key:value,...} with bare or quoted keys,
// or [value,...]. Whitespace between tokens is allowed. Strings that are not valid UTF-8 get U+FFFD
// for the bad bytes, so the result always serialises. Returns false with *error on malformed text.
bool ParseGemmaValue(std::string_view text, std::string_view delimiter, Json* out, std::string* error);

// Parses the inside of <|tool_call>...<tool_call|>: "call:NAME{...}".
bool ParseToolCallText(std::string_view text, std::string_view delimiter, ToolCall* call, std::string* error);

// Replaces every byte sequence that is not well-formed UTF-8 with U+FFFD.
std::string SanitizeUtf8(std::string_view s);

}  // namespace g4::chat
