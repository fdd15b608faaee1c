// NormalizeOpenAI: see render.h. Only shapes the templates cannot read are touched; the templates
// themselves stay the authority on how everything renders.
#include "chat/pyvalue.h"
#include "chat/render.h"
#include "chat/render_internal.h"
#include "util/error.h"

namespace g4::chat {
namespace {

void NormalizeParts(Json* content) {
  if (!content->is_array()) return;
  for (Json& part : *content) {
    if (!part.is_object()) continue;
    auto type = part.find("type");
    if (type == part.end() || !type->is_string()) continue;
    if (*type == "image_url") {
      *type = "image";
    } else if (*type == "input_audio" || *type == "audio_url") {
      *type = "audio";
    } else if (*type == "video_url") {
      *type = "video";
    }
  }
}

void NormalizeToolCalls(Json* tool_calls) {
  if (!tool_calls->is_array()) return;
  for (Json& call : *tool_calls) {
    if (!call.is_object()) continue;
    auto fn = call.find("function");
    if (fn == call.end() || !fn->is_object()) continue;
    auto args = fn->find("arguments");
    if (args == fn->end() || !args->is_string()) continue;
    Json parsed = Json::parse(args->get_ref<const std::string&>(), nullptr, /*allow_exceptions=*/false);
    if (parsed.is_object()) *args = std::move(parsed);
  }
}

// The system text as the template would render a user message's parts: stripped texts, concatenated.
void FlattenSystemContent(Json* message, const std::string& path) {
  auto content = message->find("content");
  if (content == message->end() || !content->is_array()) return;
  std::string text;
  for (size_t p = 0; p < content->size(); ++p) {
    const Json& part = (*content)[p];
    const std::string ppath = path + ".content[" + std::to_string(p) + "]";
    if (!part.is_object() || part.value("type", Json()) != "text") {
      Fail("%s: a system message can only hold text parts", ppath.c_str());
    }
    auto t = part.find("text");
    if (t == part.end() || !t->is_string()) Fail("%s.text: must be a string", ppath.c_str());
    text += py::Strip(t->get_ref<const std::string&>());
  }
  *content = std::move(text);
}

}  // namespace

Json NormalizeOpenAI(const Json& messages) {
  if (!messages.is_array()) return messages;  // the renderer reports the problem
  Json out = messages;
  for (size_t i = 0; i < out.size(); ++i) {
    Json& msg = out[i];
    if (!msg.is_object()) continue;
    if (auto content = msg.find("content"); content != msg.end()) NormalizeParts(&*content);
    if (auto calls = msg.find("tool_calls"); calls != msg.end()) NormalizeToolCalls(&*calls);
    const Json role = msg.value("role", Json());
    if (i == 0 && (role == "system" || role == "developer")) FlattenSystemContent(&msg, internal::MessagePath(0));
    if (role == "assistant" && msg.contains("thinking") && !py::Truthy(py::Item(&msg, "reasoning")) &&
        !py::Truthy(py::Item(&msg, "reasoning_content"))) {
      msg["reasoning_content"] = msg["thinking"];
    }
  }
  return out;
}

}  // namespace g4::chat
