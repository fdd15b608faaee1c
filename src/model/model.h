// A loaded model: the mapped GGUF file, its configuration and its weights. Immutable after loading,
// so one Model is shared by every context (server slots, drafters) that runs it.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <vector>

#include "formats/ggml_types.h"
#include "formats/gguf.h"
#include "kernels/kernels.h"
#include "model/config.h"
#include "model/weights.h"

namespace g4 {

// Every matrix of the forward pass (the ones MatMul reads and Load packs); W is ModelWeights or
// const ModelWeights.
template <typename W, typename Fn>
void ForEachMatrix(W& w, Fn&& fn) {
  fn(w.output);
  fn(w.ple_model_proj);
  fn(w.nextn_pre_proj);
  fn(w.nextn_post_proj);
  for (auto& l : w.layers) {
    for (auto* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_gate, &l.ffn_up, &l.ffn_down, &l.ple_gate, &l.ple_proj,
                    &l.moe_router, &l.exp_gate_up, &l.exp_gate, &l.exp_up, &l.exp_down}) {
      fn(*m);
    }
  }
}

// Every 1-D f32 tensor the forward pass reads (norm weights, scales, RoPE factors).
template <typename W, typename Fn>
void ForEachVec(W& w, Fn&& fn) {
  fn(w.output_norm);
  fn(w.rope_freqs);
  fn(w.ple_proj_norm);
  for (auto& l : w.layers) {
    for (auto* v : {&l.attn_norm, &l.q_norm, &l.k_norm, &l.post_attn_norm, &l.ffn_norm, &l.post_ffw_norm,
                    &l.ple_post_norm, &l.moe_router_scale, &l.pre_ffw_norm_2, &l.post_ffw_norm_1, &l.post_ffw_norm_2,
                    &l.exp_down_scale}) {
      fn(*v);
    }
  }
}

class Model {
 public:
  // Maps and validates the file, reads the configuration and binds every tensor. Throws g4::Error
  // naming the file and what is wrong. Then every matrix the forward pass multiplies is repacked into
  // the kernels' panel layout (kernels::PackMatrix) in private memory and its pages of the file are
  // released as it goes, so resident memory stays about the size of the weights (the vectors are
  // copied too, and then no page of the file stays mapped into the process); the environment
  // variable GEMMA4_NO_PACK=1 keeps the file layout (the kernels then pack panel by panel per call).
  static std::unique_ptr<Model> Load(const std::string& path);
  // The same, packing or not whatever the environment says (`gemma4 info` and `fit` only look).
  static std::unique_ptr<Model> Load(const std::string& path, bool pack);
  // Whether Load packs: unless GEMMA4_NO_PACK is set to something other than 0.
  static bool PackingEnabled();

  const gguf::File& file() const { return *file_; }
  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const std::string& path() const { return file_->path(); }

  // The KV cache element type used when the user does not choose one: the cache keeps the
  // precision of the attention weights, so F32 models (the golden test models) get an F32 cache and
  // every quantized or half-precision model an F16 one (half the memory, as llama.cpp's default).
  GgmlType DefaultCacheType() const;

  // Reads every page of the weights once, in file order, so the first tokens do not wait for page
  // faults; progress(fraction) is called as it goes (the loading bar of `gemma4 run`). Packed weights
  // are resident already and the embedding tables are read a row at a time, so with packed weights
  // this only reports completion.
  void Prefault(const std::function<void(double)>& progress) const;

  // out[0 .. table.cols) = row `id` of an embedding table (weights().token_embd or ple_token_embd),
  // dequantized exactly. The tied LM head's packed copy serves token_embd; otherwise the row is read
  // from the file with pread, so a table of gigabytes read a row per token adds nothing to the
  // process's resident memory (faults on the mapping made whole read-ahead windows resident: the
  // 12B's 826 MB table was two-thirds resident after a few hundred tokens). Fails on an id outside
  // the table. Thread-safe.
  void EmbeddingRow(const kernels::Matrix& table, int32_t id, float* out) const;

  // Bytes of weights held in the packed layout (0 with GEMMA4_NO_PACK), and where they are: every
  // matrix the forward pass multiplies, so almost all that generation reads per token.
  uint64_t PackedBytes() const;
  std::vector<kernels::ByteRange> PackedRanges() const;

 private:
  Model() = default;
  void PackWeights();
  std::vector<std::unique_ptr<kernels::PackedBuffer>> packed_;
  std::vector<float> vectors_;  // [sum of the vectors' n] ForEachVec's tensors when packed
  std::unique_ptr<gguf::File> file_;
  ModelConfig config_;
  ModelWeights weights_;
};

}  // namespace g4
