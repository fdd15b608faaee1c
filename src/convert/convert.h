// `gemma4 convert`: a Hugging Face checkpoint of Gemma 4 (text models, the unified 12B, the MTP
// assistants) or Gemma 3 to a GGUF file with llama.cpp's keys and tensor names, so that the file also
// runs in llama.cpp, Ollama and LM Studio. Tensors are streamed from the memory-mapped safetensors
// one at a time (converted row by row on the thread pool), so memory stays at one tensor.
//
// What the conversion does besides renaming (conversion/gemma.py in llama.cpp):
//  * Gemma 3 RMSNorm weights are stored as 1 + w (the checkpoint holds w); Gemma 4's are used as is;
//  * Gemma 4 full layers get `rope_freqs` = [1]*r + [1e30]*(hd/2 - r) for proportional RoPE;
//  * k_eq_v full layers simply have no attn_v; KV-shared layers no attn_k/attn_v;
//  * the embedding table is cut to the tokenizer's size (Gemma 3 4B+ stores padding rows);
//  * the vocabulary comes from tokenizer.json (hf_vocab.h), the chat template from tokenizer_config.json
//    (or chat_template.jinja), suppress_tokens from generation_config.json.
// Every tensor's shape is checked against config.json, and a tensor the mapping does not know is an
// error. The unified 12B's multimodal embedder is left out of the text model and written, with
// --mmproj, as llama.cpp's mmproj file (mmproj.h).
#pragma once

#include <functional>
#include <string>

#include "formats/quant_mix.h"

namespace g4::convert {

struct ConvertOptions {
  // Output type; "auto" (nullopt) keeps the checkpoint's precision (bf16 -> BF16, f16 -> F16, else F32).
  std::optional<FileType> type;
  std::string mmproj_out;  // also write the multimodal embedder here (unified 12B)
  int n_threads = 0;
  bool quiet = false;      // no progress bar
};

// Converts; returns a one-line summary (architecture, tensor count, file type).
std::string ConvertCheckpointToGguf(const std::string& hf_dir, const std::string& out_path,
                                    const ConvertOptions& options);

// The progress bar both convert and quantize draw on stderr.
void DrawProgress(size_t done, size_t total, const std::string& what);

}  // namespace g4::convert
