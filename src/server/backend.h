// The served model and what turns a parsed request into work for the scheduler: the prompt (chat
// template or raw text, media embedded and placed), the sampling, the stop conditions and the
// constraints (JSON output, forced tool calls), one RequestSpec per choice.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/chat.h"
#include "engine/context_overflow.h"
#include "engine/scheduler.h"
#include "model/model.h"
#include "multimodal/media.h"
#include "server/constraints.h"
#include "server/job.h"
#include "server/output.h"
#include "server/request.h"
#include "tokenizer/tokenizer.h"
#include "util/thread_pool.h"

namespace g4::server {

// What the model listings report (Ollama /api/tags, /api/show; OpenAI /v1/models).
struct ModelInfo {
  int64_t file_size = 0;
  int64_t modified = 0;      // Unix seconds
  std::string family;        // general.architecture
  std::string quantization;  // file type name, e.g. "Q8_0"
  int64_t n_params = 0;
};

struct BackendOptions {
  std::string name;         // the model's name in the APIs (file base name or --alias)
  ModelInfo info;
  SamplingParams sampling;  // defaults for what a request leaves unset (the seed is per request)
  bool thinking = false;    // thinking when a request does not say
  RequestLimits limits;
  mm::ImageOptions image;
  mm::AudioOptions audio;
  int media_threads = 0;    // threads that embed images and audio (0: one per core)
  ContextOverflow context_overflow = ContextOverflow::kError;  // --context-overflow: when a chat outgrows the context
  // Speculative decoding: the assistant or draft model the scheduler options' draft_mode names
  // (the backend keeps it alive for the scheduler).
  std::shared_ptr<const Model> draft_model;
};

// A request's generations, started.
struct Started {
  std::unique_ptr<Job> job;
  OutputSetup output;                              // how every choice's output is read
  std::vector<std::vector<int32_t>> prompt_tokens;  // per prompt (media as their placeholders)
  std::vector<std::string> prompt_texts;           // per prompt: the raw text (echo), or the rendered chat
  int n = 1;                                       // choices per prompt: choice i is prompt i / n
  bool thinking = false;
  FitResult context_fit;                           // chat: oldest turns dropped to fit the context
};

class Backend {
 public:
  Backend(std::unique_ptr<Model> model, std::unique_ptr<Tokenizer> tok, const SchedulerOptions& scheduler,
          BackendOptions options, std::unique_ptr<mm::MediaEncoder> media);
  ~Backend();

  // Builds everything and submits it. Throws ApiError (400 for what the request got wrong, 429 when
  // the queue is full, 503 while shutting down).
  Started Start(const GenRequest& r);

  // Whether `requested` names the served model: "" (clients that do not say), the name, or the name
  // with Ollama's ":latest" tag.
  bool Serves(const std::string& requested) const;

  Scheduler& scheduler() { return *scheduler_; }
  const Model& model() const { return *model_; }
  const Tokenizer& tok() const { return *tok_; }
  const ChatSetup& setup() const { return setup_; }
  const BackendOptions& options() const { return opt_; }
  bool has_media() const { return media_ != nullptr; }

 private:
  // The chat's prompt, made to fit the context by the request's overflow policy (*fit says what
  // was dropped); ApiError 400 "context_length_exceeded" naming the excess when it cannot.
  std::vector<int32_t> ChatPrompt(const GenRequest& r, bool thinking, std::string* text, chat::ParserState* state,
                                  FitResult* fit) const;
  std::vector<PromptPiece> WithMedia(const GenRequest& r, const std::vector<int32_t>& tokens);
  SamplingParams Sampling(const GenRequest& r) const;
  std::function<std::shared_ptr<TokenConstraint>()> Constraint(const GenRequest& r, bool thinking) const;

  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tok_;
  int64_t n_ctx_ = 0;  // context per request (slot)
  BackendOptions opt_;
  ChatSetup setup_;
  std::shared_ptr<const ConstraintVocab> vocab_;
  std::vector<int32_t> suppressed_;
  std::unique_ptr<mm::MediaEncoder> media_;
  std::unique_ptr<ThreadPool> media_pool_;  // one embedding at a time (a pool runs one job)
  std::mutex media_mu_;
  std::unique_ptr<Scheduler> scheduler_;
};

}  // namespace g4::server
