#include "server/json_matcher.h"

#include <cmath>
#include <cstdlib>
#include <unordered_map>

#include "chat/gemma_syntax.h"
#include "util/error.h"

namespace g4::server {

namespace {

constexpr int kMaxDepth = 32;
constexpr int kMaxWhitespace = 16;  // JSON; the Gemma syntax has none (the template writes none)
constexpr int kMaxIntDigits = 15;
constexpr int kMaxFracDigits = 15;
constexpr int kMaxExpDigits = 2;  // 15 digits e99 stays well inside a double
constexpr size_t kMaxThreads = 32;

constexpr std::string_view kDelim = chat::kGemmaStringDelimiter;  // <|"|>

const SchemaNode& AnyNode() {
  static const SchemaNode any;
  return any;
}

bool IsWs(uint8_t b) { return b == ' ' || b == '\t' || b == '\n' || b == '\r'; }
bool IsDigit(uint8_t b) { return b >= '0' && b <= '9'; }

int HexValue(uint8_t b) {
  if (b >= '0' && b <= '9') return b - '0';
  if (b >= 'a' && b <= 'f') return b - 'a' + 10;
  if (b >= 'A' && b <= 'F') return b - 'A' + 10;
  return -1;
}

// Characters of a bare key in the Gemma syntax (printable ASCII that the reader does not stop at).
bool IsBareKeyChar(uint8_t b) {
  if (b <= 0x20 || b >= 0x7f) return false;
  return b != ':' && b != ',' && b != '{' && b != '}' && b != '[' && b != ']' && b != '<';
}

bool IsBareKey(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsBareKeyChar(static_cast<uint8_t>(c))) return false;
  }
  return true;
}

// A prefix of the number grammar -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, within the digit limits.
bool NumberPrefix(std::string_view s, bool integer_only, bool allow_exp) {
  size_t i = 0;
  const size_t n = s.size();
  if (i < n && s[i] == '-') ++i;
  if (i == n) return true;
  if (s[i] == '0') {
    ++i;
  } else if (s[i] >= '1' && s[i] <= '9') {
    int d = 0;
    while (i < n && IsDigit(s[i])) {
      ++i;
      ++d;
    }
    if (d > kMaxIntDigits) return false;
  } else {
    return false;
  }
  if (i == n) return true;
  if (s[i] == '.') {
    if (integer_only) return false;
    ++i;
    int d = 0;
    while (i < n && IsDigit(s[i])) {
      ++i;
      ++d;
    }
    if (d > kMaxFracDigits) return false;
    if (i == n) return true;
    if (d == 0) return false;
  }
  if (s[i] == 'e' || s[i] == 'E') {
    if (!allow_exp || integer_only) return false;
    ++i;
    if (i == n) return true;
    if (s[i] == '+' || s[i] == '-') ++i;
    int d = 0;
    while (i < n && IsDigit(s[i])) {
      ++i;
      ++d;
    }
    return i == n && d <= kMaxExpDigits;
  }
  return false;
}

bool NumberComplete(std::string_view s) { return !s.empty() && IsDigit(s.back()); }

struct Bounds {
  long double lo = -INFINITY, hi = INFINITY;
  bool lo_closed = true, hi_closed = true;
};

Bounds BoundsOf(const SchemaNode& n) {
  Bounds b;
  if (n.minimum) {
    b.lo = *n.minimum;
    b.lo_closed = !n.exclusive_minimum;
  }
  if (n.maximum) {
    b.hi = *n.maximum;
    b.hi_closed = !n.exclusive_maximum;
  }
  return b;
}

// {a..b} (endpoint closedness as given) meets the bounds.
bool Meets(long double a, bool a_closed, long double b, bool b_closed, const Bounds& r) {
  long double lo = a;
  bool lo_closed = a_closed;
  if (r.lo > a || (r.lo == a && !r.lo_closed)) {
    lo = r.lo;
    lo_closed = r.lo == a ? (a_closed && r.lo_closed) : r.lo_closed;
  }
  long double hi = b;
  bool hi_closed = b_closed;
  if (r.hi < b || (r.hi == b && !r.hi_closed)) {
    hi = r.hi;
    hi_closed = r.hi == b ? (b_closed && r.hi_closed) : r.hi_closed;
  }
  return lo < hi || (lo == hi && lo_closed && hi_closed);
}

// Integers in [a, b] meet the bounds.
bool MeetsIntegers(long double a, long double b, const Bounds& r) {
  long double lo = std::ceil(r.lo), hi = std::floor(r.hi);
  if (!r.lo_closed && lo == r.lo) lo += 1;
  if (!r.hi_closed && hi == r.hi) hi -= 1;
  return std::max(a, lo) <= std::min(b, hi);
}

// Can the number prefix `s` (no exponent: ranges forbid it) still end inside the bounds?
bool RangeViable(std::string_view s, const SchemaNode& n, bool integer_only) {
  const Bounds r = BoundsOf(n);
  const bool neg = !s.empty() && s[0] == '-';
  const std::string_view body = s.substr(neg ? 1 : 0);
  const size_t dot = body.find('.');
  const std::string_view ip = body.substr(0, dot);
  // The magnitudes that completions can reach, as intervals [lo, hi) or integer ranges [lo, hi].
  auto check = [&](long double lo, long double hi, bool hi_closed) {
    if (neg) {
      if (integer_only) return MeetsIntegers(-hi, -lo, r);
      return Meets(-hi, hi_closed, -lo, true, r);
    }
    if (integer_only) return MeetsIntegers(lo, hi, r);
    return Meets(lo, true, hi, hi_closed, r);
  };
  if (ip.empty()) {  // just a sign so far: any magnitude
    return check(0, INFINITY, false);
  }
  const long double d = std::strtold(std::string(ip).c_str(), nullptr);
  if (dot != std::string_view::npos) {
    const std::string_view fp = body.substr(dot + 1);
    long double v = d, scale = 1;
    for (char c : fp) {
      scale /= 10;
      v += (c - '0') * scale;
    }
    if (static_cast<int>(fp.size()) >= kMaxFracDigits) return check(v, v, true);
    return check(v, v + scale, false);
  }
  if (ip == "0") return integer_only ? check(0, 0, true) : check(0, 1, false);
  // More digits may follow: [d*10^k, (d+1)*10^k) for every k the digit limit allows.
  long double p = 1;
  for (int k = 0; k + static_cast<int>(ip.size()) <= kMaxIntDigits; ++k, p *= 10) {
    const bool ok = integer_only ? check(d * p, (d + 1) * p - 1, true) : check(d * p, (d + 1) * p, false);
    if (ok) return true;
  }
  return false;
}

bool InRange(std::string_view s, const SchemaNode& n) {
  const long double v = std::strtold(std::string(s).c_str(), nullptr);
  const Bounds r = BoundsOf(n);
  return Meets(v, true, v, true, r);
}

// Decodes the raw content of a JSON string (escapes included) that the matcher accepted.
std::string DecodeJsonString(const std::string& raw) {
  std::string quoted = "\"";
  quoted += raw;
  quoted += '"';
  try {
    return Json::parse(quoted).get<std::string>();
  } catch (const Json::exception&) {
    return raw;  // cannot happen for accepted text; keeps the key distinct
  }
}

}  // namespace

struct JsonMatcher::Frame {
  enum Kind : uint8_t { kValue, kObject, kArray, kString, kNumber, kLiteral, kBareKey };
  Kind kind = kValue;
  uint8_t stage = 0;
  const SchemaNode* node = nullptr;
  // Objects: properties present, free (additional) keys present, the property being read.
  std::bitset<256> used;
  std::vector<std::string> free_keys;
  int pending = -1;
  // Arrays.
  int64_t count = 0;
  // Strings: code points so far, UTF-8 continuation state, escapes, Gemma delimiter bytes matched.
  bool is_key = false;
  int64_t length = 0;
  uint8_t utf8_need = 0, utf8_lo = 0x80, utf8_hi = 0xBF;
  uint8_t esc = 0;
  uint16_t unit = 0;
  uint8_t delim = 0;
  // Numbers, literals and keys: the text so far. Literals: the texts they may become.
  std::string text;
  const std::vector<std::string>* candidates = nullptr;

  const SchemaNode& schema() const { return node ? *node : AnyNode(); }
};

struct JsonMatcher::Thread {
  std::vector<Frame> stack;
  int ws = 0;  // whitespace bytes in a row
  bool done = false;
};

struct JsonMatcher::Caches {
  std::unordered_map<const SchemaNode*, std::vector<std::string>> enums, keys;
};

JsonMatcher::JsonMatcher(std::shared_ptr<const Schema> schema, const SchemaNode* root, Dialect dialect)
    : schema_(std::move(schema)), dialect_(dialect), caches_(std::make_shared<Caches>()) {
  // The literal texts of every node reachable from the root, spelled in this dialect.
  std::vector<const SchemaNode*> todo = {root};
  std::unordered_map<const SchemaNode*, bool> seen;
  while (!todo.empty()) {
    const SchemaNode* n = todo.back();
    todo.pop_back();
    if (!n || seen[n]) continue;
    seen[n] = true;
    if (n->has_enum) {
      auto& texts = caches_->enums[n];
      for (const auto& v : n->enum_values) {
        texts.push_back(dialect == Dialect::kJson ? v.dump() : chat::FormatGemmaValue(v));
      }
    }
    auto& keys = caches_->keys[n];
    for (const auto& [name, child] : n->properties) {
      if (dialect == Dialect::kJson) {
        keys.push_back(Json(name).dump());
      } else if (IsBareKey(name)) {
        keys.push_back(name);
      } else {
        std::string q(kDelim);
        q += name;
        q += kDelim;
        keys.push_back(q);
      }
      todo.push_back(child);
    }
    todo.push_back(n->items);
    todo.push_back(n->additional);
    for (const SchemaNode* b : n->any_of) todo.push_back(b);
  }
  Thread t;
  Frame f;
  f.node = root;
  t.stack.push_back(f);
  threads_.push_back(std::move(t));
}

JsonMatcher::JsonMatcher(const JsonMatcher&) = default;
JsonMatcher::JsonMatcher(JsonMatcher&&) noexcept = default;
JsonMatcher& JsonMatcher::operator=(const JsonMatcher&) = default;
JsonMatcher& JsonMatcher::operator=(JsonMatcher&&) noexcept = default;
JsonMatcher::~JsonMatcher() = default;

const std::vector<std::string>& JsonMatcher::EnumTexts(const SchemaNode* n) const { return caches_->enums.at(n); }
const std::vector<std::string>& JsonMatcher::KeyTexts(const SchemaNode* n) const { return caches_->keys.at(n); }

bool JsonMatcher::Feed(std::string_view bytes) {
  for (char c : bytes) {
    if (!FeedByte(static_cast<uint8_t>(c))) return false;
  }
  return true;
}

bool JsonMatcher::FeedByte(uint8_t b) {
  std::vector<Thread> out;
  for (Thread& t : threads_) Run(std::move(t), b, &out);
  threads_ = std::move(out);
  return !threads_.empty();
}

void JsonMatcher::Run(Thread t, uint8_t b, std::vector<Thread>* out) const {
  for (;;) {
    if (t.stack.empty()) return;  // the value is over: nothing may follow it
    const Frame& top = t.stack.back();
    if (top.kind == Frame::kValue && top.node && !top.node->any_of.empty()) {
      // One thread per branch; each sees the byte.
      for (const SchemaNode* branch : top.node->any_of) {
        if (out->size() >= kMaxThreads) return;
        Thread c = t;
        c.stack.back().node = branch;
        Run(std::move(c), b, out);
      }
      return;
    }
    switch (Step(t, b)) {
      case Result::kConsumed:
        if (out->size() < kMaxThreads) out->push_back(std::move(t));
        return;
      case Result::kRejected:
        return;
      case Result::kRetry:
        break;
      case Result::kPopRetry:
        Pop(t);
        if (t.done) return;
        break;
    }
  }
}

bool JsonMatcher::Accepts(uint8_t byte) const {
  JsonMatcher copy = *this;
  return copy.FeedByte(byte);
}

bool JsonMatcher::ThreadComplete(const Thread& t) const {
  if (t.done) return true;
  if (t.stack.size() != 1) return false;
  const Frame& f = t.stack.back();
  if (f.kind == Frame::kNumber) return NumberComplete(f.text) && InRange(f.text, f.schema());
  if (f.kind == Frame::kLiteral) {
    for (const auto& c : *f.candidates) {
      if (c == f.text) return true;
    }
  }
  return false;
}

bool JsonMatcher::Complete() const {
  for (const Thread& t : threads_) {
    if (ThreadComplete(t)) return true;
  }
  return false;
}

bool JsonMatcher::Closed() const {
  if (threads_.empty()) return false;
  for (const Thread& t : threads_) {
    if (!t.done) return false;
  }
  return true;
}

bool JsonMatcher::FastStringAppend(std::string_view text) const {
  if (threads_.size() != 1 || threads_[0].stack.empty()) return false;
  const Frame& f = threads_[0].stack.back();
  if (f.kind != Frame::kString || f.is_key || f.esc != 0 || f.utf8_need != 0 || f.delim != 0) return false;
  if (dialect_ == Dialect::kGemma && f.stage != 1) return false;
  int64_t n = 0;
  size_t i = 0;
  while (i < text.size()) {
    const auto b = static_cast<uint8_t>(text[i]);
    if (b < 0x80) {
      if (dialect_ == Dialect::kJson ? (b == '"' || b == '\\' || b < 0x20) : (b == '<' || b == 0)) return false;
      ++i;
    } else {
      size_t len = 0;
      uint8_t lo = 0x80, hi = 0xBF;
      if (b >= 0xC2 && b <= 0xDF) {
        len = 2;
      } else if (b >= 0xE0 && b <= 0xEF) {
        len = 3;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
      } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
      } else {
        return false;
      }
      if (i + len > text.size()) return false;
      for (size_t k = 1; k < len; ++k) {
        const auto c = static_cast<uint8_t>(text[i + k]);
        if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xBF)) return false;
      }
      i += len;
    }
    ++n;
  }
  const SchemaNode& s = f.schema();
  return s.max_length < 0 || f.length + n <= s.max_length;
}

JsonMatcher::Result JsonMatcher::Step(Thread& t, uint8_t b) const {
  const Frame::Kind kind = t.stack.back().kind;
  Result r = Result::kRejected;
  switch (kind) {
    case Frame::kValue: r = StepValue(t, b); break;
    case Frame::kObject: r = StepObject(t, b); break;
    case Frame::kArray: r = StepArray(t, b); break;
    case Frame::kString: r = StepString(t, b); break;
    case Frame::kNumber: r = StepNumber(t, b); break;
    case Frame::kLiteral: r = StepLiteral(t, b); break;
    case Frame::kBareKey: r = StepBareKey(t, b); break;
  }
  // Whitespace runs are counted here, once, whoever consumed the byte.
  if (r == Result::kConsumed) {
    if (IsWs(b) && !t.stack.empty() && t.stack.back().kind != Frame::kString) {
      if (dialect_ == Dialect::kGemma || ++t.ws > kMaxWhitespace) return Result::kRejected;
    } else {
      t.ws = 0;
    }
  }
  return r;
}

JsonMatcher::Result JsonMatcher::StepValue(Thread& t, uint8_t b) const {
  Frame& f = t.stack.back();
  const SchemaNode& n = f.schema();
  if (IsWs(b)) return Result::kConsumed;
  if (n.never) return Result::kRejected;
  if (n.has_enum) {
    f.kind = Frame::kLiteral;
    f.candidates = &EnumTexts(f.node);
    return StepLiteral(t, b);
  }
  int depth = 0;
  for (const Frame& x : t.stack) depth += x.kind == Frame::kObject || x.kind == Frame::kArray;
  if (b == '{' && (n.types & SchemaNode::kObject) && depth < kMaxDepth) {
    f.kind = Frame::kObject;
    f.stage = 0;
    return Result::kConsumed;
  }
  if (b == '[' && (n.types & SchemaNode::kArray) && depth < kMaxDepth) {
    f.kind = Frame::kArray;
    f.stage = 0;
    return Result::kConsumed;
  }
  if (n.types & SchemaNode::kString) {
    if (dialect_ == Dialect::kJson && b == '"') {
      f.kind = Frame::kString;
      f.stage = 1;
      return Result::kConsumed;
    }
    if (dialect_ == Dialect::kGemma && b == static_cast<uint8_t>(kDelim[0])) {
      f.kind = Frame::kString;
      f.stage = 0;
      f.delim = 1;
      return Result::kConsumed;
    }
  }
  if ((b == '-' || IsDigit(b)) && (n.types & (SchemaNode::kInteger | SchemaNode::kNumber))) {
    f.kind = Frame::kNumber;
    f.text.clear();
    return StepNumber(t, b);
  }
  static const std::vector<std::string> kBools = {"true", "false"};
  static const std::vector<std::string> kNull = {"null"};
  static const std::vector<std::string> kNullGemma = {"null", "None"};  // the template writes None
  if ((b == 't' || b == 'f') && (n.types & SchemaNode::kBoolean)) {
    f.kind = Frame::kLiteral;
    f.candidates = &kBools;
    return StepLiteral(t, b);
  }
  if ((b == 'n' || (b == 'N' && dialect_ == Dialect::kGemma)) && (n.types & SchemaNode::kNull)) {
    f.kind = Frame::kLiteral;
    f.candidates = dialect_ == Dialect::kGemma ? &kNullGemma : &kNull;
    return StepLiteral(t, b);
  }
  return Result::kRejected;
}

bool JsonMatcher::RequiredDone(const Frame& obj) const {
  const SchemaNode& n = obj.schema();
  for (const auto& r : n.required) {
    const int p = n.FindProperty(r);
    if (p >= 0) {
      if (!obj.used[static_cast<size_t>(p)]) return false;
    } else if (std::find(obj.free_keys.begin(), obj.free_keys.end(), r) == obj.free_keys.end()) {
      return false;
    }
  }
  return true;
}

bool JsonMatcher::CanAddKey(const Thread&, const Frame& obj) const {
  const SchemaNode& n = obj.schema();
  if (n.additional_allowed) return true;
  for (size_t i = 0; i < n.properties.size(); ++i) {
    if (!obj.used[i] && !n.properties[i].second->never) return true;
  }
  return false;
}

bool JsonMatcher::StartKey(Thread& t, uint8_t b) const {
  Frame& obj = t.stack.back();
  const SchemaNode* node = obj.node;
  const bool free = obj.schema().additional_allowed;
  obj.stage = 1;
  Frame k;
  k.is_key = true;
  k.node = node;  // the object's node: keys are checked against it
  if (!free) {
    k.kind = Frame::kLiteral;
    k.candidates = &KeyTexts(node ? node : &AnyNode());
    t.stack.push_back(std::move(k));
    return StepLiteral(t, b) == Result::kConsumed;
  }
  if (dialect_ == Dialect::kJson) {
    if (b != '"') return false;
    k.kind = Frame::kString;
    k.stage = 1;
    t.stack.push_back(std::move(k));
    return true;
  }
  k.kind = Frame::kBareKey;
  t.stack.push_back(std::move(k));
  return StepBareKey(t, b) == Result::kConsumed;
}

JsonMatcher::Result JsonMatcher::StepObject(Thread& t, uint8_t b) const {
  Frame& f = t.stack.back();
  switch (f.stage) {
    case 0:  // after '{'
    case 5:  // after ','
      if (IsWs(b)) return Result::kConsumed;
      if (b == '}' && f.stage == 0) {
        if (!RequiredDone(f)) return Result::kRejected;
        Pop(t);
        return Result::kConsumed;
      }
      if (!CanAddKey(t, f)) return Result::kRejected;
      return StartKey(t, b) ? Result::kConsumed : Result::kRejected;
    case 2:  // after the key
      if (IsWs(b)) return Result::kConsumed;
      if (b != ':') return Result::kRejected;
      {
        f.stage = 3;
        const SchemaNode& n = f.schema();
        Frame v;
        v.node = f.pending >= 0 ? n.properties[static_cast<size_t>(f.pending)].second : n.additional;
        t.stack.push_back(std::move(v));
      }
      return Result::kConsumed;
    case 4:  // after a value
      if (IsWs(b)) return Result::kConsumed;
      if (b == ',') {
        if (!CanAddKey(t, f)) return Result::kRejected;
        f.stage = 5;
        return Result::kConsumed;
      }
      if (b == '}') {
        if (!RequiredDone(f)) return Result::kRejected;
        Pop(t);
        return Result::kConsumed;
      }
      return Result::kRejected;
    default:
      return Result::kRejected;
  }
}

JsonMatcher::Result JsonMatcher::StepArray(Thread& t, uint8_t b) const {
  Frame& f = t.stack.back();
  const SchemaNode& n = f.schema();
  const bool more = (n.max_items < 0 || f.count < n.max_items) && !(n.items && n.items->never);
  switch (f.stage) {
    case 0:  // after '['
    case 3:  // after ','
      if (IsWs(b)) return Result::kConsumed;
      if (b == ']' && f.stage == 0) {
        if (f.count < n.min_items) return Result::kRejected;
        Pop(t);
        return Result::kConsumed;
      }
      if (!more) return Result::kRejected;
      {
        f.stage = 1;
        Frame v;
        v.node = n.items;
        t.stack.push_back(std::move(v));
      }
      return Result::kRetry;  // the item's first byte
    case 2:  // after an item
      if (IsWs(b)) return Result::kConsumed;
      if (b == ',' && more) {
        f.stage = 3;
        return Result::kConsumed;
      }
      if (b == ']' && f.count >= n.min_items) {
        Pop(t);
        return Result::kConsumed;
      }
      return Result::kRejected;
    default:
      return Result::kRejected;
  }
}

JsonMatcher::Result JsonMatcher::StepString(Thread& t, uint8_t b) const {
  Frame& f = t.stack.back();
  const SchemaNode& n = f.schema();
  auto room = [&] { return f.is_key || n.max_length < 0 || f.length < n.max_length; };
  if (f.utf8_need > 0) {
    if (b < f.utf8_lo || b > f.utf8_hi) return Result::kRejected;
    --f.utf8_need;
    f.utf8_lo = 0x80;
    f.utf8_hi = 0xBF;
    if (f.is_key) f.text += static_cast<char>(b);
    return Result::kConsumed;
  }
  auto start_char = [&](uint8_t c) -> bool {  // a new character of content
    if (c < 0x80) {
      if (!room()) return false;
      ++f.length;
      if (f.is_key) f.text += static_cast<char>(c);
      return true;
    }
    uint8_t need = 0, lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      need = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (!room()) return false;
    f.utf8_need = need;
    f.utf8_lo = lo;
    f.utf8_hi = hi;
    ++f.length;
    if (f.is_key) f.text += static_cast<char>(c);
    return true;
  };
  if (dialect_ == Dialect::kGemma) {
    if (f.stage == 0) {  // the opening delimiter
      if (b != static_cast<uint8_t>(kDelim[f.delim])) return Result::kRejected;
      if (++f.delim == kDelim.size()) {
        f.stage = 1;
        f.delim = 0;
      }
      return Result::kConsumed;
    }
    if (b == static_cast<uint8_t>(kDelim[f.delim])) {
      // Either the closing delimiter or content: viable if either reading can still finish.
      const bool as_close = f.length >= n.min_length;
      const bool as_text = n.max_length < 0 || f.length + f.delim + 1 <= n.max_length;
      if (!as_close && !as_text) return Result::kRejected;
      if (++f.delim == kDelim.size()) {
        if (!as_close) return Result::kRejected;
        Pop(t);
      }
      return Result::kConsumed;
    }
    if (f.delim > 0) {  // the held bytes were content after all
      if (n.max_length >= 0 && f.length + f.delim > n.max_length) return Result::kRejected;
      f.length += f.delim;
      f.delim = 0;
      if (b == static_cast<uint8_t>(kDelim[0])) {
        if (!(f.length >= n.min_length || n.max_length < 0 || f.length + 1 <= n.max_length)) return Result::kRejected;
        f.delim = 1;
        return Result::kConsumed;
      }
    }
    if (b == 0) return Result::kRejected;
    return start_char(b) ? Result::kConsumed : Result::kRejected;
  }
  // JSON.
  if (f.esc == 1) {
    if (f.is_key) f.text += static_cast<char>(b);
    if (b == '"' || b == '\\' || b == '/' || b == 'b' || b == 'f' || b == 'n' || b == 'r' || b == 't') {
      f.esc = 0;
      return Result::kConsumed;
    }
    if (b == 'u') {
      f.esc = 10;
      f.unit = 0;
      return Result::kConsumed;
    }
    return Result::kRejected;
  }
  if (f.esc >= 10 && f.esc <= 13) {  // \uXXXX: a high surrogate must be followed by a low one
    const int h = HexValue(b);
    if (h < 0) return Result::kRejected;
    if (f.esc == 11 && f.unit == 0xD && h >= 0xC) return Result::kRejected;  // a lone low surrogate
    f.unit = static_cast<uint16_t>(f.unit * 16 + h);
    if (f.is_key) f.text += static_cast<char>(b);
    f.esc = f.esc == 13 ? (f.unit >= 0xD800 && f.unit <= 0xDBFF ? 20 : 0) : f.esc + 1;
    return Result::kConsumed;
  }
  if (f.esc == 20 || f.esc == 21) {
    if (b != (f.esc == 20 ? '\\' : 'u')) return Result::kRejected;
    if (f.is_key) f.text += static_cast<char>(b);
    f.esc = f.esc == 20 ? 21 : 30;
    return Result::kConsumed;
  }
  if (f.esc >= 30 && f.esc <= 33) {  // the low surrogate: DC00-DFFF
    const int h = HexValue(b);
    if (h < 0 || (f.esc == 30 && h != 0xD) || (f.esc == 31 && h < 0xC)) return Result::kRejected;
    if (f.is_key) f.text += static_cast<char>(b);
    f.esc = f.esc == 33 ? 0 : f.esc + 1;
    return Result::kConsumed;
  }
  if (b == '"') {
    if (f.is_key) {
      const Frame& obj = t.stack[t.stack.size() - 2];
      const std::string key = DecodeJsonString(f.text);
      const int p = obj.schema().FindProperty(key);
      if (p >= 0 ? obj.used[static_cast<size_t>(p)]
                 : std::find(obj.free_keys.begin(), obj.free_keys.end(), key) != obj.free_keys.end()) {
        return Result::kRejected;  // a duplicate key
      }
      if (p >= 0 && obj.schema().properties[static_cast<size_t>(p)].second->never) return Result::kRejected;
    } else if (f.length < n.min_length) {
      return Result::kRejected;
    }
    Pop(t);
    return Result::kConsumed;
  }
  if (b == '\\') {
    if (!room()) return Result::kRejected;
    ++f.length;
    f.esc = 1;
    if (f.is_key) f.text += '\\';
    return Result::kConsumed;
  }
  if (b < 0x20) return Result::kRejected;
  return start_char(b) ? Result::kConsumed : Result::kRejected;
}

JsonMatcher::Result JsonMatcher::StepNumber(Thread& t, uint8_t b) const {
  Frame& f = t.stack.back();
  const SchemaNode& n = f.schema();
  const bool integer_only = !(n.types & SchemaNode::kNumber);
  std::string next = f.text;
  next += static_cast<char>(b);
  if (NumberPrefix(next, integer_only, !n.HasRange()) && (!n.HasRange() || RangeViable(next, n, integer_only))) {
    f.text = std::move(next);
    return Result::kConsumed;
  }
  if (NumberComplete(f.text) && InRange(f.text, n)) return Result::kPopRetry;
  return Result::kRejected;
}

JsonMatcher::Result JsonMatcher::StepLiteral(Thread& t, uint8_t b) const {
  Frame& f = t.stack.back();
  const std::vector<std::string>& cands = *f.candidates;
  const Frame* obj = f.is_key ? &t.stack[t.stack.size() - 2] : nullptr;
  auto excluded = [&](size_t i) {
    return obj && (obj->used[i] || obj->schema().properties[i].second->never);
  };
  std::string next = f.text;
  next += static_cast<char>(b);
  bool prefix = false, exact_now = false;
  for (size_t i = 0; i < cands.size(); ++i) {
    if (excluded(i)) continue;
    if (cands[i].compare(0, next.size(), next) == 0) prefix = true;
    if (cands[i] == f.text) exact_now = true;
  }
  if (prefix) {
    f.text = std::move(next);
    bool exact = false, longer = false;
    for (size_t i = 0; i < cands.size(); ++i) {
      if (excluded(i)) continue;
      if (cands[i] == f.text) {
        exact = true;
      } else if (cands[i].compare(0, f.text.size(), f.text) == 0) {
        longer = true;
      }
    }
    if (exact && !longer) Pop(t);
    return Result::kConsumed;
  }
  // A literal that another one extends (numbers, bare keys) ends at the first byte that is not its own.
  return exact_now ? Result::kPopRetry : Result::kRejected;
}

JsonMatcher::Result JsonMatcher::StepBareKey(Thread& t, uint8_t b) const {
  Frame& f = t.stack.back();
  if (IsBareKeyChar(b)) {
    f.text += static_cast<char>(b);
    return Result::kConsumed;
  }
  if (f.text.empty()) return Result::kRejected;
  const Frame& obj = t.stack[t.stack.size() - 2];
  const int p = obj.schema().FindProperty(f.text);
  if (p >= 0 ? (obj.used[static_cast<size_t>(p)] || obj.schema().properties[static_cast<size_t>(p)].second->never)
             : std::find(obj.free_keys.begin(), obj.free_keys.end(), f.text) != obj.free_keys.end()) {
    return Result::kRejected;
  }
  return Result::kPopRetry;
}

void JsonMatcher::Pop(Thread& t) const {
  Frame f = std::move(t.stack.back());
  t.stack.pop_back();
  if (t.stack.empty()) {
    t.done = true;
    return;
  }
  Frame& parent = t.stack.back();
  if (parent.kind == Frame::kObject) {
    if (parent.stage == 1) {  // a key ended: which property is it?
      const SchemaNode& n = parent.schema();
      int p = -1;
      std::string name;
      if (f.kind == Frame::kLiteral) {
        const auto& cands = *f.candidates;
        for (size_t i = 0; i < cands.size(); ++i) {
          if (cands[i] == f.text && !parent.used[i]) p = static_cast<int>(i);
        }
        G4_CHECK(p >= 0);
      } else {
        name = f.kind == Frame::kString ? DecodeJsonString(f.text) : f.text;
        p = n.FindProperty(name);
      }
      if (p >= 0) {
        parent.used[static_cast<size_t>(p)] = true;
      } else {
        parent.free_keys.push_back(std::move(name));
      }
      parent.pending = p;
      parent.stage = 2;
    } else {
      parent.stage = 4;
    }
  } else if (parent.kind == Frame::kArray) {
    ++parent.count;
    parent.stage = 2;
  }
}

}  // namespace g4::server
