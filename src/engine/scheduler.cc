#include "engine/scheduler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/output_stream.h"
#include "engine/speculative.h"
#include "model/assistant.h"
#include "util/timer.h"

namespace g4 {

const char* DraftModeName(DraftMode m) {
  switch (m) {
    case DraftMode::kNone: return "none";
    case DraftMode::kAssistant: return "assistant";
    case DraftMode::kModel: return "model";
    case DraftMode::kNgram: return "ngram";
  }
  return "?";
}

namespace {
int32_t Argmax(const float* x, int64_t n) {
  int32_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (x[i] > x[best]) best = static_cast<int32_t>(i);
  }
  return best;
}
}  // namespace

// What the drafter needs across steps: the assistant's runner over the target's context, or the
// draft model's own context (one sequence per slot).
struct Scheduler::DraftState {
  std::unique_ptr<AssistantRunner> runner;
  std::unique_ptr<Context> ctx;
  NgramDrafter ngram;
  std::vector<float> logits, hidden, next;
};

struct Scheduler::Active {
  uint64_t id = 0;
  RequestSpec spec;
  std::unique_ptr<PromptPlan> plan;
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<OutputStream> out;
  size_t next_pos = 0;      // next prompt position to evaluate; == plan->size() once the prompt is in
  bool generating = false;  // the last sampled token waits to be decoded
  int32_t last_token = -1;
  RequestResult result;
  double t_submit = 0;
  bool first_token = true;
  // Speculative decoding.
  bool can_draft = false;
  std::vector<int32_t> history;  // prompt (-1 for embedding rows) and generated tokens
  std::vector<float> hidden;     // target hidden state that predicted last_token (assistant)
  int draft_k = 4;               // current draft length (adaptive)
  int draft_want = 0;            // drafts wanted this step
  Draft draft;                   // this step's drafts
};

struct Scheduler::Slot {
  int seq = 0;
  std::unique_ptr<Active> req;        // null when free
  std::vector<uint64_t> cached_keys;  // what the cache holds (kept when a request ends, for reuse)
  uint64_t last_used = 0;
  std::vector<int32_t> draft_cached;  // draft model: what its cache holds for this slot
};

Scheduler::Scheduler(const Model& model, const Tokenizer& tok, const SchedulerOptions& opt)
    : model_(model), tok_(tok), opt_(opt) {
  if (opt.n_slots <= 0 || opt.n_ctx <= 0 || opt.n_batch <= 0 || opt.max_queue < 0) {
    Fail("scheduler: slots, context and batch must be positive");
  }
  if (opt_.n_batch < opt_.n_slots) opt_.n_batch = opt_.n_slots;  // every slot can decode each step
  ContextOptions c;
  c.kv.n_seq = opt.n_slots;
  c.kv.n_ctx = opt.n_ctx;
  c.kv.type_k = opt.type_k;
  c.kv.type_v = opt.type_v;
  c.n_threads = opt.n_threads;
  c.math = opt.math;
  c.n_batch = opt_.n_batch;
  c.keep_hidden = opt.draft_mode == DraftMode::kAssistant;
  if (opt.draft_mode != DraftMode::kNone) {
    if (opt.draft_max < 1 || opt.draft_max > 64) Fail("--draft-max must be between 1 and 64 (got %d)", opt.draft_max);
    if (opt.draft_mode != DraftMode::kNgram && opt.draft_model == nullptr) {
      Fail("%s drafting needs a --draft file", DraftModeName(opt.draft_mode));
    }
  }
  ctx_ = std::make_unique<Context>(model, c);
  if (opt.draft_mode != DraftMode::kNone) {
    draft_ = std::make_unique<DraftState>();
    if (opt.draft_mode == DraftMode::kAssistant) {
      draft_->runner = std::make_unique<AssistantRunner>(*opt.draft_model, model, *ctx_);  // checks the pair
    } else if (opt.draft_mode == DraftMode::kModel) {
      const Model& d = *opt.draft_model;
      if (d.config().arch == Arch::kGemma4Assistant) {
        Fail("%s is an MTP assistant: draft with it in assistant mode", d.path().c_str());
      }
      if (d.config().n_vocab != model.config().n_vocab) {
        Fail("%s: the draft model's vocabulary has %lld tokens, the target's %lld; they must share a vocabulary",
             d.path().c_str(), (long long)d.config().n_vocab, (long long)model.config().n_vocab);
      }
      ContextOptions dc = c;
      dc.keep_hidden = false;
      dc.kv.type_k = dc.kv.type_v = opt.math == kernels::Math::kExact ? GgmlType::F32 : d.DefaultCacheType();
      draft_->ctx = std::make_unique<Context>(d, dc);
    }
    stats_.drafting = true;
  }
  for (int s = 0; s < opt.n_slots; ++s) {
    slots_.push_back(std::make_unique<Slot>());
    slots_.back()->seq = s;
  }
  stats_.n_slots = opt.n_slots;
  stats_.kv_capacity = opt.n_slots * opt.n_ctx;
  thread_ = std::thread([this] { Loop(); });
}

Scheduler::~Scheduler() {
  Shutdown(/*drain=*/false);
  if (thread_.joinable()) thread_.join();
}

uint64_t Scheduler::Submit(RequestSpec spec) {
  auto a = std::make_unique<Active>();
  a->spec = std::move(spec);
  a->plan = std::make_unique<PromptPlan>(a->spec.prompt, model_.config().n_embd);  // validates
  const int64_t n = static_cast<int64_t>(a->plan->size());
  if (n >= opt_.n_ctx) {
    Fail("the prompt has %lld tokens but a request's context holds %lld (at least one must be left to generate)",
         (long long)n, (long long)opt_.n_ctx);
  }
  a->t_submit = NowSeconds();
  std::unique_lock<std::mutex> lock(mu_);
  if (!accepting_) Fail("the server is shutting down");
  if (static_cast<int>(queue_.size()) >= opt_.max_queue) {
    throw QueueFullError(StrFormat("the queue is full (%d requests waiting)", static_cast<int>(queue_.size())));
  }
  a->id = next_id_++;
  a->result.id = a->id;
  const uint64_t id = a->id;
  stats_.prompt_positions += static_cast<uint64_t>(n);
  queue_.push_back(std::move(a));
  stats_.queued = static_cast<int>(queue_.size());
  cv_.notify_all();
  return id;
}

void Scheduler::Cancel(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_.insert(id);
  cv_.notify_all();
}

void Scheduler::Shutdown(bool drain) {
  std::unique_lock<std::mutex> lock(mu_);
  accepting_ = false;
  if (!drain) {
    stop_ = true;
  } else {
    draining_ = true;
  }
  cv_.notify_all();
  if (drain && thread_.joinable() && std::this_thread::get_id() != thread_.get_id()) {
    cv_.wait(lock, [&] { return stop_; });
  }
}

SchedulerStats Scheduler::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void Scheduler::Loop() {
  for (;;) {
    std::vector<std::unique_ptr<Active>> admitted, dropped;
    std::set<uint64_t> cancelled;
    bool stopping = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto idle = [&] {
        bool any = false;
        for (const auto& s : slots_) any |= s->req != nullptr;
        return !any && queue_.empty() && cancelled_.empty();
      };
      cv_.wait(lock, [&] { return stop_ || !idle() || (draining_ && idle()); });
      if (draining_ && idle()) {
        stop_ = true;
        cv_.notify_all();
      }
      stopping = stop_;
      cancelled.swap(cancelled_);
      // Queued requests that were cancelled never take a slot.
      for (auto it = queue_.begin(); it != queue_.end();) {
        if (stopping || cancelled.count((*it)->id)) {
          dropped.push_back(std::move(*it));
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
      int free_slots = 0;
      for (const auto& s : slots_) free_slots += s->req == nullptr;
      while (free_slots > 0 && !queue_.empty() && !stopping) {
        admitted.push_back(std::move(queue_.front()));
        queue_.pop_front();
        --free_slots;
      }
      stats_.queued = static_cast<int>(queue_.size());
    }
    for (auto& a : dropped) {
      a->result.finish = FinishReason::kCancelled;
      a->result.t_total = NowSeconds() - a->t_submit;
      if (a->spec.on_done) a->spec.on_done(a->result);
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.requests_cancelled;
    }
    for (auto& s : slots_) {
      if (s->req && (stopping || cancelled.count(s->req->id))) Finish(*s, FinishReason::kCancelled);
    }
    if (stopping) {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.active = 0;
      cv_.notify_all();
      return;
    }
    for (auto& a : admitted) Admit(std::move(a));
    bool any = false;
    for (const auto& s : slots_) any |= s->req != nullptr;
    if (any) Step();
  }
}

void Scheduler::Admit(std::unique_ptr<Active> a) {
  KvCache& kv = ctx_->kv();
  const PromptPlan& plan = *a->plan;
  // The free slot sharing the longest prefix with the prompt (least recently used among equals).
  Slot* best = nullptr;
  size_t best_len = 0;
  for (auto& s : slots_) {
    if (s->req) continue;
    const size_t len = plan.ReusablePrefix(s->cached_keys);
    if (!best || len > best_len || (len == best_len && s->last_used < best->last_used)) {
      best = s.get();
      best_len = len;
    }
  }
  G4_CHECK(best != nullptr);
  Slot& slot = *best;
  // Keep the reusable prefix if the cache can be cut back to it, else start over.
  if (best_len < slot.cached_keys.size()) {
    if (kv.CanTruncate(slot.seq, static_cast<int64_t>(best_len))) {
      kv.Truncate(slot.seq, static_cast<int64_t>(best_len));
      slot.cached_keys.resize(best_len);
    } else {
      kv.Clear(slot.seq);
      slot.cached_keys.clear();
      best_len = 0;
    }
  }
  // Another slot (busy or not) may hold a longer prefix: copy it rather than recompute it.
  for (auto& s : slots_) {
    if (s.get() == &slot) continue;
    const size_t len = plan.ReusablePrefix(s->cached_keys);
    if (len > best_len + 32 && len <= s->cached_keys.size() && kv.CanTruncate(s->seq, static_cast<int64_t>(len))) {
      kv.CopyPrefix(s->seq, slot.seq, static_cast<int64_t>(len));
      slot.cached_keys.assign(s->cached_keys.begin(), s->cached_keys.begin() + static_cast<std::ptrdiff_t>(len));
      best_len = len;
    }
  }
  a->next_pos = best_len;
  a->result.n_prompt = static_cast<int>(plan.size());
  a->result.n_cached = static_cast<int>(best_len);
  a->result.t_queue = NowSeconds() - a->t_submit;
  a->sampler = std::make_unique<Sampler>(a->spec.sampling, model_.config().n_vocab);
  for (int32_t t : plan.TokenIds()) a->sampler->Accept(t);
  a->out = std::make_unique<OutputStream>(tok_, a->spec.stop.stop_strings);
  if (draft_) {
    a->history.reserve(plan.size() + 64);
    bool media = false;
    for (size_t i = 0; i < plan.size(); ++i) {
      a->history.push_back(plan.token_at(i));
      media |= a->history.back() < 0;
    }
    // Constrained output is decoded one token at a time (the constraint would have to judge every
    // draft); a separate draft model cannot read images or audio.
    a->can_draft = !a->spec.constraint && !(media && opt_.draft_mode == DraftMode::kModel);
    a->draft_k = std::min(4, opt_.draft_max);
  }
  slot.req = std::move(a);
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.requests_started;
  stats_.prompt_evaluated += plan.size() - best_len;
}

void Scheduler::Step() {
  Batch b;
  int32_t group = 1;
  // Drafts of the generating requests, within the batch left after one token each.
  int n_generating = 0;
  for (auto& s : slots_) n_generating += s->req && s->req->generating;
  if (draft_ && n_generating > 0) Propose(opt_.n_batch - n_generating);
  // The bonus token and the drafts of every generating request.
  for (auto& s : slots_) {
    Active* a = s->req.get();
    if (!a || !a->generating) continue;
    const auto pos = static_cast<int64_t>(s->cached_keys.size());
    b.Add(a->last_token, s->seq, pos, true);
    for (size_t i = 0; i < a->draft.tokens.size(); ++i) b.Add(a->draft.tokens[i], s->seq, pos + 1 + static_cast<int64_t>(i), true);
  }
  // Then prompt chunks, round-robin so that every waiting prompt advances.
  int64_t budget = opt_.n_batch - b.size();
  std::vector<std::pair<Slot*, size_t>> chunks;  // slot, positions added
  for (size_t k = 0; k < slots_.size() && budget > 0; ++k) {
    Slot& s = *slots_[(rr_ + k) % slots_.size()];
    Active* a = s.req.get();
    if (!a || a->generating || a->next_pos >= a->plan->size()) continue;
    size_t n = 0;
    try {
      n = a->plan->AddToBatch(b, s.seq, a->next_pos, budget, opt_.n_batch, &group);
    } catch (const Error& e) {
      Finish(s, FinishReason::kCancelled, e.what());
      continue;
    }
    if (n == 0) continue;  // an image that needs a fresh batch: next step
    chunks.push_back({&s, n});
    budget -= static_cast<int64_t>(n);
  }
  rr_ = (rr_ + 1) % slots_.size();
  if (b.empty()) return;
  const double t0 = NowSeconds();
  try {
    ctx_->Decode(b);
  } catch (const Error& e) {
    // Nothing the requests could have caused reaches here (they are validated), but never take the
    // server down: fail the requests of this batch and start their slots afresh.
    for (auto& s : slots_) {
      if (!s->req) continue;
      ctx_->kv().Clear(s->seq);
      s->cached_keys.clear();
      Finish(*s, FinishReason::kCancelled, e.what());
    }
    return;
  }
  const double dt = NowSeconds() - t0;
  // Record what the cache now holds.
  for (auto& s : slots_) {
    Active* a = s->req.get();
    if (a && a->generating) s->cached_keys.push_back(static_cast<uint64_t>(a->last_token));
  }
  for (auto& [slot, n] : chunks) {
    Active* a = slot->req.get();
    for (size_t p = a->next_pos; p < a->next_pos + n; ++p) slot->cached_keys.push_back(a->plan->keys()[p]);
    a->next_pos += n;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.forward_steps;
    stats_.busy_seconds += dt;
  }
  // Sample for every output, in batch order: a generating request's bonus token and drafts are
  // verified together; a prompt's last position gives the first token.
  int k = 0;
  for (int i = 0; i < b.size(); ++i) {
    if (!b.output[i]) continue;
    Slot& s = *slots_[static_cast<size_t>(b.seq[i])];
    if (s.req && s.req->generating) {
      const int nd = static_cast<int>(s.req->draft.tokens.size());
      Verify(s, k, nd);
      i += nd;
      k += nd + 1;
      continue;
    }
    if (s.req) SampleAndEmit(s, k);
    ++k;
  }
  std::lock_guard<std::mutex> lock(mu_);
  int active = 0;
  int64_t positions = 0;
  for (const auto& s : slots_) {
    active += s->req != nullptr;
    positions += ctx_->kv().SeqLen(s->seq);
  }
  stats_.active = active;
  stats_.kv_positions = positions;
  stats_.kv_bytes = ctx_->kv().BytesAllocated();
}

namespace {

// Log-softmax of the logits: the chosen token's logprob and the k most likely tokens.
void Logprobs(const float* logits, int64_t n, int32_t chosen, int k, TokenEvent* ev) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, logits[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i] - mx));
  const double lse = mx + std::log(sum);
  ev->logprob = static_cast<float>(logits[chosen] - lse);
  if (k <= 0) return;
  std::vector<int32_t> idx(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) idx[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  const size_t kk = std::min<size_t>(static_cast<size_t>(k), idx.size());
  std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(kk), idx.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  for (size_t j = 0; j < kk; ++j) ev->top.push_back({idx[j], static_cast<float>(logits[idx[j]] - lse)});
}

bool IsEog(const StopCriteria& stop, int32_t tok) {
  return std::find(stop.eog_tokens.begin(), stop.eog_tokens.end(), tok) != stop.eog_tokens.end();
}

}  // namespace

void Scheduler::Propose(int64_t budget) {
  std::vector<Slot*> drafting;
  for (auto& sp : slots_) {
    Active* a = sp->req.get();
    if (!a || !a->generating) continue;
    a->draft.tokens.clear();
    a->draft.dists.clear();
    a->draft_want = 0;
    if (!a->can_draft) continue;
    // Within the room left in the slot's context, the tokens still wanted (the target adds one
    // token of its own) and the batch.
    const auto pos = static_cast<int64_t>(sp->cached_keys.size());
    int64_t want = std::min<int64_t>(a->draft_k, opt_.n_ctx - pos - 1);
    if (a->spec.stop.max_tokens >= 0) {
      want = std::min<int64_t>(want, a->spec.stop.max_tokens - static_cast<int64_t>(a->result.tokens.size()) - 1);
    }
    want = std::min(want, budget);
    if (want <= 0) continue;
    budget -= want;
    a->draft_want = static_cast<int>(want);
    drafting.push_back(sp.get());
  }
  if (drafting.empty()) return;
  try {
    switch (opt_.draft_mode) {
      case DraftMode::kNgram:
        for (Slot* sp : drafting) {
          Active& a = *sp->req;
          DraftRequest req;
          req.history = a.history;
          req.bonus = a.last_token;
          req.position = static_cast<int64_t>(sp->cached_keys.size());
          req.seq = sp->seq;
          req.k = a.draft_want;
          draft_->ngram.Propose(req, &a.draft);
        }
        break;
      case DraftMode::kAssistant:
        ProposeWithAssistant(drafting);
        break;
      case DraftMode::kModel:
        ProposeWithModel(drafting);
        break;
      case DraftMode::kNone:
        break;
    }
  } catch (const Error&) {
    // Drafting is only ever an optimisation: without drafts every request still advances.
    for (Slot* sp : drafting) {
      sp->req->draft.tokens.clear();
      if (draft_->ctx) {
        draft_->ctx->kv().Clear(sp->seq);
        sp->draft_cached.clear();
      }
    }
  }
  for (Slot* sp : drafting) {
    auto& t = sp->req->draft.tokens;
    if (static_cast<int>(t.size()) > sp->req->draft_want) t.resize(static_cast<size_t>(sp->req->draft_want));
  }
}

// The assistant drafts for all requests at once: step i runs one query per request that wants more
// than i drafts, every step at the bonus token's position (llama.cpp's convention, see
// model/assistant.h), reading each request's sequence of the target's cache.
void Scheduler::ProposeWithAssistant(const std::vector<Slot*>& slots) {
  DraftState& d = *draft_;
  const int64_t V = d.runner->n_vocab(), E = d.runner->n_embd_target();
  const size_t n = slots.size();
  std::vector<int32_t> tok(n), seq(n);
  std::vector<int64_t> pos(n);
  std::vector<float> hid(n * static_cast<size_t>(E));
  for (size_t i = 0; i < n; ++i) {
    Active& a = *slots[i]->req;
    G4_CHECK(static_cast<int64_t>(a.hidden.size()) == E);
    tok[i] = a.last_token;
    seq[i] = slots[i]->seq;
    pos[i] = static_cast<int64_t>(slots[i]->cached_keys.size());
    std::copy(a.hidden.begin(), a.hidden.end(), hid.begin() + static_cast<std::ptrdiff_t>(i * static_cast<size_t>(E)));
  }
  std::vector<int32_t> t_in, s_in;
  std::vector<int64_t> p_in;
  std::vector<size_t> who;
  for (int step = 0;; ++step) {
    t_in.clear();
    s_in.clear();
    p_in.clear();
    who.clear();
    d.hidden.clear();
    for (size_t i = 0; i < n; ++i) {
      if (slots[i]->req->draft_want <= step) continue;
      who.push_back(i);
      t_in.push_back(tok[i]);
      s_in.push_back(seq[i]);
      p_in.push_back(pos[i]);
      d.hidden.insert(d.hidden.end(), hid.begin() + static_cast<std::ptrdiff_t>(i * static_cast<size_t>(E)),
                      hid.begin() + static_cast<std::ptrdiff_t>((i + 1) * static_cast<size_t>(E)));
    }
    if (who.empty()) break;
    const int m = static_cast<int>(who.size());
    d.logits.resize(static_cast<size_t>(m * V));
    d.next.resize(static_cast<size_t>(m * E));
    d.runner->Step(m, t_in.data(), d.hidden.data(), s_in.data(), p_in.data(), d.logits.data(), d.next.data());
    for (int j = 0; j < m; ++j) {
      const size_t i = who[static_cast<size_t>(j)];
      const int32_t t = Argmax(d.logits.data() + static_cast<size_t>(j) * static_cast<size_t>(V), V);
      slots[i]->req->draft.tokens.push_back(t);
      tok[i] = t;
      std::copy(d.next.begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(j) * static_cast<size_t>(E)),
                d.next.begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(j + 1) * static_cast<size_t>(E)),
                hid.begin() + static_cast<std::ptrdiff_t>(i * static_cast<size_t>(E)));
    }
  }
}

// The draft model keeps one sequence per slot in its own context: each is brought to its request's
// history (reusing what it already holds), then all requests draft together, one batch per token.
void Scheduler::ProposeWithModel(const std::vector<Slot*>& slots) {
  Context& dc = *draft_->ctx;
  KvCache& kv = dc.kv();
  const int64_t V = dc.config().n_vocab;
  const size_t n = slots.size();
  std::vector<size_t> next(n);
  for (size_t i = 0; i < n; ++i) {
    Slot& s = *slots[i];
    const auto& h = s.req->history;
    size_t common = 0;
    while (common < s.draft_cached.size() && common < h.size() && s.draft_cached[common] == h[common]) ++common;
    if (common == h.size()) --common;  // the last token is run again for its logits
    if (common < s.draft_cached.size()) {
      if (kv.CanTruncate(s.seq, static_cast<int64_t>(common))) {
        kv.Truncate(s.seq, static_cast<int64_t>(common));
        s.draft_cached.resize(common);
      } else {
        kv.Clear(s.seq);
        s.draft_cached.clear();
        common = 0;
      }
    }
    next[i] = common;
  }
  Batch b;
  std::vector<size_t> out_slot;
  auto decode = [&] {
    dc.Decode(b);
    for (size_t k = 0; k < out_slot.size(); ++k) {
      Active& a = *slots[out_slot[k]]->req;
      a.draft.tokens.push_back(Argmax(dc.Logits(static_cast<int>(k)), V));
    }
  };
  // Catch up with the histories (prompts in chunks of n_batch).
  for (;;) {
    b.Clear();
    out_slot.clear();
    int64_t budget = dc.options().n_batch;
    for (size_t i = 0; i < n && budget > 0; ++i) {
      Slot& s = *slots[i];
      const auto& h = s.req->history;
      while (next[i] < h.size() && budget > 0) {
        const bool last = next[i] + 1 == h.size();
        b.Add(h[next[i]], s.seq, static_cast<int64_t>(next[i]), last);
        if (last) out_slot.push_back(i);
        s.draft_cached.push_back(h[next[i]]);
        ++next[i];
        --budget;
      }
    }
    if (b.empty()) break;
    decode();
  }
  // Then one token per step for every request that wants more.
  for (;;) {
    b.Clear();
    out_slot.clear();
    for (size_t i = 0; i < n; ++i) {
      Slot& s = *slots[i];
      Active& a = *s.req;
      if (static_cast<int>(a.draft.tokens.size()) >= a.draft_want) continue;
      const int32_t t = a.draft.tokens.back();
      b.Add(t, s.seq, static_cast<int64_t>(s.draft_cached.size()), true);
      s.draft_cached.push_back(t);
      out_slot.push_back(i);
    }
    if (b.empty()) break;
    decode();
  }
}

int32_t Scheduler::Choose(Slot& s, const float* logits) {
  Active& a = *s.req;
  const int64_t V = model_.config().n_vocab;
  const StopCriteria& stop = a.spec.stop;
  TokenConstraint* c = a.spec.constraint.get();
  if (!c) return a.sampler->Sample(logits);
  // Draw, and reject tokens the constraint does not allow; after a few rejections mask every
  // disallowed token at once.
  std::vector<float> work(logits, logits + V);
  auto allowed = [&](int32_t t) {
    if (IsEog(stop, t)) return c->Complete();
    return c->Allows(tok_.TokenBytes(t, true));
  };
  for (int attempt = 0; attempt < 16; ++attempt) {
    const int32_t t = a.sampler->Sample(work.data());
    if (allowed(t)) return t;
    work[static_cast<size_t>(t)] = -std::numeric_limits<float>::infinity();
  }
  bool any = false;
  for (int64_t t = 0; t < V; ++t) {
    if (!std::isfinite(work[static_cast<size_t>(t)])) continue;
    if (allowed(static_cast<int32_t>(t))) {
      any = true;
    } else {
      work[static_cast<size_t>(t)] = -std::numeric_limits<float>::infinity();
    }
  }
  if (!any) {
    Finish(s, FinishReason::kStopString, "constrained decoding: no token can continue the output");
    return -1;
  }
  return a.sampler->Sample(work.data());
}

void Scheduler::SampleAndEmit(Slot& s, int output_index) {
  const float* logits = ctx_->Logits(output_index);
  const int32_t tok = Choose(s, logits);
  if (tok < 0) return;
  Active& a = *s.req;
  if (draft_ && opt_.draft_mode == DraftMode::kAssistant) {
    const float* h = ctx_->Hidden(output_index);
    a.hidden.assign(h, h + model_.config().n_embd);
  }
  a.sampler->Accept(tok);
  Emit(s, tok, logits, static_cast<int64_t>(s.cached_keys.size()));
}

void Scheduler::Verify(Slot& s, int first, int nd) {
  Active& a = *s.req;
  const auto P = static_cast<int64_t>(s.cached_keys.size()) - 1;  // the bonus token's position
  const std::vector<int32_t> drafts = std::move(a.draft.tokens);
  a.draft.tokens.clear();
  // The longest prefix of the drafts the target accepts, then the target's own next token. At each
  // draft's row the target draws its token exactly as it would without drafting (greedy: the argmax)
  // and keeps the draft when the two agree. For a sampled request this IS speculative rejection
  // sampling against the deterministic draft (a point mass q at d: keep d with probability
  // min(1, p(d)/q(d)) = p(d), else draw from norm(max(0, p - q)) = p without d), done with the very
  // random numbers plain decoding uses: one draw per token delivered, whatever the number of drafts.
  // So a seeded request gives the same tokens with or without drafting, and however many drafts the
  // other requests in the batch leave it room for.
  int n_acc = 0;
  int32_t next = -1;
  for (int j = 0; j < nd; ++j) {
    const int32_t d = drafts[static_cast<size_t>(j)];
    const int32_t t = a.sampler->Sample(ctx_->Logits(first + j));
    if (opt_.test_keep_draft ? !opt_.test_keep_draft(d, t) : t != d) {
      next = t;
      break;
    }
    a.sampler->Accept(d);
    ++n_acc;
  }
  if (nd > 0) {
    // The cache keeps the bonus token and the accepted drafts; the rejected ones are rolled back.
    ctx_->kv().Truncate(s.seq, P + 1 + n_acc);
    for (int i = 0; i < n_acc; ++i) s.cached_keys.push_back(static_cast<uint64_t>(drafts[static_cast<size_t>(i)]));
    if (n_acc == nd) {
      a.draft_k = std::min(opt_.draft_max, a.draft_k + 1);
    } else if (n_acc < nd / 2) {
      a.draft_k = std::max(1, a.draft_k - 1);
    }
  }
  a.result.n_drafted += nd;
  a.result.n_draft_accepted += n_acc;
  ++a.result.n_target_forwards;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.draft_tokens += static_cast<uint64_t>(nd);
    stats_.draft_accepted += static_cast<uint64_t>(n_acc);
    ++stats_.decode_steps;
    stats_.decode_tokens += static_cast<uint64_t>(n_acc) + 1;
  }
  const float* next_logits = ctx_->Logits(first + n_acc);
  if (next < 0) {
    // Every draft accepted (or none proposed): the target's token after the last one.
    next = Choose(s, next_logits);
    if (next < 0) return;
  }
  if (opt_.draft_mode == DraftMode::kAssistant) {
    const float* h = ctx_->Hidden(first + n_acc);
    a.hidden.assign(h, h + model_.config().n_embd);
  }
  for (int i = 0; i < n_acc; ++i) {
    if (!Emit(s, drafts[static_cast<size_t>(i)], ctx_->Logits(first + i), P + 1 + i)) return;
  }
  a.sampler->Accept(next);
  Emit(s, next, next_logits, P + 1 + n_acc);
}

bool Scheduler::Emit(Slot& s, int32_t tok, const float* logits, int64_t pos) {
  Active& a = *s.req;
  const int64_t V = model_.config().n_vocab;
  const StopCriteria& stop = a.spec.stop;
  TokenConstraint* c = a.spec.constraint.get();
  const double now = NowSeconds();
  if (a.first_token) {
    a.first_token = false;
    a.result.t_first_token = now - a.t_submit;
    std::lock_guard<std::mutex> lock(mu_);
    stats_.first_token_seconds_sum += a.result.t_first_token;
    ++stats_.first_token_count;
  }
  a.result.tokens.push_back(tok);
  if (draft_) a.history.push_back(tok);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.generated_tokens;
  }
  TokenEvent ev;
  ev.token = tok;
  if (a.spec.top_logprobs >= 0) Logprobs(logits, V, tok, a.spec.top_logprobs, &ev);
  if (IsEog(stop, tok) && !stop.ignore_eos) {
    ev.text = a.out->EndOfGeneration(tok, stop.include_eog_text);
    a.result.text += ev.text;
    if (a.spec.on_token) a.spec.on_token(ev);
    Finish(s, FinishReason::kEndOfGeneration);
    return false;
  }
  if (c) c->Accept(tok_.TokenBytes(tok, true));
  const OutputStream::Step step = a.out->Push(tok);
  ev.text = step.text;
  a.result.text += ev.text;
  const bool keep = a.spec.on_token ? a.spec.on_token(ev) : true;
  if (step.stop_string || (c && c->MustEnd())) {
    Finish(s, FinishReason::kStopString);
  } else if (!keep) {
    Finish(s, FinishReason::kCancelled);
  } else if (stop.max_tokens >= 0 && static_cast<int>(a.result.tokens.size()) >= stop.max_tokens) {
    Finish(s, FinishReason::kLength);
  } else if (pos + 1 > opt_.n_ctx) {
    Finish(s, FinishReason::kContextFull);
  } else {
    a.generating = true;
    a.last_token = tok;
    return true;
  }
  return false;
}

void Scheduler::Finish(Slot& s, FinishReason reason, const std::string& error) {
  std::unique_ptr<Active> a = std::move(s.req);
  if (!a) return;
  if (reason != FinishReason::kEndOfGeneration && reason != FinishReason::kStopString && a->out) {
    const std::string tail = a->out->Flush();
    if (!tail.empty()) {
      a->result.text += tail;
      TokenEvent ev;
      ev.text = tail;
      if (a->spec.on_token) a->spec.on_token(ev);
    }
  }
  a->result.finish = reason;
  a->result.error = error;
  a->result.t_total = NowSeconds() - a->t_submit;
  // The slot keeps its cache (prompt chunks never end inside an image, so it is consistent) for the
  // next request that shares its prefix.
  s.last_used = ++use_clock_;
  {
    // Statistics first: whoever is woken by on_done sees them up to date.
    std::lock_guard<std::mutex> lock(mu_);
    if (!error.empty()) {
      ++stats_.requests_failed;
    } else if (reason == FinishReason::kCancelled) {
      ++stats_.requests_cancelled;
    } else {
      ++stats_.requests_finished;
    }
    int active = 0;
    for (const auto& slot : slots_) active += slot->req != nullptr;
    stats_.active = active;
  }
  if (a->spec.on_done) a->spec.on_done(a->result);
}

}  // namespace g4
