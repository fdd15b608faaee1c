// `gemma4 quantize`: re-types the tensors of a GGUF model with llama.cpp's per-tensor choices
// (formats/quant_mix.h) and copies every metadata key, updating general.file_type. Quantized inputs
// are dequantized exactly first (requantizing an already quantized file loses precision, as in
// llama.cpp). Tensors are streamed one at a time.
#pragma once

#include <string>

#include "formats/quant_mix.h"

namespace g4::convert {

// Returns a summary line (tensor type counts, sizes).
std::string QuantizeGguf(const std::string& in_path, const std::string& out_path, FileType type, int n_threads,
                         bool quiet);

}  // namespace g4::convert
