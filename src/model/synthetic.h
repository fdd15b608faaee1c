// Synthetic models: the real architectures (every Gemma 4 and Gemma 3 size, plus tiny test shapes)
// with seeded random weights, written as GGUF in any supported file type. They are what benchmarks
// and memory measurements run on, since no real weights can be downloaded here.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "formats/quant_mix.h"

namespace g4 {

struct Preset {
  std::string name;
  std::string arch;             // "gemma4" or "gemma3"
  std::string description;
  int n_layer = 0;
  int64_t n_embd = 0;
  int n_head = 0;
  int n_head_kv_swa = 0, n_head_kv_full = 0;
  int head_dim_swa = 0, head_dim_full = 0;
  int64_t n_ff = 0;
  int64_t n_ff_shared = 0;      // FFN width of KV-shared layers ("double-wide"), 0 = same as n_ff
  int window = 0;
  int full_every = 6;           // layer i is full attention when (i + 1) % full_every == 0; last layer full
  bool k_eq_v = false;          // full layers without attn_v
  int n_shared_kv = 0;
  int64_t ple_dim = 0;
  int n_expert = 0, n_expert_used = 0;
  int64_t n_ff_exp = 0;
  int64_t n_vocab = 262144;
  int64_t n_ctx = 131072;
  double rope_base_full = 1e6;
  double rope_linear_factor = 1;  // Gemma 3 global layers: 8
  double partial_rotary = 0.25;   // Gemma 4 full layers: fraction of pairs that rotate
  bool suppress_media_end = false;  // the unified 12B suppresses <image|> and <audio|>
};

const std::vector<Preset>& Presets();
const Preset* FindPreset(const std::string& name);

struct CreateOptions {
  std::string preset;
  FileType type = FileType::F32;
  uint64_t seed = 1;
  std::string vocab_file;        // take the tokenizer from this GGUF (its size sets n_vocab)
  int n_threads = 0;
};

// Writes the model; progress(done, total) after each tensor.
void CreateSyntheticModel(const CreateOptions& opt, const std::string& out_path,
                          const std::function<void(size_t, size_t)>& progress = nullptr);

}  // namespace g4
