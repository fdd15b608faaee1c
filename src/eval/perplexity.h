// Perplexity of a model on a text, the way the training recipe (tools/train) measures held-out loss,
// so the two can be compared: the text is tokenized without BOS and cut into chunks of n_ctx - 1
// tokens; each chunk is evaluated from a fresh cache as [BOS] + chunk at positions 0..n, and every
// token of the chunk is scored (the first from BOS alone). The last chunk may be shorter.
// perplexity = exp(total negative log-likelihood / scored tokens).
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "model/context.h"
#include "tokenizer/tokenizer.h"

namespace g4 {

struct PerplexityResult {
  double nll = 0;          // summed negative log-likelihood (nats)
  int64_t n_scored = 0;    // tokens scored
  int64_t n_chunks = 0;
  double Perplexity() const;
  double MeanNll() const { return n_scored ? nll / n_scored : 0; }
};

// `ctx` must have a context of at least n_ctx tokens for sequence 0. progress(done, total) per chunk.
PerplexityResult ComputePerplexity(Context& ctx, const Tokenizer& tok, std::string_view text, int64_t n_ctx,
                                   const std::function<void(int64_t, int64_t)>& progress = nullptr);

}  // namespace g4
