#include "cli/common.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <random>

#include "engine/generator.h"
#include "model/memory_plan.h"
#include "engine/speculative.h"
#include "util/error.h"

namespace g4::cli {

void ModelOptions::Add(CLI::App* app, bool model_positional, bool allow_auto) {
  if (model_positional) {
    app->add_option("model", model, "Model file (GGUF)")->required();
  } else {
    app->add_option("-m,--model", model, "Model file (GGUF)")->required();
  }
  app->add_option("-t,--threads", threads, "Threads (default: one per core)");
  if (allow_auto) {
    app->add_option_function<std::string>(
        "-c,--ctx",
        [this](const std::string& v) {
          ctx_auto = v == "auto";
          if (ctx_auto) return;
          char* end = nullptr;
          errno = 0;
          const long long n = std::strtoll(v.c_str(), &end, 10);
          if (v.empty() || *end != '\0' || errno != 0 || n < 1 || n > (int64_t{1} << 24)) {
            Fail("--ctx: '%s' is neither a number of tokens (1 to 16777216) nor 'auto'", v.c_str());
          }
          ctx = n;
        },
        "Context size in tokens per sequence, or 'auto': the largest that fits in the available memory");
    app->add_option("--ctx-margin", ctx_margin, "With --ctx auto: memory to leave free (default 1G)");
  } else {
    app->add_option("-c,--ctx", ctx, "Context size in tokens per sequence")->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  }
  app->add_option("-b,--batch", batch, "Tokens per forward step during prompt processing")
      ->check(CLI::Range(int64_t{1}, int64_t{65536}));
  app->add_flag("--exact", exact,
                "Reference numerics: weights dequantized exactly, f32 accumulation, f32 KV cache");
  app->add_option("--cache-type-k", cache_type_k, "KV cache type for keys: f32, f16, bf16, q8_0, q4_0");
  app->add_option("--cache-type-v", cache_type_v, "KV cache type for values: f32, f16, bf16, q8_0, q4_0");
}

void DraftOptions::Add(CLI::App* app) {
  app->add_option("--draft", file, "Speculative decoding: an MTP assistant GGUF, or a smaller model sharing the vocabulary");
  app->add_option("--draft-mode", mode, "assistant, model or ngram (default: from the --draft file)");
  app->add_option("--draft-max", draft_max, "Most tokens drafted per step (the number adapts to the acceptance rate)")
      ->check(CLI::Range(1, 64));
  app->add_flag("--draft-stats", verbose, "Print the acceptance rate and tokens per target forward pass");
}

std::string DraftOptions::Mode() const {
  if (!mode.empty() && mode != "assistant" && mode != "model" && mode != "ngram") {
    Fail("--draft-mode: unknown mode '%s' (assistant, model, ngram)", mode.c_str());
  }
  if (mode == "ngram") {
    if (!file.empty()) Fail("--draft-mode ngram drafts from the context itself and takes no --draft file");
    return mode;
  }
  if (file.empty()) Fail("--draft-mode %s needs --draft FILE", mode.c_str());
  if (!mode.empty()) return mode;
  auto f = gguf::File::Open(file);
  return f->GetString("general.architecture") == "gemma4-assistant" ? "assistant" : "model";
}

std::unique_ptr<Drafter> MakeDrafter(const DraftOptions& d, const std::string& mode, const ModelOptions& mo,
                                     const Model& target, Context& target_ctx, std::unique_ptr<Model>* draft_model) {
  if (mode == "assistant") {
    *draft_model = Model::Load(d.file);
    return std::make_unique<MtpDrafter>(**draft_model, target, target_ctx);
  }
  if (mode == "model") {
    *draft_model = Model::Load(d.file);
    if ((*draft_model)->config().arch == Arch::kGemma4Assistant) {
      Fail("%s is an MTP assistant: use --draft-mode assistant (or leave --draft-mode out)", d.file.c_str());
    }
    return std::make_unique<ModelDrafter>(**draft_model, target, MakeContextOptions(mo, **draft_model));
  }
  if (mode == "ngram") return std::make_unique<NgramDrafter>();
  Fail("--draft-mode: unknown mode '%s' (assistant, model, ngram)", mode.c_str());
}

GgmlType ParseCacheType(const std::string& name, const char* flag) {
  auto t = ParseGgmlType(name);
  if (!t || (*t != GgmlType::F32 && *t != GgmlType::F16 && *t != GgmlType::BF16 && *t != GgmlType::Q8_0 &&
             *t != GgmlType::Q4_0)) {
    Fail("%s: unknown cache type '%s' (f32, f16, bf16, q8_0, q4_0)", flag, name.c_str());
  }
  return *t;
}

ContextOptions MakeContextOptions(const ModelOptions& o, const Model& m, int n_seq) {
  ContextOptions c;
  c.n_threads = o.threads;
  c.math = o.exact ? kernels::Math::kExact : kernels::Math::kFast;
  c.n_batch = o.batch;
  c.kv.n_seq = n_seq;
  c.kv.n_ctx = o.ctx;
  const GgmlType def = o.exact ? GgmlType::F32 : m.DefaultCacheType();
  c.kv.type_k = o.cache_type_k.empty() ? def : ParseCacheType(o.cache_type_k, "--cache-type-k");
  c.kv.type_v = o.cache_type_v.empty() ? def : ParseCacheType(o.cache_type_v, "--cache-type-v");
  return c;
}

void ResolveAutoContext(ModelOptions* o, const Model& m, int n_seq, uint64_t available) {
  if (!o->ctx_auto) return;
  const uint64_t margin = ParseMemorySize(o->ctx_margin, "--ctx-margin");
  const ContextOptions c = MakeContextOptions(*o, m, n_seq);
  MemoryPlanOptions p;
  p.n_seq = n_seq;
  p.n_batch = o->batch;
  p.n_threads = o->threads;
  p.type_k = c.kv.type_k;
  p.type_v = c.kv.type_v;
  p.packed = Model::PackingEnabled();
  const uint64_t budget = available > margin ? available - margin : 0;
  const int64_t n = LargestContext(m, p, budget);
  if (n <= 0) {
    Fail("--ctx auto: not even %lld tokens fit: %s available, less the %s margin (--ctx-margin), leaves %s",
         (long long)KvCache::kChunk, HumanBytes(double(available)).c_str(), HumanBytes(double(margin)).c_str(),
         HumanBytes(double(budget)).c_str());
  }
  p.n_ctx = n;
  const MemoryPlan plan = PlanMemory(m, p);
  std::fprintf(stderr,
               "--ctx auto: %lld tokens%s (K %s, V %s, %d sequence(s)): plan %s of %s available less the %s "
               "margin (weights %s, KV cache %s, working %s, runtime %s)\n",
               (long long)n, n == m.config().n_ctx_train ? " (the model's maximum)" : "", TypeName(p.type_k),
               TypeName(p.type_v), n_seq, HumanBytes(double(plan.total())).c_str(), HumanBytes(double(available)).c_str(),
               HumanBytes(double(margin)).c_str(), HumanBytes(double(plan.weights)).c_str(),
               HumanBytes(double(plan.kv_cache)).c_str(), HumanBytes(double(plan.working)).c_str(),
               HumanBytes(double(plan.runtime)).c_str());
  o->ctx = n;
}

Loaded LoadModel(ModelOptions o, int n_seq, bool keep_hidden) {
  Loaded l;
  const uint64_t available = o.ctx_auto ? AvailableMemory() : 0;
  l.model = Model::Load(o.model);
  ResolveAutoContext(&o, *l.model, n_seq, available);
  l.tok = std::make_unique<Tokenizer>(Tokenizer::FromGguf(l.model->file()));
  if (l.tok->n_vocab() != l.model->config().n_vocab) {
    Fail("%s: the vocabulary has %d tokens but token_embd has %lld rows", o.model.c_str(), l.tok->n_vocab(),
         (long long)l.model->config().n_vocab);
  }
  ContextOptions c = MakeContextOptions(o, *l.model, n_seq);
  c.keep_hidden = keep_hidden;
  l.ctx = std::make_unique<Context>(*l.model, c);
  return l;
}

void SamplingOptions::Add(CLI::App* app) {
  app->add_option("--temp", temp, "Temperature (0 = greedy)")->check(CLI::Range(0.0f, 100.0f));
  app->add_option("--top-k", top_k, "Top-k (0 = off)")->check(CLI::NonNegativeNumber);
  app->add_option("--top-p", top_p, "Top-p (1 = off)")->check(CLI::Range(1e-6f, 1.0f));
  app->add_option("--min-p", min_p, "Min-p (0 = off)")->check(CLI::Range(0.0f, 1.0f));
  app->add_option("--repeat-penalty", repeat_penalty, "Repetition penalty (1 = off)")->check(CLI::Range(0.01f, 100.0f));
  app->add_option("--presence-penalty", presence_penalty, "Presence penalty");
  app->add_option("--frequency-penalty", frequency_penalty, "Frequency penalty");
  app->add_option("-s,--seed", seed, "Random seed (-1: random)");
}

SamplingParams SamplingOptions::Params(const Model& m) const {
  SamplingParams p;
  p.temperature = temp;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  p.repeat_penalty = repeat_penalty;
  p.presence_penalty = presence_penalty;
  p.frequency_penalty = frequency_penalty;
  p.seed = seed >= 0 ? static_cast<uint64_t>(seed) : std::random_device{}();
  p.suppress = SuppressedTokens(m.file(), m.config().n_vocab);
  return p;
}

std::vector<int32_t> ParseTokenList(const std::string& s) {
  std::vector<int32_t> out;
  size_t i = 0, k = 0;
  while (i <= s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    std::string item = s.substr(i, j - i);
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front()))) item.erase(item.begin());
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back()))) item.pop_back();
    char* end = nullptr;
    errno = 0;
    const long v = item.empty() ? 0 : std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || errno != 0 || v < 0 || v > INT32_MAX) {
      Fail("--tokens: element %zu ('%s') is not a token id", k, item.c_str());
    }
    out.push_back(static_cast<int32_t>(v));
    ++k;
    i = j + 1;
  }
  return out;
}

std::string HumanBytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.2f %s", b, units[u]);
  return buf;
}

}  // namespace g4::cli
