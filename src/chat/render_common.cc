#include <cstdint>

#include "chat/render_internal.h"
#include "util/error.h"

namespace g4::chat::internal {

std::string MessagePath(size_t index, const char* field) {
  std::string path = "messages[" + std::to_string(index) + "]";
  if (field != nullptr) path += std::string(".") + field;
  return path;
}

void ValidateMessages(const Json& messages) {
  if (!messages.is_array()) Fail("messages: must be a JSON array of message objects");
  if (messages.empty()) Fail("messages: the conversation is empty");
  for (size_t i = 0; i < messages.size(); ++i) {
    const Json& m = messages[i];
    if (!m.is_object()) Fail("%s: must be an object", MessagePath(i).c_str());
    auto role = m.find("role");
    if (role == m.end()) Fail("%s: missing role", MessagePath(i).c_str());
    if (!role->is_string()) Fail("%s: must be a string", MessagePath(i, "role").c_str());
    const std::string& r = role->get_ref<const std::string&>();
    if (r != "system" && r != "developer" && r != "user" && r != "assistant" && r != "tool") {
      Fail("%s: unknown role '%s' (expected system, developer, user, assistant or tool)",
           MessagePath(i, "role").c_str(), r.c_str());
    }
  }
}

void ValidateTools(const Json& tools) {
  if (tools.is_null()) return;
  if (!tools.is_array()) Fail("tools: must be an array of tool objects");
  for (size_t i = 0; i < tools.size(); ++i) {
    const Json& t = tools[i];
    const std::string path = "tools[" + std::to_string(i) + "]";
    if (!t.is_object()) Fail("%s: must be an object", path.c_str());
    auto fn = t.find("function");
    if (fn == t.end()) Fail("%s: missing function (expected {\"type\": \"function\", \"function\": {...}})", path.c_str());
    if (!fn->is_object()) Fail("%s.function: must be an object", path.c_str());
    auto name = fn->find("name");
    if (name == fn->end() || name->is_null()) Fail("%s: missing function name", path.c_str());
    if (!name->is_string() || name->get_ref<const std::string&>().empty()) {
      Fail("%s.function.name: must be a non-empty string", path.c_str());
    }
    auto params = fn->find("parameters");
    if (params == fn->end() || params->is_null()) continue;
    if (!params->is_object()) Fail("%s.function.parameters: must be an object", path.c_str());
    py::Value props = py::Item(&*params, "properties");
    if (py::Truthy(props) && !props->is_object()) {
      Fail("%s.function.parameters.properties: must be an object", path.c_str());
    }
  }
}

std::vector<Json> Iterate(py::Value v, const std::string& path) {
  std::vector<Json> out;
  if (v == nullptr) return out;
  if (v->is_array()) {
    out.assign(v->begin(), v->end());
  } else if (v->is_object()) {
    for (const auto& [key, value] : v->items()) out.emplace_back(key);
  } else if (v->is_string()) {
    // Python iterates code points.
    const std::string& s = v->get_ref<const std::string&>();
    for (size_t i = 0; i < s.size();) {
      size_t len = 1;
      const auto b = static_cast<uint8_t>(s[i]);
      if (b >= 0xF0) len = 4;
      else if (b >= 0xE0) len = 3;
      else if (b >= 0xC0) len = 2;
      len = std::min(len, s.size() - i);
      out.emplace_back(s.substr(i, len));
      i += len;
    }
  } else {
    Fail("%s: must be a list (got %s)", path.c_str(), py::Repr(*v).c_str());
  }
  return out;
}

const std::string& ConcatOperand(py::Value v, const std::string& path) {
  if (v == nullptr) Fail("%s: missing", path.c_str());
  if (!v->is_string()) Fail("%s: must be a string (got %s)", path.c_str(), py::Repr(*v).c_str());
  return v->get_ref<const std::string&>();
}

}  // namespace g4::chat::internal
