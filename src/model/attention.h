// Attention over the KV cache, streamed block by block with a running softmax (flash-attention
// style), so no tokens x tokens matrix is ever built and memory does not grow with the context.
#pragma once

#include <cstdint>

#include "model/kv_cache.h"
#include "util/thread_pool.h"

namespace g4 {

struct AttentionArgs {
  const KvCache* cache = nullptr;
  int kv_layer = 0;       // layer whose cache is read
  int n_head = 0;         // query heads
  int n_head_kv = 0;      // KV heads (query head h reads KV head h / (n_head / n_head_kv))
  int head_dim = 0;
  float scale = 1.0f;     // multiplies q·k
  int64_t window = 0;     // sliding window: query at p sees keys in (p - window, p]; 0 = full causal
  int n = 0;              // queries
  const float* q = nullptr;      // [n][ldq]: n_head * head_dim values per query
  int64_t ldq = 0;
  const int32_t* seq = nullptr;  // [n]
  const int64_t* pos = nullptr;  // [n]
  // [n] inclusive ranges of positions a query also sees in both directions (its image), or null.
  // group_lo[i] > group_hi[i] means none.
  const int64_t* group_lo = nullptr;
  const int64_t* group_hi = nullptr;
  float* out = nullptr;          // [n][ldo]: n_head * head_dim values per query
  int64_t ldo = 0;
};

void Attention(const AttentionArgs& a, ThreadPool& pool);

// Stores one head's row into the cache in the cache's element type.
void StoreKvRow(GgmlType type, const float* src, int n, uint8_t* dst);

}  // namespace g4
