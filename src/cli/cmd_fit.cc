// gemma4 fit: the largest context that fits in a memory budget, per KV cache type, from the memory
// planner (model/memory_plan.h).
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "model/memory_plan.h"
#include "util/error.h"

namespace g4::cli {

namespace {
struct FitOptions {
  std::string model;
  std::string mem;
  int64_t batch = 512;
  int n_seq = 1;
  int threads = 0;
  bool json = false;
};

void RunFit(const FitOptions& o) {
  const uint64_t budget = ParseMemorySize(o.mem, "--mem");
  auto m = Model::Load(o.model, /*pack=*/false);  // the plan needs shapes only
  const int64_t max_ctx = m->config().n_ctx_train;
  nlohmann::json rows = nlohmann::json::array();
  if (!o.json) {
    std::printf("largest context in %s (batch %lld, %d sequence(s), model maximum %lld):\n",
                HumanBytes(double(budget)).c_str(), (long long)o.batch, o.n_seq, (long long)max_ctx);
    std::printf("  %-10s %10s %12s %12s %12s %12s\n", "cache", "ctx", "weights", "KV cache", "working", "total");
  }
  for (GgmlType t : {GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0}) {
    MemoryPlanOptions p;
    p.n_seq = o.n_seq;
    p.n_batch = o.batch;
    p.n_threads = o.threads;
    p.type_k = p.type_v = t;
    p.packed = Model::PackingEnabled();
    const int64_t n = LargestContext(*m, p, budget);
    p.n_ctx = std::max<int64_t>(n, 1);
    const MemoryPlan plan = PlanMemory(*m, p);
    if (o.json) {
      nlohmann::json r = {{"cache_type", TypeName(t)}, {"ctx", n}, {"capped", n == max_ctx}};
      if (n > 0) {
        r["weights_bytes"] = plan.weights;
        r["kv_cache_bytes"] = plan.kv_cache;
        r["working_bytes"] = plan.working;
        r["runtime_bytes"] = plan.runtime;
        r["total_bytes"] = plan.total();
      }
      rows.push_back(r);
      continue;
    }
    if (n == 0) {
      std::printf("  %-10s %10s   (even %lld tokens need %s)\n", TypeName(t), "none", (long long)p.n_ctx,
                  HumanBytes(double(plan.total())).c_str());
      continue;
    }
    std::printf("  %-10s %10lld %12s %12s %12s %12s%s\n", TypeName(t), (long long)n, HumanBytes(double(plan.weights)).c_str(),
                HumanBytes(double(plan.kv_cache)).c_str(), HumanBytes(double(plan.working)).c_str(),
                HumanBytes(double(plan.total())).c_str(), n == max_ctx ? "  (model maximum)" : "");
  }
  if (o.json) {
    nlohmann::json j = {{"file", o.model},        {"mem_bytes", budget}, {"batch", o.batch},
                        {"n_seq", o.n_seq},       {"n_ctx_train", max_ctx}, {"fits", rows}};
    std::printf("%s\n", j.dump(2).c_str());
  }
}
}  // namespace

void AddFit(CLI::App& app) {
  auto o = std::make_shared<FitOptions>();
  CLI::App* sub = app.add_subcommand("fit", "Largest context that fits in a memory budget, per KV cache type");
  sub->add_option("model", o->model, "Model file (GGUF)")->required();
  sub->add_option("--mem", o->mem, "Memory budget: 16G, 512M, 1.5GiB, or bytes")->required();
  sub->add_option("-b,--batch", o->batch, "Tokens per forward step")->check(CLI::Range(int64_t{1}, int64_t{65536}));
  sub->add_option("--parallel", o->n_seq, "Sequences (server slots); the context is per sequence")->check(CLI::Range(1, 1024));
  sub->add_option("-t,--threads", o->threads, "Threads (default: one per core)")->check(CLI::Range(1, 4096));
  sub->add_flag("--json", o->json, "Print JSON");
  sub->callback([o] { RunFit(*o); });
}

}  // namespace g4::cli
