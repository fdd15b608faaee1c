// Choosing the next token from the logits: greedy, or sampling with temperature, top-k, top-p and
// min-p, after repetition / presence / frequency penalties and logit biases. A seed makes sampled
// output reproducible (the random numbers are drawn from a fixed generator in a fixed way, so the
// same seed gives the same tokens on every machine).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <random>
#include <vector>

namespace g4 {

struct SamplingParams {
  float temperature = 1.0f;     // <= 0: greedy
  int top_k = 64;               // <= 0: off
  float top_p = 0.95f;          // >= 1: off
  float min_p = 0.0f;           // <= 0: off
  float repeat_penalty = 1.0f;  // llama.cpp style: positive logits / p, negative * p (1: off)
  float presence_penalty = 0.0f;   // OpenAI style: - presence * [count > 0]
  float frequency_penalty = 0.0f;  // OpenAI style: - frequency * count
  int penalty_last_n = 64;      // how many recent tokens the penalties look at (-1: all)
  std::map<int32_t, float> logit_bias;  // added to the logit; -inf bans the token
  std::vector<int32_t> suppress;        // tokens never produced (the model's suppress_tokens)
  uint64_t seed = 0xC0FFEE;
  bool Greedy() const { return temperature <= 0.0f; }
};

struct TokenProb {
  int32_t token;
  float prob;
};

class Sampler {
 public:
  Sampler(const SamplingParams& params, int64_t n_vocab);

  const SamplingParams& params() const { return params_; }

  // Records a token of the context (prompt or generated) for the penalties.
  void Accept(int32_t token);
  void Reset();

  // Applies penalties, biases and suppression to a copy of the logits and returns the token.
  int32_t Sample(const float* logits);

  // The distribution Sample() draws from after every filter: tokens with their probabilities,
  // summing to 1, most likely first. Greedy gives the argmax with probability 1.
  void Distribution(const float* logits, std::vector<TokenProb>* out);

  // A uniform number in [0, 1) from the sampler's generator (speculative rejection sampling).
  double Uniform();
  // Draws from a distribution (probabilities summing to ~1).
  int32_t Draw(const std::vector<TokenProb>& dist);

  // Logits after penalties, bias and suppression (no filtering): for logprobs and drafting.
  void AdjustedLogits(const float* logits, std::vector<float>* out) const;

 private:
  SamplingParams params_;
  int64_t n_vocab_;
  std::deque<int32_t> recent_;
  std::mt19937_64 rng_;
  std::vector<float> work_;
  std::vector<int32_t> idx_;
};

}  // namespace g4
