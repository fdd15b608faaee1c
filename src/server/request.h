// What a client asks for, whatever API it speaks: the four generation endpoints (OpenAI chat and
// completions, Ollama chat and generate) are parsed and validated into one GenRequest, so that the
// prompt, the sampling, the stop conditions and the constraints are built in one place
// (backend.h). Every problem is an ApiError 400 whose message and param name the field.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "chat/json.h"
#include "server/http_util.h"
#include "server/json_schema.h"

namespace g4::server {

// An image or a sound from the request, in the order the chat template places them.
struct MediaInput {
  enum class Kind { kImage, kAudio };
  Kind kind = Kind::kImage;
  std::vector<uint8_t> bytes;
  std::string field;  // where it came from, for errors ("messages[1].content[0].image_url")
};

// A raw prompt (completions, Ollama generate with raw): text or token ids.
struct RawPrompt {
  std::string text;
  std::vector<int32_t> tokens;
  bool is_tokens = false;
};

struct GenRequest {
  enum class Api { kOpenAIChat, kOpenAICompletion, kOllamaChat, kOllamaGenerate };
  Api api = Api::kOpenAIChat;
  std::string model;  // "" when the client did not name one
  bool stream = false;

  // Chat: OpenAI-style messages (media parts replaced by {"type": "image"/"audio"}) and tools.
  bool chat = true;
  Json messages = Json::array();
  Json tools;  // null or a non-empty array
  std::optional<bool> thinking;
  // Raw prompts (completions may carry several; each gets n choices).
  std::vector<RawPrompt> prompts;
  std::vector<MediaInput> media;

  // Sampling: unset fields take the server's defaults.
  std::optional<float> temperature, top_p, min_p, presence_penalty, frequency_penalty, repeat_penalty;
  std::optional<int> top_k, repeat_last_n;
  std::optional<uint64_t> seed;
  std::map<int32_t, float> logit_bias;  // token id -> bias (ids are checked against the vocabulary later)
  int max_tokens = -1;                   // -1: the server's default
  std::vector<std::string> stop;
  bool ignore_eos = false;               // keep generating through end-of-turn tokens (benchmarks)
  std::string context_overflow;          // chat: "error" / "drop-oldest"; "" = the server's --context-overflow
  int n = 1;
  bool logprobs = false;
  int top_logprobs = 0;

  enum class Format { kText, kJsonObject, kJsonSchema };
  Format format = Format::kText;
  std::shared_ptr<const Schema> schema;  // kJsonSchema, compiled (strict)

  enum class ToolChoice { kAuto, kNone, kRequired, kNamed };
  ToolChoice tool_choice = ToolChoice::kAuto;
  std::string tool_name;     // kNamed
  bool parallel_tool_calls = true;

  bool include_usage = false;  // stream_options.include_usage
  bool echo = false;           // completions: the prompt precedes the output
  bool load_only = false;      // Ollama: no messages / empty prompt just "loads" the model
  std::vector<int32_t> context;  // Ollama generate: tokens of the previous exchange
};

struct RequestLimits {
  int max_tokens = 4096;  // the most a request may ask for (max_tokens, num_predict)
  int max_n = 8;
  int max_prompts = 16;
};

GenRequest ParseOpenAIChat(const Json& body, const RequestLimits& limits);
GenRequest ParseOpenAICompletion(const Json& body, const RequestLimits& limits);
GenRequest ParseOllamaChat(const Json& body, const RequestLimits& limits);
GenRequest ParseOllamaGenerate(const Json& body, const RequestLimits& limits);

// Checks on tool messages that the templates cannot do: every tool message answers a call of the
// assistant message before it, by tool_call_id.
void CheckToolCallIds(const Json& messages);

// Typed access to request fields (shared by the parsers). Each returns nullopt when the field is
// absent or null and fails with a 400 naming the field on a wrong type or value.
namespace field {
std::optional<std::string> String(const Json& obj, const char* key, const std::string& path);
std::optional<bool> Bool(const Json& obj, const char* key, const std::string& path);
std::optional<double> Number(const Json& obj, const char* key, const std::string& path, double lo, double hi);
std::optional<int64_t> Integer(const Json& obj, const char* key, const std::string& path, int64_t lo, int64_t hi);
std::string Path(const std::string& parent, const char* key);
std::string Index(const std::string& parent, size_t i);
}  // namespace field

}  // namespace g4::server
