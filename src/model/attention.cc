#include "model/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/kernels.h"
#include "util/error.h"
#include "util/fp16.h"

namespace g4 {

void StoreKvRow(GgmlType type, const float* src, int n, uint8_t* dst) {
  switch (type) {
    case GgmlType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case GgmlType::F16:
      for (int i = 0; i < n; ++i) {
        const uint16_t h = F32ToF16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    case GgmlType::BF16:
      for (int i = 0; i < n; ++i) {
        const uint16_t h = F32ToBf16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    default:
      kernels::QuantizeRow(type, src, dst, n);
  }
}

namespace {

constexpr int kBlock = 64;  // keys scored per step of the running softmax

// Reads a cached row as f32: a pointer into the cache for F32, else converted into `tmp`.
inline const float* RowF32(GgmlType type, const uint8_t* row, int n, float* tmp) {
  if (type == GgmlType::F32) return reinterpret_cast<const float*>(row);
  kernels::DequantizeRow(type, row, tmp, n);
  return tmp;
}

}  // namespace

void Attention(const AttentionArgs& a, ThreadPool& pool) {
  G4_CHECK(a.n_head % a.n_head_kv == 0);
  const int rep = a.n_head / a.n_head_kv;
  const int hd = a.head_dim;
  const GgmlType tk = a.cache->options().type_k, tv = a.cache->options().type_v;
  const int64_t n_tasks = static_cast<int64_t>(a.n) * a.n_head_kv;

  pool.ParallelFor(n_tasks, 1, [&](int64_t t0, int64_t t1) {
    std::vector<float> scores(static_cast<size_t>(rep) * kBlock);
    std::vector<float> acc(static_cast<size_t>(rep) * hd);
    std::vector<float> m(static_cast<size_t>(rep)), l(static_cast<size_t>(rep));
    std::vector<float> ktmp(static_cast<size_t>(hd)), vtmp(static_cast<size_t>(hd));
    for (int64_t task = t0; task < t1; ++task) {
      const int i = static_cast<int>(task / a.n_head_kv);
      const int g = static_cast<int>(task % a.n_head_kv);
      const int seq = a.seq[i];
      const int64_t p = a.pos[i];
      const int64_t len = a.cache->SeqLen(seq);
      int64_t lo = a.window > 0 ? std::max<int64_t>(0, p - a.window + 1) : 0;
      int64_t hi = std::min(p, len - 1);
      if (a.group_lo && a.group_lo[i] <= a.group_hi[i]) {
        lo = std::min(lo, a.group_lo[i]);
        hi = std::max(hi, std::min(a.group_hi[i], len - 1));
      }
      lo = std::max(lo, int64_t{0});
      G4_CHECK(lo >= a.cache->FirstStored(a.kv_layer, seq));
      const float* q0 = a.q + static_cast<int64_t>(i) * a.ldq + static_cast<int64_t>(g) * rep * hd;
      std::fill(acc.begin(), acc.end(), 0.0f);
      std::fill(m.begin(), m.end(), -std::numeric_limits<float>::infinity());
      std::fill(l.begin(), l.end(), 0.0f);
      for (int64_t b = lo; b <= hi; b += kBlock) {
        const int nb = static_cast<int>(std::min<int64_t>(kBlock, hi - b + 1));
        for (int j = 0; j < nb; ++j) {
          const float* k = RowF32(tk, a.cache->K(a.kv_layer, seq, b + j, g), hd, ktmp.data());
          for (int r = 0; r < rep; ++r) scores[r * kBlock + j] = kernels::DotF32(q0 + r * hd, k, hd) * a.scale;
        }
        for (int r = 0; r < rep; ++r) {
          float* sc = scores.data() + r * kBlock;
          float mb = m[r];
          for (int j = 0; j < nb; ++j) mb = std::max(mb, sc[j]);
          const float corr = std::exp(m[r] - mb);  // exp(-inf) = 0 on the first block
          l[r] *= corr;
          float* ac = acc.data() + r * hd;
          for (int d = 0; d < hd; ++d) ac[d] *= corr;
          for (int j = 0; j < nb; ++j) {
            sc[j] = std::exp(sc[j] - mb);
            l[r] += sc[j];
          }
          m[r] = mb;
        }
        for (int j = 0; j < nb; ++j) {
          const float* v = RowF32(tv, a.cache->V(a.kv_layer, seq, b + j, g), hd, vtmp.data());
          for (int r = 0; r < rep; ++r) {
            const float w = scores[r * kBlock + j];
            float* ac = acc.data() + r * hd;
            for (int d = 0; d < hd; ++d) ac[d] += w * v[d];
          }
        }
      }
      for (int r = 0; r < rep; ++r) {
        float* o = a.out + static_cast<int64_t>(i) * a.ldo + (static_cast<int64_t>(g) * rep + r) * hd;
        const float inv = l[r] > 0 ? 1.0f / l[r] : 0.0f;
        for (int d = 0; d < hd; ++d) o[d] = acc[static_cast<size_t>(r) * hd + d] * inv;
      }
    }
  });
}

}  // namespace g4
