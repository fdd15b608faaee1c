// Per-ISA (include inside namespace g4::kernels::<isa> after the vector policy `V`): the attention
// primitives on KV-cache rows (AttnScores / AttnAccumulate in kernels.h). Rows are read in place and
// converted 16 elements at a time in registers (exactly, as DequantizeRow), each converted row
// chunk serving a tile of queries.
//
// Fixed orders (so that a query's results never depend on the other queries or keys of the call):
//  * score of (query i, key j): 16 lane sums acc = fma(q[d..d+16], k[d..d+16], acc) over d in
//    order, then V::HSum;
//  * acc[i][d] = fma(p[i][j], v_j[d], acc[i][d]) over j in order.

// 16 elements [d, d + 16) of a cached row of type t, exactly (d a multiple of 16).
template <GgmlType kType>
inline typename V::F LoadKv(const uint8_t* row, int d) {
  if constexpr (kType == GgmlType::F32) {
    return V::FLoad(reinterpret_cast<const float*>(row) + d);
  } else if constexpr (kType == GgmlType::F16) {
    return V::LoadF16(reinterpret_cast<const uint16_t*>(row) + d);
  } else if constexpr (kType == GgmlType::BF16) {
    return V::LoadBf16(reinterpret_cast<const uint16_t*>(row) + d);
  } else if constexpr (kType == GgmlType::Q8_0) {
    const uint8_t* blk = row + (d / 32) * 34;
    uint16_t h;
    std::memcpy(&h, blk, 2);
    return V::Mul(V::LoadI8(reinterpret_cast<const int8_t*>(blk + 2 + d % 32)), V::FSet1(HalfToFloat(h)));
  } else {
    static_assert(kType == GgmlType::Q4_0);
    const uint8_t* blk = row + (d / 32) * 18;
    uint16_t h;
    std::memcpy(&h, blk, 2);
    return V::Mul(V::LoadNibbles(blk + 2, d % 32 != 0, 8), V::FSet1(HalfToFloat(h)));
  }
}

// Bytes of a cached row of hd elements (RowBytes, written here so that no inline function of a
// shared header is compiled with this file's instruction-set flags).
template <GgmlType kType>
constexpr int64_t KvRowBytes(int hd) {
  if constexpr (kType == GgmlType::F32) return 4 * hd;
  if constexpr (kType == GgmlType::F16 || kType == GgmlType::BF16) return 2 * hd;
  if constexpr (kType == GgmlType::Q8_0) return hd / 32 * 34;
  return hd / 32 * 18;  // Q4_0
}

template <GgmlType kType, int KT, int PT>
void ScoresTile(const float* q, int64_t ldq, const uint8_t* k, int64_t k_stride, int hd, float* s, int64_t lds) {
  using F = typename V::F;
  F acc[KT][PT];
#pragma GCC unroll 16
  for (int j = 0; j < KT; ++j) {
#pragma GCC unroll 16
    for (int i = 0; i < PT; ++i) acc[j][i] = V::FZero();
  }
  for (int d = 0; d < hd; d += 16) {
    F kv[KT];
#pragma GCC unroll 16
    for (int j = 0; j < KT; ++j) kv[j] = LoadKv<kType>(k + j * k_stride, d);
#pragma GCC unroll 16
    for (int i = 0; i < PT; ++i) {
      const F qv = V::FLoad(q + i * ldq + d);
#pragma GCC unroll 16
      for (int j = 0; j < KT; ++j) acc[j][i] = V::Fma(qv, kv[j], acc[j][i]);
    }
  }
#pragma GCC unroll 16
  for (int j = 0; j < KT; ++j) {
#pragma GCC unroll 16
    for (int i = 0; i < PT; ++i) s[i * lds + j] = V::HSum(acc[j][i]);
  }
}

// Keys prefetched ahead of the tile being scored: the hardware prefetcher restarts at every 4 KB
// page, and with the 12B's 1 KB rows a tile of keys is one page, so without this every tile's first
// query pass waits on memory.
constexpr int kAttnPrefetchKeys = 8;

template <int kLocality = 3>
inline void PrefetchRows(const uint8_t* rows, int64_t stride, int n, int64_t row_bytes) {
  for (int j = 0; j < n; ++j) {
    for (int64_t at = 0; at < row_bytes; at += 64) __builtin_prefetch(rows + j * stride + at, 0, kLocality);
  }
}

template <GgmlType kType>
void AttnScoresT(const float* q, int64_t ldq, int nq, const uint8_t* k, int64_t k_stride, int nk, int hd, float* s,
                 int64_t lds, const uint8_t* also, int64_t also_stride, int64_t also_bytes) {
  constexpr int KT = V::kAttnKeys, PT = V::kAttnQueries;
  const int64_t row_bytes = KvRowBytes<kType>(hd);
  PrefetchRows(k, k_stride, std::min(nk, kAttnPrefetchKeys), row_bytes);
  for (int j0 = 0; j0 < nk; j0 += KT) {
    const int kt = std::min(KT, nk - j0);
    const int ahead = j0 + kAttnPrefetchKeys;
    if (ahead < nk) PrefetchRows(k + ahead * k_stride, k_stride, std::min(KT, nk - ahead), row_bytes);
    if (also != nullptr) PrefetchRows<2>(also + j0 * also_stride, also_stride, kt, also_bytes);
    for (int i0 = 0; i0 < nq; i0 += PT) {
      const int pt = std::min(PT, nq - i0);
      WithCount<KT>(kt, [&]<int NK>() {
        WithCount<PT>(pt, [&]<int NQ>() {
          ScoresTile<kType, NK, NQ>(q + i0 * ldq, ldq, k + j0 * k_stride, k_stride, hd, s + i0 * lds + j0, lds);
        });
      });
    }
  }
}

template <GgmlType kType, int DT, int PT>
void AccumulateTile(const float* p, int64_t ldp, int nk, const uint8_t* v, int64_t v_stride, int d0, float* acc,
                    int64_t ldacc) {
  using F = typename V::F;
  F a[PT][DT];
#pragma GCC unroll 16
  for (int i = 0; i < PT; ++i) {
#pragma GCC unroll 16
    for (int t = 0; t < DT; ++t) a[i][t] = V::FLoad(acc + i * ldacc + d0 + 16 * t);
  }
  for (int j = 0; j < nk; ++j) {
    F vv[DT];
#pragma GCC unroll 16
    for (int t = 0; t < DT; ++t) vv[t] = LoadKv<kType>(v + j * v_stride, d0 + 16 * t);
#pragma GCC unroll 16
    for (int i = 0; i < PT; ++i) {
      const F pv = V::FSet1(p[i * ldp + j]);
#pragma GCC unroll 16
      for (int t = 0; t < DT; ++t) a[i][t] = V::Fma(pv, vv[t], a[i][t]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < PT; ++i) {
#pragma GCC unroll 16
    for (int t = 0; t < DT; ++t) V::FStore(acc + i * ldacc + d0 + 16 * t, a[i][t]);
  }
}

template <GgmlType kType>
void AttnAccumulateT(const float* p, int64_t ldp, int nq, const uint8_t* v, int64_t v_stride, int nk, int hd,
                     float* acc, int64_t ldacc) {
  constexpr int DT = V::kAttnDims, PT = V::kAttnQueries;
  for (int d0 = 0; d0 < hd; d0 += 16 * DT) {
    const int dt = std::min(DT, (hd - d0) / 16);
    for (int i0 = 0; i0 < nq; i0 += PT) {
      const int pt = std::min(PT, nq - i0);
      WithCount<DT>(dt, [&]<int ND>() {
        WithCount<PT>(pt, [&]<int NQ>() {
          AccumulateTile<kType, ND, NQ>(p + i0 * ldp, ldp, nk, v, v_stride, d0, acc + i0 * ldacc, ldacc);
        });
      });
    }
  }
}

template <template <GgmlType> class Fn, typename... Args>
void WithKvType(GgmlType t, Args... args) {
  switch (t) {
    case GgmlType::F32: return Fn<GgmlType::F32>::Run(args...);
    case GgmlType::F16: return Fn<GgmlType::F16>::Run(args...);
    case GgmlType::BF16: return Fn<GgmlType::BF16>::Run(args...);
    case GgmlType::Q8_0: return Fn<GgmlType::Q8_0>::Run(args...);
    case GgmlType::Q4_0: return Fn<GgmlType::Q4_0>::Run(args...);
    default: Fail("attention: KV cache type %s is not supported", TypeName(t));
  }
}
template <GgmlType kType>
struct ScoresFn {
  static void Run(const float* q, int64_t ldq, int nq, const uint8_t* k, int64_t ks, int nk, int hd, float* s,
                  int64_t lds, const uint8_t* also, int64_t also_stride, int64_t also_bytes) {
    AttnScoresT<kType>(q, ldq, nq, k, ks, nk, hd, s, lds, also, also_stride, also_bytes);
  }
};
template <GgmlType kType>
struct AccumulateFn {
  static void Run(const float* p, int64_t ldp, int nq, const uint8_t* v, int64_t vs, int nk, int hd, float* acc,
                  int64_t ldacc) {
    AttnAccumulateT<kType>(p, ldp, nq, v, vs, nk, hd, acc, ldacc);
  }
};

inline void AttnScoresImpl(const float* q, int64_t ldq, int nq, GgmlType kt, const uint8_t* k, int64_t k_stride,
                           int nk, int hd, float* s, int64_t lds, const uint8_t* also, int64_t also_stride,
                           int64_t also_bytes) {
  WithKvType<ScoresFn>(kt, q, ldq, nq, k, k_stride, nk, hd, s, lds, also, also_stride, also_bytes);
}
inline void AttnAccumulateImpl(const float* p, int64_t ldp, int nq, GgmlType vt, const uint8_t* v, int64_t v_stride,
                               int nk, int hd, float* acc, int64_t ldacc) {
  WithKvType<AccumulateFn>(vt, p, ldp, nq, v, v_stride, nk, hd, acc, ldacc);
}
