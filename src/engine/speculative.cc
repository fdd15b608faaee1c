#include "engine/speculative.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "engine/output_stream.h"
#include "util/error.h"
#include "util/timer.h"

namespace g4 {

namespace {
int32_t Argmax(const float* x, int64_t n) {
  int32_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (x[i] > x[best]) best = static_cast<int32_t>(i);
  }
  return best;
}
bool Greedy(const SamplingParams* s) { return s == nullptr || s->Greedy(); }
}  // namespace

// ---- rejection sampling ----

int32_t SpeculativeAccept(const std::vector<TokenProb>& p, const std::vector<TokenProb>& q, int32_t d, double u1,
                          double u2, bool* accepted) {
  std::unordered_map<int32_t, double> pm, qm;
  for (const auto& tp : p) pm[tp.token] += tp.prob;
  for (const auto& tp : q) qm[tp.token] += tp.prob;
  if (q.empty()) qm[d] = 1.0;  // a deterministic draft: a point mass
  const double pd = pm.count(d) ? pm[d] : 0.0;
  const double qd = qm.count(d) ? qm[d] : 0.0;
  // Accept with probability min(1, p(d)/q(d)) (never a token the target gives no probability).
  if (qd > 0.0 && pd > 0.0 && u1 < std::min(1.0, pd / qd)) {
    *accepted = true;
    return d;
  }
  *accepted = false;
  // Residual distribution norm(max(0, p - q)), in p's order so draws are reproducible.
  std::vector<std::pair<int32_t, double>> r;
  double total = 0;
  for (const auto& tp : p) {
    const double x = std::max(0.0, pm[tp.token] - (qm.count(tp.token) ? qm[tp.token] : 0.0));
    if (x > 0) {
      r.push_back({tp.token, x});
      total += x;
    }
  }
  if (total <= 0) {  // p == q: nothing left over, draw from p
    for (const auto& tp : p) {
      r.push_back({tp.token, tp.prob});
      total += tp.prob;
    }
  }
  double acc = 0;
  const double target = u2 * total;
  for (const auto& [tok, x] : r) {
    acc += x;
    if (target < acc) return tok;
  }
  return r.back().first;
}

// ---- drafters ----

MtpDrafter::MtpDrafter(const Model& assistant, const Model& target, Context& target_ctx, uint64_t seed)
    : runner_(assistant, target, target_ctx), seed_(seed) {
  if (!target_ctx.options().keep_hidden) Fail("the MTP assistant needs a target context that keeps hidden states");
}

void MtpDrafter::Propose(const DraftRequest& req, Draft* out) {
  out->tokens.clear();
  out->dists.clear();
  const int64_t V = runner_.n_vocab(), B = runner_.n_embd_target();
  logits_.resize(static_cast<size_t>(V));
  hidden_.assign(req.hidden, req.hidden + B);
  next_.resize(static_cast<size_t>(B));
  if (!Greedy(req.sampling) && !sampler_) {
    SamplingParams p = *req.sampling;
    p.seed = req.sampling->seed ^ 0x5deece66dull ^ seed_;
    p.repeat_penalty = 1.0f;  // the draft distribution only needs to be known, not history-aware
    p.presence_penalty = p.frequency_penalty = 0.0f;
    sampler_ = std::make_unique<Sampler>(p, V);
  }
  int32_t t = req.bonus;
  for (int i = 0; i < req.k; ++i) {
    runner_.Step(1, &t, hidden_.data(), &req.seq, &req.position, logits_.data(), next_.data());
    if (Greedy(req.sampling)) {
      t = Argmax(logits_.data(), V);
    } else {
      std::vector<TokenProb> q;
      sampler_->Distribution(logits_.data(), &q);
      t = sampler_->Draw(q);
      out->dists.push_back(std::move(q));
    }
    out->tokens.push_back(t);
    hidden_.swap(next_);
  }
}

ModelDrafter::ModelDrafter(const Model& draft, const Model& target, const ContextOptions& opt) : draft_(draft) {
  if (draft.config().n_vocab != target.config().n_vocab) {
    Fail("%s: the draft model's vocabulary has %lld tokens, the target's %lld; they must share a vocabulary",
         draft.path().c_str(), (long long)draft.config().n_vocab, (long long)target.config().n_vocab);
  }
  ContextOptions o = opt;
  o.kv.n_seq = 1;
  o.keep_hidden = false;
  ctx_ = std::make_unique<Context>(draft, o);
}

void ModelDrafter::Reset() {
  ctx_->kv().Clear(0);
  cached_.clear();
}

void ModelDrafter::Propose(const DraftRequest& req, Draft* out) {
  out->tokens.clear();
  out->dists.clear();
  const auto& h = req.history;
  if (h.empty()) return;
  // Bring the draft cache to the accepted history (reusing the common prefix), then draft.
  size_t common = 0;
  while (common < cached_.size() && common < h.size() && cached_[common] == h[common]) ++common;
  if (common == h.size()) --common;
  if (common < cached_.size()) {
    if (ctx_->kv().CanTruncate(0, static_cast<int64_t>(common))) {
      ctx_->kv().Truncate(0, static_cast<int64_t>(common));
      cached_.resize(common);
    } else {
      Reset();
      common = 0;
    }
  }
  const int64_t n_ctx = ctx_->kv().options().n_ctx;
  if (static_cast<int64_t>(h.size()) + req.k > n_ctx) return;  // no room: no drafts
  const int64_t step = ctx_->options().n_batch;
  Batch b;
  for (size_t i = common; i < h.size(); i += static_cast<size_t>(step)) {
    b.Clear();
    const size_t end = std::min(h.size(), i + static_cast<size_t>(step));
    for (size_t j = i; j < end; ++j) b.Add(h[j], 0, static_cast<int64_t>(j), j + 1 == h.size());
    ctx_->Decode(b);
    cached_.insert(cached_.end(), h.begin() + static_cast<std::ptrdiff_t>(i), h.begin() + static_cast<std::ptrdiff_t>(end));
  }
  const int64_t V = draft_.config().n_vocab;
  if (!Greedy(req.sampling) && !sampler_) {
    SamplingParams p = *req.sampling;
    p.seed ^= 0x9e3779b97f4a7c15ull;
    p.repeat_penalty = 1.0f;
    p.presence_penalty = p.frequency_penalty = 0.0f;
    sampler_ = std::make_unique<Sampler>(p, V);
  }
  for (int i = 0; i < req.k; ++i) {
    int32_t d;
    if (Greedy(req.sampling)) {
      d = Argmax(ctx_->Logits(0), V);
    } else {
      std::vector<TokenProb> q;
      sampler_->Distribution(ctx_->Logits(0), &q);
      d = sampler_->Draw(q);
      out->dists.push_back(std::move(q));
    }
    out->tokens.push_back(d);
    if (i + 1 == req.k) break;
    b.Clear();
    b.Add(d, 0, static_cast<int64_t>(cached_.size()), true);
    ctx_->Decode(b);
    cached_.push_back(d);
  }
}

void NgramDrafter::Propose(const DraftRequest& req, Draft* out) {
  out->tokens.clear();
  out->dists.clear();
  const auto& h = req.history;
  const size_t L = h.size();
  for (int n = max_n_; n >= min_n_; --n) {
    if (L < static_cast<size_t>(n) + 1) continue;
    const size_t pat = L - static_cast<size_t>(n);
    // Media rows appear as -1: a pattern through them says nothing about the text.
    if (std::find(h.begin() + static_cast<std::ptrdiff_t>(pat), h.end(), -1) != h.end()) continue;
    // The latest earlier occurrence of the last n tokens.
    for (size_t i = pat; i-- > 0;) {
      if (!std::equal(h.begin() + static_cast<std::ptrdiff_t>(i), h.begin() + static_cast<std::ptrdiff_t>(i) + n,
                      h.begin() + static_cast<std::ptrdiff_t>(pat))) {
        continue;
      }
      for (size_t j = i + static_cast<size_t>(n); j < L && out->tokens.size() < static_cast<size_t>(req.k); ++j) {
        if (h[j] < 0) break;
        out->tokens.push_back(h[j]);
      }
      if (!out->tokens.empty()) return;
    }
  }
}

// ---- the loop ----

SpeculativeGenerator::SpeculativeGenerator(Context& ctx, const Tokenizer& tok, Drafter& drafter,
                                           const SpeculativeOptions& opt, int seq, bool render_special)
    : ctx_(ctx), tok_(tok), drafter_(drafter), opt_(opt), seq_(seq), render_special_(render_special) {
  if (opt.draft_max < 1 || opt.draft_min < 1 || opt.draft_min > opt.draft_max) {
    Fail("draft sizes: need 1 <= draft-min <= draft-max (got %d, %d)", opt.draft_min, opt.draft_max);
  }
  if (drafter.needs_hidden() && !ctx.options().keep_hidden) {
    Fail("the %s drafter needs a context that keeps hidden states", drafter.name());
  }
  if (opt.draft_max + 1 > ctx.options().n_batch) {
    Fail("--draft-max %d needs a batch of at least %d", opt.draft_max, opt.draft_max + 1);
  }
}

GenerationResult SpeculativeGenerator::Generate(std::span<const int32_t> prompt, const SamplingParams& sampling,
                                                const StopCriteria& stop, const Generator::TokenCallback& on_token) {
  PromptPiece p;
  p.tokens.assign(prompt.begin(), prompt.end());
  return Generate(std::span<const PromptPiece>(&p, 1), sampling, stop, on_token);
}

GenerationResult SpeculativeGenerator::Generate(std::span<const PromptPiece> pieces, const SamplingParams& sampling,
                                                const StopCriteria& stop, const Generator::TokenCallback& on_token) {
  GenerationResult r;
  const int64_t V = ctx_.config().n_vocab, E = ctx_.config().n_embd;
  const PromptPlan plan(pieces, E);
  const int64_t n_ctx = ctx_.kv().options().n_ctx;
  // Token history for the drafters; embedding rows (images, audio) appear as -1.
  std::vector<int32_t> history;
  for (size_t i = 0; i < plan.size(); ++i) history.push_back(plan.token_at(i));
  if (!drafter_.reads_media() && std::find(history.begin(), history.end(), -1) != history.end()) {
    Fail("the %s drafter cannot follow a prompt with images or audio (use the assistant or n-gram drafting)",
         drafter_.name());
  }
  // Reuse the cached prefix (earlier turns of a conversation); the drafters follow the history
  // themselves (the draft model reuses its own cache the same way).
  stats_ = {};
  const double t0 = NowSeconds();
  const size_t common = EvaluatePrompt(ctx_, seq_, plan, &cached_keys_);
  cached_keys_.clear();  // set again at the end; empty if anything below throws
  Batch b;
  r.n_prompt = static_cast<int>(plan.size());
  r.n_prompt_evaluated = static_cast<int>(plan.size() - common);
  r.t_prompt = NowSeconds() - t0;
  const double t1 = NowSeconds();

  Sampler sampler(sampling, V);
  for (int32_t t : plan.TokenIds()) sampler.Accept(t);
  OutputStream out(tok_, stop.stop_strings, render_special_);
  std::vector<float> hidden;
  if (drafter_.needs_hidden()) hidden.assign(ctx_.Hidden(0), ctx_.Hidden(0) + E);
  int64_t n = static_cast<int64_t>(plan.size());  // positions in the cache

  bool done = false;
  // Emits one accepted token; returns false when generation ends with it.
  auto emit = [&](int32_t tok) {
    r.tokens.push_back(tok);
    ++stats_.generated;
    const bool eog = std::find(stop.eog_tokens.begin(), stop.eog_tokens.end(), tok) != stop.eog_tokens.end();
    if (eog && !stop.ignore_eos) {
      const std::string tail = out.EndOfGeneration(tok, stop.include_eog_text);
      r.text += tail;
      if (!tail.empty() && on_token) on_token(tok, tail);
      r.finish = FinishReason::kEndOfGeneration;
      return false;
    }
    const OutputStream::Step s = out.Push(tok);
    r.text += s.text;
    const bool keep = on_token ? on_token(tok, s.text) : true;
    if (s.stop_string) {
      r.finish = FinishReason::kStopString;
      return false;
    }
    if (!keep) {
      r.finish = FinishReason::kCancelled;
      return false;
    }
    if (stop.max_tokens >= 0 && static_cast<int>(r.tokens.size()) >= stop.max_tokens) {
      r.finish = FinishReason::kLength;
      return false;
    }
    return true;
  };

  if (stop.max_tokens == 0) {
    r.finish = FinishReason::kLength;
    done = true;
  }
  int32_t tok = -1;
  if (!done) {
    tok = sampler.Sample(ctx_.Logits(0));
    sampler.Accept(tok);
    history.push_back(tok);
    done = !emit(tok);
  }
  int k = std::clamp(opt_.draft_start, opt_.draft_min, opt_.draft_max);
  // Drafts that keep failing cost a draft and a wider verification per token for nothing. After a
  // draft of the smallest size with nothing accepted, drafting pauses for `pause` tokens; the pause
  // doubles (up to kMaxPause) each time the probe that follows fails too, and resets when a draft
  // is accepted. A useless drafter then costs about one probe every kMaxPause tokens.
  constexpr int kMaxPause = 64;
  int pause = 1, skip = 0;
  Draft draft;
  std::vector<TokenProb> p;
  while (!done) {
    if (n + 1 > n_ctx) {
      r.finish = FinishReason::kContextFull;
      break;
    }
    // Draft, within the room left in the context and the tokens still wanted.
    int want = k;
    want = static_cast<int>(std::min<int64_t>(want, n_ctx - n - 1));
    if (stop.max_tokens >= 0) want = std::min(want, stop.max_tokens - static_cast<int>(r.tokens.size()));
    DraftRequest req;
    req.history = history;
    req.bonus = tok;
    req.hidden = hidden.empty() ? nullptr : hidden.data();
    req.position = n;
    req.seq = seq_;
    req.k = skip > 0 ? 0 : std::max(0, want);
    if (skip > 0) --skip;
    req.sampling = &sampling;
    if (req.k > 0) {
      drafter_.Propose(req, &draft);
    } else {
      draft.tokens.clear();
      draft.dists.clear();
    }
    const int kd = static_cast<int>(draft.tokens.size());
    // Verify the bonus token and the drafts in one forward pass.
    b.Clear();
    b.Add(tok, seq_, n, true);
    for (int i = 0; i < kd; ++i) b.Add(draft.tokens[i], seq_, n + 1 + i, true);
    ctx_.Decode(b);
    ++stats_.target_forwards;
    stats_.drafted += kd;
    int n_acc = 0;
    int32_t next = -1;
    for (int j = 0; j <= kd; ++j) {
      const float* logits = ctx_.Logits(j);
      if (sampling.Greedy()) {
        const int32_t t = sampler.Sample(logits);
        if (j < kd && t == draft.tokens[j]) {
          ++n_acc;
          sampler.Accept(t);
          continue;
        }
        next = t;
        break;
      }
      sampler.Distribution(logits, &p);
      if (j == kd) {
        next = sampler.Draw(p);
        break;
      }
      static const std::vector<TokenProb> kPoint;
      const std::vector<TokenProb>& q = j < static_cast<int>(draft.dists.size()) ? draft.dists[j] : kPoint;
      const double u1 = sampler.Uniform(), u2 = sampler.Uniform();
      bool accepted = false;
      const int32_t t = SpeculativeAccept(p, q, draft.tokens[j], u1, u2, &accepted);
      if (accepted) {
        ++n_acc;
        sampler.Accept(t);
        continue;
      }
      next = t;
      break;
    }
    stats_.accepted += n_acc;
    drafter_.Accepted(n_acc);
    // The cache keeps the bonus token and the accepted drafts; the rejected ones are rolled back.
    ctx_.kv().Truncate(seq_, n + 1 + n_acc);
    if (!hidden.empty()) hidden.assign(ctx_.Hidden(n_acc), ctx_.Hidden(n_acc) + E);
    n += 1 + n_acc;
    for (int i = 0; i < n_acc && !done; ++i) {
      history.push_back(draft.tokens[i]);
      done = !emit(draft.tokens[i]);
    }
    if (done) break;
    sampler.Accept(next);
    history.push_back(next);
    tok = next;
    done = !emit(next);
    // Adapt the draft length: longer after a fully accepted draft, shorter after an early miss.
    if (kd > 0 && n_acc == kd) {
      k = std::min(opt_.draft_max, k + 1);
    } else if (kd > 0 && n_acc < kd / 2) {
      k = std::max(opt_.draft_min, k - 1);
    }
    if (kd > 0 && n_acc == 0 && kd <= opt_.draft_min) {
      skip = pause;
      pause = std::min(kMaxPause, pause * 2);
    } else if (n_acc > 0) {
      pause = 1;
    }
  }
  if (r.finish != FinishReason::kStopString && r.finish != FinishReason::kEndOfGeneration) {
    const std::string tail = out.Flush();
    if (!tail.empty()) {
      r.text += tail;
      if (on_token) on_token(-1, tail);
    }
  }
  // The cache holds n positions: the prompt, then history[plan.size(), n) (accepted drafts past a
  // stop are in the cache but not in the history: drop them so that the cache is the history).
  const int64_t keep = std::min<int64_t>(n, static_cast<int64_t>(history.size()));
  if (keep < n) {
    if (ctx_.kv().CanTruncate(seq_, keep)) {
      ctx_.kv().Truncate(seq_, keep);
    } else {
      ctx_.kv().Clear(seq_);
    }
  }
  if (ctx_.kv().SeqLen(seq_) == keep) {
    cached_keys_ = plan.keys();
    cached_keys_.resize(std::min(cached_keys_.size(), static_cast<size_t>(keep)));
    for (int64_t i = static_cast<int64_t>(plan.size()); i < keep; ++i) {
      cached_keys_.push_back(static_cast<uint64_t>(history[static_cast<size_t>(i)]));
    }
  }
  r.t_generate = NowSeconds() - t1;
  return r;
}

void SpeculativeGenerator::Reset() {
  ctx_.kv().Clear(seq_);
  cached_keys_.clear();
}

}  // namespace g4
