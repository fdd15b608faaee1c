#include "model/attention.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/elementwise.h"
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
// Keys are taken in segments of kSegment positions aligned to multiples of kSegment: a pair's softmax
// state restarts at each segment and the segments are merged in position order. The segments of one
// (token run, KV head) can then run as separate tasks when there are too few tasks to keep the
// threads busy (generation with one KV head over a long context), with the same operations, so the
// result does not depend on how the work was split.
constexpr int64_t kSegment = 2048;

// One (query token, query head) pair of a task: its key range [lo, hi].
struct Pair {
  int64_t lo, hi;
};

// Softmax state of each pair over some keys: running max, sum of exp, and sum of exp * V.
struct State {
  std::vector<float> m, l, acc;  // [pairs], [pairs], [pairs][hd]
  void Reset(int np, int hd) {
    m.assign(static_cast<size_t>(np), -std::numeric_limits<float>::infinity());
    l.assign(static_cast<size_t>(np), 0.0f);
    acc.assign(static_cast<size_t>(np) * hd, 0.0f);
  }
};

struct Scratch {
  std::vector<float> q, s;  // [pairs][hd], [pairs][kBlock]
  std::vector<Pair> pairs;
  State seg, total;
};

// A run of consecutive batch tokens [b, e) of one sequence and one KV head g.
struct Task {
  int b, e, g;
};

// The pairs of a task: key ranges and queries into sc. Returns [lo_all, hi_all], the keys any pair
// reads (lo_all > hi_all when none).
std::pair<int64_t, int64_t> SetUp(const AttentionArgs& a, const Task& t, int rep, Scratch& sc) {
  const int hd = a.head_dim;
  const int seq = a.seq[t.b];
  const int np = (t.e - t.b) * rep;
  const int64_t len = a.cache->SeqLen(seq);
  sc.q.resize(static_cast<size_t>(np) * hd);
  sc.s.resize(static_cast<size_t>(np) * kBlock);
  sc.pairs.resize(static_cast<size_t>(np));
  int64_t lo_all = INT64_MAX, hi_all = -1;
  for (int i = t.b; i < t.e; ++i) {
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
      const int pi = (i - t.b) * rep + r;
      sc.pairs[static_cast<size_t>(pi)] = Pair{lo, hi};
      std::memcpy(sc.q.data() + static_cast<size_t>(pi) * hd,
                  a.q + static_cast<int64_t>(i) * a.ldq + (static_cast<int64_t>(t.g) * rep + r) * hd,
                  static_cast<size_t>(hd) * 4);
    }
  }
  return {lo_all, hi_all};
}

// Keys [k_lo, k_hi] (inside one segment) into st, from a fresh state: blocks of kBlock keys, each
// K/V row converted once for every pair; each pair counts only the keys of its own range, in order.
void RunSegment(const AttentionArgs& a, const Task& t, int rep, int64_t k_lo, int64_t k_hi, Scratch& sc, State& st) {
  const int hd = a.head_dim;
  const int seq = a.seq[t.b];
  const int np = (t.e - t.b) * rep;
  const GgmlType tk = a.cache->options().type_k, tv = a.cache->options().type_v;
  const int64_t k_stride = RowBytes(tk, hd), v_stride = RowBytes(tv, hd);
  st.Reset(np, hd);
  for (int64_t kb = k_lo / kBlock * kBlock; kb <= k_hi; kb += kBlock) {
    const int64_t j0 = std::max(kb, k_lo), j1 = std::min(kb + kBlock, k_hi + 1);
    const int nk = static_cast<int>(j1 - j0);
    const uint8_t* krows = a.cache->K(a.kv_layer, seq, j0, t.g);
    const uint8_t* vrows = a.cache->V(a.kv_layer, seq, j0, t.g);
    kernels::AttnScores(sc.q.data(), hd, np, tk, krows, k_stride, nk, hd, sc.s.data(), kBlock, vrows, v_stride, v_stride);
    bool all_full = true;
    for (int pi = 0; pi < np; ++pi) {
      const Pair& pr = sc.pairs[static_cast<size_t>(pi)];
      float* s = sc.s.data() + static_cast<size_t>(pi) * kBlock;
      const int64_t v0 = std::max(j0, pr.lo), v1 = std::min(j1 - 1, pr.hi);  // this pair's keys
      all_full = all_full && v0 == j0 && v1 == j1 - 1;
      if (v0 > v1) {
        std::fill(s, s + nk, 0.0f);
        continue;
      }
      float& m = st.m[static_cast<size_t>(pi)];
      float& l = st.l[static_cast<size_t>(pi)];
      float mb = m;
      for (int64_t j = v0; j <= v1; ++j) mb = std::max(mb, s[j - j0] * a.scale);
      const float corr = std::exp(m - mb);  // exp(-inf) = 0 on the pair's first block
      if (corr != 1.0f) {
        l *= corr;
        float* ac = st.acc.data() + static_cast<size_t>(pi) * hd;
        for (int d = 0; d < hd; ++d) ac[d] *= corr;
      }
      // exp(score * scale - max) over the pair's keys (vectorized); 0 for the block's other keys.
      std::fill(s, s + (v0 - j0), 0.0f);
      kernels::ExpShifted(s + (v0 - j0), v1 - v0 + 1, a.scale, mb, s + (v0 - j0));
      std::fill(s + (v1 - j0 + 1), s + nk, 0.0f);
      for (int64_t j = v0; j <= v1; ++j) l += s[j - j0];
      m = mb;
    }
    if (all_full) {
      kernels::AttnAccumulate(sc.s.data(), kBlock, np, tv, vrows, v_stride, nk, hd, st.acc.data(), hd);
    } else {
      // Edge blocks (causal diagonal, window start): each token's pairs over exactly their keys.
      for (int i = 0; i < t.e - t.b; ++i) {
        const Pair& pr = sc.pairs[static_cast<size_t>(i) * rep];
        const int64_t v0 = std::max(j0, pr.lo), v1 = std::min(j1 - 1, pr.hi);
        if (v0 > v1) continue;
        kernels::AttnAccumulate(sc.s.data() + static_cast<size_t>(i) * rep * kBlock + (v0 - j0), kBlock, rep, tv,
                                vrows + (v0 - j0) * v_stride, v_stride, static_cast<int>(v1 - v0 + 1), hd,
                                st.acc.data() + static_cast<size_t>(i) * rep * hd, hd);
      }
    }
  }
}

// into = into (+) seg, pair by pair; a pair without keys in seg (m = -inf) leaves into unchanged.
void Merge(const State& seg, int np, int hd, State& into) {
  for (int pi = 0; pi < np; ++pi) {
    const float ms = seg.m[static_cast<size_t>(pi)];
    if (ms == -std::numeric_limits<float>::infinity()) continue;
    float& m = into.m[static_cast<size_t>(pi)];
    const float mt = std::max(m, ms);
    const float ci = std::exp(m - mt), cs = std::exp(ms - mt);  // ci = 0 when into is empty
    into.l[static_cast<size_t>(pi)] = into.l[static_cast<size_t>(pi)] * ci + seg.l[static_cast<size_t>(pi)] * cs;
    float* ac = into.acc.data() + static_cast<size_t>(pi) * hd;
    const float* as = seg.acc.data() + static_cast<size_t>(pi) * hd;
    for (int d = 0; d < hd; ++d) ac[d] = ac[d] * ci + as[d] * cs;
    m = mt;
  }
}

void WriteOut(const AttentionArgs& a, const Task& t, int rep, const State& st) {
  const int hd = a.head_dim;
  for (int i = t.b; i < t.e; ++i) {
    for (int r = 0; r < rep; ++r) {
      const int pi = (i - t.b) * rep + r;
      float* o = a.out + static_cast<int64_t>(i) * a.ldo + (static_cast<int64_t>(t.g) * rep + r) * hd;
      const float l = st.l[static_cast<size_t>(pi)];
      const float inv = l > 0 ? 1.0f / l : 0.0f;
      const float* ac = st.acc.data() + static_cast<size_t>(pi) * hd;
      for (int d = 0; d < hd; ++d) o[d] = ac[d] * inv;
    }
  }
}

}  // namespace

// Tasks are (run of consecutive batch tokens of one sequence, KV head): the query heads of those
// tokens that read this KV head stream its keys together, segment by segment (kSegment), in blocks
// of kBlock positions, each K/V row converted once for all of them. Every pair keeps its own key
// range: in a block it counts only the keys of its range, in order, and skips a block with none,
// exactly as it would alone, so its result does not depend on what else is in the batch. When the
// tasks are fewer than twice the threads, each segment of a task becomes a task of its own and the
// segments' states are merged afterwards, in the same order as a single task merges them.
void Attention(const AttentionArgs& a, ThreadPool& pool) {
  G4_CHECK(a.n_head % a.n_head_kv == 0);
  const int rep = a.n_head / a.n_head_kv;
  const int hd = a.head_dim;
  const int max_tokens = std::max(1, kMaxPairs / rep);
  std::vector<Task> tasks;
  for (int i = 0; i < a.n;) {
    int e = i + 1;
    while (e < a.n && e - i < max_tokens && a.seq[e] == a.seq[i]) ++e;
    for (int g = 0; g < a.n_head_kv; ++g) tasks.push_back({i, e, g});
    i = e;
  }
  const int64_t n_tasks = static_cast<int64_t>(tasks.size());
  int64_t max_len = 0;
  for (int i = 0; i < a.n; ++i) max_len = std::max(max_len, a.cache->SeqLen(a.seq[i]));

  if (n_tasks >= 2 * pool.size() || max_len <= kSegment) {
    pool.ParallelFor(n_tasks, 1, [&](int64_t t0, int64_t t1) {
      thread_local Scratch sc;
      for (int64_t ti = t0; ti < t1; ++ti) {
        const Task& t = tasks[static_cast<size_t>(ti)];
        const int np = (t.e - t.b) * rep;
        const auto [lo_all, hi_all] = SetUp(a, t, rep, sc);
        sc.total.Reset(np, hd);
        for (int64_t s0 = lo_all <= hi_all ? lo_all / kSegment * kSegment : 0; s0 <= hi_all; s0 += kSegment) {
          RunSegment(a, t, rep, std::max(s0, lo_all), std::min(s0 + kSegment - 1, hi_all), sc, sc.seg);
          Merge(sc.seg, np, hd, sc.total);
        }
        WriteOut(a, t, rep, sc.total);
      }
    });
    return;
  }

  // Few tasks over long keys (generation): one task per (task, segment); states merged in order.
  const int64_t n_seg = (max_len + kSegment - 1) / kSegment;
  std::vector<State> parts(static_cast<size_t>(n_tasks * n_seg));  // [task][segment]; empty = no keys
  pool.ParallelFor(n_tasks * n_seg, 1, [&](int64_t u0, int64_t u1) {
    thread_local Scratch sc;
    for (int64_t u = u0; u < u1; ++u) {
      const Task& t = tasks[static_cast<size_t>(u / n_seg)];
      const int64_t s0 = (u % n_seg) * kSegment;
      const auto [lo_all, hi_all] = SetUp(a, t, rep, sc);
      const int64_t k_lo = std::max(s0, lo_all), k_hi = std::min(s0 + kSegment - 1, hi_all);
      if (k_lo > k_hi) continue;
      RunSegment(a, t, rep, k_lo, k_hi, sc, parts[static_cast<size_t>(u)]);
    }
  });
  pool.ParallelFor(n_tasks, 1, [&](int64_t t0, int64_t t1) {
    thread_local State total;
    for (int64_t ti = t0; ti < t1; ++ti) {
      const Task& t = tasks[static_cast<size_t>(ti)];
      const int np = (t.e - t.b) * rep;
      total.Reset(np, hd);
      for (int64_t si = 0; si < n_seg; ++si) {
        const State& part = parts[static_cast<size_t>(ti * n_seg + si)];
        if (!part.m.empty()) Merge(part, np, hd, total);
      }
      WriteOut(a, t, rep, total);
    }
  });
}

}  // namespace g4
