#include "sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_map>

#include "util/error.h"

namespace g4 {

Sampler::Sampler(const SamplingParams& params, int64_t n_vocab) : params_(params), n_vocab_(n_vocab), rng_(params.seed) {
  if (n_vocab <= 0) Fail("sampler: empty vocabulary");
  if (std::isnan(params.temperature)) Fail("sampling: temperature is NaN");
  if (params.top_p <= 0.0f || std::isnan(params.top_p)) Fail("sampling: top_p must be in (0, 1], got %g", params.top_p);
  if (params.min_p < 0.0f || params.min_p > 1.0f) Fail("sampling: min_p must be in [0, 1], got %g", params.min_p);
  if (params.repeat_penalty <= 0.0f) Fail("sampling: repeat_penalty must be positive, got %g", params.repeat_penalty);
  for (const auto& [tok, bias] : params.logit_bias) {
    if (tok < 0 || tok >= n_vocab) Fail("sampling: logit_bias token %d is out of range (vocabulary of %lld)", tok, (long long)n_vocab);
    (void)bias;
  }
}

void Sampler::Accept(int32_t token) {
  recent_.push_back(token);
  const size_t keep = params_.penalty_last_n < 0 ? SIZE_MAX : static_cast<size_t>(params_.penalty_last_n);
  while (recent_.size() > keep) recent_.pop_front();
}

void Sampler::Reset() {
  recent_.clear();
  rng_.seed(params_.seed);
}

double Sampler::Uniform() {
  // 53 random bits -> [0, 1): identical on every platform for a given seed.
  return static_cast<double>(rng_() >> 11) * (1.0 / 9007199254740992.0);
}

void Sampler::AdjustedLogits(const float* logits, std::vector<float>* out) const {
  out->assign(logits, logits + n_vocab_);
  std::vector<float>& l = *out;
  const bool penalize = params_.repeat_penalty != 1.0f || params_.presence_penalty != 0.0f ||
                        params_.frequency_penalty != 0.0f;
  if (penalize && !recent_.empty()) {
    std::unordered_map<int32_t, int> counts;
    for (int32_t t : recent_) {
      if (t >= 0 && t < n_vocab_) ++counts[t];
    }
    for (const auto& [t, n] : counts) {
      float& x = l[static_cast<size_t>(t)];
      if (params_.repeat_penalty != 1.0f) x = x > 0 ? x / params_.repeat_penalty : x * params_.repeat_penalty;
      x -= static_cast<float>(n) * params_.frequency_penalty + params_.presence_penalty;
    }
  }
  for (const auto& [t, b] : params_.logit_bias) l[static_cast<size_t>(t)] += b;
  for (int32_t t : params_.suppress) {
    if (t >= 0 && t < n_vocab_) l[static_cast<size_t>(t)] = -std::numeric_limits<float>::infinity();
  }
}

void Sampler::Distribution(const float* logits, std::vector<TokenProb>* out) {
  AdjustedLogits(logits, &work_);
  out->clear();
  const float* l = work_.data();
  if (params_.Greedy()) {
    // Lowest id wins ties, as the reference greedy decoding does.
    int32_t best = 0;
    for (int64_t i = 1; i < n_vocab_; ++i) {
      if (l[i] > l[best]) best = static_cast<int32_t>(i);
    }
    out->push_back({best, 1.0f});
    return;
  }
  // Candidates: the top-k (or all) tokens with finite logits, sorted by logit.
  idx_.resize(static_cast<size_t>(n_vocab_));
  std::iota(idx_.begin(), idx_.end(), 0);
  auto cmp = [&](int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); };
  size_t k = idx_.size();
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < k) {
    k = static_cast<size_t>(params_.top_k);
    std::nth_element(idx_.begin(), idx_.begin() + static_cast<std::ptrdiff_t>(k), idx_.end(), cmp);
    idx_.resize(k);
  }
  std::sort(idx_.begin(), idx_.end(), cmp);
  while (!idx_.empty() && !std::isfinite(l[idx_.back()])) idx_.pop_back();
  if (idx_.empty()) Fail("sampling: every token is banned by the logit biases");
  // Softmax at the temperature.
  const double inv_t = 1.0 / params_.temperature;
  const double mx = l[idx_[0]];
  std::vector<double> p(idx_.size());
  double sum = 0;
  for (size_t i = 0; i < idx_.size(); ++i) {
    p[i] = std::exp((l[idx_[i]] - mx) * inv_t);
    sum += p[i];
  }
  for (double& x : p) x /= sum;
  // top-p: the smallest prefix whose mass reaches p. min-p: drop tokens below min_p * p_max.
  size_t keep = p.size();
  if (params_.top_p < 1.0f) {
    double acc = 0;
    for (size_t i = 0; i < p.size(); ++i) {
      acc += p[i];
      if (acc >= params_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  if (params_.min_p > 0.0f) {
    const double floor = params_.min_p * p[0];
    size_t m = 1;
    while (m < keep && p[m] >= floor) ++m;
    keep = m;
  }
  double kept = 0;
  for (size_t i = 0; i < keep; ++i) kept += p[i];
  out->reserve(keep);
  for (size_t i = 0; i < keep; ++i) out->push_back({idx_[i], static_cast<float>(p[i] / kept)});
}

int32_t Sampler::Draw(const std::vector<TokenProb>& dist) {
  G4_CHECK(!dist.empty());
  if (dist.size() == 1) return dist[0].token;
  double total = 0;
  for (const auto& tp : dist) total += tp.prob;
  const double r = Uniform() * total;
  double acc = 0;
  for (const auto& tp : dist) {
    acc += tp.prob;
    if (r < acc) return tp.token;
  }
  return dist.back().token;
}

int32_t Sampler::Sample(const float* logits) {
  std::vector<TokenProb> dist;
  Distribution(logits, &dist);
  return params_.Greedy() ? dist[0].token : Draw(dist);
}

}  // namespace g4
