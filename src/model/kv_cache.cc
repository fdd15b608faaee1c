#include "model/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <random>

#include "kernels/kernels.h"
#include "util/error.h"

namespace g4 {

KvCache::KvCache(const ModelConfig& cfg, const KvCacheOptions& opt) : opt_(opt) {
  if (opt.n_seq <= 0) Fail("KV cache: %d sequences", opt.n_seq);
  if (opt.n_ctx <= 0) Fail("KV cache: context of %lld tokens", (long long)opt.n_ctx);
  for (GgmlType t : {opt.type_k, opt.type_v}) {
    if (t != GgmlType::F32 && t != GgmlType::F16 && t != GgmlType::BF16 && t != GgmlType::Q8_0 && t != GgmlType::Q4_0) {
      Fail("KV cache type %s is not supported (f32, f16, bf16, q8_0, q4_0 are)", TypeName(t));
    }
  }
  const int64_t window = cfg.sliding_window;
  window_ = window;
  ring_ = (window + std::max<int64_t>(opt.slack, 1) + kChunk - 1) / kChunk * kChunk;
  layers_.resize(static_cast<size_t>(cfg.n_layer));
  for (int i = 0; i < cfg.n_layer; ++i) {
    const LayerConfig& lc = cfg.layers[i];
    if (!lc.has_kv) continue;
    LayerStore& L = layers_[i];
    L.present = true;
    L.sliding = lc.sliding;
    L.n_head_kv = lc.n_head_kv;
    L.head_dim = lc.head_dim;
    if (lc.head_dim % Traits(opt.type_k).block_size || lc.head_dim % Traits(opt.type_v).block_size) {
      Fail("KV cache type %s/%s needs head sizes that are multiples of its block size; layer %d has %d",
           TypeName(opt.type_k), TypeName(opt.type_v), i, lc.head_dim);
    }
    L.row_k = static_cast<size_t>(RowBytes(opt.type_k, lc.head_dim));
    L.row_v = static_cast<size_t>(RowBytes(opt.type_v, lc.head_dim));
    L.chunk_k = L.row_k * kChunk * lc.n_head_kv;
    L.chunk_v = L.row_v * kChunk * lc.n_head_kv;
    L.k.resize(static_cast<size_t>(opt.n_seq));
    L.v.resize(static_cast<size_t>(opt.n_seq));
  }
  len_.assign(static_cast<size_t>(opt.n_seq), 0);
}

void KvCache::CheckSeq(int seq) const {
  if (seq < 0 || seq >= opt_.n_seq) Fail("sequence id %d is out of range (the cache has %d)", seq, opt_.n_seq);
}

int64_t KvCache::SeqLen(int seq) const {
  CheckSeq(seq);
  return len_[seq];
}

void KvCache::Extend(int seq, int64_t new_len) {
  CheckSeq(seq);
  if (new_len > opt_.n_ctx) {
    Fail("sequence %d would hold %lld tokens, more than its context of %lld", seq, (long long)new_len,
         (long long)opt_.n_ctx);
  }
  if (new_len <= len_[seq]) return;
  for (auto& L : layers_) {
    if (!L.present) continue;
    const int64_t positions = L.sliding ? std::min(new_len, ring_) : new_len;
    const size_t chunks = static_cast<size_t>((positions + kChunk - 1) / kChunk);
    auto& kc = L.k[seq];
    auto& vc = L.v[seq];
    while (kc.size() < chunks) {
      // Zeroed so that a row never read before it is written still holds finite numbers.
      kc.emplace_back(new uint8_t[L.chunk_k]());
      vc.emplace_back(new uint8_t[L.chunk_v]());
    }
  }
  len_[seq] = new_len;
}

void KvCache::FillSynthetic(int seq, int64_t new_len, uint64_t seed) {
  const int64_t old_len = SeqLen(seq);
  Extend(seq, new_len);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> row;
  for (const LayerStore& L : layers_) {
    if (!L.present) continue;
    row.resize(static_cast<size_t>(L.head_dim));
    const int64_t first = L.sliding ? std::max(old_len, new_len - ring_) : old_len;
    for (int64_t p = first; p < new_len; ++p) {
      for (int h = 0; h < L.n_head_kv; ++h) {
        for (float& x : row) x = normal(rng);
        kernels::QuantizeRow(opt_.type_k, row.data(), Row(L, false, seq, p, h), L.head_dim);
        for (float& x : row) x = normal(rng);
        kernels::QuantizeRow(opt_.type_v, row.data(), Row(L, true, seq, p, h), L.head_dim);
      }
    }
  }
}

bool KvCache::CanTruncate(int seq, int64_t new_len) const {
  CheckSeq(seq);
  if (new_len >= len_[seq]) return true;
  if (new_len <= 0) return true;
  // After truncation the next query (at new_len) sees positions (new_len - window, new_len]; the ring
  // still holds positions >= len - ring.
  bool any_sliding = false;
  for (const auto& L : layers_) any_sliding |= L.present && L.sliding;
  if (!any_sliding) return true;
  return len_[seq] - ring_ <= new_len - window_;
}

void KvCache::Truncate(int seq, int64_t new_len) {
  CheckSeq(seq);
  if (new_len < 0) Fail("cannot truncate sequence %d to %lld positions", seq, (long long)new_len);
  if (new_len >= len_[seq]) return;
  if (!CanTruncate(seq, new_len)) {
    Fail("cannot roll sequence %d back from %lld to %lld tokens: the sliding-window cache keeps only %lld "
         "positions beyond the window",
         seq, (long long)len_[seq], (long long)new_len, (long long)(ring_ - window_));
  }
  len_[seq] = new_len;
  // Full layers release whole chunks past the end, so memory follows the tokens in use.
  for (auto& L : layers_) {
    if (!L.present || L.sliding) continue;
    const size_t chunks = static_cast<size_t>((new_len + kChunk - 1) / kChunk);
    L.k[seq].resize(std::min(L.k[seq].size(), chunks));
    L.v[seq].resize(std::min(L.v[seq].size(), chunks));
  }
}

void KvCache::Clear(int seq) {
  CheckSeq(seq);
  len_[seq] = 0;
  for (auto& L : layers_) {
    if (!L.present) continue;
    L.k[seq].clear();
    L.v[seq].clear();
  }
}

void KvCache::CopyPrefix(int src, int dst, int64_t len) {
  CheckSeq(src);
  CheckSeq(dst);
  if (src == dst) {
    Truncate(src, len);
    return;
  }
  if (len > len_[src]) Fail("cannot copy %lld positions of sequence %d, which holds %lld", (long long)len, src, (long long)len_[src]);
  if (!CanTruncate(src, len)) Fail("sequence %d no longer holds the window before position %lld", src, (long long)len);
  Clear(dst);
  Extend(dst, len);
  for (int li = 0; li < static_cast<int>(layers_.size()); ++li) {
    const LayerStore& L = layers_[li];
    if (!L.present) continue;
    const int64_t first = L.sliding ? std::max<int64_t>(0, len - window_) : 0;
    for (int64_t p = first; p < len; ++p) {
      for (int h = 0; h < L.n_head_kv; ++h) {
        std::memcpy(Row(L, false, dst, p, h), Row(L, false, src, p, h), L.row_k);
        std::memcpy(Row(L, true, dst, p, h), Row(L, true, src, p, h), L.row_v);
      }
    }
  }
}

uint8_t* KvCache::Row(const LayerStore& L, bool is_v, int seq, int64_t pos, int head) const {
  const int64_t slot = L.sliding ? pos % ring_ : pos;
  const auto& chunks = is_v ? L.v[seq] : L.k[seq];
  const size_t ci = static_cast<size_t>(slot / kChunk);
  G4_CHECK(ci < chunks.size());
  const size_t row = is_v ? L.row_v : L.row_k;
  return chunks[ci].get() + (static_cast<size_t>(head) * kChunk + static_cast<size_t>(slot % kChunk)) * row;
}

uint8_t* KvCache::K(int layer, int seq, int64_t pos, int head) { return Row(layers_[layer], false, seq, pos, head); }
uint8_t* KvCache::V(int layer, int seq, int64_t pos, int head) { return Row(layers_[layer], true, seq, pos, head); }
const uint8_t* KvCache::K(int layer, int seq, int64_t pos, int head) const {
  return Row(layers_[layer], false, seq, pos, head);
}
const uint8_t* KvCache::V(int layer, int seq, int64_t pos, int head) const {
  return Row(layers_[layer], true, seq, pos, head);
}

int64_t KvCache::FirstStored(int layer, int seq) const {
  const LayerStore& L = layers_[layer];
  return L.sliding ? std::max<int64_t>(0, len_[seq] - ring_) : 0;
}

uint64_t KvCache::BytesAllocated() const {
  uint64_t total = 0;
  for (const auto& L : layers_) {
    if (!L.present) continue;
    for (int s = 0; s < opt_.n_seq; ++s) total += L.k[s].size() * L.chunk_k + L.v[s].size() * L.chunk_v;
  }
  return total;
}

uint64_t KvCache::BytesAtContext(const ModelConfig& cfg, const KvCacheOptions& opt, int64_t n) {
  const int64_t ring = (cfg.sliding_window + std::max<int64_t>(opt.slack, 1) + kChunk - 1) / kChunk * kChunk;
  uint64_t per_seq = 0;
  for (const auto& lc : cfg.layers) {
    if (!lc.has_kv) continue;
    const int64_t positions = lc.sliding ? std::min(n, ring) : n;
    const int64_t chunks = (positions + kChunk - 1) / kChunk;
    per_seq += static_cast<uint64_t>(chunks * kChunk * lc.n_head_kv) *
               static_cast<uint64_t>(RowBytes(opt.type_k, lc.head_dim) + RowBytes(opt.type_v, lc.head_dim));
  }
  return per_seq * static_cast<uint64_t>(opt.n_seq);
}

}  // namespace g4
