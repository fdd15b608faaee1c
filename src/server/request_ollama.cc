// Ollama request bodies: POST /api/chat and POST /api/generate. Their messages are converted to the
// OpenAI shape the renderer reads (images become content parts, tool calls get ids, a tool message
// answers the calls of the assistant message before it in order).
#include <set>

#include "server/request.h"
#include "server/request_parts.h"

namespace g4::server {

using field::Index;
using field::Path;

namespace {

void ParseImages(const Json& m, const std::string& path, Json* parts, std::vector<MediaInput>* media) {
  auto images = m.find("images");
  if (images == m.end() || images->is_null()) return;
  if (!images->is_array()) BadField(path, "must be an array of base64 images");
  for (size_t k = 0; k < images->size(); ++k) {
    const Json& img = (*images)[k];
    const std::string ip = Index(path, k);
    if (!img.is_string()) BadField(ip, "must be a base64 string");
    const std::string& s = img.get_ref<const std::string&>();
    media->push_back({MediaInput::Kind::kImage, s.rfind("data:", 0) == 0 ? DecodeDataUri(s, ip) : DecodeBase64(s, ip), ip});
    parts->push_back({{"type", "image"}});
  }
}

// think: true/false, or "low" / "medium" / "high" (Gemma thinks or does not).
std::optional<bool> ParseThink(const Json& b) {
  auto t = b.find("think");
  if (t == b.end() || t->is_null()) return std::nullopt;
  if (t->is_boolean()) return t->get<bool>();
  if (t->is_string()) {
    static const std::set<std::string> kLevels = {"low", "medium", "high"};
    if (kLevels.count(t->get<std::string>())) return true;
  }
  BadField("think", "must be true, false, \"low\", \"medium\" or \"high\"");
}

void ParseFormat(const Json& b, GenRequest* r) {
  auto f = b.find("format");
  if (f == b.end() || f->is_null()) return;
  if (f->is_string()) {
    const std::string s = f->get<std::string>();
    if (s == "json") {
      r->format = GenRequest::Format::kJsonObject;
    } else if (!s.empty()) {
      BadField("format", "must be \"json\" or a JSON schema object");
    }
    return;
  }
  if (!f->is_object()) BadField("format", "must be \"json\" or a JSON schema object");
  r->format = GenRequest::Format::kJsonSchema;
  r->schema = CompileSchema(*f, "format");
}

void ParseOptions(const Json& b, GenRequest* r, const RequestLimits& limits) {
  auto o = b.find("options");
  if (o == b.end() || o->is_null()) return;
  if (!o->is_object()) BadField("options", "must be an object");
  const Json& x = *o;
  if (auto v = field::Number(x, "temperature", "options.temperature", 0, 100)) r->temperature = static_cast<float>(*v);
  if (auto v = field::Number(x, "top_p", "options.top_p", 0, 1)) r->top_p = static_cast<float>(*v);
  if (auto v = field::Integer(x, "top_k", "options.top_k", -1, 1000000)) r->top_k = static_cast<int>(*v);
  if (auto v = field::Number(x, "min_p", "options.min_p", 0, 1)) r->min_p = static_cast<float>(*v);
  if (auto v = field::Number(x, "presence_penalty", "options.presence_penalty", -100, 100)) {
    r->presence_penalty = static_cast<float>(*v);
  }
  if (auto v = field::Number(x, "frequency_penalty", "options.frequency_penalty", -100, 100)) {
    r->frequency_penalty = static_cast<float>(*v);
  }
  if (auto v = field::Number(x, "repeat_penalty", "options.repeat_penalty", 0.01, 100)) {
    r->repeat_penalty = static_cast<float>(*v);
  }
  if (auto v = field::Integer(x, "repeat_last_n", "options.repeat_last_n", -1, 1 << 20)) {
    r->repeat_last_n = static_cast<int>(*v);
  }
  if (auto v = field::Integer(x, "seed", "options.seed", INT64_MIN, INT64_MAX)) r->seed = static_cast<uint64_t>(*v);
  if (auto v = field::Integer(x, "num_predict", "options.num_predict", -2, INT32_MAX)) {
    if (*v > limits.max_tokens) {
      BadField("options.num_predict",
               std::to_string(*v) + " is more than this server allows (" + std::to_string(limits.max_tokens) + ")");
    }
    if (*v == 0) BadField("options.num_predict", "must not be 0");
    r->max_tokens = *v < 0 ? -1 : static_cast<int>(*v);  // -1 (infinite) and -2 (fill the context): the limit
  }
  if (auto s = x.find("stop"); s != x.end() && !s->is_null()) r->stop = ParseStop(*s, "options.stop");
}

Json ParseMessage(const Json& m, const std::string& path, std::vector<MediaInput>* media) {
  if (!m.is_object()) BadField(path, "a message must be an object");
  const auto role = field::String(m, "role", Path(path, "role"));
  if (!role) BadField(Path(path, "role"), "missing");
  static const std::set<std::string> kRoles = {"system", "developer", "user", "assistant", "tool"};
  if (!kRoles.count(*role)) {
    BadField(Path(path, "role"), "unknown role '" + *role + "' (expected system, user, assistant or tool)");
  }
  const std::string content = field::String(m, "content", Path(path, "content")).value_or("");
  Json out = {{"role", *role}};
  Json parts = Json::array();
  ParseImages(m, Path(path, "images"), &parts, media);
  if (parts.empty()) {
    out["content"] = content;
  } else {
    if (!content.empty()) parts.push_back({{"type", "text"}, {"text", content}});
    out["content"] = parts;
  }
  if (*role == "assistant") {
    if (auto t = field::String(m, "thinking", Path(path, "thinking")); t && !t->empty()) out["reasoning_content"] = *t;
    if (auto tc = m.find("tool_calls"); tc != m.end() && !tc->is_null()) {
      out["tool_calls"] = ParseToolCalls(*tc, Path(path, "tool_calls"), /*need_ids=*/false);
    }
  }
  if (*role == "tool") {
    if (auto n = field::String(m, "tool_name", Path(path, "tool_name"))) out["name"] = *n;
  }
  return out;
}

// Ollama's tool messages carry no ids: the k-th tool message after an assistant message with calls
// answers its k-th call. Ids are made unique across the conversation.
void LinkToolMessages(Json* messages) {
  Json* calls = nullptr;
  size_t next = 0;
  for (size_t i = 0; i < messages->size(); ++i) {
    Json& m = (*messages)[i];
    const std::string role = m["role"].get<std::string>();
    if (role == "assistant" && m.contains("tool_calls")) {
      calls = &m["tool_calls"];
      for (size_t k = 0; k < calls->size(); ++k) (*calls)[k]["id"] = "call_" + std::to_string(i) + "_" + std::to_string(k);
      next = 0;
    } else if (role == "tool") {
      if (calls && next < calls->size()) {
        const Json& call = (*calls)[next++];
        m["tool_call_id"] = call["id"];
        if (!m.contains("name")) m["name"] = call["function"]["name"];
      }
    } else {
      calls = nullptr;
    }
  }
}

}  // namespace

GenRequest ParseOllamaChat(const Json& b, const RequestLimits& limits) {
  GenRequest r;
  r.api = GenRequest::Api::kOllamaChat;
  r.chat = true;
  r.model = field::String(b, "model", "model").value_or("");
  r.stream = field::Bool(b, "stream", "stream").value_or(true);  // Ollama streams unless told not to
  auto m = b.find("messages");
  if (m != b.end() && !m->is_null() && !m->is_array()) BadField("messages", "must be an array of messages");
  if (m == b.end() || m->is_null() || m->empty()) {
    r.load_only = true;  // Ollama's way of loading a model
    return r;
  }
  for (size_t i = 0; i < m->size(); ++i) r.messages.push_back(ParseMessage((*m)[i], Index("messages", i), &r.media));
  LinkToolMessages(&r.messages);
  ParseTools(b, &r);
  r.thinking = ParseThink(b);
  ParseFormat(b, &r);
  ParseOptions(b, &r, limits);
  ParseContextOverflowField(b, &r);
  return r;
}

GenRequest ParseOllamaGenerate(const Json& b, const RequestLimits& limits) {
  GenRequest r;
  r.api = GenRequest::Api::kOllamaGenerate;
  r.model = field::String(b, "model", "model").value_or("");
  r.stream = field::Bool(b, "stream", "stream").value_or(true);
  const std::string prompt = field::String(b, "prompt", "prompt").value_or("");
  if (auto s = field::String(b, "suffix", "suffix"); s && !s->empty()) BadField("suffix", "is not supported");
  if (auto t = field::String(b, "template", "template"); t && !t->empty()) {
    BadField("template", "custom templates are not supported (the model's own chat format is used)");
  }
  const bool raw = field::Bool(b, "raw", "raw").value_or(false);
  if (auto c = b.find("context"); c != b.end() && !c->is_null()) {
    if (!c->is_array()) BadField("context", "must be an array of token ids");
    for (size_t i = 0; i < c->size(); ++i) {
      const Json& t = (*c)[i];
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > INT32_MAX) {
        BadField(Index("context", i), "must be a token id");
      }
      r.context.push_back(static_cast<int32_t>(t.get<int64_t>()));
    }
  }
  Json parts = Json::array();
  ParseImages(b, "images", &parts, &r.media);
  if (prompt.empty() && parts.empty()) {
    r.load_only = true;
    return r;
  }
  if (raw) {
    r.chat = false;
    r.prompts.push_back({prompt, {}, false});
  } else {
    r.chat = true;
    if (auto s = field::String(b, "system", "system"); s && !s->empty()) {
      r.messages.push_back({{"role", "system"}, {"content", *s}});
    }
    Json user = {{"role", "user"}};
    if (parts.empty()) {
      user["content"] = prompt;
    } else {
      if (!prompt.empty()) parts.push_back({{"type", "text"}, {"text", prompt}});
      user["content"] = parts;
    }
    r.messages.push_back(user);
  }
  r.thinking = ParseThink(b);
  ParseFormat(b, &r);
  ParseOptions(b, &r, limits);
  return r;
}

}  // namespace g4::server
