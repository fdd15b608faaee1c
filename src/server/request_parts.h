// Request pieces that the OpenAI and Ollama parsers share (internal to the request parsers).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "server/request.h"

namespace g4::server {

// A message's tool calls to [{"id", "type": "function", "function": {"name", "arguments": {...}}}],
// arguments parsed when given as a JSON string. need_ids: every call must carry an id (OpenAI);
// otherwise missing ids are made up (Ollama).
Json ParseToolCalls(const Json& calls, const std::string& path, bool need_ids);
// body["tools"]: function tools with valid names (letters, digits, '_', '-', '.'; at most 64).
void ParseTools(const Json& body, GenRequest* r);
// body["context_overflow"] (an extension): "error" or "drop-oldest", what to do when the chat does
// not fit the context; absent or null leaves the server's --context-overflow.
void ParseContextOverflowField(const Json& body, GenRequest* r);
// tool_choice against the tools: required and named need tools, a named one must exist.
void CheckToolChoice(const GenRequest& r);
// A stop string or a list of at most 16 (non-empty, at most 256 bytes each).
std::vector<std::string> ParseStop(const Json& v, const std::string& path);
// A response schema, compiled strictly (the output must validate); errors name the keyword.
std::shared_ptr<const Schema> CompileSchema(const Json& schema, const std::string& path);

}  // namespace g4::server
