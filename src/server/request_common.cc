// Field access shared by the request parsers, and the checks on tool messages.
#include <cctype>
#include <cmath>

#include "server/request.h"
#include "server/request_parts.h"

namespace g4::server {

namespace field {

std::string Path(const std::string& parent, const char* key) {
  if (parent.empty()) return key;
  std::string p = parent;
  p += '.';
  p += key;
  return p;
}

std::string Index(const std::string& parent, size_t i) {
  std::string p = parent;
  p += '[';
  p += std::to_string(i);
  p += ']';
  return p;
}

namespace {
const Json* Find(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}
}  // namespace

std::optional<std::string> String(const Json& obj, const char* key, const std::string& path) {
  const Json* v = Find(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) BadField(path, std::string("must be a string, not ") + v->type_name());
  return v->get<std::string>();
}

std::optional<bool> Bool(const Json& obj, const char* key, const std::string& path) {
  const Json* v = Find(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) BadField(path, std::string("must be true or false, not ") + v->type_name());
  return v->get<bool>();
}

std::optional<double> Number(const Json& obj, const char* key, const std::string& path, double lo, double hi) {
  const Json* v = Find(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) BadField(path, std::string("must be a number, not ") + v->type_name());
  const double d = v->get<double>();
  if (!(d >= lo && d <= hi)) {
    char buf[160];
    std::snprintf(buf, sizeof(buf), "%g is out of range (%g to %g)", d, lo, hi);
    BadField(path, buf);
  }
  return d;
}

std::optional<int64_t> Integer(const Json& obj, const char* key, const std::string& path, int64_t lo, int64_t hi) {
  const Json* v = Find(obj, key);
  if (!v) return std::nullopt;
  int64_t x = 0;
  if (v->is_number_integer()) {
    x = v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX
                                                                                          : v->get<int64_t>();
  } else if (v->is_number_float() && std::floor(v->get<double>()) == v->get<double>() &&
             std::fabs(v->get<double>()) < 9e18) {
    x = static_cast<int64_t>(v->get<double>());
  } else {
    BadField(path, std::string("must be an integer, not ") + (v->is_number() ? "a fraction" : v->type_name()));
  }
  if (x < lo || x > hi) {
    BadField(path, std::to_string(x) + " is out of range (" + std::to_string(lo) + " to " + std::to_string(hi) + ")");
  }
  return x;
}

}  // namespace field

void CheckToolCallIds(const Json& messages) {
  // The ids of the calls made by the last assistant message, and where it was.
  std::vector<std::string> ids;
  long assistant = -1;
  for (size_t i = 0; i < messages.size(); ++i) {
    const Json& m = messages[i];
    const std::string role = m.value("role", "");
    const std::string path = field::Index("messages", i);
    if (role == "assistant") {
      assistant = static_cast<long>(i);
      ids.clear();
      if (auto tc = m.find("tool_calls"); tc != m.end() && tc->is_array()) {
        for (const auto& c : *tc) {
          if (c.contains("id") && c["id"].is_string()) ids.push_back(c["id"].get<std::string>());
        }
      }
    } else if (role == "tool") {
      auto id = m.find("tool_call_id");
      if (id == m.end() || id->is_null()) {
        if (m.contains("name")) continue;  // answered by function name (Ollama, Gemma's native form)
        BadField(field::Path(path, "tool_call_id"), "missing: a tool message answers a tool call by its id");
      }
      if (!id->is_string()) BadField(field::Path(path, "tool_call_id"), "must be a string");
      if (assistant < 0) {
        BadField(path, "a tool message must follow an assistant message that made tool calls");
      }
      const std::string want = id->get<std::string>();
      if (std::find(ids.begin(), ids.end(), want) == ids.end()) {
        std::string known;
        for (const auto& k : ids) {
          if (!known.empty()) known += ", ";
          known += k;
        }
        BadField(field::Path(path, "tool_call_id"),
                 "'" + want + "' does not match a tool call of the assistant message before it (" +
                     field::Index("messages", static_cast<size_t>(assistant)) +
                     (known.empty() ? " made none)" : " made " + known + ")"));
      }
    } else {
      assistant = -1;
      ids.clear();
    }
  }
}

}  // namespace g4::server

namespace g4::server {

using field::Index;
using field::Path;

Json ParseToolCalls(const Json& calls, const std::string& path, bool need_ids) {
  if (!calls.is_array()) BadField(path, "must be an array of tool calls");
  Json out = Json::array();
  for (size_t k = 0; k < calls.size(); ++k) {
    const Json& c = calls[k];
    const std::string cp = Index(path, k);
    if (!c.is_object()) BadField(cp, "a tool call must be an object");
    auto id = field::String(c, "id", Path(cp, "id"));
    if (!id) {
      if (need_ids) BadField(Path(cp, "id"), "missing");
      id = "call_" + std::to_string(k);
    }
    auto fn = c.find("function");
    if (fn == c.end() || !fn->is_object()) BadField(Path(cp, "function"), "missing ({\"name\", \"arguments\"})");
    const std::string fp = Path(cp, "function");
    const auto name = field::String(*fn, "name", Path(fp, "name"));
    if (!name || name->empty()) BadField(Path(fp, "name"), "missing");
    Json args = Json::object();
    if (auto a = fn->find("arguments"); a != fn->end() && !a->is_null()) {
      if (a->is_string()) {
        try {
          args = a->get<std::string>().empty() ? Json::object() : Json::parse(a->get<std::string>());
        } catch (const Json::parse_error&) {
          BadField(Path(fp, "arguments"), "is not valid JSON");
        }
      } else {
        args = *a;
      }
      if (!args.is_object()) BadField(Path(fp, "arguments"), "must be a JSON object");
    }
    out.push_back({{"id", *id}, {"type", "function"}, {"function", {{"name", *name}, {"arguments", args}}}});
  }
  return out;
}

void ParseTools(const Json& b, GenRequest* r) {
  auto t = b.find("tools");
  if (t == b.end() || t->is_null()) return;
  if (!t->is_array()) BadField("tools", "must be an array of tools");
  if (t->empty()) return;
  if (t->size() > 128) BadField("tools", "more than 128 tools");
  for (size_t i = 0; i < t->size(); ++i) {
    const Json& tool = (*t)[i];
    const std::string tp = Index("tools", i);
    if (!tool.is_object()) BadField(tp, "a tool must be an object");
    if (auto type = field::String(tool, "type", Path(tp, "type")); type && *type != "function") {
      BadField(Path(tp, "type"), "unknown tool type '" + *type + "' (only function tools are supported)");
    }
    auto fn = tool.find("function");
    if (fn == tool.end() || !fn->is_object()) BadField(Path(tp, "function"), "missing ({\"name\", \"parameters\"})");
    const std::string fp = Path(tp, "function");
    const auto name = field::String(*fn, "name", Path(fp, "name"));
    if (!name) BadField(Path(fp, "name"), "missing");
    bool ok = !name->empty() && name->size() <= 64;
    for (char c : *name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.');
    if (!ok) BadField(Path(fp, "name"), "'" + *name + "' must be 1 to 64 letters, digits, '_', '-' or '.'");
    if (auto p = fn->find("parameters"); p != fn->end() && !p->is_null() && !p->is_object()) {
      BadField(Path(fp, "parameters"), "must be a JSON schema object");
    }
  }
  r->tools = *t;
}

void CheckToolChoice(const GenRequest& r) {
  using TC = GenRequest::ToolChoice;
  if (r.tool_choice != TC::kRequired && r.tool_choice != TC::kNamed) return;
  if (!r.tools.is_array() || r.tools.empty()) BadField("tool_choice", "a tool must be called but the request has no tools");
  if (r.tool_choice == TC::kNamed) {
    std::string names;
    for (const auto& t : r.tools) {
      const std::string n = t["function"]["name"].get<std::string>();
      if (n == r.tool_name) return;
      if (!names.empty()) names += ", ";
      names += n;
    }
    BadField("tool_choice.function.name", "'" + r.tool_name + "' is not one of the tools (" + names + ")");
  }
}

std::vector<std::string> ParseStop(const Json& v, const std::string& path) {
  std::vector<std::string> out;
  auto add = [&](const Json& s, const std::string& p) {
    if (!s.is_string()) BadField(p, "must be a string");
    const std::string& str = s.get_ref<const std::string&>();
    if (str.empty()) BadField(p, "must not be empty");
    if (str.size() > 256) BadField(p, "is longer than 256 bytes");
    out.push_back(str);
  };
  if (v.is_string()) {
    add(v, path);
  } else if (v.is_array()) {
    if (v.size() > 16) BadField(path, "more than 16 stop strings");
    for (size_t i = 0; i < v.size(); ++i) add(v[i], Index(path, i));
  } else {
    BadField(path, "must be a string or an array of strings");
  }
  return out;
}

std::shared_ptr<const Schema> CompileSchema(const Json& schema, const std::string& path) {
  try {
    return Schema::Compile(schema, path, /*strict=*/true);
  } catch (const ApiError&) {
    throw;
  } catch (const Error& e) {
    const std::string msg = e.what();
    const size_t colon = msg.find(": ");
    throw ApiError(400, msg, colon == std::string::npos ? path : msg.substr(0, colon));
  }
}

void ParseContextOverflowField(const Json& b, GenRequest* r) {
  auto v = field::String(b, "context_overflow", "context_overflow");
  if (!v) return;
  if (*v != "error" && *v != "drop-oldest") {
    BadField("context_overflow", "'" + *v + "' is not a policy (\"error\" or \"drop-oldest\")");
  }
  r->context_overflow = *v;
}

}  // namespace g4::server
