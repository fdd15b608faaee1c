// Speculative decoding: a drafter proposes several tokens, the target checks them all in one forward
// pass, and generation keeps the longest prefix the target agrees with plus the target's own next
// token. The output is exactly the target's: greedy decoding gives the same tokens as without
// drafting, and sampling uses speculative rejection sampling, which leaves the distribution of the
// output unchanged.
//
// Drafters:
//  * MtpDrafter: the Gemma 4 MTP assistant (reads the target's KV cache and final hidden state);
//  * ModelDrafter: any smaller model with the same vocabulary, with its own KV cache;
//  * NgramDrafter: prompt lookup, proposing what followed the latest earlier occurrence of the
//    context's last tokens (helps when the output repeats the input: edits, summaries, code).
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "engine/generator.h"
#include "model/assistant.h"

namespace g4 {

struct DraftRequest {
  std::span<const int32_t> history;  // every token the target has accepted, the last one `bonus`
  int32_t bonus = -1;                // the target's latest token (not yet in the target's cache)
  const float* hidden = nullptr;     // target final-normed hidden that predicted `bonus` (MTP)
  int64_t position = 0;              // position the bonus token will take
  int seq = 0;
  int k = 4;                         // tokens wanted
  const SamplingParams* sampling = nullptr;  // greedy drafting when null or greedy
};

struct Draft {
  std::vector<int32_t> tokens;
  // For sampling: the draft distribution each token was drawn from (empty when drafts are greedy or
  // deterministic, in which case it is a point mass).
  std::vector<std::vector<TokenProb>> dists;
};

class Drafter {
 public:
  virtual ~Drafter() = default;
  virtual const char* name() const = 0;
  virtual bool needs_hidden() const { return false; }
  virtual bool reads_media() const { return true; }  // can follow prompts with embedding rows
  virtual void Propose(const DraftRequest& req, Draft* out) = 0;
  // The target accepted `n_accepted` of the proposed tokens (and then its own token).
  virtual void Accepted(int n_accepted) { (void)n_accepted; }
  virtual void Reset() {}
};

class MtpDrafter : public Drafter {
 public:
  MtpDrafter(const Model& assistant, const Model& target, Context& target_ctx, uint64_t seed = 1);
  const char* name() const override { return "assistant"; }
  bool needs_hidden() const override { return true; }
  void Propose(const DraftRequest& req, Draft* out) override;

 private:
  AssistantRunner runner_;
  std::vector<float> logits_, hidden_, next_;
  std::unique_ptr<Sampler> sampler_;
  uint64_t seed_;
};

class ModelDrafter : public Drafter {
 public:
  ModelDrafter(const Model& draft, const Model& target, const ContextOptions& opt);
  const char* name() const override { return "model"; }
  bool reads_media() const override { return false; }
  void Propose(const DraftRequest& req, Draft* out) override;
  void Reset() override;

 private:
  const Model& draft_;
  std::unique_ptr<Context> ctx_;
  std::vector<int32_t> cached_;  // tokens in the draft model's cache
  std::unique_ptr<Sampler> sampler_;
};

class NgramDrafter : public Drafter {
 public:
  explicit NgramDrafter(int max_ngram = 4, int min_ngram = 2) : max_n_(max_ngram), min_n_(min_ngram) {}
  const char* name() const override { return "ngram"; }
  void Propose(const DraftRequest& req, Draft* out) override;

 private:
  int max_n_, min_n_;
};

struct SpeculativeOptions {
  int draft_max = 8;   // upper bound of K
  int draft_min = 1;
  int draft_start = 4;
};

struct SpeculativeStats {
  int64_t drafted = 0;
  int64_t accepted = 0;
  int64_t target_forwards = 0;  // verification passes
  int64_t generated = 0;
  double acceptance() const { return drafted ? static_cast<double>(accepted) / drafted : 0; }
  double tokens_per_forward() const { return target_forwards ? static_cast<double>(generated) / target_forwards : 0; }
};

// The generation loop with drafting (one sequence). The context must keep hidden states when the
// drafter needs them (ContextOptions::keep_hidden). Like Generator, it reuses the part of the prompt
// the sequence's cache already holds (a conversation's earlier turns), so it can drive `gemma4 run`.
class SpeculativeGenerator {
 public:
  SpeculativeGenerator(Context& ctx, const Tokenizer& tok, Drafter& drafter, const SpeculativeOptions& opt,
                       int seq = 0, bool render_special = false);

  GenerationResult Generate(std::span<const int32_t> prompt, const SamplingParams& sampling, const StopCriteria& stop,
                            const Generator::TokenCallback& on_token);
  // A prompt of text and media pieces (the assistant and n-gram drafters can follow it; a separate
  // draft model cannot read the target's image or audio embeddings).
  GenerationResult Generate(std::span<const PromptPiece> prompt, const SamplingParams& sampling,
                            const StopCriteria& stop, const Generator::TokenCallback& on_token);
  // Statistics of the last Generate call.
  const SpeculativeStats& stats() const { return stats_; }
  // Forgets the cached prompt (the next Generate evaluates its whole prompt).
  void Reset();

 private:
  Context& ctx_;
  const Tokenizer& tok_;
  Drafter& drafter_;
  SpeculativeOptions opt_;
  int seq_;
  bool render_special_;
  SpeculativeStats stats_;
  std::vector<uint64_t> cached_keys_;  // what the sequence's cache holds (PromptPlan keys)
};

// Rejection sampling step (exposed for tests): accept draft token d drawn from q with probability
// min(1, p(d)/q(d)); otherwise returns a token drawn from norm(max(0, p - q)). *accepted tells which.
int32_t SpeculativeAccept(const std::vector<TokenProb>& p, const std::vector<TokenProb>& q, int32_t d, double u1,
                          double u2, bool* accepted);

}  // namespace g4
