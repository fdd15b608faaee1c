// Pieces every endpoint shares: API errors (OpenAI's error object, Ollama's {"error": "..."}), the
// streaming framings (server-sent events, newline-delimited JSON), request bodies parsed with limits,
// base64 and data: URIs, and a constant-time comparison for the API key.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chat/json.h"
#include "util/error.h"

namespace g4::server {

using Json = chat::Json;

// An error a request caused (or met), with the HTTP status to answer it with. `param` names the
// request field at fault ("messages[2].role"), as OpenAI's error object does.
class ApiError : public Error {
 public:
  ApiError(int status, std::string message, std::string param = "", std::string type = "",
           std::string code = "");
  int status() const { return status_; }
  const std::string& param() const { return param_; }
  const std::string& type() const { return type_; }
  const std::string& code() const { return code_; }

 private:
  int status_;
  std::string param_, type_, code_;
};

// A 400 for a field: "FIELD: MESSAGE" with param FIELD.
[[noreturn]] void BadField(const std::string& field, const std::string& message);

// A g4::Error from the chat renderer or the engine ("messages[3].role: unknown role ...") as a 400
// whose param is the leading field path, when there is one.
ApiError FromEngineError(const Error& e, const std::string& fallback_param);

// {"error": {"message", "type", "param", "code"}}.
Json OpenAIErrorBody(const ApiError& e);
// {"error": "message"}.
Json OllamaErrorBody(const ApiError& e);

// One server-sent event: "data: JSON\n\n". The stream ends with SseDone().
std::string SseEvent(const Json& data);
std::string SseDone();
// A comment line: ignored by clients, it lets the server notice a client that went away.
std::string SseKeepAlive();
// One line of newline-delimited JSON.
std::string NdjsonLine(const Json& data);

// JSON text nested deeper than `max_depth` (arrays and objects) is refused before it is parsed, so
// that no recursive code ever walks a hostile document.
bool NestingWithin(std::string_view text, int max_depth);
// Parses a request body: a 400 naming the problem for invalid JSON, a body that is not an object,
// or nesting deeper than 64.
Json ParseBody(std::string_view body);

// Standard base64 (padding optional, whitespace ignored). Throws ApiError 400 naming `field`.
std::vector<uint8_t> DecodeBase64(std::string_view text, const std::string& field);
// A data: URI ("data:image/png;base64,...") to its bytes. Anything else (http:, https:, file:, a
// path) is refused: the server never fetches or opens anything a request names.
std::vector<uint8_t> DecodeDataUri(std::string_view uri, const std::string& field);

// Compares two strings in time that depends only on their lengths.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// A random identifier: prefix followed by 24 letters and digits.
std::string RandomId(const char* prefix);
// Seconds since the Unix epoch, and RFC 3339 time (Ollama's created_at).
int64_t UnixSeconds();
std::string Rfc3339Now();

}  // namespace g4::server
