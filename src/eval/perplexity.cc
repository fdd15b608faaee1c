#include "eval/perplexity.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace g4 {

double PerplexityResult::Perplexity() const { return std::exp(MeanNll()); }

PerplexityResult ComputePerplexity(Context& ctx, const Tokenizer& tok, std::string_view text, int64_t n_ctx,
                                   const std::function<void(int64_t, int64_t)>& progress) {
  if (n_ctx < 2) Fail("perplexity: the context must hold at least 2 tokens (got %lld)", (long long)n_ctx);
  if (tok.bos() < 0) Fail("perplexity: the vocabulary has no BOS token");
  const std::vector<int32_t> ids = tok.Encode(text, /*parse_special=*/false, /*add_bos=*/false);
  if (ids.empty()) Fail("perplexity: the text has no tokens");
  const int64_t chunk = n_ctx - 1;
  const int64_t n_chunks = (static_cast<int64_t>(ids.size()) + chunk - 1) / chunk;
  const int64_t V = ctx.config().n_vocab;
  PerplexityResult r;
  for (int64_t c = 0; c < n_chunks; ++c) {
    const int64_t begin = c * chunk, end = std::min<int64_t>(begin + chunk, static_cast<int64_t>(ids.size()));
    ctx.kv().Clear(0);
    Batch b;
    b.Add(tok.bos(), 0, 0, true);
    for (int64_t i = begin; i < end; ++i) b.Add(ids[static_cast<size_t>(i)], 0, i - begin + 1, i + 1 < end);
    ctx.Decode(b);
    for (int64_t i = begin; i < end; ++i) {
      const float* lg = ctx.Logits(static_cast<int>(i - begin));
      // log-softmax in double: the sums run over the whole vocabulary.
      double mx = lg[0];
      for (int64_t v = 1; v < V; ++v) mx = std::max(mx, static_cast<double>(lg[v]));
      double s = 0;
      for (int64_t v = 0; v < V; ++v) s += std::exp(static_cast<double>(lg[v]) - mx);
      r.nll += std::log(s) + mx - lg[ids[static_cast<size_t>(i)]];
      ++r.n_scored;
    }
    ++r.n_chunks;
    if (progress) progress(c + 1, n_chunks);
  }
  return r;
}

}  // namespace g4
