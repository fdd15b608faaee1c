// The Gemma 3 instruction template (tokenizer_config.json of the Gemma 3 IT models):
//   <bos><start_of_turn>user\n{system}\n\n{user}<end_of_turn>\n<start_of_turn>model\n...
// A first system message is not a turn: its text (unstripped) plus "\n\n" prefixes the first user
// turn; when the content is a list only its first part's text is used. After it, roles must
// alternate user, non-user, user...; the template raises otherwise. Message text is stripped; an
// image part renders as <start_of_image>; content that is neither a string nor a list is rejected.
#include "chat/format.h"
#include "chat/render.h"
#include "chat/render_internal.h"
#include "util/error.h"

namespace g4::chat {
namespace {

using internal::ConcatOperand;
using internal::MessagePath;
using py::Item;
using py::Value;

bool IsStr(Value v, std::string_view s) { return v != nullptr && v->is_string() && *v == s; }

std::string RenderGemma3Template(const Json& messages, const RenderOptions& o) {
  internal::ValidateMessages(messages);
  const Markers& m = MarkersFor(ChatFormat::kGemma3);
  std::string out = o.bos_token;
  std::string first_user_prefix;
  size_t first = 0;
  if (messages[0]["role"] == "system") {
    Value content = Item(&messages[0], "content");
    if (py::IsString(content)) {
      first_user_prefix = content->get<std::string>() + "\n\n";
    } else {
      // messages[0]['content'][0]['text']
      Value part = content != nullptr && content->is_array() && !content->empty() ? &(*content)[0] : nullptr;
      if (part == nullptr) {
        Fail("%s: a system message needs a string or a list of parts", MessagePath(0, "content").c_str());
      }
      first_user_prefix = ConcatOperand(Item(part, "text"), MessagePath(0, "content") + "[0].text") + "\n\n";
    }
    first = 1;
  }
  for (size_t i = first; i < messages.size(); ++i) {
    const Json& msg = messages[i];
    const std::string& raw_role = msg["role"].get_ref<const std::string&>();
    const bool expect_user = (i - first) % 2 == 0;
    if ((raw_role == "user") != expect_user) {
      Fail("%s: Gemma 3 conversations must alternate user/assistant/user/assistant/... (after an optional "
           "first system message); expected %s here, got '%s'",
           MessagePath(i, "role").c_str(), expect_user ? "user" : "a non-user role", raw_role.c_str());
    }
    const std::string role = raw_role == "assistant" ? "model" : raw_role;
    out += m.turn_start + role + "\n";
    if (i == first) out += first_user_prefix;
    Value content = Item(&msg, "content");
    if (py::IsString(content)) {
      out += py::Strip(content->get_ref<const std::string&>());
    } else if (content == nullptr || content->is_array() || content->is_object()) {
      // `is iterable`: a missing content (Undefined) iterates nothing, a dict iterates its keys.
      for (size_t p = 0; content != nullptr && content->is_array() && p < content->size(); ++p) {
        const Json& item = (*content)[p];
        Value type = Item(&item, "type");
        if (IsStr(type, "image")) {
          out += m.image;
        } else if (IsStr(type, "text")) {
          out += py::Strip(py::Str(Item(&item, "text")));
        }
      }
    } else {
      Fail("%s: Invalid content type (the Gemma 3 template needs a string or a list of parts, got %s)",
           MessagePath(i, "content").c_str(), py::Repr(*content).c_str());
    }
    out += m.turn_end + "\n";
  }
  if (o.add_generation_prompt) out += m.turn_start + "model\n";
  return out;
}

}  // namespace

std::string RenderGemma3(const Json& messages, const RenderOptions& options) {
  if (options.openai_compat) return RenderGemma3Template(NormalizeOpenAI(messages), options);
  return RenderGemma3Template(messages, options);
}

}  // namespace g4::chat
