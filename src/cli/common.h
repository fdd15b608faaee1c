// Options and helpers shared by the gemma4 subcommands.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "model/context.h"
#include "model/model.h"
#include "sampling/sampler.h"
#include "tokenizer/tokenizer.h"

namespace g4 {
class Drafter;
}  // namespace g4

namespace g4::cli {

// Options of every command that runs a model.
struct ModelOptions {
  std::string model;
  int threads = 0;
  int64_t ctx = 4096;
  int64_t batch = 512;
  bool exact = false;
  std::string cache_type_k;  // "" = the model's default (see Model::DefaultCacheType)
  std::string cache_type_v;
  bool ctx_auto = false;           // --ctx auto (only where Add was called with allow_auto)
  std::string ctx_margin = "1G";   // --ctx-margin: memory --ctx auto leaves free
  void Add(CLI::App* app, bool model_positional = false, bool allow_auto = false);
};

// --ctx auto: sets o->ctx to the largest context whose memory plan (model/memory_plan.h) fits in
// `available` (MemAvailable, read before the model was loaded) minus --ctx-margin, and says so on
// stderr. Does nothing without --ctx auto. Fails when not even 256 tokens fit.
void ResolveAutoContext(ModelOptions* o, const Model& m, int n_seq, uint64_t available);

// A model ready to run: weights, tokenizer and one context.
struct Loaded {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tok;
  std::unique_ptr<Context> ctx;
};
Loaded LoadModel(ModelOptions o, int n_seq = 1, bool keep_hidden = false);
ContextOptions MakeContextOptions(const ModelOptions& o, const Model& m, int n_seq = 1);

struct SamplingOptions {
  float temp = 1.0f;
  int top_k = 64;
  float top_p = 0.95f;
  float min_p = 0.0f;
  float repeat_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  int64_t seed = -1;  // -1: random
  void Add(CLI::App* app);
  SamplingParams Params(const Model& m) const;
};

// Speculative decoding flags of generate / run / serve.
struct DraftOptions {
  std::string file;   // --draft: an MTP assistant GGUF or a smaller model with the same vocabulary
  std::string mode;   // --draft-mode: assistant, model, ngram ("" = from the file's architecture)
  int draft_max = 8;
  bool verbose = false;
  void Add(CLI::App* app);
  bool enabled() const { return !file.empty() || !mode.empty(); }
  // The resolved mode; validates the combination of flags.
  std::string Mode() const;
};

// The drafter of a resolved mode for a target model and its context (which must keep hidden states
// for "assistant"). Loads the --draft file into *draft_model, which must outlive the drafter.
std::unique_ptr<Drafter> MakeDrafter(const DraftOptions& d, const std::string& mode, const ModelOptions& mo,
                                     const Model& target, Context& target_ctx, std::unique_ptr<Model>* draft_model);

// Parses "1,2,3" into token ids; throws g4::Error naming the bad element.
std::vector<int32_t> ParseTokenList(const std::string& s);
GgmlType ParseCacheType(const std::string& name, const char* flag);
std::string HumanBytes(double bytes);

// Every subcommand registers itself here.
void AddGenerate(CLI::App& app);
void AddLogits(CLI::App& app);
void AddTokenize(CLI::App& app);
void AddInfo(CLI::App& app);
void AddFit(CLI::App& app);
void AddCreate(CLI::App& app);
void AddBench(CLI::App& app);
void AddEmbed(CLI::App& app);
void AddRender(CLI::App& app);
void AddRun(CLI::App& app);
void AddConvert(CLI::App& app);
void AddQuantize(CLI::App& app);
void AddPerplexity(CLI::App& app);
void AddServe(CLI::App& app);

}  // namespace g4::cli
