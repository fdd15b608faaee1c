#include "tokenizer/utf8.h"

namespace g4::utf8 {

Seq Classify(const uint8_t* p, size_t n, size_t* len) {
  const uint8_t c = p[0];
  if (c < 0x80) {
    *len = 1;
    return Seq::kValid;
  }
  // Total length and the allowed range of the second byte (Unicode Table 3-7); the later bytes are
  // always 80..BF.
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 3;
    if (c == 0xE0) lo = 0xA0;  // no overlongs
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 4;
    if (c == 0xF0) lo = 0x90;  // no overlongs
    if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    *len = 1;  // continuation byte, C0/C1 or F5..FF: never valid as a lead byte
    return Seq::kInvalid;
  }
  for (size_t i = 1; i < need; ++i) {
    if (i >= n) {
      *len = n;
      return Seq::kIncomplete;
    }
    const uint8_t b = p[i];
    const bool ok = i == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) {
      *len = i;  // the maximal subpart: the bytes that were still a valid prefix
      return Seq::kInvalid;
    }
  }
  *len = need;
  return Seq::kValid;
}

void AppendValid(std::string_view in, std::string* out, size_t* keep_tail) {
  const auto* p = reinterpret_cast<const uint8_t*>(in.data());
  const size_t n = in.size();
  if (keep_tail) *keep_tail = 0;
  size_t i = 0;
  while (i < n) {
    // Copy runs of ASCII in one go: they are most of any text.
    size_t j = i;
    while (j < n && p[j] < 0x80) ++j;
    out->append(in.data() + i, j - i);
    i = j;
    if (i >= n) break;
    size_t len = 1;
    switch (Classify(p + i, n - i, &len)) {
      case Seq::kValid:
        out->append(in.data() + i, len);
        break;
      case Seq::kInvalid:
        out->append(kReplacement);
        break;
      case Seq::kIncomplete:
        if (keep_tail) {
          *keep_tail = len;
          return;
        }
        out->append(kReplacement);
        break;
    }
    i += len;
  }
}

bool IsValid(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  size_t i = 0;
  while (i < s.size()) {
    size_t len = 1;
    if (Classify(p + i, s.size() - i, &len) != Seq::kValid) return false;
    i += len;
  }
  return true;
}

}  // namespace g4::utf8
