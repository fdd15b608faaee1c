// UTF-8 helpers for the tokenizer. Input text is not trusted to be valid UTF-8: the encoder treats each
// byte of an ill-formed sequence as a character of its own (which then falls back to a <0xXX> token),
// and the decoders replace ill-formed sequences with U+FFFD, one per "maximal subpart" as Unicode
// (and Rust's from_utf8_lossy, and Python's errors="replace") recommend.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace g4::utf8 {

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

enum class Seq {
  kValid,       // a complete well-formed sequence of `len` bytes
  kInvalid,     // `len` bytes (>= 1) that cannot start a well-formed sequence: one U+FFFD
  kIncomplete,  // all `n` bytes are a proper prefix of a well-formed sequence; more bytes may complete it
};

// Classifies the sequence starting at p[0] (n >= 1), following Table 3-7 of the Unicode standard
// (no overlongs, no surrogates, nothing above U+10FFFF).
Seq Classify(const uint8_t* p, size_t n, size_t* len);

// Length in bytes of the character at the start of s (s non-empty): the sequence length when it is
// well-formed, else 1, so an ill-formed byte is a character by itself.
inline size_t CharLen(const char* s, size_t n) {
  size_t len = 1;
  const auto c = static_cast<uint8_t>(*s);
  if (c < 0x80) return 1;
  return Classify(reinterpret_cast<const uint8_t*>(s), n, &len) == Seq::kValid ? len : 1;
}

// Appends `in` to `out` with every ill-formed sequence replaced by U+FFFD. When `keep_tail` is given, a
// trailing incomplete sequence is not replaced but its length is stored there (the caller keeps those
// bytes until more arrive); otherwise it is replaced too.
void AppendValid(std::string_view in, std::string* out, size_t* keep_tail = nullptr);

// `in` with ill-formed sequences replaced by U+FFFD.
inline std::string MakeValid(std::string_view in) {
  std::string out;
  AppendValid(in, &out);
  return out;
}

bool IsValid(std::string_view s);

}  // namespace g4::utf8
