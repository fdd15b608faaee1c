// The model's tensors, bound by name (llama.cpp's GGUF names) to views of the mapped file, with
// their shapes checked against the configuration. Nothing is copied.
#pragma once

#include <vector>

#include "formats/gguf.h"
#include "kernels/kernels.h"
#include "model/config.h"

namespace g4 {

using kernels::Matrix;

// A 1-D f32 tensor (norm weights, scalars). Norms are always stored as F32 by llama.cpp.
struct Vec {
  const float* data = nullptr;
  int64_t n = 0;
  explicit operator bool() const { return data != nullptr; }
};

struct LayerWeights {
  Vec attn_norm;        // [n_embd]
  Matrix wq;            // [n_head * head_dim][n_embd]
  Matrix wk;            // [n_head_kv * head_dim][n_embd]   (absent on KV-shared layers)
  Matrix wv;            // [n_head_kv * head_dim][n_embd]   (absent on k_eq_v and KV-shared layers)
  Matrix wo;            // [n_embd][n_head * head_dim]
  Vec q_norm;           // [head_dim]
  Vec k_norm;           // [head_dim]
  Vec post_attn_norm;   // [n_embd]
  Vec ffn_norm;         // [n_embd]  (pre-FFN norm)
  Matrix ffn_gate;      // [n_ff][n_embd]
  Matrix ffn_up;        // [n_ff][n_embd]
  Matrix ffn_down;      // [n_embd][n_ff]
  Vec post_ffw_norm;    // [n_embd]
  float out_scale = 1;  // layer_output_scale (Gemma 4), 1 when absent
  // Per-layer embeddings (E2B/E4B).
  Matrix ple_gate;      // [n_embd_per_layer][n_embd]
  Matrix ple_proj;      // [n_embd][n_embd_per_layer]
  Vec ple_post_norm;    // [n_embd]
  // Mixture of experts (26B-A4B).
  Matrix moe_router;    // [n_expert][n_embd]
  Vec moe_router_scale; // [n_embd]
  Vec pre_ffw_norm_2;   // [n_embd]
  Vec post_ffw_norm_1;  // [n_embd]
  Vec post_ffw_norm_2;  // [n_embd]
  // Experts as one 3-D tensor each; expert e is rows [e*rows_per_expert, (e+1)*rows_per_expert).
  Matrix exp_gate_up;   // [n_expert * 2 * n_ff_exp][n_embd] (gate rows first, then up) or empty
  Matrix exp_gate;      // [n_expert * n_ff_exp][n_embd] when gate and up are separate
  Matrix exp_up;        // [n_expert * n_ff_exp][n_embd]
  Matrix exp_down;      // [n_expert * n_embd][n_ff_exp]
  Vec exp_down_scale;   // [n_expert]
};

struct ModelWeights {
  Matrix token_embd;    // [n_vocab][n_embd]
  Matrix output;        // [n_vocab][n_embd]: the LM head (token_embd when tied)
  Vec output_norm;      // [n_embd]
  Vec rope_freqs;       // [head_dim_full / 2] frequency divisors for proportional RoPE
  Matrix ple_token_embd;  // [n_vocab][n_layer * n_embd_per_layer]
  Matrix ple_model_proj;  // [n_layer * n_embd_per_layer][n_embd]
  Vec ple_proj_norm;      // [n_embd_per_layer]
  // Assistant (MTP drafter).
  Matrix nextn_pre_proj;  // [n_embd][2 * n_embd_backbone]
  Matrix nextn_post_proj; // [n_embd_backbone][n_embd]
  std::vector<LayerWeights> layers;

  // Bytes of all bound tensors (the weights the forward pass reads).
  uint64_t total_bytes = 0;
};

// Binds and checks every tensor the configuration requires. Sets cfg.n_vocab from token_embd.
ModelWeights BindWeights(const gguf::File& f, ModelConfig& cfg);

// Bytes of weights the forward pass reads for one generated token: every matrix it multiplies (of
// a mixture-of-experts layer, the n_expert_used experts out of n_expert a token uses), one row of
// each embedding table, the norm vectors. The assistant's projections are not counted. Divided into
// the machine's memory bandwidth this gives the generation roofline `gemma4 bench` reports.
uint64_t BytesReadPerToken(const ModelWeights& w, const ModelConfig& cfg);

}  // namespace g4
