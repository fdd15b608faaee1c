#include "chat/gemma_syntax.h"

#include "util/error.h"

namespace g4::chat {
namespace {

// Deeper nesting than any real tool call; it bounds the recursion on hostile input.
constexpr int kMaxDepth = 128;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Characters that end a bare key or an unquoted scalar.
bool IsStructural(char c) {
  return IsSpace(c) || c == ':' || c == ',' || c == '{' || c == '}' || c == '[' || c == ']';
}

class Reader {
 public:
  Reader(std::string_view text, std::string_view delimiter) : s_(text), delim_(delimiter) {}

  bool Value(Json* out, int depth) {
    SkipSpace();
    if (depth > kMaxDepth) return Error("nesting deeper than " + std::to_string(kMaxDepth));
    if (pos_ >= s_.size()) return Error("value expected at end of text");
    if (AtDelimiter()) return String(out);
    const char c = s_[pos_];
    if (c == '{') return Object(out, depth);
    if (c == '[') return Array(out, depth);
    return Scalar(out);
  }

  void SkipSpace() {
    while (pos_ < s_.size() && IsSpace(s_[pos_])) ++pos_;
  }
  bool AtEnd() const { return pos_ >= s_.size(); }
  size_t pos() const { return pos_; }
  const std::string& error() const { return error_; }

  bool Error(const std::string& what) {
    error_ = what + " at offset " + std::to_string(pos_);
    return false;
  }

 private:
  bool AtDelimiter() const { return !delim_.empty() && s_.substr(pos_, delim_.size()) == delim_; }

  bool Quoted(std::string* out) {
    const size_t start = pos_ + delim_.size();
    const size_t end = s_.find(delim_, start);
    if (end == std::string_view::npos) return Error("unterminated string");
    *out = SanitizeUtf8(s_.substr(start, end - start));
    pos_ = end + delim_.size();
    return true;
  }

  bool String(Json* out) {
    std::string s;
    if (!Quoted(&s)) return false;
    *out = std::move(s);
    return true;
  }

  bool Key(std::string* key) {
    SkipSpace();
    if (AtDelimiter()) return Quoted(key);
    const size_t start = pos_;
    while (pos_ < s_.size() && !IsStructural(s_[pos_]) && !AtDelimiter()) ++pos_;
    if (pos_ == start) return Error("key expected");
    *key = SanitizeUtf8(s_.substr(start, pos_ - start));
    return true;
  }

  bool Object(Json* out, int depth) {
    ++pos_;  // '{'
    *out = Json::object();
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return true;
    }
    for (;;) {
      std::string key;
      if (!Key(&key)) return false;
      SkipSpace();
      if (pos_ >= s_.size() || s_[pos_] != ':') return Error("':' expected after key '" + key + "'");
      ++pos_;
      Json value;
      if (!Value(&value, depth + 1)) return false;
      (*out)[key] = std::move(value);
      SkipSpace();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        return true;
      }
      return Error("',' or '}' expected");
    }
  }

  bool Array(Json* out, int depth) {
    ++pos_;  // '['
    *out = Json::array();
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return true;
    }
    for (;;) {
      Json value;
      if (!Value(&value, depth + 1)) return false;
      out->push_back(std::move(value));
      SkipSpace();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == ']') {
        ++pos_;
        return true;
      }
      return Error("',' or ']' expected");
    }
  }

  bool Scalar(Json* out) {
    const size_t start = pos_;
    while (pos_ < s_.size() && !IsStructural(s_[pos_]) && !AtDelimiter()) ++pos_;
    const std::string_view token = s_.substr(start, pos_ - start);
    if (token == "true" || token == "True") {
      *out = true;
    } else if (token == "false" || token == "False") {
      *out = false;
    } else if (token == "null" || token == "None") {
      *out = nullptr;
    } else if (IsJsonNumber(token)) {
      try {
        *out = Json::parse(token);
      } catch (const Json::exception&) {  // e.g. 1e999 overflows a double
        pos_ = start;
        return Error("number out of range '" + std::string(token) + "'");
      }
    } else {
      pos_ = start;
      return Error(token.empty() ? "value expected" : "unquoted value '" + SanitizeUtf8(token) + "'");
    }
    return true;
  }

  // RFC 8259 number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  static bool IsJsonNumber(std::string_view t) {
    size_t i = 0;
    auto digits = [&]() {
      const size_t from = i;
      while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
      return i > from;
    };
    if (i < t.size() && t[i] == '-') ++i;
    if (i < t.size() && t[i] == '0') {
      ++i;
    } else if (!digits()) {
      return false;
    }
    if (i < t.size() && t[i] == '.') {
      ++i;
      if (!digits()) return false;
    }
    if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
      ++i;
      if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
      if (!digits()) return false;
    }
    return i == t.size();
  }

  std::string_view s_;
  std::string_view delim_;
  size_t pos_ = 0;
  std::string error_;
};

}  // namespace

void AppendGemmaValue(py::Value value, bool quote_keys, std::string_view delimiter, std::string* out) {
  if (value == nullptr) {
    *out += "[]";  // Jinja's Undefined passes the `sequence` test and iterates nothing
    return;
  }
  if (value->is_string()) {
    out->append(delimiter);
    *out += value->get_ref<const std::string&>();
    out->append(delimiter);
  } else if (value->is_boolean()) {
    *out += value->get<bool>() ? "true" : "false";
  } else if (value->is_object()) {
    out->push_back('{');
    bool first = true;
    for (const auto& [key, item] : py::DictSort(*value)) {
      if (!first) out->push_back(',');
      first = false;
      if (quote_keys) out->append(delimiter);
      *out += *key;
      if (quote_keys) out->append(delimiter);
      out->push_back(':');
      AppendGemmaValue(item, quote_keys, delimiter, out);
    }
    out->push_back('}');
  } else if (value->is_array()) {
    out->push_back('[');
    for (size_t i = 0; i < value->size(); ++i) {
      if (i > 0) out->push_back(',');
      AppendGemmaValue(&(*value)[i], quote_keys, delimiter, out);
    }
    out->push_back(']');
  } else {
    *out += py::Str(value);
  }
}

std::string FormatGemmaValue(const Json& value, bool quote_keys, std::string_view delimiter) {
  std::string out;
  AppendGemmaValue(&value, quote_keys, delimiter, &out);
  return out;
}

Json ToolCall::ToJson() const { return Json{{"name", name}, {"arguments", arguments}}; }

bool ParseGemmaValue(std::string_view text, std::string_view delimiter, Json* out, std::string* error) {
  Reader reader(text, delimiter);
  if (!reader.Value(out, 0)) {
    *error = reader.error();
    return false;
  }
  reader.SkipSpace();
  if (!reader.AtEnd()) {
    reader.Error("unexpected text after the value");
    *error = reader.error();
    return false;
  }
  return true;
}

bool ParseToolCallText(std::string_view text, std::string_view delimiter, ToolCall* call, std::string* error) {
  size_t pos = 0;
  while (pos < text.size() && IsSpace(text[pos])) ++pos;
  constexpr std::string_view kCall = "call:";
  if (text.substr(pos, kCall.size()) != kCall) {
    *error = "a tool call must start with 'call:'";
    return false;
  }
  pos += kCall.size();
  const size_t brace = text.find('{', pos);
  if (brace == std::string_view::npos) {
    *error = "'{' expected after the function name";
    return false;
  }
  const std::string_view name = text.substr(pos, brace - pos);
  if (name.empty()) {
    *error = "empty function name";
    return false;
  }
  for (char c : name) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == '}' || c == ',' || c == ':' || c == '[' || c == ']' ||
        c == '<' || c == '>') {
      *error = "invalid character in function name '" + SanitizeUtf8(name) + "'";
      return false;
    }
  }
  Json args;
  if (!ParseGemmaValue(text.substr(brace), delimiter, &args, error)) {
    *error = "arguments of '" + SanitizeUtf8(name) + "': " + *error;
    return false;
  }
  G4_CHECK(args.is_object());  // the text at `brace` starts with '{'
  call->name = SanitizeUtf8(name);
  call->arguments = std::move(args);
  return true;
}

std::string SanitizeUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte (RFC 3629 table 3-7)
    if (b0 < 0x80) {
      len = 1;
    } else if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3;
      if (b0 == 0xE0) lo = 0xA0;
      if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4;
      if (b0 == 0xF0) lo = 0x90;
      if (b0 == 0xF4) hi = 0x8F;
    }
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    }
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

}  // namespace g4::chat
