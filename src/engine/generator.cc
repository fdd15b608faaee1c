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
  cached_keys_.clear();
}

int Generator::Prefill(std::span<const int32_t> tokens) {
  PromptPiece p;
  p.tokens.assign(tokens.begin(), tokens.end());
  return Prefill(std::span<const PromptPiece>(&p, 1));
}

namespace {

constexpr uint64_t kEmbdKey = 1ull << 63;  // set in the keys of embedding rows, never in token ids
constexpr uint64_t kNoReuse = ~0ull;       // a row that never matches the cache

uint64_t RowKey(uint64_t key, size_t row) {
  if (key == 0) return kNoReuse;
  uint64_t z = key + 0x9e3779b97f4a7c15ull * (row + 1);  // splitmix64 finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z = kEmbdKey | (z ^ (z >> 31));
  return z == kNoReuse ? kEmbdKey : z;
}

}  // namespace

int Generator::Prefill(std::span<const PromptPiece> prompt) {
  const int64_t E = ctx_.config().n_embd;
  // One key per position, and the first position and length of every piece.
  std::vector<uint64_t> keys;
  std::vector<size_t> start(prompt.size()), rows(prompt.size());
  for (size_t i = 0; i < prompt.size(); ++i) {
    const PromptPiece& p = prompt[i];
    start[i] = keys.size();
    if (!p.embd.empty()) {
      if (!p.tokens.empty()) Fail("prompt piece %zu has both token ids and embedding rows", i);
      if (p.embd.size() % static_cast<size_t>(E) != 0) {
        Fail("prompt piece %zu: %zu values are not whole rows of the hidden size %lld", i, p.embd.size(), (long long)E);
      }
      rows[i] = p.embd.size() / static_cast<size_t>(E);
      for (size_t r = 0; r < rows[i]; ++r) keys.push_back(RowKey(p.key, r));
    } else {
      rows[i] = p.tokens.size();
      for (int32_t t : p.tokens) {
        if (t < 0) Fail("prompt piece %zu: negative token id %d", i, t);
        keys.push_back(static_cast<uint64_t>(t));
      }
    }
  }
  if (keys.empty()) Fail("the prompt is empty");
  // Longest common prefix with what the cache holds; at least the last position is run again so that
  // its logits are fresh, and an image is never resumed in its middle.
  size_t common = 0;
  while (common < cached_keys_.size() && common < keys.size() && cached_keys_[common] == keys[common] &&
         keys[common] != kNoReuse) {
    ++common;
  }
  if (common == keys.size()) --common;
  for (size_t i = 0; i < prompt.size(); ++i) {
    if (prompt[i].bidirectional && start[i] < common && common < start[i] + rows[i]) common = start[i];
  }
  if (common < cached_keys_.size()) {
    if (ctx_.kv().CanTruncate(seq_, static_cast<int64_t>(common))) {
      ctx_.kv().Truncate(seq_, static_cast<int64_t>(common));
      cached_.resize(common);
      cached_keys_.resize(common);
    } else {
      Reset();
      common = 0;
    }
  }
  const int64_t n_ctx = ctx_.kv().options().n_ctx;
  if (static_cast<int64_t>(keys.size()) > n_ctx) {
    Fail("the prompt has %zu positions but the context holds %lld", keys.size(), (long long)n_ctx);
  }
  const int64_t step = ctx_.options().n_batch;
  Batch b;
  int32_t group = 0;
  auto flush = [&] {
    if (b.empty()) return;
    ctx_.Decode(b);
    for (int j = 0; j < b.size(); ++j) {
      cached_.push_back(b.token[j]);
      cached_keys_.push_back(keys[static_cast<size_t>(b.pos[j])]);
    }
    b.Clear();
    group = 0;
  };
  const size_t last = keys.size() - 1;
  for (size_t i = 0; i < prompt.size(); ++i) {
    const PromptPiece& p = prompt[i];
    const size_t s = start[i], n = rows[i];
    if (s + n <= common) continue;
    const size_t r0 = common > s ? common - s : 0;
    if (p.embd.empty()) {
      for (size_t r = r0; r < n; ++r) {
        if (b.size() >= step) flush();
        b.Add(p.tokens[r], seq_, static_cast<int64_t>(s + r), s + r == last);
      }
    } else {
      if (p.bidirectional) {
        if (static_cast<int64_t>(n) > step) {
          Fail("an image of %zu soft tokens must be evaluated in one batch, but the batch size is %lld: raise it", n,
               (long long)step);
        }
        if (b.size() + static_cast<int64_t>(n) > step) flush();
        ++group;
      }
      for (size_t r = r0; r < n; ++r) {
        if (!p.bidirectional && b.size() >= step) flush();
        b.AddEmbedding(p.embd.data() + r * static_cast<size_t>(E), E, seq_, static_cast<int64_t>(s + r), s + r == last,
                       p.bidirectional ? group : 0);
      }
    }
  }
  flush();
  return static_cast<int>(keys.size() - common);
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
    cached_keys_.push_back(static_cast<uint64_t>(tok));
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
