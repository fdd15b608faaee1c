// The generation loop shared by `gemma4 generate`, `gemma4 run` and the server's single-sequence
// paths: evaluate the prompt (reusing whatever prefix of it the sequence's cache already holds), then
// sample token after token until an end-of-generation token, a stop string, the token limit, the end
// of the context or the caller says stop. Text is streamed as it becomes final: valid UTF-8 only, and
// never the beginning of a stop string that may still complete.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/prompt.h"
#include "model/context.h"
#include "sampling/sampler.h"
#include "tokenizer/tokenizer.h"

namespace g4 {

enum class FinishReason { kLength, kEndOfGeneration, kStopString, kCancelled, kContextFull };
const char* FinishReasonName(FinishReason r);

struct StopCriteria {
  int max_tokens = -1;                  // < 0: until the context is full
  std::vector<int32_t> eog_tokens;      // end-of-generation tokens
  std::vector<std::string> stop_strings;
  bool ignore_eos = false;              // keep generating through end-of-generation tokens
  bool include_eog_text = false;        // emit the text of the end-of-generation token (render_special)
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated tokens (including a final end-of-generation token)
  std::string text;             // the streamed text
  FinishReason finish = FinishReason::kLength;
  int n_prompt = 0;             // prompt tokens
  int n_prompt_evaluated = 0;   // prompt tokens actually run (the rest came from the cache)
  double t_prompt = 0;          // seconds
  double t_generate = 0;        // seconds, first generated token's forward excluded from prompt time
};

// The tokens that end a model's turn, looked up by name: <eos>, <turn|> and <|tool_response>
// (Gemma 4), <end_of_turn> (Gemma 3), plus the tokenizer's eos id.
std::vector<int32_t> EndOfGenerationTokens(const Tokenizer& tok);
// The model's suppress_tokens (tokenizer.ggml.suppress_tokens) if present.
std::vector<int32_t> SuppressedTokens(const gguf::File& f, int64_t n_vocab);

// Brings sequence `seq` of ctx to the prompt `plan`, reusing what the cache already holds:
// `cached_keys` are the keys of the positions it holds; the longest prefix the plan can reuse is
// kept (the cache rolled back to it, or cleared when a sliding window no longer allows that) and
// the rest is decoded in batches of the context's n_batch, `cached_keys` following what the cache
// holds as it goes. Fails when the plan does not fit the context. Returns the positions reused.
size_t EvaluatePrompt(Context& ctx, int seq, const PromptPlan& plan, std::vector<uint64_t>* cached_keys);

class Generator {
 public:
  // on_token(token, text) is called for every generated token with the text that became final; it
  // returns false to stop (finish reason kCancelled).
  using TokenCallback = std::function<bool(int32_t token, std::string_view text)>;

  Generator(Context& ctx, const Tokenizer& tok, int seq = 0, bool render_special = false);

  GenerationResult Generate(std::span<const int32_t> prompt, const SamplingParams& sampling,
                            const StopCriteria& stop, const TokenCallback& on_token);
  // The same for a prompt of text and media pieces. n_prompt counts positions (soft tokens included);
  // only token ids are fed to the sampler's penalties.
  GenerationResult Generate(std::span<const PromptPiece> prompt, const SamplingParams& sampling,
                            const StopCriteria& stop, const TokenCallback& on_token);

  // Evaluates tokens into the sequence (reusing the cached prefix) and leaves the logits of the last
  // one in the context. Returns the number of tokens actually run.
  int Prefill(std::span<const int32_t> tokens);
  // The same for text and media pieces. Batches hold at most the context's n_batch positions and an
  // image's rows always share one batch (so an image longer than n_batch is an error); the cached
  // prefix is reused up to the first piece that differs (embedding rows match by their key).
  int Prefill(std::span<const PromptPiece> prompt);

  // Tokens currently in the sequence's cache (-1 at positions that hold embedding rows).
  const std::vector<int32_t>& cached() const { return cached_; }
  void Reset();

 private:
  Context& ctx_;
  const Tokenizer& tok_;
  int seq_;
  bool render_special_;
  std::vector<int32_t> cached_;
  std::vector<uint64_t> cached_keys_;  // [cached_.size()] token id, or a key of an embedding row
};

}  // namespace g4
