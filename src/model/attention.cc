#include "model/attention.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>
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

constexpr int kBlock = 64;     // keys per step of the running softmax, aligned to multiples of kBlock
constexpr int kMaxPairs = 32;  // (query token, head) pairs per task: they share every K/V row load

// One (query token, query head) pair of a task: its key range [lo, hi] and running softmax state.
struct Pair {
  int64_t lo, hi;
  float m, l;
};

struct Scratch {
  std::vector<float> q, s, acc;  // [pairs][hd], [pairs][kBlock], [pairs][hd]
  std::vector<Pair> pairs;
};

}  // namespace

// Tasks are (run of consecutive batch tokens of one sequence, KV head): the query heads of those
// tokens that read this KV head stream its keys together, in blocks of kBlock positions aligned to
// multiples of kBlock, each K/V row converted once for all of them. Every pair keeps its own key
// range: in a block it counts only the keys of its range, in order, and skips a block with none,
// exactly as it would alone, so its result does not depend on what else is in the batch.
void Attention(const AttentionArgs& a, ThreadPool& pool) {
  G4_CHECK(a.n_head % a.n_head_kv == 0);
  const int rep = a.n_head / a.n_head_kv;
  const int hd = a.head_dim;
  const GgmlType tk = a.cache->options().type_k, tv = a.cache->options().type_v;
  const int64_t k_stride = RowBytes(tk, hd), v_stride = RowBytes(tv, hd);
  const int max_tokens = std::max(1, kMaxPairs / rep);
  std::vector<std::pair<int, int>> groups;  // [begin, end) batch indices
  for (int i = 0; i < a.n;) {
    int e = i + 1;
    while (e < a.n && e - i < max_tokens && a.seq[e] == a.seq[i]) ++e;
    groups.push_back({i, e});
    i = e;
  }
  const int64_t n_tasks = static_cast<int64_t>(groups.size()) * a.n_head_kv;

  pool.ParallelFor(n_tasks, 1, [&](int64_t t0, int64_t t1) {
    thread_local Scratch sc;
    for (int64_t task = t0; task < t1; ++task) {
      const auto [b, e] = groups[static_cast<size_t>(task / a.n_head_kv)];
      const int g = static_cast<int>(task % a.n_head_kv);
      const int seq = a.seq[b];
      const int np = (e - b) * rep;
      const int64_t len = a.cache->SeqLen(seq);
      sc.q.resize(static_cast<size_t>(np) * hd);
      sc.acc.assign(static_cast<size_t>(np) * hd, 0.0f);
      sc.s.resize(static_cast<size_t>(np) * kBlock);
      sc.pairs.resize(static_cast<size_t>(np));
      int64_t lo_all = INT64_MAX, hi_all = -1;
      for (int i = b; i < e; ++i) {
        const int64_t p = a.pos[i];
        int64_t lo = a.window > 0 ? std::max<int64_t>(0, p - a.window + 1) : 0;
        int64_t hi = std::min(p, len - 1);
        if (a.group_lo && a.group_lo[i] <= a.group_hi[i]) {
          lo = std::min(lo, a.group_lo[i]);
          hi = std::max(hi, std::min(a.group_hi[i], len - 1));
        }
        lo = std::max(lo, int64_t{0});
        G4_CHECK(lo >= a.cache->FirstStored(a.kv_layer, seq));
        if (lo <= hi) {
          lo_all = std::min(lo_all, lo);
          hi_all = std::max(hi_all, hi);
        }
        for (int r = 0; r < rep; ++r) {
          const int pi = (i - b) * rep + r;
          sc.pairs[static_cast<size_t>(pi)] = Pair{lo, hi, -std::numeric_limits<float>::infinity(), 0.0f};
          std::memcpy(sc.q.data() + static_cast<size_t>(pi) * hd,
                      a.q + static_cast<int64_t>(i) * a.ldq + (static_cast<int64_t>(g) * rep + r) * hd,
                      static_cast<size_t>(hd) * 4);
        }
      }
      for (int64_t kb = lo_all < 0 ? 0 : lo_all / kBlock * kBlock; kb <= hi_all; kb += kBlock) {
        const int64_t j0 = std::max(kb, lo_all), j1 = std::min(kb + kBlock, hi_all + 1);
        const int nk = static_cast<int>(j1 - j0);
        const uint8_t* krows = a.cache->K(a.kv_layer, seq, j0, g);
        const uint8_t* vrows = a.cache->V(a.kv_layer, seq, j0, g);
        kernels::AttnScores(sc.q.data(), hd, np, tk, krows, k_stride, nk, hd, sc.s.data(), kBlock);
        bool all_full = true;
        for (int pi = 0; pi < np; ++pi) {
          Pair& pr = sc.pairs[static_cast<size_t>(pi)];
          float* s = sc.s.data() + static_cast<size_t>(pi) * kBlock;
          const int64_t v0 = std::max(j0, pr.lo), v1 = std::min(j1 - 1, pr.hi);  // this pair's keys
          all_full = all_full && v0 == j0 && v1 == j1 - 1;
          if (v0 > v1) {
            std::fill(s, s + nk, 0.0f);
            continue;
          }
          float mb = pr.m;
          for (int64_t j = v0; j <= v1; ++j) mb = std::max(mb, s[j - j0] * a.scale);
          const float corr = std::exp(pr.m - mb);  // exp(-inf) = 0 on the pair's first block
          if (corr != 1.0f) {
            pr.l *= corr;
            float* ac = sc.acc.data() + static_cast<size_t>(pi) * hd;
            for (int d = 0; d < hd; ++d) ac[d] *= corr;
          }
          for (int j = 0; j < nk; ++j) {
            const int64_t pos = j0 + j;
            s[j] = pos >= v0 && pos <= v1 ? std::exp(s[j] * a.scale - mb) : 0.0f;
          }
          for (int64_t j = v0; j <= v1; ++j) pr.l += s[j - j0];
          pr.m = mb;
        }
        if (all_full) {
          kernels::AttnAccumulate(sc.s.data(), kBlock, np, tv, vrows, v_stride, nk, hd, sc.acc.data(), hd);
        } else {
          // Edge blocks (causal diagonal, window start): each token's pairs over exactly their keys.
          for (int i = 0; i < e - b; ++i) {
            const Pair& pr = sc.pairs[static_cast<size_t>(i) * rep];
            const int64_t v0 = std::max(j0, pr.lo), v1 = std::min(j1 - 1, pr.hi);
            if (v0 > v1) continue;
            kernels::AttnAccumulate(sc.s.data() + static_cast<size_t>(i) * rep * kBlock + (v0 - j0), kBlock, rep, tv,
                                    vrows + (v0 - j0) * v_stride, v_stride, static_cast<int>(v1 - v0 + 1), hd,
                                    sc.acc.data() + static_cast<size_t>(i) * rep * hd, hd);
          }
        }
      }
      for (int i = b; i < e; ++i) {
        for (int r = 0; r < rep; ++r) {
          const int pi = (i - b) * rep + r;
          const Pair& pr = sc.pairs[static_cast<size_t>(pi)];
          float* o = a.out + static_cast<int64_t>(i) * a.ldo + (static_cast<int64_t>(g) * rep + r) * hd;
          const float inv = pr.l > 0 ? 1.0f / pr.l : 0.0f;
          const float* ac = sc.acc.data() + static_cast<size_t>(pi) * hd;
          for (int d = 0; d < hd; ++d) o[d] = ac[d] * inv;
        }
      }
    }
  });
}

}  // namespace g4
