#include "engine/generator.h"

#include <algorithm>

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
}

int Generator::Prefill(std::span<const int32_t> tokens) {
  if (tokens.empty()) Fail("the prompt is empty");
  // Longest common prefix with what the cache holds; at least the last token is run again so that
  // its logits are fresh.
  size_t common = 0;
  while (common < cached_.size() && common < tokens.size() && cached_[common] == tokens[common]) ++common;
  if (common == tokens.size()) --common;
  if (common < cached_.size()) {
    if (ctx_.kv().CanTruncate(seq_, static_cast<int64_t>(common))) {
      ctx_.kv().Truncate(seq_, static_cast<int64_t>(common));
      cached_.resize(common);
    } else {
      Reset();
      common = 0;
    }
  }
  const int64_t n_ctx = ctx_.kv().options().n_ctx;
  if (static_cast<int64_t>(tokens.size()) > n_ctx) {
    Fail("the prompt has %zu tokens but the context holds %lld", tokens.size(), (long long)n_ctx);
  }
  const int64_t step = ctx_.options().n_batch;
  Batch b;
  for (size_t i = common; i < tokens.size(); i += static_cast<size_t>(step)) {
    b.Clear();
    const size_t end = std::min(tokens.size(), i + static_cast<size_t>(step));
    for (size_t j = i; j < end; ++j) b.Add(tokens[j], seq_, static_cast<int64_t>(j), j + 1 == tokens.size());
    ctx_.Decode(b);
    cached_.insert(cached_.end(), tokens.begin() + static_cast<std::ptrdiff_t>(i),
                   tokens.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return static_cast<int>(tokens.size() - common);
}

namespace {
// Length of the longest suffix of `text` that is a proper prefix of some stop string: that much text
// must be held back because a stop string may still complete.
size_t HeldBack(std::string_view text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const auto& s : stops) {
    for (size_t k = std::min(s.size() - 1, text.size()); k > hold; --k) {
      if (text.substr(text.size() - k) == std::string_view(s).substr(0, k)) {
        hold = k;
        break;
      }
    }
  }
  return hold;
}
}  // namespace

GenerationResult Generator::Generate(std::span<const int32_t> prompt, const SamplingParams& sampling,
                                     const StopCriteria& stop, const TokenCallback& on_token) {
  GenerationResult r;
  r.n_prompt = static_cast<int>(prompt.size());
  const double t0 = NowSeconds();
  r.n_prompt_evaluated = Prefill(prompt);
  r.t_prompt = NowSeconds() - t0;

  Sampler sampler(sampling, ctx_.config().n_vocab);
  for (int32_t t : prompt) sampler.Accept(t);
  StreamingDecoder decoder(tok_, render_special_);
  std::string pending;  // final text not yet emitted (possible stop-string prefix)
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
      std::string tail = decoder.Flush();
      if (stop.include_eog_text) tail += std::string(tok_.TokenBytes(tok, true));
      r.text += pending + tail;
      if (!(pending + tail).empty() && on_token) on_token(tok, pending + tail);
      pending.clear();
      r.finish = FinishReason::kEndOfGeneration;
      break;
    }
    pending += decoder.Push(tok);
    // Stop strings: cut at the first occurrence.
    bool stopped = false;
    for (const auto& s : stop.stop_strings) {
      const size_t at = s.empty() ? std::string::npos : pending.find(s);
      if (at != std::string::npos) {
        pending.resize(at);
        stopped = true;
      }
    }
    const size_t hold = stopped ? 0 : HeldBack(pending, stop.stop_strings);
    const std::string emit = pending.substr(0, pending.size() - hold);
    pending.erase(0, emit.size());
    r.text += emit;
    bool keep_going = true;
    if (on_token) keep_going = on_token(tok, emit);
    if (stopped) {
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
  }
  if (r.finish != FinishReason::kStopString && r.finish != FinishReason::kEndOfGeneration) {
    const std::string tail = pending + decoder.Flush();
    if (!tail.empty()) {
      r.text += tail;
      if (on_token) on_token(-1, tail);
    }
  }
  r.t_generate = NowSeconds() - t1;
  return r;
}

}  // namespace g4
