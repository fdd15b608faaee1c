// The scheduler shares one model among many requests (the server's engine). It owns a Context with
// one KV-cache sequence per slot and runs a loop on its own thread:
//
//   * continuous batching: every step decodes one token of every generating request and, in the same
//     forward pass, a chunk of the prompts still being read (chunked prefill), so a long prompt never
//     stalls the others;
//   * prefix caching: a new request goes to the free slot whose cache shares the longest prefix with
//     its prompt (a system prompt, earlier turns), or copies that prefix from another slot, and only
//     the rest of the prompt is evaluated;
//   * a bounded queue: Submit() refuses work when the queue is full, so memory stays bounded;
//   * cancellation: a cancelled request (a client that went away) frees its slot at the next step;
//   * speculative decoding (optional, SchedulerOptions::draft_mode): every generating request gets
//     drafts (prompt n-grams from its own history, the MTP assistant from the target's cache and
//     hidden state, or a draft model with one sequence per slot in its own context), and the bonus
//     token plus the drafts of ALL generating requests are verified in the same single forward pass
//     (with the prompt chunks). Each request keeps its longest accepted prefix plus the target's
//     next token and rolls its cache back (KvCache::Truncate). The target draws its token at each
//     draft's row as it would without drafting and keeps the draft when they agree (for sampled
//     requests, speculative rejection sampling against the deterministic draft), so every request,
//     greedy or seeded, gets exactly the tokens it gets without drafting. Requests with a
//     constraint (JSON output, forced tool calls) are decoded one token per step; so is a request
//     with images or audio when the drafter is a separate model (it cannot read the target's
//     embeddings).
//
// Results are delivered through callbacks that run on the scheduler thread; they must be quick (hand
// the data to another thread) and must not call back into the scheduler except Cancel().
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/generator.h"
#include "engine/prompt.h"
#include "model/context.h"
#include "sampling/sampler.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace g4 {

enum class DraftMode { kNone, kAssistant, kModel, kNgram };
const char* DraftModeName(DraftMode m);

struct SchedulerOptions {
  int n_slots = 4;              // requests decoded together
  int64_t n_ctx = 4096;         // positions per slot
  int64_t n_batch = 512;        // positions per forward step (decode tokens + prefill chunks)
  int max_queue = 64;           // requests waiting for a slot before Submit refuses
  int n_threads = 0;
  kernels::Math math = kernels::Math::kFast;
  GgmlType type_k = GgmlType::F16;
  GgmlType type_v = GgmlType::F16;
  // Speculative decoding. draft_model is the MTP assistant (kAssistant) or the draft model (kModel)
  // and must outlive the scheduler; kNgram needs none.
  DraftMode draft_mode = DraftMode::kNone;
  const Model* draft_model = nullptr;
  int draft_max = 8;  // most drafted tokens per request and step (adapts to the acceptance rate)
  // Tests only: decides whether a request keeps a draft, given the draft and the token the target
  // drew at its row (null: when they are equal). Lets the statistical tests show that they detect a
  // wrong acceptance rule.
  std::function<bool(int32_t draft, int32_t drawn)> test_keep_draft;
};

// Constrained decoding (JSON output, forced tool calls): decides which tokens may come next.
class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  // May the output continue with this text (the bytes of one token)?
  virtual bool Allows(std::string_view text) const = 0;
  virtual void Accept(std::string_view text) = 0;
  // The output is complete here (an end-of-generation token is allowed).
  virtual bool Complete() const = 0;
  // Nothing but the end may follow (generation stops without sampling an end token).
  virtual bool MustEnd() const = 0;
};

struct TokenLogprob {
  int32_t token;
  float logprob;
};

struct TokenEvent {
  int32_t token = -1;             // -1: trailing text released at the end
  std::string text;               // text that became final with this token
  float logprob = 0;              // log-probability of the token under the model (if requested)
  std::vector<TokenLogprob> top;  // the most likely tokens at this step (if requested)
};

struct RequestResult {
  uint64_t id = 0;
  std::vector<int32_t> tokens;
  std::string text;
  FinishReason finish = FinishReason::kLength;
  std::string error;          // non-empty: the request failed
  int n_prompt = 0;           // prompt positions
  int n_cached = 0;           // of which came from the cache (prefix caching)
  int n_drafted = 0;          // speculative decoding: tokens drafted for this request
  int n_draft_accepted = 0;   // of which the target accepted
  int n_target_forwards = 0;  // forward passes that decoded this request after its prompt
  double t_queue = 0;         // seconds waiting for a slot
  double t_first_token = 0;   // seconds from submission to the first generated token
  double t_total = 0;         // seconds from submission to the end
};

struct RequestSpec {
  std::vector<PromptPiece> prompt;
  SamplingParams sampling;
  StopCriteria stop;
  int top_logprobs = -1;  // -1: none; k >= 0: each token's logprob plus the k most likely tokens
  std::shared_ptr<TokenConstraint> constraint;
  std::function<bool(const TokenEvent&)> on_token;    // false: cancel the request
  std::function<void(const RequestResult&)> on_done;  // called exactly once
};

// Submit() on a full queue.
class QueueFullError : public Error {
 public:
  using Error::Error;
};

struct SchedulerStats {
  int n_slots = 0;
  int active = 0;
  int queued = 0;
  uint64_t requests_started = 0;
  uint64_t requests_finished = 0;
  uint64_t requests_cancelled = 0;
  uint64_t requests_failed = 0;
  uint64_t prompt_positions = 0;     // prompt positions submitted
  uint64_t prompt_evaluated = 0;     // of which evaluated (the rest came from the cache)
  uint64_t generated_tokens = 0;
  uint64_t forward_steps = 0;
  double busy_seconds = 0;           // time spent in forward passes
  // Speculative decoding (zero without it). decode_steps counts (request, forward pass) pairs that
  // decoded a generating request and decode_tokens the tokens they produced (1 + accepted drafts),
  // so decode_tokens / decode_steps is the tokens per target forward of a request (1 without drafts).
  bool drafting = false;
  uint64_t draft_tokens = 0;
  uint64_t draft_accepted = 0;
  uint64_t decode_steps = 0;
  uint64_t decode_tokens = 0;
  double first_token_seconds_sum = 0;
  uint64_t first_token_count = 0;
  int64_t kv_positions = 0;          // positions held in all slots' caches
  uint64_t kv_bytes = 0;             // KV cache memory allocated
  int64_t kv_capacity = 0;           // n_slots * n_ctx
};

class Scheduler {
 public:
  Scheduler(const Model& model, const Tokenizer& tok, const SchedulerOptions& opt);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a request and returns its id. Throws QueueFullError when the queue is full, and g4::Error
  // when the request can never run (its prompt does not fit in a slot: the message says how many
  // positions it has and how many fit) or the scheduler is shutting down.
  uint64_t Submit(RequestSpec spec);
  // Cancels a queued or running request (its on_done reports kCancelled). Thread-safe; unknown ids
  // are ignored.
  void Cancel(uint64_t id);
  // Stops accepting requests. drain: let queued and running requests finish; otherwise cancel them.
  // Returns when the loop has nothing left.
  void Shutdown(bool drain);

  SchedulerStats Stats() const;
  const SchedulerOptions& options() const { return opt_; }
  const Model& model() const { return model_; }
  const Tokenizer& tokenizer() const { return tok_; }

 private:
  struct Active;
  struct Slot;
  struct DraftState;
  void Loop();
  void Admit(std::unique_ptr<Active> req);
  void Step();
  // Proposes the drafts of every generating request (writes Active::draft) within `budget` extra
  // batch positions.
  void Propose(int64_t budget);
  void ProposeWithModel(const std::vector<Slot*>& slots);
  void ProposeWithAssistant(const std::vector<Slot*>& slots);
  // The first token after the prompt.
  void SampleAndEmit(Slot& slot, int output_index);
  // A generating request's bonus token and drafts, decoded at outputs [first, first + drafts].
  void Verify(Slot& slot, int first, int n_draft);
  // The next token from these logits, under the request's constraint; -1 when the request ended.
  int32_t Choose(Slot& slot, const float* logits);
  // Delivers a chosen (and already Accept()ed) token that will take position `pos`. Returns false
  // when the request has ended.
  bool Emit(Slot& slot, int32_t tok, const float* logits, int64_t pos);
  void Finish(Slot& slot, FinishReason reason, const std::string& error = "");

  const Model& model_;
  const Tokenizer& tok_;
  SchedulerOptions opt_;
  std::unique_ptr<Context> ctx_;
  std::unique_ptr<DraftState> draft_;
  std::vector<std::unique_ptr<Slot>> slots_;
  size_t rr_ = 0;           // round-robin start for prefill chunks
  uint64_t use_clock_ = 0;  // orders slots by last use

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Active>> queue_;
  std::set<uint64_t> cancelled_;
  uint64_t next_id_ = 1;
  bool accepting_ = true;
  bool stop_ = false;
  bool draining_ = false;
  SchedulerStats stats_;
  std::thread thread_;
};

}  // namespace g4
