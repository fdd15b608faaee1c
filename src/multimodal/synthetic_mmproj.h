// A synthetic multimodal projector: llama.cpp's mmproj GGUF layout for the Gemma 4 12B (gemma4uv
// vision embedder + gemma4ua audio projection) with seeded random weights, for benchmarks and tests
// of models made by `gemma4 create`.
#pragma once

#include <cstdint>
#include <string>

#include "formats/ggml_types.h"

namespace g4::mm {

struct SyntheticMmprojOptions {
  int64_t n_embd = 3840;                 // the text model's hidden size
  GgmlType matrix_type = GgmlType::F16;  // patch embedding, position table and projections
  uint64_t seed = 1;
  std::string name = "synthetic mmproj";
};

void WriteSyntheticMmproj(const SyntheticMmprojOptions& opt, const std::string& path);

}  // namespace g4::mm
