// The Gemma 4 MTP "assistant" (drafter): a small model that proposes the target's next tokens from
// the target's own state (GEMMA4.md section 1.4). One draft step, for a token t and a hidden h:
//
//   x = pre_projection([target_embedding(t) * sqrt(n_embd_target), h])
//   for each layer: attention of q only, over the TARGET's KV cache of its last layer of the same
//                   kind (the assistant has no KV of its own), then the GeGLU FFN, layer scalar
//   hn = rms_norm(x) * output_norm
//   logits = hn @ E_assistant^T   (no softcap)        h_next = post_projection(hn)
//
// Every step of one draft block uses the same position (llama.cpp: n_past, the position of the
// bonus token not yet in the target cache), so the queries see the target's whole cache.
#pragma once

#include <memory>
#include <vector>

#include "kernels/kernels.h"
#include "model/context.h"
#include "model/model.h"

namespace g4 {

class AssistantRunner {
 public:
  // Checks that the assistant belongs to the target (hidden sizes, vocabulary, the target layers
  // it reads) and says clearly what does not match. The target context provides the KV cache and
  // the thread pool; the runner itself never writes to the cache.
  AssistantRunner(const Model& assistant, const Model& target, Context& target_ctx);

  // One draft step for n sequences at once: tokens[i] and hidden[i] (n_embd_target floats) of
  // sequence seq[i], query position pos[i]. Writes logits [n][n_vocab] and the next hidden states
  // [n][n_embd_target].
  void Step(int n, const int32_t* tokens, const float* hidden, const int32_t* seq, const int64_t* pos,
            float* logits, float* next_hidden);

  int64_t n_vocab() const { return assistant_.config().n_vocab; }
  int64_t n_embd_target() const { return target_.config().n_embd; }

 private:
  const Model& assistant_;
  const Model& target_;
  Context& ctx_;
  std::vector<int> kv_layer_;        // per assistant layer: the target layer whose cache it reads
  std::vector<double> inv_freq_[2];  // RoPE per layer kind
  struct Scratch;
  std::shared_ptr<Scratch> s_;
};

}  // namespace g4
