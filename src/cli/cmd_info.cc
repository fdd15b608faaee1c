// gemma4 info: what a model file is and how much memory it needs.
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/media.h"
#include "formats/quant_mix.h"
#include "model/memory_plan.h"
#include "util/error.h"

namespace g4::cli {

namespace {
struct InfoOptions {
  std::string model;
  bool json = false;
  int64_t ctx = 4096;
  int n_seq = 1;
  int64_t batch = 512;
  int threads = 0;
  std::string cache_type_k = "f16", cache_type_v = "f16";
  std::string mmproj;
};

void RunInfo(const InfoOptions& o) {
  // A multimodal projector (llama.cpp mmproj) is described on its own.
  if (IsProjectorFile(o.model)) {
    auto p = mm::Projector::Open(o.model);
    if (o.json) {
      std::printf("%s\n", ProjectorJson(*p).dump(2).c_str());
    } else {
      PrintProjector(*p);
    }
    return;
  }
  auto m = Model::Load(o.model, /*pack=*/false);  // the plan needs shapes only
  // The image/audio embedder: from --mmproj, or the model file's own tensors.
  std::unique_ptr<mm::Projector> proj = o.mmproj.empty() ? mm::Projector::FromModelFile(m->file()) : mm::Projector::Open(o.mmproj);
  const ModelConfig& c = m->config();
  const gguf::File& f = m->file();
  MemoryPlanOptions po;
  po.n_ctx = o.ctx;
  po.n_seq = o.n_seq;
  po.n_batch = o.batch;
  po.n_threads = o.threads;
  po.type_k = ParseCacheType(o.cache_type_k, "--cache-type-k");
  po.type_v = ParseCacheType(o.cache_type_v, "--cache-type-v");
  po.packed = Model::PackingEnabled();
  const MemoryPlan plan = PlanMemory(*m, po);
  std::map<std::string, std::pair<int, uint64_t>> by_type;
  for (const auto& t : f.tensors()) {
    auto& e = by_type[TypeName(t.type)];
    e.first++;
    e.second += t.nbytes;
  }
  int n_sliding = 0;
  for (const auto& L : c.layers) n_sliding += L.sliding;
  const auto ftype = f.GetUIntOpt("general.file_type");
  if (o.json) {
    nlohmann::json j;
    j["file"] = o.model;
    j["architecture"] = ArchName(c.arch);
    j["name"] = c.name;
    if (ftype) j["file_type"] = *ftype;
    j["n_vocab"] = c.n_vocab;
    j["n_embd"] = c.n_embd;
    j["n_layer"] = c.n_layer;
    j["n_layer_sliding"] = n_sliding;
    j["n_ctx_train"] = c.n_ctx_train;
    j["sliding_window"] = c.sliding_window;
    j["final_logit_softcapping"] = c.final_softcap;
    j["n_embd_per_layer"] = c.n_embd_per_layer;
    j["n_expert"] = c.n_expert;
    j["n_expert_used"] = c.n_expert_used;
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& L : c.layers) {
      layers.push_back({{"type", L.sliding ? "sliding" : "full"}, {"n_head", L.n_head}, {"n_head_kv", L.n_head_kv},
                        {"head_dim", L.head_dim}, {"n_ff", L.n_ff}, {"kv_source", L.kv_source}, {"k_eq_v", L.k_eq_v},
                        {"moe", L.moe}});
    }
    j["layers"] = layers;
    nlohmann::json types = nlohmann::json::object();
    for (const auto& [name, e] : by_type) types[name] = {{"tensors", e.first}, {"bytes", e.second}};
    j["tensor_types"] = types;
    j["memory"] = {{"weights_bytes", plan.weights},
                   {"kv_cache_bytes", plan.kv_cache},
                   {"working_bytes", plan.working},
                   {"runtime_bytes", plan.runtime},
                   {"loading_bytes", plan.loading},
                   {"total_bytes", plan.total()},
                   {"file_tensor_bytes", m->weights().total_bytes},
                   {"ctx", o.ctx},
                   {"n_seq", o.n_seq},
                   {"batch", o.batch},
                   {"cache_type_k", TypeName(po.type_k)},
                   {"cache_type_v", TypeName(po.type_v)}};
    if (proj) j["multimodal"] = ProjectorJson(*proj);
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("file:            %s (GGUF v%u, %s)\n", o.model.c_str(), f.version(), HumanBytes(static_cast<double>(f.file_size())).c_str());
  std::printf("architecture:    %s%s%s\n", ArchName(c.arch), c.name.empty() ? "" : "  name: ", c.name.c_str());
  if (ftype) std::printf("file type:       %llu\n", (unsigned long long)*ftype);
  std::printf("vocabulary:      %lld tokens\n", (long long)c.n_vocab);
  std::printf("hidden size:     %lld\n", (long long)c.n_embd);
  std::printf("layers:          %d (%d sliding window %d, %d full)\n", c.n_layer, n_sliding, c.sliding_window,
              c.n_layer - n_sliding);
  const LayerConfig* ls = nullptr;
  const LayerConfig* lf = nullptr;
  for (const auto& L : c.layers) (L.sliding ? ls : lf) = &L;
  if (ls) std::printf("sliding layers:  %d heads, %d KV heads, head size %d, FFN %lld, RoPE theta %g\n", ls->n_head, ls->n_head_kv, ls->head_dim, (long long)ls->n_ff, ls->rope.base);
  if (lf) std::printf("full layers:     %d heads, %d KV heads, head size %d, FFN %lld, RoPE theta %g%s%s\n", lf->n_head, lf->n_head_kv, lf->head_dim, (long long)lf->n_ff, lf->rope.base, lf->k_eq_v ? ", K=V" : "", lf->rope.freq_factors ? ", proportional RoPE" : "");
  if (c.n_embd_per_layer) std::printf("per-layer input: %lld per layer\n", (long long)c.n_embd_per_layer);
  int shared = 0;
  for (const auto& L : c.layers) shared += !L.has_kv;
  if (shared && c.arch != Arch::kGemma4Assistant) std::printf("KV sharing:      last %d layers reuse earlier caches\n", shared);
  if (c.n_expert) std::printf("experts:         %d (top %d), expert FFN %lld\n", c.n_expert, c.n_expert_used, (long long)c.n_ff_exp);
  if (c.final_softcap > 0) std::printf("final softcap:   %g\n", c.final_softcap);
  std::printf("training ctx:    %lld\n", (long long)c.n_ctx_train);
  std::printf("tensor types:\n");
  for (const auto& [name, e] : by_type) std::printf("  %-8s %4d tensors  %12s\n", name.c_str(), e.first, HumanBytes(static_cast<double>(e.second)).c_str());
  auto hb = [](uint64_t b) { return HumanBytes(static_cast<double>(b)); };
  std::printf("memory (peak resident, planned):\n");
  std::printf("  weights:       %s%s\n", hb(plan.weights).c_str(), po.packed ? " (packed)" : " (mapped file)");
  std::printf("  KV cache:      %s at ctx %lld x %d sequence(s) (K %s, V %s)\n", hb(plan.kv_cache).c_str(),
              (long long)o.ctx, o.n_seq, TypeName(po.type_k), TypeName(po.type_v));
  std::printf("  working:       %s (batch %lld)\n", hb(plan.working).c_str(), (long long)o.batch);
  std::printf("  runtime:       %s (process, tokenizer, threads)\n", hb(plan.runtime).c_str());
  std::printf("  total:         %s (weights + runtime + the larger of KV cache + working and the %s of file\n"
              "                 pages held while repacking at load)\n", hb(plan.total()).c_str(), hb(plan.loading).c_str());
  if (proj) PrintProjector(*proj);
}
}  // namespace

void AddInfo(CLI::App& app) {
  auto o = std::make_shared<InfoOptions>();
  CLI::App* sub = app.add_subcommand("info", "Show a model's architecture, tensors and memory needs");
  sub->add_option("model", o->model, "Model file or multimodal projector (GGUF)")->required();
  sub->add_flag("--json", o->json, "Print JSON");
  sub->add_option("-c,--ctx", o->ctx, "Context size for the KV cache estimate")->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  sub->add_option("--parallel", o->n_seq, "Sequences (server slots) for the KV cache estimate")->check(CLI::Range(1, 1024));
  sub->add_option("-b,--batch", o->batch, "Tokens per forward step, for the working memory estimate")
      ->check(CLI::Range(int64_t{1}, int64_t{65536}));
  sub->add_option("-t,--threads", o->threads, "Threads, for the working memory estimate (default: one per core)")
      ->check(CLI::Range(1, 4096));
  sub->add_option("--cache-type-k", o->cache_type_k, "KV cache type for keys");
  sub->add_option("--cache-type-v", o->cache_type_v, "KV cache type for values");
  sub->add_option("--mmproj", o->mmproj, "Also describe this multimodal projector (llama.cpp mmproj GGUF)");
  sub->callback([o] { RunInfo(*o); });
}

}  // namespace g4::cli
