// The memory planner: how much resident memory a process running a model needs at a context length,
// before anything is allocated. It adds up what the code allocates (see each term in memory_plan.cc):
//   weights  packed matrices (or the file's bytes without packing) and the vectors read in place;
//            embedding tables add nothing (rows come from the tied head or are copied with pread);
//   KV cache KvCache::BytesAtContext with every sequence at n_ctx;
//   working  the Context's activations and logits for one micro-batch, the activation workspace of
//            MatMul, the per-thread kernel and attention scratch, and the sampler;
//   runtime  the process itself: code, libraries, thread stacks and the tokenizer's tables;
//   loading  while weights are repacked, the file pages of the slice in hand (up to 16 MiB) are
//            resident until released; this comes before the cache and working memory exist, so
//            the peak is weights + runtime + max(KV cache + working, loading).
// `gemma4 info`, `gemma4 fit` and `--ctx auto` print and use it; tests/cli/memory_plan_test.cc checks
// it against the peak resident memory (VmHWM) of real runs.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "formats/ggml_types.h"
#include "model/model.h"

namespace g4 {

struct MemoryPlanOptions {
  int64_t n_ctx = 4096;   // tokens per sequence
  int n_seq = 1;          // sequences (server slots)
  int64_t n_batch = 512;  // tokens per forward step
  int n_threads = 0;      // 0: one per core
  GgmlType type_k = GgmlType::F16;
  GgmlType type_v = GgmlType::F16;
  bool packed = true;     // weights repacked at load (Model::PackingEnabled())
};

struct MemoryPlan {
  uint64_t weights = 0;
  uint64_t kv_cache = 0;
  uint64_t working = 0;
  uint64_t runtime = 0;
  uint64_t loading = 0;
  uint64_t total() const { return weights + runtime + std::max(kv_cache + working, loading); }
};

MemoryPlan PlanMemory(const Model& model, const MemoryPlanOptions& opt);

// The largest n_ctx (at most the model's training context, and a multiple of the cache's chunk of
// 256 positions unless that maximum is reached) whose plan fits in `budget` bytes; 0 if not even
// 256 tokens fit. opt.n_ctx is ignored.
int64_t LargestContext(const Model& model, MemoryPlanOptions opt, uint64_t budget);

// The machine's MemAvailable (/proc/meminfo) in bytes; fails when it cannot be read.
uint64_t AvailableMemory();

// Parses "16G", "512M", "1.5GiB", "2048" (bytes) into bytes; fails naming `what` on anything else.
uint64_t ParseMemorySize(const std::string& text, const char* what);

}  // namespace g4
