// gemma4 generate: continue a prompt (text or token ids) and stream the continuation.
#include <cstdio>
#include <iostream>

#include "cli/common.h"
#include "cli/media.h"
#include "engine/generator.h"
#include "engine/speculative.h"
#include "util/error.h"

namespace g4::cli {

namespace {
struct GenerateOptions {
  ModelOptions m;
  SamplingOptions s;
  std::string prompt;
  std::string tokens;
  int n_predict = 128;
  bool ids = false;
  bool ignore_eos = false;
  bool no_special = false;
  std::vector<std::string> stop;
  MediaOptions media;
  DraftOptions draft;
};

void RunGenerate(const GenerateOptions& o) {
  if (o.prompt.empty() == o.tokens.empty()) Fail("give exactly one of -p/--prompt and --tokens");
  const std::string draft_mode = o.draft.enabled() ? o.draft.Mode() : "";
  Loaded l = LoadModel(o.m, 1, /*keep_hidden=*/draft_mode == "assistant");
  std::vector<int32_t> prompt;
  if (!o.tokens.empty()) {
    prompt = ParseTokenList(o.tokens);
    for (size_t i = 0; i < prompt.size(); ++i) {
      if (prompt[i] >= l.tok->n_vocab()) {
        Fail("--tokens: element %zu (%d) is out of range (vocabulary of %d)", i, prompt[i], l.tok->n_vocab());
      }
    }
  } else {
    prompt = l.tok->Encode(o.prompt, /*parse_special=*/!o.no_special, /*add_bos=*/l.tok->add_bos_token());
  }
  // Images and audio: embedded, then placed at the prompt's <|image|> / <|audio|> placeholders, or
  // before the prompt text when it has none (images first, then audio).
  std::vector<PromptPiece> pieces;
  if (o.media.any()) {
    auto enc = mm::MediaEncoder::Create(*l.model, o.media.mmproj, l.ctx->options().math);
    std::vector<mm::MediaEmbedding> media = o.media.EmbedAll(*enc, l.ctx->pool());
    for (const auto& m : media) std::fprintf(stderr, "%s (%s)\n", m.Describe().c_str(), m.Timing().c_str());
    pieces = mm::ExpandPrompt(*l.tok, prompt, std::move(media));
  } else {
    if (prompt.empty()) Fail("the prompt is empty");
    pieces.push_back(PromptPiece{prompt, {}, false, 0});
  }
  StopCriteria stop;
  stop.max_tokens = o.n_predict;
  stop.eog_tokens = EndOfGenerationTokens(*l.tok);
  stop.ignore_eos = o.ignore_eos;
  stop.stop_strings = o.stop;
  auto print = [&](int32_t, std::string_view text) {
    if (!o.ids && !text.empty()) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    }
    return true;
  };
  GenerationResult r;
  if (draft_mode.empty()) {
    Generator gen(*l.ctx, *l.tok);
    r = gen.Generate(pieces, o.s.Params(*l.model), stop, print);
  } else {
    std::unique_ptr<Model> draft_model;
    std::unique_ptr<Drafter> drafter = MakeDrafter(o.draft, draft_mode, o.m, *l.model, *l.ctx, &draft_model);
    SpeculativeOptions so;
    so.draft_max = o.draft.draft_max;
    so.draft_start = std::min(4, o.draft.draft_max);
    SpeculativeGenerator gen(*l.ctx, *l.tok, *drafter, so);
    r = gen.Generate(pieces, o.s.Params(*l.model), stop, print);
    if (o.draft.verbose) {
      const auto& st = gen.stats();
      std::fprintf(stderr, "drafting (%s): %lld drafted, %lld accepted (%.1f%%), %.2f tokens per target forward\n",
                   drafter->name(), (long long)st.drafted, (long long)st.accepted, 100 * st.acceptance(),
                   st.tokens_per_forward());
    }
  }
  if (o.ids) {
    for (size_t i = 0; i < r.tokens.size(); ++i) std::printf("%s%d", i ? "," : "", r.tokens[i]);
    std::printf("\n");
  } else {
    std::printf("\n");
  }
  std::fflush(stdout);
  const double pp = r.t_prompt > 0 ? r.n_prompt_evaluated / r.t_prompt : 0;
  const int n_gen_forward = static_cast<int>(r.tokens.size()) - (r.finish == FinishReason::kLength ? 0 : 1);
  const double tg = r.t_generate > 0 ? std::max(0, n_gen_forward) / r.t_generate : 0;
  std::fprintf(stderr, "prompt: %d tokens, %.2f tokens/s | generation: %zu tokens, %.2f tokens/s | finish: %s\n",
               r.n_prompt, pp, r.tokens.size(), tg, FinishReasonName(r.finish));
}
}  // namespace

void AddGenerate(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  CLI::App* sub = app.add_subcommand("generate", "Continue a prompt and stream the continuation");
  o->m.Add(sub);
  o->s.Add(sub);
  sub->add_option("-p,--prompt", o->prompt, "Prompt text (special tokens such as <bos> are recognised)");
  sub->add_option("--tokens", o->tokens, "Prompt as comma-separated token ids");
  sub->add_option("-n,--n-predict", o->n_predict, "Tokens to generate (-1: until the context is full)")
      ->check(CLI::Range(-1, 1 << 24));
  sub->add_flag("--ids", o->ids, "Print the generated token ids, comma-separated, instead of text");
  sub->add_flag("--ignore-eos", o->ignore_eos, "Keep generating through end-of-generation tokens");
  sub->add_flag("--no-special", o->no_special, "Do not recognise special tokens written in the prompt text");
  sub->add_option("--stop", o->stop, "Stop when this text is generated (repeatable)");
  o->draft.Add(sub);
  o->media.Add(sub);
  sub->callback([o] { RunGenerate(*o); });
}

}  // namespace g4::cli
