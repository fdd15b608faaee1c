// A context runs the forward pass of one model over batches of tokens and owns the KV cache of its
// sequences. The forward pass is written out layer by layer in context.cc, as plain calls to the
// kernels (matrix products) and ops (norms, RoPE, GELU), so the math reads top to bottom.
#pragma once

#include <memory>
#include <vector>

#include "kernels/kernels.h"
#include "model/batch.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "util/thread_pool.h"

namespace g4 {

struct ContextOptions {
  KvCacheOptions kv;
  int n_threads = 0;                          // 0: one per core
  kernels::Math math = kernels::Math::kFast;
  int64_t n_batch = 512;                      // tokens per forward step; larger batches are split
  bool keep_hidden = false;                   // keep the final-normed hidden state of output tokens
};

class Context {
 public:
  Context(const Model& model, const ContextOptions& opt);
  ~Context();

  // Runs the batch: appends the K/V of every token to its sequence's cache and computes the logits
  // (softcap applied) of the tokens flagged as outputs. Throws g4::Error on an invalid batch (token
  // id out of range, positions that do not continue the sequence, a sequence over its context).
  void Decode(const Batch& batch);

  // Results of the last Decode, indexed by output number (the k-th token flagged output).
  int n_outputs() const { return n_out_; }
  const float* Logits(int k) const;  // [n_vocab]
  const float* Hidden(int k) const;  // [n_embd]: final-normed hidden state (keep_hidden only)

  const Model& model() const { return model_; }
  const ModelConfig& config() const { return model_.config(); }
  KvCache& kv() { return kv_; }
  const KvCache& kv() const { return kv_; }
  ThreadPool& pool() { return pool_; }
  const ContextOptions& options() const { return opt_; }

 private:
  struct Scratch;
  void Validate(const Batch& b) const;
  void Forward(const Batch& b, int begin, int end);
  void Moe(const LayerWeights& lw, int n);

  const Model& model_;
  ContextOptions opt_;
  ThreadPool pool_;
  KvCache kv_;
  std::unique_ptr<Scratch> s_;
  // RoPE inverse frequencies per layer kind: [0] sliding, [1] full; n_rot/2 values each.
  std::vector<double> inv_freq_[2];
  std::vector<float> logits_;  // [n_out][n_vocab]
  std::vector<float> hidden_;  // [n_out][n_embd]
  int n_out_ = 0;
};

}  // namespace g4
