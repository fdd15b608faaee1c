// The KV cache: per sequence, per layer that computes K/V.
//
// Positions of a sequence are appended contiguously from 0 (the engine never leaves holes). Storage is
// in chunks of kChunk positions; inside a chunk keys are laid out [kv_head][kChunk][head_dim] so the
// attention of one head streams contiguous rows.
//  * Full-attention layers grow chunk by chunk with the tokens actually used (nothing is allocated
//    up front for the whole context).
//  * Sliding-window layers keep a ring of window + slack positions: position p lives in slot
//    p % ring. The slack (the largest batch per sequence, plus what speculative decoding may roll
//    back) lets a batch write all its keys before attending, and lets the cache drop a sequence's last
//    positions and still hold the window the earlier positions need.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "formats/ggml_types.h"
#include "model/config.h"

namespace g4 {

struct KvCacheOptions {
  int n_seq = 1;               // sequences (server slots)
  int64_t n_ctx = 4096;        // maximum positions per sequence
  int64_t slack = 512;         // extra ring positions for sliding layers (>= tokens of one seq in a batch)
  GgmlType type_k = GgmlType::F16;
  GgmlType type_v = GgmlType::F16;
};

class KvCache {
 public:
  static constexpr int64_t kChunk = 256;

  KvCache(const ModelConfig& cfg, const KvCacheOptions& opt);

  const KvCacheOptions& options() const { return opt_; }
  int n_seq() const { return opt_.n_seq; }
  // Number of positions stored for a sequence ([0, SeqLen) are valid).
  int64_t SeqLen(int seq) const;

  // Makes room for positions [SeqLen, new_len) of `seq` and sets SeqLen = new_len. Fails when the
  // sequence would exceed n_ctx.
  void Extend(int seq, int64_t new_len);
  // Drops positions [new_len, SeqLen). Fails when a sliding layer no longer holds the window that
  // position new_len - 1 needs (more was rolled back than the slack allows).
  void Truncate(int seq, int64_t new_len);
  // Can `seq` be truncated to new_len without losing needed sliding-window entries?
  bool CanTruncate(int seq, int64_t new_len) const;
  void Clear(int seq);
  // Extends `seq` to new_len and writes seeded random keys and values (unit normal, stored in the
  // cache's types) at the new positions, without a forward pass. For benchmarks of the work done at a
  // depth (`gemma4 bench -d N --depth-fill synthetic`): attention costs the same whatever the values.
  void FillSynthetic(int seq, int64_t new_len, uint64_t seed);
  // Copies positions [0, len) of src to dst (dst is cleared first). Sliding layers copy the window
  // before len, so src must hold it (CanTruncate(src, len)).
  void CopyPrefix(int src, int dst, int64_t len);

  // Row of K (or V) for (layer, seq, position, kv head): head_dim elements of type_k (type_v).
  uint8_t* K(int layer, int seq, int64_t pos, int head);
  uint8_t* V(int layer, int seq, int64_t pos, int head);
  const uint8_t* K(int layer, int seq, int64_t pos, int head) const;
  const uint8_t* V(int layer, int seq, int64_t pos, int head) const;

  // Oldest position still stored for (layer, seq): 0 for full layers, SeqLen - ring for sliding ones.
  int64_t FirstStored(int layer, int seq) const;
  // Ring size (positions) of sliding layers.
  int64_t ring() const { return ring_; }

  // Bytes allocated now, and the bytes the cache would take with every sequence at n_ctx.
  uint64_t BytesAllocated() const;
  static uint64_t BytesAtContext(const ModelConfig& cfg, const KvCacheOptions& opt, int64_t n_tokens_per_seq);

 private:
  struct LayerStore {
    bool present = false;
    bool sliding = false;
    int n_head_kv = 0;
    int head_dim = 0;
    size_t row_k = 0, row_v = 0;      // bytes of one head's row
    size_t chunk_k = 0, chunk_v = 0;  // bytes of one chunk
    // Per sequence: chunks of K and V.
    std::vector<std::vector<std::unique_ptr<uint8_t[]>>> k, v;
  };
  uint8_t* Row(const LayerStore& L, bool is_v, int seq, int64_t pos, int head) const;
  void CheckSeq(int seq) const;

  KvCacheOptions opt_;
  int64_t window_ = 0;  // sliding window (positions a query looks back, itself included)
  int64_t ring_ = 0;
  std::vector<LayerStore> layers_;
  std::vector<int64_t> len_;
};

}  // namespace g4
