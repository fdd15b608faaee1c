// Attention micro-benchmark (google benchmark): one generated token (n = 1) attending over a KV cache
// of a given depth, at the Gemma 4 12B layer shapes: a full layer (16 query heads, 1 KV head of 512,
// K = V) and a sliding layer (16 query heads, 8 KV heads of 256, window 1,024). The cache is filled
// with random keys (KvCache::FillSynthetic); the cost of attention does not depend on the values.
// BM_AttnFullPrefill64: 64 prompt tokens at that depth (a slice of a long prompt's chunk).
// Counters: kv_B/s = K and V bytes per second of the rows one query attends to (times the calls).
//
//   build/bench/attention_bench --benchmark_filter='Full.*32768'
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "formats/ggml_types.h"
#include "model/attention.h"
#include "model/config.h"
#include "model/kv_cache.h"
#include "util/thread_pool.h"

namespace g4 {
namespace {

ModelConfig TwoLayers() {
  ModelConfig c;
  c.name = "attention-bench";
  c.n_vocab = 16;
  c.n_embd = 3840;
  c.n_layer = 2;
  c.n_ctx_train = 262144;
  c.sliding_window = 1024;
  LayerConfig sliding;
  sliding.sliding = true, sliding.n_head = 16, sliding.n_head_kv = 8, sliding.head_dim = 256;
  sliding.kv_source = 0;
  LayerConfig full;
  full.sliding = false, full.n_head = 16, full.n_head_kv = 1, full.head_dim = 512, full.k_eq_v = true;
  full.kv_source = 1;
  c.layers = {sliding, full};
  return c;
}

// Args: depth (keys already cached), threads, KV type (0 = F16, 1 = Q8_0, 2 = Q4_0). `tokens`
// queries at positions depth .. depth + tokens - 1 (1: generation; more: a chunk of a long prompt).
void Run(benchmark::State& state, int layer, int tokens) {
  const int64_t depth = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  const GgmlType types[] = {GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0};
  const GgmlType type = types[state.range(2)];
  const ModelConfig cfg = TwoLayers();
  KvCacheOptions opt;
  opt.n_ctx = depth + tokens;
  opt.slack = tokens;
  opt.type_k = opt.type_v = type;
  KvCache cache(cfg, opt);
  cache.FillSynthetic(0, depth + tokens, 7);
  const LayerConfig& lc = cfg.layers[static_cast<size_t>(layer)];
  const int64_t width = static_cast<int64_t>(lc.n_head) * lc.head_dim;
  std::vector<float> q(static_cast<size_t>(width * tokens)), out(q.size());
  for (size_t i = 0; i < q.size(); ++i) q[i] = static_cast<float>(static_cast<int>(i % 17) - 8) * 0.01f;
  const std::vector<int32_t> seq(static_cast<size_t>(tokens), 0);
  std::vector<int64_t> pos(static_cast<size_t>(tokens));
  for (int i = 0; i < tokens; ++i) pos[static_cast<size_t>(i)] = depth + i;
  AttentionArgs a;
  a.cache = &cache;
  a.kv_layer = layer;
  a.n_head = lc.n_head;
  a.n_head_kv = lc.n_head_kv;
  a.head_dim = lc.head_dim;
  a.window = lc.sliding ? cfg.sliding_window : 0;
  a.n = tokens;
  a.q = q.data();
  a.ldq = width;
  a.seq = seq.data();
  a.pos = pos.data();
  a.out = out.data();
  a.ldo = a.ldq;
  ThreadPool pool(threads);
  for (auto _ : state) {
    Attention(a, pool);
    benchmark::DoNotOptimize(out.data());
  }
  const int64_t keys = lc.sliding ? std::min<int64_t>(depth + 1, cfg.sliding_window) : depth + 1;  // per query
  const double row = static_cast<double>(RowBytes(type, lc.head_dim)) * lc.n_head_kv;
  state.counters["kv_B/s"] = benchmark::Counter(keys * row * 2 * static_cast<double>(state.iterations()),
                                                benchmark::Counter::kIsRate);
}

void BM_AttnFull(benchmark::State& state) { Run(state, 1, 1); }
void BM_AttnSliding(benchmark::State& state) { Run(state, 0, 1); }
void BM_AttnFullPrefill64(benchmark::State& state) { Run(state, 1, 64); }

BENCHMARK(BM_AttnFull)
    ->ArgsProduct({{2048, 32768, 131072}, {1, 2}, {0, 1, 2}})
    ->ArgNames({"depth", "threads", "kv"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AttnFullPrefill64)
    ->ArgsProduct({{2048, 32768}, {2}, {0}})
    ->ArgNames({"depth", "threads", "kv"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AttnSliding)
    ->ArgsProduct({{32768}, {1, 2}, {0, 1, 2}})
    ->ArgNames({"depth", "threads", "kv"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace g4

BENCHMARK_MAIN();
