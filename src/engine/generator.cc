#include "engine/generator.h"

#include <algorithm>

#include "engine/output_stream.h"
#include "util/error.h"
#include "util/timer.h"

namespace g4 {

const char* FinishReasonName(FinishReason r) {
  switch (r) {
    case FinishReason::kLength: return "length";
    case FinishReason::kEndOfGeneration: return "stop";
    case FinishReason::kStopString: return "stop";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kContextFull: return "length";
  }
  return "?";
}

std::vector<int32_t> EndOfGenerationTokens(const Tokenizer& tok) {
  std::vector<int32_t> ids;
  auto add = [&](int32_t id) {
    if (id >= 0 && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  };
  add(tok.eos());
  for (const char* name : {"<eos>", "<turn|>", "<end_of_turn>", "<|tool_response>"}) add(tok.Lookup(name));
  return ids;
}

std::vector<int32_t> SuppressedTokens(const gguf::File& f, int64_t n_vocab) {
  std::vector<int32_t> out;
  if (!f.Has("tokenizer.ggml.suppress_tokens")) return out;
  for (int64_t id : f.GetIntArray("tokenizer.ggml.suppress_tokens")) {
    if (id >= 0 && id < n_vocab) out.push_back(static_cast<int32_t>(id));
  }
  return out;
}

Generator::Generator(Context& ctx, const Tokenizer& tok, int seq, bool render_special)
    : ctx_(ctx), tok_(tok), seq_(seq), render_special_(render_special) {
  if (ctx.kv().SeqLen(seq) != 0) Fail("generator: sequence %d is not empty", seq);
}

void Generator::Reset() {
  ctx_.kv().Clear(seq_);
  cached_.clear();
  cached_keys_.clear();
}

int Generator::Prefill(std::span<const int32_t> tokens) {
  PromptPiece p;
  p.tokens.assign(tokens.begin(), tokens.end());
  return Prefill(std::span<const PromptPiece>(&p, 1));
}

size_t EvaluatePrompt(Context& ctx, int seq, const PromptPlan& plan, std::vector<uint64_t>* cached_keys) {
  size_t common = plan.ReusablePrefix(*cached_keys);
  if (common < cached_keys->size()) {
    if (ctx.kv().CanTruncate(seq, static_cast<int64_t>(common))) {
      ctx.kv().Truncate(seq, static_cast<int64_t>(common));
    } else {
      common = 0;
    }
    cached_keys->resize(common);
  }
  if (common == 0) {
    ctx.kv().Clear(seq);
    cached_keys->clear();
  }
  const int64_t n_ctx = ctx.kv().options().n_ctx;
  if (static_cast<int64_t>(plan.size()) > n_ctx) {
    Fail("the prompt has %zu positions but the context holds %lld", plan.size(), (long long)n_ctx);
  }
  const int64_t step = ctx.options().n_batch;
  Batch b;
  for (size_t pos = common; pos < plan.size();) {
    b.Clear();
    int32_t group = 1;
    const size_t n = plan.AddToBatch(b, seq, pos, step, step, &group);
    G4_CHECK(n > 0);
    ctx.Decode(b);
    cached_keys->insert(cached_keys->end(), plan.keys().begin() + static_cast<std::ptrdiff_t>(pos),
                        plan.keys().begin() + static_cast<std::ptrdiff_t>(pos + n));
    pos += n;
  }
  return common;
}

int Generator::Prefill(std::span<const PromptPiece> prompt) {
  const PromptPlan plan(prompt, ctx_.config().n_embd);
  size_t common = 0;
  try {
    common = EvaluatePrompt(ctx_, seq_, plan, &cached_keys_);
  } catch (...) {
    Reset();  // cached_ would no longer match the cache
    throw;
  }
  cached_.resize(common);
  for (size_t k = common; k < plan.size(); ++k) cached_.push_back(plan.token_at(k));
  return static_cast<int>(plan.size() - common);
}

GenerationResult Generator::Generate(std::span<const int32_t> prompt, const SamplingParams& sampling,
                                     const StopCriteria& stop, const TokenCallback& on_token) {
  PromptPiece p;
  p.tokens.assign(prompt.begin(), prompt.end());
  return Generate(std::span<const PromptPiece>(&p, 1), sampling, stop, on_token);
}

GenerationResult Generator::Generate(std::span<const PromptPiece> prompt, const SamplingParams& sampling,
                                     const StopCriteria& stop, const TokenCallback& on_token) {
  GenerationResult r;
  const double t0 = NowSeconds();
  r.n_prompt_evaluated = Prefill(prompt);
  r.n_prompt = static_cast<int>(cached_.size());
  r.t_prompt = NowSeconds() - t0;

  Sampler sampler(sampling, ctx_.config().n_vocab);
  for (const PromptPiece& p : prompt) {
    for (int32_t t : p.tokens) sampler.Accept(t);
  }
  OutputStream out(tok_, stop.stop_strings, render_special_);
  const int64_t n_ctx = ctx_.kv().options().n_ctx;
  const double t1 = NowSeconds();
  for (;;) {
    if (stop.max_tokens >= 0 && static_cast<int>(r.tokens.size()) >= stop.max_tokens) {
      r.finish = FinishReason::kLength;
      break;
    }
    const int32_t tok = sampler.Sample(ctx_.Logits(0));
    sampler.Accept(tok);
    r.tokens.push_back(tok);
    const bool eog = std::find(stop.eog_tokens.begin(), stop.eog_tokens.end(), tok) != stop.eog_tokens.end();
    if (eog && !stop.ignore_eos) {
      const std::string tail = out.EndOfGeneration(tok, stop.include_eog_text);
      r.text += tail;
      if (!tail.empty() && on_token) on_token(tok, tail);
      r.finish = FinishReason::kEndOfGeneration;
      break;
    }
    const OutputStream::Step s = out.Push(tok);
    r.text += s.text;
    const bool keep_going = on_token ? on_token(tok, s.text) : true;
    if (s.stop_string) {
      r.finish = FinishReason::kStopString;
      break;
    }
    if (!keep_going) {
      r.finish = FinishReason::kCancelled;
      break;
    }
    if (static_cast<int64_t>(cached_.size()) + 1 > n_ctx) {
      r.finish = FinishReason::kContextFull;
      break;
    }
    Batch b;
    b.Add(tok, seq_, static_cast<int64_t>(cached_.size()), true);
    ctx_.Decode(b);
    cached_.push_back(tok);
    cached_keys_.push_back(static_cast<uint64_t>(tok));
  }
  if (r.finish != FinishReason::kStopString && r.finish != FinishReason::kEndOfGeneration) {
    const std::string tail = out.Flush();
    if (!tail.empty()) {
      r.text += tail;
      if (on_token) on_token(-1, tail);
    }
  }
  r.t_generate = NowSeconds() - t1;
  return r;
}

}  // namespace g4
