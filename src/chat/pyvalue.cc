#include "chat/pyvalue.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>

#include "chat/unicode_tables.h"

namespace g4::chat::py {
namespace {

namespace ut = unicode_tables;

// Decodes one code point at s[*pos]. A byte that does not start valid UTF-8 comes back as itself
// with *invalid set, so callers can copy it through unchanged (JSON from the parser is always valid
// UTF-8, but a caller may build values by hand).
uint32_t DecodeUtf8(std::string_view s, size_t* pos, bool* invalid) {
  const auto b0 = static_cast<unsigned char>(s[*pos]);
  *invalid = false;
  int len = b0 < 0x80 ? 1 : (b0 >> 5) == 6 ? 2 : (b0 >> 4) == 14 ? 3 : (b0 >> 3) == 30 ? 4 : 0;
  if (len == 1) {
    ++*pos;
    return b0;
  }
  if (len == 0 || *pos + len > s.size()) {
    *invalid = true;
    ++*pos;
    return b0;
  }
  uint32_t cp = b0 & (0x7F >> len);
  for (int i = 1; i < len; ++i) {
    const auto b = static_cast<unsigned char>(s[*pos + i]);
    if ((b >> 6) != 2) {
      *invalid = true;
      ++*pos;
      return b0;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  *pos += len;
  return cp;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Python's str.isspace().
bool IsSpace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool IsPrintable(uint32_t cp) {
  const ut::CodeRange* end = ut::kNonPrintable + ut::kNonPrintableCount;
  const ut::CodeRange* it = std::upper_bound(
      ut::kNonPrintable, end, cp, [](uint32_t c, const ut::CodeRange& r) { return c < r.first; });
  return it == ut::kNonPrintable || cp > (it - 1)->last;
}

// The single-code-point mapping of cp in a table of runs, or cp itself.
uint32_t MapRun(const ut::CaseRun* runs, size_t count, uint32_t cp) {
  const ut::CaseRun* it = std::upper_bound(
      runs, runs + count, cp, [](uint32_t c, const ut::CaseRun& r) { return c < r.first; });
  if (it == runs) return cp;
  const ut::CaseRun& r = *(it - 1);
  if (cp > r.last || (cp - r.first) % static_cast<uint32_t>(r.stride) != 0) return cp;
  return static_cast<uint32_t>(static_cast<int64_t>(cp) + r.delta);
}

const char* MapMulti(const ut::MultiMapping* table, size_t count, uint32_t cp) {
  for (size_t i = 0; i < count; ++i) {
    if (table[i].code_point == cp) return table[i].utf8;
  }
  return nullptr;
}

// A letter with case (approximately Python's "cased"): it changes under lower() or upper().
bool IsCased(uint32_t cp) {
  return MapRun(ut::kLowerRuns, ut::kLowerRunCount, cp) != cp ||
         MapRun(ut::kUpperRuns, ut::kUpperRunCount, cp) != cp ||
         MapMulti(ut::kUpperMulti, ut::kUpperMultiCount, cp) != nullptr;
}

std::string CaseMap(std::string_view s, bool upper) {
  std::vector<uint32_t> cps;
  std::vector<bool> bad;
  for (size_t pos = 0; pos < s.size();) {
    bool invalid;
    cps.push_back(DecodeUtf8(s, &pos, &invalid));
    bad.push_back(invalid);
  }
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < cps.size(); ++i) {
    const uint32_t cp = cps[i];
    if (bad[i]) {
      out.push_back(static_cast<char>(cp));
      continue;
    }
    if (!upper && cp == 0x3A3) {
      // Capital sigma lowers to the final form after a cased letter at the end of a word (CPython's
      // handle_capital_sigma; case-ignorable characters in between are not skipped here).
      const bool after_cased = i > 0 && !bad[i - 1] && IsCased(cps[i - 1]);
      const bool before_cased = i + 1 < cps.size() && !bad[i + 1] && IsCased(cps[i + 1]);
      AppendUtf8(after_cased && !before_cased ? 0x3C2 : 0x3C3, &out);
      continue;
    }
    const char* multi = upper ? MapMulti(ut::kUpperMulti, ut::kUpperMultiCount, cp)
                              : MapMulti(ut::kLowerMulti, ut::kLowerMultiCount, cp);
    if (multi != nullptr) {
      out += multi;
    } else {
      AppendUtf8(upper ? MapRun(ut::kUpperRuns, ut::kUpperRunCount, cp)
                       : MapRun(ut::kLowerRuns, ut::kLowerRunCount, cp),
                 &out);
    }
  }
  return out;
}

void ReprString(std::string_view s, std::string* out) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  out->push_back(quote);
  for (size_t pos = 0; pos < s.size();) {
    const size_t start = pos;
    bool invalid;
    const uint32_t cp = DecodeUtf8(s, &pos, &invalid);
    char buf[16];
    if (invalid) {
      out->push_back(s[start]);
    } else if (cp == static_cast<uint32_t>(quote) || cp == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(cp));
    } else if (cp == '\t') {
      *out += "\\t";
    } else if (cp == '\n') {
      *out += "\\n";
    } else if (cp == '\r') {
      *out += "\\r";
    } else if (cp < 0x20 || cp == 0x7F) {
      std::snprintf(buf, sizeof(buf), "\\x%02x", cp);
      *out += buf;
    } else if (cp < 0x7F || IsPrintable(cp)) {
      out->append(s.substr(start, pos - start));
    } else {
      std::snprintf(buf, sizeof(buf), cp <= 0xFF ? "\\x%02x" : cp <= 0xFFFF ? "\\u%04x" : "\\U%08x", cp);
      *out += buf;
    }
  }
  out->push_back(quote);
}

void ReprInto(const Json& v, std::string* out) {
  switch (v.type()) {
    case Json::value_t::null:
    case Json::value_t::discarded:
    case Json::value_t::binary:
      *out += "None";
      return;
    case Json::value_t::boolean:
      *out += v.get<bool>() ? "True" : "False";
      return;
    case Json::value_t::number_integer:
      *out += std::to_string(v.get<int64_t>());
      return;
    case Json::value_t::number_unsigned:
      *out += std::to_string(v.get<uint64_t>());
      return;
    case Json::value_t::number_float:
      *out += FloatRepr(v.get<double>());
      return;
    case Json::value_t::string:
      ReprString(v.get_ref<const std::string&>(), out);
      return;
    case Json::value_t::array: {
      out->push_back('[');
      bool first = true;
      for (const Json& item : v) {
        if (!first) *out += ", ";
        first = false;
        ReprInto(item, out);
      }
      out->push_back(']');
      return;
    }
    case Json::value_t::object: {
      out->push_back('{');
      bool first = true;
      for (const auto& [key, item] : v.items()) {
        if (!first) *out += ", ";
        first = false;
        ReprString(key, out);
        *out += ": ";
        ReprInto(item, out);
      }
      out->push_back('}');
      return;
    }
  }
}

// A number as a double and whether it is integral (bools count as 0/1, as in Python).
bool AsNumber(const Json& v, long double* x) {
  if (v.is_boolean()) {
    *x = v.get<bool>() ? 1 : 0;
  } else if (v.is_number_integer() && !v.is_number_unsigned()) {
    *x = static_cast<long double>(v.get<int64_t>());
  } else if (v.is_number_unsigned()) {
    *x = static_cast<long double>(v.get<uint64_t>());
  } else if (v.is_number_float()) {
    *x = v.get<double>();
  } else {
    return false;
  }
  return true;
}

}  // namespace

Value Item(Value obj, std::string_view key) {
  if (obj == nullptr || !obj->is_object()) return nullptr;
  auto it = obj->find(key);
  return it == obj->end() ? nullptr : &*it;
}

bool Truthy(Value v) {
  if (v == nullptr) return false;
  switch (v->type()) {
    case Json::value_t::boolean:
      return v->get<bool>();
    case Json::value_t::number_integer:
      return v->get<int64_t>() != 0;
    case Json::value_t::number_unsigned:
      return v->get<uint64_t>() != 0;
    case Json::value_t::number_float:
      return v->get<double>() != 0.0;
    case Json::value_t::string:
      return !v->get_ref<const std::string&>().empty();
    case Json::value_t::array:
    case Json::value_t::object:
      return !v->empty();
    default:
      return false;
  }
}

bool IsString(Value v) { return v != nullptr && v->is_string(); }
bool IsMapping(Value v) { return v != nullptr && v->is_object(); }
bool IsSequence(Value v) { return v == nullptr || v->is_array() || v->is_object() || v->is_string(); }
bool IsNone(Value v) { return v != nullptr && v->is_null(); }

std::string Str(Value v) {
  if (v == nullptr) return "";
  if (v->is_string()) return v->get<std::string>();
  return Repr(*v);
}

std::string Repr(const Json& v) {
  std::string out;
  ReprInto(v, &out);
  return out;
}

std::string FloatRepr(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x < 0 ? "-inf" : "inf";
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof(buf), x, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));  // e.g. "-1.2345e+17"
  std::string out;
  if (sci.front() == '-') {
    out.push_back('-');
    sci.remove_prefix(1);
  }
  const size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e)) {
    if (c != '.') digits.push_back(c);
  }
  const int exponent = std::stoi(std::string(sci.substr(e + 1)));
  const int decpt = exponent + 1;  // value = 0.DIGITS * 10^decpt
  const int n = static_cast<int>(digits.size());
  if (decpt <= -4 || decpt > 16) {
    out.push_back(digits[0]);
    if (n > 1) {
      out.push_back('.');
      out.append(digits, 1);
    }
    char exp_buf[16];
    std::snprintf(exp_buf, sizeof(exp_buf), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    out += exp_buf;
  } else if (decpt <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-decpt), '0');
    out += digits;
  } else if (decpt >= n) {
    out += digits;
    out.append(static_cast<size_t>(decpt - n), '0');
    out += ".0";
  } else {
    out.append(digits, 0, static_cast<size_t>(decpt));
    out.push_back('.');
    out.append(digits, static_cast<size_t>(decpt));
  }
  return out;
}

bool Equals(Value a, Value b) {
  if (a == nullptr || b == nullptr) return false;
  long double x, y;
  if (AsNumber(*a, &x) && AsNumber(*b, &y)) return x == y;
  if (a->type() != b->type()) return false;
  if (a->is_array()) {
    if (a->size() != b->size()) return false;
    for (size_t i = 0; i < a->size(); ++i) {
      if (!Equals(&(*a)[i], &(*b)[i])) return false;
    }
    return true;
  }
  if (a->is_object()) {
    if (a->size() != b->size()) return false;
    for (const auto& [key, value] : a->items()) {
      if (!Equals(&value, Item(b, key))) return false;
    }
    return true;
  }
  return *a == *b;
}

std::vector<std::pair<const std::string*, const Json*>> DictSort(const Json& obj) {
  std::vector<std::pair<std::string, std::pair<const std::string*, const Json*>>> keyed;
  for (const auto& [key, value] : obj.items()) keyed.push_back({Lower(key), {&key, &value}});
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<const std::string*, const Json*>> out;
  out.reserve(keyed.size());
  for (const auto& k : keyed) out.push_back(k.second);
  return out;
}

std::string Strip(std::string_view s) {
  size_t begin = 0, end = s.size();
  while (begin < end) {
    size_t pos = begin;
    bool invalid;
    const uint32_t cp = DecodeUtf8(s, &pos, &invalid);
    if (invalid || !IsSpace(cp)) break;
    begin = pos;
  }
  while (end > begin) {
    // Step back to the start of the last code point.
    size_t start = end - 1;
    while (start > begin && (static_cast<unsigned char>(s[start]) >> 6) == 2 && end - start < 4) --start;
    size_t pos = start;
    bool invalid;
    const uint32_t cp = DecodeUtf8(s, &pos, &invalid);
    if (invalid || pos != end || !IsSpace(cp)) break;
    end = start;
  }
  return std::string(s.substr(begin, end - begin));
}

std::string Lower(std::string_view s) { return CaseMap(s, false); }
std::string Upper(std::string_view s) { return CaseMap(s, true); }

}  // namespace g4::chat::py
