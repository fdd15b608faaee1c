// OpenAI request bodies: POST /v1/chat/completions and POST /v1/completions.
#include <set>

#include "server/request.h"
#include "server/request_parts.h"

namespace g4::server {

using field::Index;
using field::Path;

namespace {

Json ParseContentParts(const Json& parts, const std::string& path, std::vector<MediaInput>* media) {
  Json out = Json::array();
  for (size_t j = 0; j < parts.size(); ++j) {
    const Json& p = parts[j];
    const std::string pp = Index(path, j);
    if (!p.is_object()) BadField(pp, "a content part must be an object");
    const std::string type = field::String(p, "type", Path(pp, "type")).value_or("");
    if (type == "text") {
      const auto text = field::String(p, "text", Path(pp, "text"));
      if (!text) BadField(Path(pp, "text"), "missing");
      out.push_back({{"type", "text"}, {"text", *text}});
    } else if (type == "image_url") {
      auto u = p.find("image_url");
      std::string url;
      if (u != p.end() && u->is_string()) {
        url = u->get<std::string>();
      } else if (u != p.end() && u->is_object()) {
        url = field::String(*u, "url", Path(Path(pp, "image_url"), "url")).value_or("");
      }
      if (url.empty()) BadField(Path(Path(pp, "image_url"), "url"), "missing");
      media->push_back({MediaInput::Kind::kImage, DecodeDataUri(url, Path(Path(pp, "image_url"), "url")),
                        Path(pp, "image_url")});
      out.push_back({{"type", "image"}});
    } else if (type == "input_audio") {
      auto a = p.find("input_audio");
      if (a == p.end() || !a->is_object()) BadField(Path(pp, "input_audio"), "must be an object {data, format}");
      const std::string ap = Path(pp, "input_audio");
      const auto data = field::String(*a, "data", Path(ap, "data"));
      if (!data) BadField(Path(ap, "data"), "missing (base64 audio)");
      const auto format = field::String(*a, "format", Path(ap, "format"));
      static const std::set<std::string> kFormats = {"wav", "mp3", "flac", "ogg", "opus"};
      if (format && !kFormats.count(*format)) BadField(Path(ap, "format"), "unknown format '" + *format + "' (wav, mp3, flac, ogg)");
      // The decoder recognises the container from the bytes; the format is only checked.
      std::vector<uint8_t> bytes =
          data->rfind("data:", 0) == 0 ? DecodeDataUri(*data, Path(ap, "data")) : DecodeBase64(*data, Path(ap, "data"));
      media->push_back({MediaInput::Kind::kAudio, std::move(bytes), ap});
      out.push_back({{"type", "audio"}});
    } else if (type.empty()) {
      BadField(Path(pp, "type"), "missing");
    } else {
      BadField(Path(pp, "type"), "unknown content part type '" + type + "' (expected text, image_url or input_audio)");
    }
  }
  return out;
}

Json ParseMessage(const Json& m, const std::string& path, std::vector<MediaInput>* media) {
  if (!m.is_object()) BadField(path, "a message must be an object");
  const auto role = field::String(m, "role", Path(path, "role"));
  if (!role) BadField(Path(path, "role"), "missing");
  static const std::set<std::string> kRoles = {"system", "developer", "user", "assistant", "tool"};
  if (!kRoles.count(*role)) {
    BadField(Path(path, "role"), "unknown role '" + *role + "' (expected system, developer, user, assistant or tool)");
  }
  Json out = {{"role", *role}};
  auto content = m.find("content");
  const bool has_calls = m.contains("tool_calls") && !m["tool_calls"].is_null();
  if (content == m.end() || content->is_null()) {
    if (*role != "assistant" || !has_calls) {
      if (*role != "assistant") BadField(Path(path, "content"), "missing");
    }
    out["content"] = nullptr;
  } else if (content->is_string()) {
    out["content"] = *content;
  } else if (content->is_array()) {
    out["content"] = ParseContentParts(*content, Path(path, "content"), media);
  } else {
    BadField(Path(path, "content"), "must be a string, an array of content parts or null");
  }
  if (auto name = field::String(m, "name", Path(path, "name"))) out["name"] = *name;
  if (*role == "assistant") {
    for (const char* k : {"reasoning_content", "reasoning"}) {
      if (auto r = field::String(m, k, Path(path, k))) out["reasoning_content"] = *r;
    }
    if (has_calls) out["tool_calls"] = ParseToolCalls(m["tool_calls"], Path(path, "tool_calls"), /*need_ids=*/true);
  }
  if (*role == "tool") {
    if (auto id = field::String(m, "tool_call_id", Path(path, "tool_call_id"))) out["tool_call_id"] = *id;
  }
  return out;
}

void ParseSampling(const Json& b, GenRequest* r) {
  if (auto v = field::Number(b, "temperature", "temperature", 0, 2)) r->temperature = static_cast<float>(*v);
  if (auto v = field::Number(b, "top_p", "top_p", 0, 1)) r->top_p = static_cast<float>(*v);
  if (auto v = field::Integer(b, "top_k", "top_k", -1, 1000000)) r->top_k = static_cast<int>(*v);
  if (auto v = field::Number(b, "min_p", "min_p", 0, 1)) r->min_p = static_cast<float>(*v);
  if (auto v = field::Number(b, "presence_penalty", "presence_penalty", -2, 2)) r->presence_penalty = static_cast<float>(*v);
  if (auto v = field::Number(b, "frequency_penalty", "frequency_penalty", -2, 2)) {
    r->frequency_penalty = static_cast<float>(*v);
  }
  if (auto v = field::Number(b, "repetition_penalty", "repetition_penalty", 0.01, 100)) {
    r->repeat_penalty = static_cast<float>(*v);
  }
  if (auto v = field::Integer(b, "seed", "seed", INT64_MIN, INT64_MAX)) r->seed = static_cast<uint64_t>(*v);
  if (auto lb = b.find("logit_bias"); lb != b.end() && !lb->is_null()) {
    if (!lb->is_object()) BadField("logit_bias", "must be an object mapping token ids to biases");
    if (lb->size() > 1024) BadField("logit_bias", "more than 1024 entries");
    for (auto it = lb->begin(); it != lb->end(); ++it) {
      const std::string& key = it.key();
      char* end = nullptr;
      const long id = std::strtol(key.c_str(), &end, 10);
      if (key.empty() || *end != '\0' || id < 0 || id > INT32_MAX) {
        BadField("logit_bias", "key '" + key + "' is not a token id");
      }
      const auto v = field::Number(*lb, key.c_str(), Path("logit_bias", key.c_str()), -100, 100);
      if (!v) BadField(Path("logit_bias", key.c_str()), "must be a number");
      r->logit_bias[static_cast<int32_t>(id)] = static_cast<float>(*v);
    }
  }
  if (auto s = b.find("stop"); s != b.end() && !s->is_null()) r->stop = ParseStop(*s, "stop");
  // An extension (vLLM, llama-server): for benchmarks that need a fixed number of tokens.
  r->ignore_eos = field::Bool(b, "ignore_eos", "ignore_eos").value_or(false);
  ParseContextOverflowField(b, r);
  if (auto so = b.find("stream_options"); so != b.end() && !so->is_null()) {
    if (!so->is_object()) BadField("stream_options", "must be an object");
    r->include_usage = field::Bool(*so, "include_usage", "stream_options.include_usage").value_or(false);
  }
}

int ParseMaxTokens(const Json& b, const RequestLimits& limits, int fallback) {
  for (const char* key : {"max_completion_tokens", "max_tokens"}) {
    if (auto v = field::Integer(b, key, key, 1, INT32_MAX)) {
      if (*v > limits.max_tokens) {
        BadField(key, std::to_string(*v) + " is more than this server allows (" + std::to_string(limits.max_tokens) + ")");
      }
      return static_cast<int>(*v);
    }
  }
  return fallback;
}

}  // namespace

GenRequest ParseOpenAIChat(const Json& b, const RequestLimits& limits) {
  GenRequest r;
  r.api = GenRequest::Api::kOpenAIChat;
  r.chat = true;
  r.model = field::String(b, "model", "model").value_or("");
  r.stream = field::Bool(b, "stream", "stream").value_or(false);
  auto m = b.find("messages");
  if (m == b.end() || m->is_null()) BadField("messages", "missing (an array of messages)");
  if (!m->is_array()) BadField("messages", "must be an array of messages");
  if (m->empty()) BadField("messages", "the list is empty: at least one message is needed");
  for (size_t i = 0; i < m->size(); ++i) r.messages.push_back(ParseMessage((*m)[i], Index("messages", i), &r.media));
  CheckToolCallIds(r.messages);
  ParseTools(b, &r);
  if (auto tc = b.find("tool_choice"); tc != b.end() && !tc->is_null()) {
    if (tc->is_string()) {
      const std::string s = tc->get<std::string>();
      if (s == "auto") {
        r.tool_choice = GenRequest::ToolChoice::kAuto;
      } else if (s == "none") {
        r.tool_choice = GenRequest::ToolChoice::kNone;
      } else if (s == "required") {
        r.tool_choice = GenRequest::ToolChoice::kRequired;
      } else {
        BadField("tool_choice", "unknown value '" + s + "' (expected auto, none, required or a function)");
      }
    } else if (tc->is_object()) {
      auto fn = tc->find("function");
      std::optional<std::string> name;
      if (fn != tc->end() && fn->is_object()) name = field::String(*fn, "name", "tool_choice.function.name");
      if (!name) BadField("tool_choice.function.name", "missing ({\"type\": \"function\", \"function\": {\"name\": ...}})");
      r.tool_choice = GenRequest::ToolChoice::kNamed;
      r.tool_name = *name;
    } else {
      BadField("tool_choice", "must be a string or an object");
    }
    CheckToolChoice(r);
  }
  r.parallel_tool_calls = field::Bool(b, "parallel_tool_calls", "parallel_tool_calls").value_or(true);
  if (auto k = b.find("chat_template_kwargs"); k != b.end() && !k->is_null()) {
    if (!k->is_object()) BadField("chat_template_kwargs", "must be an object");
    if (auto t = field::Bool(*k, "enable_thinking", "chat_template_kwargs.enable_thinking")) r.thinking = *t;
  }
  if (auto e = field::String(b, "reasoning_effort", "reasoning_effort")) {
    static const std::set<std::string> kEfforts = {"none", "minimal", "low", "medium", "high"};
    if (!kEfforts.count(*e)) BadField("reasoning_effort", "unknown value '" + *e + "' (none, minimal, low, medium, high)");
    // Gemma thinks or does not: any effort but "none" turns thinking on.
    if (!r.thinking) r.thinking = *e != "none";
  }
  ParseSampling(b, &r);
  r.max_tokens = ParseMaxTokens(b, limits, -1);
  r.n = static_cast<int>(field::Integer(b, "n", "n", 1, limits.max_n).value_or(1));
  r.logprobs = field::Bool(b, "logprobs", "logprobs").value_or(false);
  if (auto t = field::Integer(b, "top_logprobs", "top_logprobs", 0, 20)) {
    if (!r.logprobs) BadField("top_logprobs", "needs logprobs: true");
    r.top_logprobs = static_cast<int>(*t);
  }
  if (auto rf = b.find("response_format"); rf != b.end() && !rf->is_null()) {
    if (!rf->is_object()) BadField("response_format", "must be an object");
    const std::string type = field::String(*rf, "type", "response_format.type").value_or("");
    if (type == "text") {
      r.format = GenRequest::Format::kText;
    } else if (type == "json_object") {
      r.format = GenRequest::Format::kJsonObject;
    } else if (type == "json_schema") {
      auto js = rf->find("json_schema");
      if (js == rf->end() || !js->is_object()) BadField("response_format.json_schema", "missing ({\"name\", \"schema\"})");
      auto schema = js->find("schema");
      if (schema == js->end() || schema->is_null()) BadField("response_format.json_schema.schema", "missing");
      r.format = GenRequest::Format::kJsonSchema;
      r.schema = CompileSchema(*schema, "response_format.json_schema.schema");
    } else {
      BadField("response_format.type", "unknown type '" + type + "' (expected text, json_object or json_schema)");
    }
  }
  return r;
}

GenRequest ParseOpenAICompletion(const Json& b, const RequestLimits& limits) {
  GenRequest r;
  r.api = GenRequest::Api::kOpenAICompletion;
  r.chat = false;
  r.model = field::String(b, "model", "model").value_or("");
  r.stream = field::Bool(b, "stream", "stream").value_or(false);
  auto p = b.find("prompt");
  if (p == b.end() || p->is_null()) BadField("prompt", "missing");
  auto token_list = [&](const Json& a, const std::string& path) {
    RawPrompt rp;
    rp.is_tokens = true;
    for (size_t i = 0; i < a.size(); ++i) {
      if (!a[i].is_number_integer() || a[i].get<int64_t>() < 0 || a[i].get<int64_t>() > INT32_MAX) {
        BadField(Index(path, i), "must be a token id");
      }
      rp.tokens.push_back(static_cast<int32_t>(a[i].get<int64_t>()));
    }
    if (rp.tokens.empty()) BadField(path, "is empty");
    return rp;
  };
  if (p->is_string()) {
    r.prompts.push_back({p->get<std::string>(), {}, false});
  } else if (p->is_array() && !p->empty() && (*p)[0].is_number()) {
    r.prompts.push_back(token_list(*p, "prompt"));
  } else if (p->is_array() && !p->empty()) {
    for (size_t i = 0; i < p->size(); ++i) {
      const Json& x = (*p)[i];
      if (x.is_string()) {
        r.prompts.push_back({x.get<std::string>(), {}, false});
      } else if (x.is_array()) {
        r.prompts.push_back(token_list(x, Index("prompt", i)));
      } else {
        BadField(Index("prompt", i), "must be a string or an array of token ids");
      }
    }
  } else {
    BadField("prompt", "must be a string, an array of strings or an array of token ids (not empty)");
  }
  if (static_cast<int>(r.prompts.size()) > limits.max_prompts) {
    BadField("prompt", "more than " + std::to_string(limits.max_prompts) + " prompts");
  }
  if (auto s = field::String(b, "suffix", "suffix"); s && !s->empty()) BadField("suffix", "is not supported");
  ParseSampling(b, &r);
  r.max_tokens = ParseMaxTokens(b, limits, std::min(16, limits.max_tokens));  // OpenAI's default is 16
  r.n = static_cast<int>(field::Integer(b, "n", "n", 1, limits.max_n).value_or(1));
  if (auto bo = field::Integer(b, "best_of", "best_of", 1, limits.max_n); bo && *bo != r.n) {
    BadField("best_of", "is not supported (use n)");
  }
  if (auto lp = field::Integer(b, "logprobs", "logprobs", 0, 20)) {
    r.logprobs = true;
    r.top_logprobs = static_cast<int>(*lp);
  }
  r.echo = field::Bool(b, "echo", "echo").value_or(false);
  return r;
}

}  // namespace g4::server
