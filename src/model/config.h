// Hyperparameters of a Gemma model, read from the GGUF keys llama.cpp writes for `gemma4`,
// `gemma3` and `gemma4-assistant`, so published files load unchanged. Everything the forward pass
// needs per layer is resolved here once (layer type, head sizes, which cache a layer reads, RoPE).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/gguf.h"

namespace g4 {

enum class Arch { kGemma4, kGemma3, kGemma4Assistant };
const char* ArchName(Arch a);

struct RopeConfig {
  double base = 10000.0;   // theta
  double scale = 1.0;      // angle multiplier (1/linear factor)
  int n_rot = 0;           // rotated dims (NeoX pairs (i, i + n_rot/2)); the rest pass through
  bool freq_factors = false;  // divide frequencies by the model's rope_freqs tensor (proportional RoPE)
};

struct LayerConfig {
  bool sliding = false;   // sliding-window attention (else full/global)
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;
  int64_t n_ff = 0;       // dense FFN width
  bool has_kv = true;     // computes K/V itself (false: KV-shared layer, reads kv_source's cache)
  int kv_source = 0;      // layer whose KV cache this layer attends to
  bool k_eq_v = false;    // no attn_v: V is the raw K projection (12B/31B/26B full layers)
  bool moe = false;       // has a mixture-of-experts branch beside the dense FFN
  RopeConfig rope;
};

struct ModelConfig {
  Arch arch = Arch::kGemma4;
  std::string name;
  int64_t n_vocab = 0;
  int64_t n_embd = 0;
  int n_layer = 0;
  int64_t n_ctx_train = 0;
  int sliding_window = 0;
  float rms_eps = 1e-6f;
  float attn_scale = 1.0f;      // multiplies q·k (Gemma 4: 1; Gemma 3: query_pre_attn_scalar^-1/2)
  float final_softcap = 0.0f;   // 0: none
  float embed_scale = 1.0f;     // token embeddings are multiplied by this (sqrt(n_embd), bf16-rounded)
  bool v_norm = false;          // Gemma 4: V is RMS-normed without a scale
  // Gemma 4 E2B/E4B per-layer embeddings.
  int64_t n_embd_per_layer = 0;
  // Gemma 4 26B-A4B mixture of experts.
  int n_expert = 0;
  int n_expert_used = 0;
  int64_t n_ff_exp = 0;
  // Gemma 4 assistant (MTP drafter): hidden size of the target model it drafts for.
  int64_t n_embd_backbone = 0;
  std::vector<LayerConfig> layers;

  // Bytes of K+V per token for the layers that own a cache, at the given element sizes.
  int64_t KvElementsPerToken(bool sliding) const;
  int LastLayerOfType(bool sliding) const;  // last layer with own KV of that type, -1 if none
};

// Reads and validates the configuration; errors name the file and the key.
ModelConfig ReadModelConfig(const gguf::File& f);

}  // namespace g4
