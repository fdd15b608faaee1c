#include "server/backend.h"

#include <cmath>
#include <limits>
#include <random>

#include "chat/render.h"
#include "engine/generator.h"

namespace g4::server {

Backend::Backend(std::unique_ptr<Model> model, std::unique_ptr<Tokenizer> tok, const SchedulerOptions& scheduler,
                 BackendOptions options, std::unique_ptr<mm::MediaEncoder> media)
    : model_(std::move(model)), tok_(std::move(tok)), n_ctx_(scheduler.n_ctx), opt_(std::move(options)), media_(std::move(media)) {
  setup_ = ChatSetupFor(*model_, *tok_);
  vocab_ = ConstraintVocab::Make(*tok_, setup_.format);
  suppressed_ = SuppressedTokens(model_->file(), model_->config().n_vocab);
  if (media_) media_pool_ = std::make_unique<ThreadPool>(opt_.media_threads);
  SchedulerOptions so = scheduler;
  if (opt_.draft_model) so.draft_model = opt_.draft_model.get();
  scheduler_ = std::make_unique<Scheduler>(*model_, *tok_, so);
}

Backend::~Backend() {
  scheduler_.reset();  // its thread uses the model: stop it first
}

bool Backend::Serves(const std::string& requested) const {
  return requested.empty() || requested == opt_.name || requested == opt_.name + ":latest";
}

namespace {

void CheckIds(const std::vector<int32_t>& ids, int32_t n_vocab, const std::string& field) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= n_vocab) {
      BadField(field, "token id " + std::to_string(ids[i]) + " (element " + std::to_string(i) +
                          ") is outside the vocabulary (0 to " + std::to_string(n_vocab - 1) + ")");
    }
  }
}

}  // namespace

std::vector<int32_t> Backend::ChatPrompt(const GenRequest& r, bool thinking, std::string* text,
                                         chat::ParserState* state, FitResult* fit) const {
  Json tools;
  if (r.tools.is_array() && !r.tools.empty() && r.tool_choice != GenRequest::ToolChoice::kNone) tools = r.tools;
  if (!tools.is_null() && setup_.format == chat::ChatFormat::kGemma3) {
    BadField("tools", "this model uses the Gemma 3 chat format, which has no tool calling");
  }
  chat::RenderOptions ro;
  ro.add_generation_prompt = true;
  ro.enable_thinking = thinking;
  ro.bos_token = setup_.bos_text;
  // Renders and tokenizes `messages`; the overflow policy measures candidates with it, and the last
  // one measured is the prompt.
  std::vector<int32_t> tokens;
  auto render = [&](const Json& messages) -> int64_t {
    try {
      *text = chat::Render(setup_.format, messages, tools, ro);
    } catch (const ApiError&) {
      throw;
    } catch (const Error& e) {
      throw FromEngineError(e, "messages");
    }
    tokens = TokenizePrompt(*tok_, *text);
    return static_cast<int64_t>(tokens.size());
  };
  *fit = FitResult{};
  if (!r.context.empty()) {
    render(r.messages);  // Ollama generate's token context: no messages to drop
  } else {
    const ContextOverflow policy = r.context_overflow.empty() ? opt_.context_overflow
                                                              : ParseContextOverflow(r.context_overflow, "context_overflow");
    Json messages = r.messages;
    try {
      // The prompt leaves at least one position for the answer (the scheduler's rule).
      *fit = FitConversation(&messages, n_ctx_ - 1, policy, render);
    } catch (const ContextOverflowError& e) {
      throw ApiError(400, e.what(), "messages", "invalid_request_error", "context_length_exceeded");
    }
  }
  *state = chat::InitialStateForPrompt(*text, setup_.format);
  if (!r.context.empty()) {  // Ollama generate: the previous exchange, then this turn (without its BOS)
    CheckIds(r.context, tok_->n_vocab(), "context");
    std::vector<int32_t> all = r.context;
    const size_t skip = !tokens.empty() && tokens[0] == tok_->bos() ? 1 : 0;
    all.insert(all.end(), tokens.begin() + static_cast<std::ptrdiff_t>(skip), tokens.end());
    tokens = std::move(all);
  }
  return tokens;
}

std::vector<PromptPiece> Backend::WithMedia(const GenRequest& r, const std::vector<int32_t>& tokens) {
  if (r.media.empty()) return {PromptPiece{tokens, {}, false, 0}};
  if (!media_) {
    throw ApiError(400, "this server's model takes no images or audio (start it with --mmproj FILE)",
                   r.media[0].field);
  }
  std::vector<mm::MediaEmbedding> embedded;
  {
    // One embedding at a time: the pool runs one job, and the forward passes need the cores anyway.
    std::lock_guard<std::mutex> lock(media_mu_);
    for (const MediaInput& m : r.media) {
      try {
        embedded.push_back(m.kind == MediaInput::Kind::kImage
                               ? media_->EmbedImage(m.bytes, m.field, opt_.image, *media_pool_)
                               : media_->EmbedAudio(m.bytes, m.field, opt_.audio, *media_pool_));
      } catch (const Error& e) {
        throw ApiError(400, e.what(), m.field);
      }
    }
  }
  try {
    return mm::ExpandPrompt(*tok_, tokens, std::move(embedded));
  } catch (const Error& e) {
    throw ApiError(400, e.what(), "messages");
  }
}

SamplingParams Backend::Sampling(const GenRequest& r) const {
  SamplingParams p = opt_.sampling;
  if (r.temperature) p.temperature = *r.temperature;
  if (r.top_p) p.top_p = *r.top_p;
  if (r.top_k) p.top_k = *r.top_k;
  if (r.min_p) p.min_p = *r.min_p;
  if (r.presence_penalty) p.presence_penalty = *r.presence_penalty;
  if (r.frequency_penalty) p.frequency_penalty = *r.frequency_penalty;
  if (r.repeat_penalty) p.repeat_penalty = *r.repeat_penalty;
  if (r.repeat_last_n) p.penalty_last_n = *r.repeat_last_n;
  p.suppress = suppressed_;
  p.logit_bias.clear();
  for (const auto& [id, bias] : r.logit_bias) {
    if (id >= tok_->n_vocab()) {
      BadField("logit_bias", "token id " + std::to_string(id) + " is outside the vocabulary (0 to " +
                                 std::to_string(tok_->n_vocab() - 1) + ")");
    }
    // OpenAI: -100 bans the token.
    p.logit_bias[id] = bias <= -100 ? -std::numeric_limits<float>::infinity() : bias;
  }
  if (r.tool_choice == GenRequest::ToolChoice::kNone && !vocab_->tool_call_start.empty()) {
    const int32_t call = tok_->Lookup(vocab_->tool_call_start);
    if (call >= 0) p.logit_bias[call] = -std::numeric_limits<float>::infinity();  // "none" means none
  }
  p.seed = r.seed ? *r.seed : std::random_device{}();
  return p;
}

std::function<std::shared_ptr<TokenConstraint>()> Backend::Constraint(const GenRequest& r, bool thinking) const {
  using TC = GenRequest::ToolChoice;
  using F = GenRequest::Format;
  const bool forced = r.tool_choice == TC::kRequired || r.tool_choice == TC::kNamed;
  auto vocab = vocab_;
  if (r.format != F::kText) {
    if (forced) BadField("response_format", "cannot be combined with a tool_choice that forces a tool call");
    std::shared_ptr<const Schema> schema = r.format == F::kJsonObject ? Schema::AnyObject() : r.schema;
    return [schema, thinking, vocab] { return OutputConstraint::Json(schema, thinking, vocab); };
  }
  if (!forced) return nullptr;
  if (vocab_->tool_call_start.empty()) BadField("tool_choice", "this model's chat format has no tool calls");
  std::vector<ToolSpec> specs;
  for (size_t i = 0; i < r.tools.size(); ++i) {
    const Json& fn = r.tools[i]["function"];
    const std::string name = fn["name"].get<std::string>();
    if (r.tool_choice == TC::kNamed && name != r.tool_name) continue;
    ToolSpec spec{name, nullptr};
    if (auto p = fn.find("parameters"); p != fn.end() && p->is_object()) {
      const std::string path = field::Path(field::Index("tools", i), "function.parameters");
      try {
        // Lenient: keywords the decoder cannot enforce are ignored for arguments.
        spec.params = Schema::Compile(*p, path, /*strict=*/false);
      } catch (const Error& e) {
        const std::string msg = e.what();
        const size_t colon = msg.find(": ");
        throw ApiError(400, msg, colon == std::string::npos ? path : msg.substr(0, colon));
      }
    }
    specs.push_back(std::move(spec));
  }
  const bool several = r.tool_choice == TC::kRequired && r.parallel_tool_calls;
  return [specs, several, thinking, vocab] { return OutputConstraint::ToolCalls(specs, several, thinking, vocab); };
}

Started Backend::Start(const GenRequest& r) {
  Started s;
  s.thinking = r.thinking.value_or(opt_.thinking);
  s.n = r.n;
  s.output.chat = r.chat;
  s.output.format = setup_.format;
  s.output.tok = tok_.get();
  s.output.logprobs = r.logprobs;
  s.output.eog = r.chat ? setup_.stop_ids : EndOfGenerationTokens(*tok_);
  std::vector<std::vector<PromptPiece>> prompts;
  if (r.chat) {
    std::string text;
    chat::ParserState state = chat::ParserState::kContent;
    std::vector<int32_t> tokens = ChatPrompt(r, s.thinking, &text, &state, &s.context_fit);
    s.output.initial = state;
    prompts.push_back(WithMedia(r, tokens));
    s.prompt_tokens.push_back(std::move(tokens));
    s.prompt_texts.push_back(std::move(text));
  } else {
    if (!r.media.empty() && r.prompts.size() != 1) BadField("prompt", "images go with a single prompt");
    for (size_t i = 0; i < r.prompts.size(); ++i) {
      const RawPrompt& p = r.prompts[i];
      const std::string field = r.prompts.size() > 1 ? field::Index("prompt", i) : "prompt";
      std::vector<int32_t> tokens;
      if (p.is_tokens) {
        CheckIds(p.tokens, tok_->n_vocab(), field);
        tokens = p.tokens;
      } else {
        tokens = tok_->Encode(p.text, /*parse_special=*/true, /*add_bos=*/tok_->add_bos_token());
      }
      if (!r.context.empty()) {
        CheckIds(r.context, tok_->n_vocab(), "context");
        tokens.insert(tokens.begin(), r.context.begin(), r.context.end());
      }
      if (tokens.empty() && r.media.empty()) BadField(field, "is empty");
      prompts.push_back(WithMedia(r, tokens));
      s.prompt_texts.push_back(p.is_tokens ? tok_->Decode(p.tokens) : p.text);
      s.prompt_tokens.push_back(std::move(tokens));
    }
  }
  const SamplingParams sampling = Sampling(r);
  StopCriteria stop;
  stop.max_tokens = r.max_tokens > 0 ? r.max_tokens : opt_.limits.max_tokens;
  stop.eog_tokens = s.output.eog;
  stop.stop_strings = r.stop;
  stop.ignore_eos = r.ignore_eos;
  stop.include_eog_text = r.chat;  // the output parser sees the marker that ended the turn
  const auto make_constraint = Constraint(r, s.thinking);
  std::vector<RequestSpec> specs;
  for (const auto& pieces : prompts) {
    for (int i = 0; i < r.n; ++i) {
      RequestSpec spec;
      spec.prompt = pieces;
      spec.sampling = sampling;
      spec.sampling.seed = sampling.seed + static_cast<uint64_t>(i);  // n choices differ, reproducibly
      spec.stop = stop;
      spec.top_logprobs = r.logprobs ? r.top_logprobs : -1;
      if (make_constraint) spec.constraint = make_constraint();
      specs.push_back(std::move(spec));
    }
  }
  s.job = std::make_unique<Job>(*scheduler_);
  s.job->Submit(std::move(specs), r.chat ? "messages" : "prompt");
  return s;
}

}  // namespace g4::server
