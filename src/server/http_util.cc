#include "server/http_util.h"

#include <array>
#include <chrono>
#include <ctime>
#include <mutex>
#include <random>

namespace g4::server {

ApiError::ApiError(int status, std::string message, std::string param, std::string type, std::string code)
    : Error(std::move(message)), status_(status), param_(std::move(param)), type_(std::move(type)),
      code_(std::move(code)) {
  if (type_.empty()) {
    type_ = status == 401   ? "authentication_error"
            : status == 404 ? "not_found_error"
            : status == 429 ? "rate_limit_error"
            : status >= 500 ? "server_error"
                            : "invalid_request_error";
  }
}

void BadField(const std::string& field, const std::string& message) {
  std::string m = field;
  m += ": ";
  m += message;
  throw ApiError(400, m, field);
}

ApiError FromEngineError(const Error& e, const std::string& fallback_param) {
  const std::string msg = e.what();
  // Messages from the renderer start with the element's path: "messages[3].content[0].type: ...".
  std::string param = fallback_param;
  const size_t colon = msg.find(": ");
  if (colon != std::string::npos && colon < 120) {
    const std::string head = msg.substr(0, colon);
    if (head.find(' ') == std::string::npos &&
        (head.rfind("messages", 0) == 0 || head.rfind("tools", 0) == 0 || head.rfind("response_format", 0) == 0 ||
         head.rfind("tool_choice", 0) == 0 || head.rfind("format", 0) == 0 || head.rfind("prompt", 0) == 0)) {
      param = head;
    }
  }
  return ApiError(400, msg, param);
}

Json OpenAIErrorBody(const ApiError& e) {
  Json err = {{"message", e.what()}, {"type", e.type()}, {"param", nullptr}, {"code", nullptr}};
  if (!e.param().empty()) err["param"] = e.param();
  if (!e.code().empty()) err["code"] = e.code();
  return Json{{"error", err}};
}

Json OllamaErrorBody(const ApiError& e) { return Json{{"error", e.what()}}; }

namespace {

// Model output and client text may hold invalid UTF-8 only by mistake; never let it throw here.
std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

}  // namespace

std::string SseEvent(const Json& data) {
  std::string s = "data: ";
  s += Dump(data);
  s += "\n\n";
  return s;
}

std::string SseDone() { return "data: [DONE]\n\n"; }

std::string SseKeepAlive() { return ": keep-alive\n\n"; }

std::string NdjsonLine(const Json& data) {
  std::string s = Dump(data);
  s += '\n';
  return s;
}

bool NestingWithin(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

Json ParseBody(std::string_view body) {
  constexpr int kMaxNesting = 64;
  if (!NestingWithin(body, kMaxNesting)) {
    throw ApiError(400, "the request body is nested deeper than " + std::to_string(kMaxNesting) + " levels");
  }
  Json j;
  try {
    j = Json::parse(body);
  } catch (const Json::parse_error& e) {
    std::string m = "the request body is not valid JSON: ";
    m += e.what();
    throw ApiError(400, m);
  }
  if (!j.is_object()) throw ApiError(400, "the request body must be a JSON object");
  return j;
}

std::vector<uint8_t> DecodeBase64(std::string_view text, const std::string& field) {
  static const auto table = [] {
    std::array<int8_t, 256> t;
    t.fill(-1);
    const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<uint8_t>(a[i])] = static_cast<int8_t>(i);
    t['-'] = 62;  // the URL-safe alphabet too
    t['_'] = 63;
    return t;
  }();
  std::vector<uint8_t> out;
  out.reserve(text.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  size_t pad = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<uint8_t>(text[i]);
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      ++pad;
      continue;
    }
    if (pad > 0 || table[c] < 0) BadField(field, "not valid base64 (character " + std::to_string(i) + ")");
    acc = (acc << 6) | static_cast<uint32_t>(table[c]);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>(acc >> bits));
    }
  }
  if (bits >= 6 || pad > 2) BadField(field, "not valid base64 (truncated)");
  if (out.empty()) BadField(field, "the data is empty");
  return out;
}

std::vector<uint8_t> DecodeDataUri(std::string_view uri, const std::string& field) {
  if (uri.substr(0, 5) != "data:") {
    BadField(field, "only data: URIs are accepted (e.g. data:image/png;base64,...); the server does not fetch "
                    "URLs or read files");
  }
  const size_t comma = uri.find(',');
  if (comma == std::string_view::npos) BadField(field, "a data: URI needs a ',' before its data");
  const std::string_view meta = uri.substr(5, comma - 5);
  if (meta.size() < 7 || meta.substr(meta.size() - 7) != ";base64") {
    BadField(field, "only base64 data: URIs are accepted (data:MIME;base64,...)");
  }
  return DecodeBase64(uri.substr(comma + 1), field);
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // Every byte of the longer string is looked at whatever the contents, so timing reveals at most
  // the lengths.
  const size_t n = std::max(a.size(), b.size());
  unsigned diff = a.size() != b.size();
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned>(x ^ y);
  }
  return diff == 0;
}

std::string RandomId(const char* prefix) {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  static const char* kChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string id = prefix;
  std::lock_guard<std::mutex> lock(mu);
  for (int i = 0; i < 24; ++i) id += kChars[rng() % 62];
  return id;
}

int64_t UnixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string Rfc3339Now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(us));
  return buf;
}

}  // namespace g4::server
