#include "engine/scheduler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/output_stream.h"
#include "util/timer.h"

namespace g4 {

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
};

struct Scheduler::Slot {
  int seq = 0;
  std::unique_ptr<Active> req;        // null when free
  std::vector<uint64_t> cached_keys;  // what the cache holds (kept when a request ends, for reuse)
  uint64_t last_used = 0;
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
  ctx_ = std::make_unique<Context>(model, c);
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
  slot.req = std::move(a);
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.requests_started;
  stats_.prompt_evaluated += plan.size() - best_len;
}

void Scheduler::Step() {
  Batch b;
  int32_t group = 1;
  // One token for every generating request.
  for (auto& s : slots_) {
    Active* a = s->req.get();
    if (a && a->generating) b.Add(a->last_token, s->seq, static_cast<int64_t>(s->cached_keys.size()), true);
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
  // Sample for every output, in batch order.
  int k = 0;
  for (int i = 0; i < b.size(); ++i) {
    if (!b.output[i]) continue;
    Slot& s = *slots_[static_cast<size_t>(b.seq[i])];
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

void Scheduler::SampleAndEmit(Slot& s, int output_index) {
  Active& a = *s.req;
  const float* logits = ctx_->Logits(output_index);
  const int64_t V = model_.config().n_vocab;
  const StopCriteria& stop = a.spec.stop;
  TokenConstraint* c = a.spec.constraint.get();
  int32_t tok;
  if (!c) {
    tok = a.sampler->Sample(logits);
  } else {
    // Draw, and reject tokens the constraint does not allow; after a few rejections mask every
    // disallowed token at once.
    std::vector<float> work(logits, logits + V);
    auto allowed = [&](int32_t t) {
      if (IsEog(stop, t)) return c->Complete();
      return c->Allows(tok_.TokenBytes(t, true));
    };
    tok = -1;
    for (int attempt = 0; attempt < 16 && tok < 0; ++attempt) {
      const int32_t t = a.sampler->Sample(work.data());
      if (allowed(t)) {
        tok = t;
      } else {
        work[static_cast<size_t>(t)] = -std::numeric_limits<float>::infinity();
      }
    }
    if (tok < 0) {
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
        return;
      }
      tok = a.sampler->Sample(work.data());
    }
  }
  const double now = NowSeconds();
  if (a.first_token) {
    a.first_token = false;
    a.result.t_first_token = now - a.t_submit;
    std::lock_guard<std::mutex> lock(mu_);
    stats_.first_token_seconds_sum += a.result.t_first_token;
    ++stats_.first_token_count;
  }
  a.sampler->Accept(tok);
  a.result.tokens.push_back(tok);
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
    return;
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
  } else if (static_cast<int64_t>(s.cached_keys.size()) + 1 > opt_.n_ctx) {
    Finish(s, FinishReason::kContextFull);
  } else {
    a.generating = true;
    a.last_token = tok;
  }
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
