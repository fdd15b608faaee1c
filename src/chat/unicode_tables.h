// Tables of Python's Unicode string semantics (generated into unicode_tables.cc): the chat templates
// sort keys with str.lower(), upper-case types with str.upper() and print lists with repr(), so a
// byte-exact renderer needs the same case mappings and the same notion of a printable character.
#pragma once

#include <cstddef>
#include <cstdint>

namespace g4::chat::unicode_tables {

// Code points first..last, every `stride`-th one, map to code point + delta.
struct CaseRun {
  uint32_t first, last;
  int32_t stride, delta;
};
// A code point whose mapping is several code points (UTF-8 text).
struct MultiMapping {
  uint32_t code_point;
  const char* utf8;
};
struct CodeRange {
  uint32_t first, last;
};

extern const CaseRun kLowerRuns[];
extern const size_t kLowerRunCount;
extern const CaseRun kUpperRuns[];
extern const size_t kUpperRunCount;
extern const MultiMapping kLowerMulti[];
extern const size_t kLowerMultiCount;
extern const MultiMapping kUpperMulti[];
extern const size_t kUpperMultiCount;
// Sorted, disjoint ranges of the code points for which str.isprintable() is false (surrogates included).
extern const CodeRange kNonPrintable[];
extern const size_t kNonPrintableCount;

}  // namespace g4::chat::unicode_tables
