// The tensor element types of GGUF files, with exactly the ids and block layouts ggml uses, so that
// files are interchangeable with llama.cpp, Ollama and LM Studio.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace g4 {

enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
};

struct GgmlTypeTraits {
  const char* name;      // as ggml prints it: "f32", "q4_K", ...
  int64_t block_size;    // elements per block (1 for plain types)
  int64_t type_size;     // bytes per block
  bool supported;        // the engine can compute with tensors of this type
};

// Traits of a type id read from a file; nullopt for ids ggml does not define (or that are retired).
std::optional<GgmlTypeTraits> TraitsOf(uint32_t type_id);
const GgmlTypeTraits& Traits(GgmlType t);
inline const char* TypeName(GgmlType t) { return Traits(t).name; }

// Parses "Q4_K", "q8_0", "F16", "bf16"... (case-insensitive). nullopt if unknown.
std::optional<GgmlType> ParseGgmlType(std::string_view name);

// Bytes of a row of n elements; n must be a multiple of the block size.
inline int64_t RowBytes(GgmlType t, int64_t n) {
  const auto& tr = Traits(t);
  return n / tr.block_size * tr.type_size;
}

}  // namespace g4
