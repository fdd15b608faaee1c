// Per-ISA (include inside namespace g4::kernels::<isa> after decode-inl.h and acts-inl.h): the
// MatMul kernels and loops shared by the SIMD instruction sets, written against the ISA's vector
// policy `V`, whose I / F types hold 16 int32 / float lanes: one lane per row of a panel (one
// AVX-512 register, two AVX2 registers).
//
// Work is split over threads by groups of V::kPanels panels (panel.h). In general a thread walks
// its group's columns in chunks, decodes the chunk of each panel (levels and scales, or f32 values)
// into an L1-resident buffer, and runs a register-tile kernel (V::kPanels panels x T tokens) over
// every token tile: with many tokens (prompt processing, compute-bound) each decoded chunk serves
// them all. Quantized weights with few tokens (generation, bandwidth-bound; V::kDirectTokens,
// AVX-512 only) skip the buffer: QuantTileK (K-quants) and QuantTileG (blocks of 32) decode in
// registers and dot straight from the packed tiles, with software prefetch, so weights stream at
// memory speed.
//
// Every output lane is one row: it accumulates its own row's blocks in column order, with the
// formula of RefDotQuant / RefDotFloat (ops.h) and no horizontal sums, so its value does not depend
// on the token tile, the panel group, the chunking or the instruction set. Between column chunks
// the accumulator is stored in y and loaded again, which is exact.

// Calls f.template operator()<N>() for N = n (1 <= n <= kMax).
template <int kMax, typename Fn>
inline void WithCount(int64_t n, Fn&& f) {
  if constexpr (kMax >= 1) {
    if (n == kMax) {
      f.template operator()<kMax>();
    } else {
      WithCount<kMax - 1>(n, f);
    }
  }
}


constexpr int64_t kQuantChunk = 1024;  // integer path: columns decoded at a time (multiple of 256)
constexpr int64_t kFloatChunk = 256;   // float path

// Decoded-buffer sizes per panel for a chunk of kc columns.
inline size_t DecodedQBytes(int64_t kc) { return static_cast<size_t>(kc * kPanelRows); }
inline size_t DecodedParams(int64_t kc) { return static_cast<size_t>(kc / 16 * kPanelRows); }  // >= any class

inline int NRows(const MatMulArgs& a, int64_t panel) {
  return static_cast<int>(std::min<int64_t>(kPanelRows, a.w.rows - panel * kPanelRows));
}

// Tiles of blocks [b0, b1) of a panel: in place in the packed matrix, or packed into scratch.
inline const uint8_t* PanelTiles(const Matrix& w, int64_t panel, int64_t b0, int64_t b1, uint8_t* scratch) {
  if (w.packed != nullptr) return w.packed + panel * PanelBytes(w) + b0 * TileBytes(w.type);
  PackPanelBlocks(w, panel * kPanelRows, b0, b1, scratch);
  return scratch;
}

// ---- Integer kernels (Math::kFast, quantized weights) ----

// The float steps of K-quant super-block sb for NP panels x T tokens, those of RefDotQuant (ops.h):
// acc = fma(sumi, xd * d, acc), then for Q4_K/Q5_K acc = fma(summ, -(xd * dmin), acc), where
// summ = sum_i (m_2i, m_2i+1) . (xsum_2i, xsum_2i+1) with mins(p, i) the pairs of panel p.
template <KClass kClass, int NP, int T, typename MinsFn>
inline void SuperBlockFloat(typename V::F (&acc)[NP][T], const typename V::I (&sumi)[NP][T], const typename V::F* d,
                            const typename V::F* dmin, MinsFn mins, const QuantActs& a, int64_t t0, int64_t sb) {
  using I = typename V::I;
  using F = typename V::F;
  constexpr int kGroups = kClass == KClass::kK ? 8 : 16;
  I summ[NP][T];
  if constexpr (kClass == KClass::kK) {
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
#pragma GCC unroll 16
      for (int p = 0; p < NP; ++p) summ[p][t] = V::Zero();
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
#pragma GCC unroll 16
      for (int p = 0; p < NP; ++p) {
        const I mp = mins(p, i);
#pragma GCC unroll 16
        for (int t = 0; t < T; ++t) summ[p][t] = V::DotPairs(summ[p][t], mp, a.spt(t0 + t)[sb * 4 + i]);
      }
    }
  }
#pragma GCC unroll 16
  for (int t = 0; t < T; ++t) {
    const F xd = V::FSet1(a.dt(t0 + t)[sb * kGroups]);
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p) {
      acc[p][t] = V::Fma(V::ToF(sumi[p][t]), V::Mul(xd, d[p]), acc[p][t]);
      if constexpr (kClass == KClass::kK) {
        acc[p][t] = V::Fma(V::ToF(summ[p][t]), V::Neg(V::Mul(xd, dmin[p])), acc[p][t]);
      }
    }
  }
}

// The start and end of every register tile of NP panels x T tokens: xq[t] points at token t0 + t's
// quantized activations from column k0; acc starts from y (when accumulating over column chunks) or
// zero, and is stored back to y, rows past nrows[p] untouched.
template <int NP, int T>
inline void BeginTile(typename V::F (&acc)[NP][T], const int8_t* (&xq)[T], const QuantActs& a, int64_t t0, int64_t k0,
                      const float* y, int64_t ldy, const int* nrows, bool accumulate) {
#pragma GCC unroll 16
  for (int t = 0; t < T; ++t) {
    xq[t] = a.qt(t0 + t) + k0;
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p) acc[p][t] = accumulate ? V::LoadRows(y + t * ldy + p * 16, nrows[p]) : V::FZero();
  }
}
template <int NP, int T>
inline void EndTile(const typename V::F (&acc)[NP][T], float* y, int64_t ldy, const int* nrows) {
#pragma GCC unroll 16
  for (int t = 0; t < T; ++t) {
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p) V::StoreRows(y + t * ldy + p * 16, acc[p][t], nrows[p]);
  }
}

// acc[p][t] for NP panels x T tokens over decoded blocks [0, nb) of Ty, which are activation blocks
// starting at column k0. Loads the accumulators from y when `accumulate`.
template <GgmlType kType, int NP, int T>
void QuantTile(const Decoded* dec, int64_t nb, const QuantActs& a, int64_t t0, int64_t k0, float* y, int64_t ldy,
               const int* nrows, bool accumulate) {
  using Ty = Tile<kType>;
  using I = typename V::I;
  using F = typename V::F;
  constexpr bool kSigned = kType == GgmlType::Q8_0 && V::kSignedQ8;
  F acc[NP][T];
  const int8_t* xq[T];
  BeginTile<NP, T>(acc, xq, a, t0, k0, y, ldy, nrows, accumulate);
  auto dot = [](I acc_i, I w, const int8_t* x) { return kSigned ? V::Dot4Signed(acc_i, w, x) : V::Dot4(acc_i, w, x); };
  if constexpr (Ty::kClass == KClass::kG32 || Ty::kClass == KClass::kG32Min) {
    const int64_t g0 = k0 / 32;
    for (int64_t g = 0; g < nb; ++g) {
      I is[NP][T];
#pragma GCC unroll 16
      for (int t = 0; t < T; ++t) {
        const I bias = Ty::kOffset != 0 ? V::Set1(a.biast(t0 + t)[g0 + g]) : V::Zero();
#pragma GCC unroll 16
        for (int p = 0; p < NP; ++p) is[p][t] = bias;
      }
#pragma GCC unroll 8
      for (int s = 0; s < 8; ++s) {
        I w[NP];
#pragma GCC unroll 16
        for (int p = 0; p < NP; ++p) w[p] = V::Load(dec[p].q + (8 * g + s) * 64);
#pragma GCC unroll 16
        for (int t = 0; t < T; ++t) {
#pragma GCC unroll 16
          for (int p = 0; p < NP; ++p) is[p][t] = dot(is[p][t], w[p], xq[t] + 32 * g + 4 * s);
        }
      }
#pragma GCC unroll 16
      for (int t = 0; t < T; ++t) {
        const F xd = V::FSet1(a.dt(t0 + t)[g0 + g]);
#pragma GCC unroll 16
        for (int p = 0; p < NP; ++p) {
          acc[p][t] = V::Fma(V::ToF(is[p][t]), V::Mul(V::FLoad(dec[p].f0 + 16 * g), xd), acc[p][t]);
          if constexpr (Ty::kClass == KClass::kG32Min) {
            acc[p][t] = V::Fma(V::FLoad(dec[p].f1 + 16 * g), V::FSet1(a.dsumt(t0 + t)[g0 + g]), acc[p][t]);
          }
        }
      }
    }
  } else {
    constexpr int kGroups = Ty::kClass == KClass::kK ? 8 : 16, kSteps = 64 / kGroups;  // per super-block
    const int64_t sb0 = k0 / 256;
    for (int64_t b = 0; b < nb; ++b) {
      I sumi[NP][T];
#pragma GCC unroll 16
      for (int t = 0; t < T; ++t) {
#pragma GCC unroll 16
        for (int p = 0; p < NP; ++p) sumi[p][t] = V::Zero();
      }
      for (int j = 0; j < kGroups; ++j) {
        I is[NP][T];
#pragma GCC unroll 16
        for (int t = 0; t < T; ++t) {
          const I bias = Ty::kOffset != 0 ? V::Set1(a.biast(t0 + t)[(sb0 + b) * kGroups + j]) : V::Zero();
#pragma GCC unroll 16
          for (int p = 0; p < NP; ++p) is[p][t] = bias;
        }
        const int64_t step0 = b * 64 + j * kSteps;
#pragma GCC unroll 8
        for (int s = 0; s < kSteps; ++s) {
          I w[NP];
#pragma GCC unroll 16
          for (int p = 0; p < NP; ++p) w[p] = V::Load(dec[p].q + (step0 + s) * 64);
#pragma GCC unroll 16
          for (int t = 0; t < T; ++t) {
#pragma GCC unroll 16
            for (int p = 0; p < NP; ++p) is[p][t] = dot(is[p][t], w[p], xq[t] + 4 * (step0 + s));
          }
        }
#pragma GCC unroll 16
        for (int p = 0; p < NP; ++p) {
          const I sc = V::Load(dec[p].i0 + (b * kGroups + j) * 16);
#pragma GCC unroll 16
          for (int t = 0; t < T; ++t) sumi[p][t] = V::Add(sumi[p][t], V::MulLo(is[p][t], sc));
        }
      }
      F d[NP], dmin[NP] = {};
#pragma GCC unroll 16
      for (int p = 0; p < NP; ++p) {
        d[p] = V::FLoad(dec[p].f0 + 16 * b);
        if constexpr (Ty::kClass == KClass::kK) dmin[p] = V::FLoad(dec[p].f1 + 16 * b);
      }
      SuperBlockFloat<Ty::kClass, NP, T>(
          acc, sumi, d, dmin, [&](int p, int i) { return V::Load(dec[p].i1 + (b * 4 + i) * 16); }, a, t0, sb0 + b);
    }
  }
  EndTile<NP, T>(acc, y, ldy, nrows);
}

// Few tokens (generation), K-quants: the levels are decoded in registers, unit by unit
// (decode-inl.h), and dotted at once, straight from the packed tiles of NP panels (blocks [0, nb)
// of the run starting at column k0, tokens 0..T-1). Nothing is stored but y: each weight byte is
// loaded once, so the kernel streams at memory speed, and no decoded buffer is written and read
// back (with so few tokens there is no reuse to pay for it). Per group of 32 (16 for Q6_K) the
// int32 dot product is scaled by the group's 6-bit (8-bit) scale with one integer multiply and
// summed over the super-block; then the float steps are QuantTile's (SuperBlockFloat), so both
// kernels give the same bits.
// The prefetch runs kPrefetchTiles tiles ahead in each panel; near a panel's end it moves on by
// `wrap` bytes, to the tiles that the same register-tile slot reads next (the panel NP further on,
// when the caller walks consecutive groups of NP panels): without it, every group after the first
// started NP - 1 of its panels unprefetched, a sixth of the reads of E2B's 1536-column matrices
// (12288 x 1536 Q4_K streamed at 17 GB/s, 20-21 with the wrap; E2B generation 5% faster). Two
// tiles ahead beat one and three (by 2-5%), and no software prefetch at all was 20% slower.
constexpr int64_t kPrefetchTiles = 2;  // QuantTileK: software prefetch distance, in tiles of each panel

template <GgmlType kType, int NP, int T>
void QuantTileK(const uint8_t* const* tiles, int64_t nb, const QuantActs& a, int64_t k0, float* y, int64_t ldy,
                const int* nrows, bool accumulate, int64_t wrap) {
  using Ty = Tile<kType>;
  using I = typename V::I;
  using F = typename V::F;
  F acc[NP][T];
  const int8_t* xq[T];
  BeginTile<NP, T>(acc, xq, a, 0, k0, y, ldy, nrows, accumulate);
  const int64_t sb0 = k0 / 256;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* tile[NP];
    const uint8_t* ahead[NP];
    typename Ty::Scales sc[NP];
    I sumi[NP][T];
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p) {
      tile[p] = tiles[p] + b * Ty::kTileBytes;
      ahead[p] = tile[p] + kPrefetchTiles * Ty::kTileBytes + (b + kPrefetchTiles >= nb ? wrap : 0);
      sc[p] = typename Ty::Scales(tile[p] + Ty::kScalesAt);
#pragma GCC unroll 16
      for (int t = 0; t < T; ++t) sumi[p][t] = V::Zero();
    }
    const int64_t g0 = (sb0 + b) * Ty::kGroups;
#pragma GCC unroll 8
    for (int u = 0; u < Ty::kUnits; ++u) {
      I is[NP][T][Ty::kUnitGroups];
#pragma GCC unroll 16
      for (int t = 0; t < T; ++t) {
#pragma GCC unroll 4
        for (int k = 0; k < Ty::kUnitGroups; ++k) {
          const I bias = Ty::kOffset != 0 ? V::Set1(a.biast(t)[g0 + Ty::UnitGroup(u, k)]) : V::Zero();
#pragma GCC unroll 16
          for (int p = 0; p < NP; ++p) is[p][t][k] = bias;
        }
      }
#pragma GCC unroll 8
      for (int s = 0; s < Ty::kGroupSteps; ++s) {
#pragma GCC unroll 16
        for (int p = 0; p < NP; ++p) {
          // The tile kPrefetchTiles ahead, a line or two per step: spread over the tile's work, the
          // prefetches keep memory busy while the levels are dotted (all at once, they filled the
          // core's line-fill buffers and stalled it until memory had answered most of them).
          constexpr int kSteps = Ty::kUnits * Ty::kGroupSteps, kLines = (Ty::kTileBytes + 63) / 64;
          const int step = u * Ty::kGroupSteps + s;
#pragma GCC unroll 4
          for (int l = step * kLines / kSteps; l < (step + 1) * kLines / kSteps; ++l) {
            __builtin_prefetch(ahead[p] + 64 * l);
          }
          U8x64 lv[Ty::kUnitGroups];
          Ty::UnitLevels(tile[p], u, s, lv);
#pragma GCC unroll 4
          for (int k = 0; k < Ty::kUnitGroups; ++k) {
            const I w = V::Load(&lv[k]);
            const int64_t col = 256 * b + 4 * (Ty::kGroupSteps * Ty::UnitGroup(u, k) + s);
#pragma GCC unroll 16
            for (int t = 0; t < T; ++t) is[p][t][k] = V::Dot4(is[p][t][k], w, xq[t] + col);
          }
        }
      }
#pragma GCC unroll 16
      for (int p = 0; p < NP; ++p) {
#pragma GCC unroll 4
        for (int k = 0; k < Ty::kUnitGroups; ++k) {
          typename Ty::Scales::Vec scale;
          sc[p].Scale(Ty::UnitGroup(u, k), &scale);
          const I scv = V::Load(&scale);
#pragma GCC unroll 16
          for (int t = 0; t < T; ++t) sumi[p][t] = V::Add(sumi[p][t], V::MulLo(is[p][t][k], scv));
        }
      }
    }
    F d[NP], dmin[NP] = {};
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p) {
      d[p] = V::LoadF16(reinterpret_cast<const uint16_t*>(Ty::Halves(tile[p])));
      if constexpr (Ty::kClass == KClass::kK) dmin[p] = V::LoadF16(reinterpret_cast<const uint16_t*>(Ty::MinHalves(tile[p])));
    }
    SuperBlockFloat<Ty::kClass, NP, T>(
        acc, sumi, d, dmin,
        [&](int p, int i) {
          if constexpr (Ty::kClass == KClass::kK) {
            U32x16 mp;
            sc[p].MinPair(i, &mp);
            return V::Load(&mp);
          } else {
            return V::Zero();
          }
        },
        a, 0, sb0 + b);
  }
  EndTile<NP, T>(acc, y, ldy, nrows);
}

// Few tokens (generation), types with blocks of 32 (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0): as QuantTileK,
// the levels come from registers (Tile::LoadLevels) straight from the packed tiles of NP panels,
// with QuantTile's float steps per block, so both kernels give the same bits. Tiles are small
// (288-544 bytes), so the prefetch runs kPrefetchTilesG32 tiles ahead (and wraps as QuantTileK's).
constexpr int64_t kPrefetchTilesG32 = 8;

template <GgmlType kType, int NP, int T>
void QuantTileG(const uint8_t* const* tiles, int64_t nb, const QuantActs& a, int64_t k0, float* y, int64_t ldy,
                const int* nrows, bool accumulate, int64_t wrap) {
  using Ty = Tile<kType>;
  using I = typename V::I;
  using F = typename V::F;
  constexpr bool kSigned = kType == GgmlType::Q8_0 && V::kSignedQ8;
  F acc[NP][T];
  const int8_t* xq[T];
  BeginTile<NP, T>(acc, xq, a, 0, k0, y, ldy, nrows, accumulate);
  auto dot = [](I acc_i, I w, const int8_t* x) { return kSigned ? V::Dot4Signed(acc_i, w, x) : V::Dot4(acc_i, w, x); };
  const int64_t g0 = k0 / 32;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* tile[NP];
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p) {
      tile[p] = tiles[p] + b * Ty::kTileBytes;
      const uint8_t* ahead = tile[p] + kPrefetchTilesG32 * Ty::kTileBytes + (b + kPrefetchTilesG32 >= nb ? wrap : 0);
#pragma GCC unroll 16
      for (int64_t at = 0; at < Ty::kTileBytes; at += 64) __builtin_prefetch(ahead + at);
    }
    I is[NP][T];
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
      const I bias = Ty::kOffset != 0 ? V::Set1(a.biast(t)[g0 + b]) : V::Zero();
#pragma GCC unroll 16
      for (int p = 0; p < NP; ++p) is[p][t] = bias;
    }
#pragma GCC unroll 8
    for (int l = 0; l < Ty::kLoads; ++l) {
#pragma GCC unroll 16
      for (int p = 0; p < NP; ++p) {
        U8x64 lv[Ty::kPerLoad];
        Ty::LoadLevels(tile[p], l, lv);
#pragma GCC unroll 2
        for (int k = 0; k < Ty::kPerLoad; ++k) {
          const I w = V::Load(&lv[k]);
#pragma GCC unroll 16
          for (int t = 0; t < T; ++t) is[p][t] = dot(is[p][t], w, xq[t] + 32 * b + 4 * Ty::StepOf(l, k));
        }
      }
    }
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
      const F xd = V::FSet1(a.dt(t)[g0 + b]);
#pragma GCC unroll 16
      for (int p = 0; p < NP; ++p) {
        const F d = V::LoadF16(reinterpret_cast<const uint16_t*>(Ty::Halves(tile[p])));
        acc[p][t] = V::Fma(V::ToF(is[p][t]), V::Mul(d, xd), acc[p][t]);
        if constexpr (Ty::kClass == KClass::kG32Min) {
          const F m = V::LoadF16(reinterpret_cast<const uint16_t*>(Ty::MinHalves(tile[p])));
          acc[p][t] = V::Fma(m, V::FSet1(a.dsumt(t)[g0 + b]), acc[p][t]);
        }
      }
    }
  }
  EndTile<NP, T>(acc, y, ldy, nrows);
}

// Points dec at this thread's decoded buffers for V::kPanels panels of kc columns.
inline void DecodedBuffers(KernelScratch& s, int64_t kc, Decoded* dec) {
  uint8_t* q = s.q.Get<uint8_t>(V::kPanels * DecodedQBytes(kc));
  float* f0 = s.f0.Get<float>(V::kPanels * DecodedParams(kc));
  float* f1 = s.f1.Get<float>(V::kPanels * DecodedParams(kc));
  int32_t* i0 = s.i0.Get<int32_t>(V::kPanels * DecodedParams(kc));
  int32_t* i1 = s.i1.Get<int32_t>(V::kPanels * DecodedParams(kc));
  for (int p = 0; p < V::kPanels; ++p) {
    dec[p] = Decoded{q + p * DecodedQBytes(kc), f0 + p * DecodedParams(kc), f1 + p * DecodedParams(kc),
                     i0 + p * DecodedParams(kc), i1 + p * DecodedParams(kc)};
  }
}

// Scratch for packing a GGUF-layout matrix chunk by chunk: V::kPanels runs of kc columns.
inline size_t PackedScratchBytes(GgmlType t, int64_t kc) {
  return static_cast<size_t>(V::kPanels * (kc / Traits(t).block_size) * TileBytes(t));
}

// Which kernel a call takes with few tokens (the dispatch in QuantPanels and FloatPanels, and the
// task size in PanelsPerTask, both ask here): quantized weights with at most V::kDirectTokens tokens
// go to QuantPanelsDirect (GGUF-layout weights too, packed into scratch), float weights packed in
// place with at most one token tile to FloatPanelsDirect.
inline bool QuantDirect(const MatMulArgs& a) { return a.acts != nullptr && a.n <= V::kDirectTokens; }
inline bool FloatDirect(const MatMulArgs& a) {
  return a.acts == nullptr && IsFloatType(a.w.type) && a.w.packed != nullptr && a.n <= V::kFloatTokens;
}

// At most V::kDirectTokens tokens: QuantTileK (K-quants) or QuantTileG (blocks of 32) over whole
// rows of packed weights (a GGUF-layout matrix is packed into scratch kQuantChunk columns at a time). At most 4 / T panels
// per register tile keep the accumulators in registers.
template <GgmlType kType>
void QuantPanelsDirect(const MatMulArgs& a, int64_t p0, int64_t p1, KernelScratch& s) {
  const int64_t cols = a.w.cols, bs = Tile<kType>::kBlock;
  const bool in_place = a.w.packed != nullptr;
  const int64_t max_kc = in_place ? cols : std::min(cols, kQuantChunk);
  uint8_t* packed = in_place ? nullptr : s.packed.Get<uint8_t>(PackedScratchBytes(kType, max_kc));
  for (int64_t pg = p0; pg < p1; pg += V::kPanels) {
    const int np = static_cast<int>(std::min<int64_t>(V::kPanels, p1 - pg));
    int nrows[V::kPanels];
    for (int p = 0; p < np; ++p) nrows[p] = NRows(a, pg + p);
    for (int64_t k0 = 0; k0 < cols; k0 += max_kc) {
      const int64_t nb = std::min(max_kc, cols - k0) / bs;
      const uint8_t* tiles[V::kPanels];
      for (int p = 0; p < np; ++p) {
        uint8_t* scratch = in_place ? nullptr : packed + p * (max_kc / bs) * TileBytes(kType);
        tiles[p] = PanelTiles(a.w, pg + p, k0 / bs, k0 / bs + nb, scratch);
      }
      WithCount<V::kDirectTokens>(a.n, [&]<int T>() {
        constexpr int kNP = std::max(1, std::min(V::kPanels, 4 / T));
        for (int p = 0; p < np; p += kNP) {
          WithCount<kNP>(std::min(kNP, np - p), [&]<int NP>() {
            float* y = a.y + (pg + p) * kPanelRows;
            // Packed in place, the panel NP further on is NP - 1 panels past this one's end.
            const int64_t wrap = in_place ? (NP - 1) * PanelBytes(a.w) : 0;
            if constexpr (Tile<kType>::kBlock == 256) {
              QuantTileK<kType, NP, T>(tiles + p, nb, *a.acts, k0, y, a.ldy, nrows + p, k0 > 0, wrap);
            } else {
              QuantTileG<kType, NP, T>(tiles + p, nb, *a.acts, k0, y, a.ldy, nrows + p, k0 > 0, wrap);
            }
          });
        }
      });
    }
  }
}

template <GgmlType kType>
void QuantPanels(const MatMulArgs& a, int64_t p0, int64_t p1, KernelScratch& s) {
  using Ty = Tile<kType>;
  if constexpr (V::kDirectTokens > 0) {
    if (QuantDirect(a)) return QuantPanelsDirect<kType>(a, p0, p1, s);
  }
  const int64_t cols = a.w.cols, bs = Ty::kBlock;
  const int64_t max_kc = std::min(cols, kQuantChunk);
  Decoded dec[V::kPanels];
  DecodedBuffers(s, max_kc, dec);
  uint8_t* packed = s.packed.Get<uint8_t>(PackedScratchBytes(kType, max_kc));
  for (int64_t pg = p0; pg < p1; pg += V::kPanels) {
    const int np = static_cast<int>(std::min<int64_t>(V::kPanels, p1 - pg));
    int nrows[V::kPanels];
    for (int p = 0; p < np; ++p) nrows[p] = NRows(a, pg + p);
    for (int64_t k0 = 0; k0 < cols; k0 += kQuantChunk) {
      const int64_t kc = std::min(kQuantChunk, cols - k0), nb = kc / bs;
      for (int p = 0; p < np; ++p) Ty::Decode(PanelTiles(a.w, pg + p, k0 / bs, k0 / bs + nb, packed), nb, dec[p]);
      for (int64_t t0 = 0; t0 < a.n; t0 += V::kQuantTokens) {
        const int64_t nt = std::min<int64_t>(V::kQuantTokens, a.n - t0);
        float* y = a.y + t0 * a.ldy + pg * kPanelRows;
        WithCount<V::kPanels>(np, [&]<int NP>() {
          WithCount<V::kQuantTokens>(nt, [&]<int T>() {
            QuantTile<kType, NP, T>(dec, nb, *a.acts, t0, k0, y, a.ldy, nrows, k0 > 0);
          });
        });
      }
    }
  }
}

// ---- Float kernels (F32/F16/BF16 weights; every type with Math::kExact) ----

// acc[p][t] = fma(w[p][k], x[t][k], acc) for k < kc, over NP f32 panels [kc][16]; x points at
// token t0, column k0.
template <int NP, int T>
void FloatTile(const float* const* pf, int64_t kc, const float* x, int64_t ldx, float* y, int64_t ldy,
               const int* nrows, bool accumulate) {
  using F = typename V::F;
  F acc[NP][T];
#pragma GCC unroll 16
  for (int t = 0; t < T; ++t) {
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p) acc[p][t] = accumulate ? V::LoadRows(y + t * ldy + p * 16, nrows[p]) : V::FZero();
  }
  for (int64_t k = 0; k < kc; ++k) {
    F w[NP];
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p) w[p] = V::FLoad(pf[p] + k * 16);
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
      const F xv = V::FSet1(x[t * ldx + k]);
#pragma GCC unroll 16
      for (int p = 0; p < NP; ++p) acc[p][t] = V::Fma(w[p], xv, acc[p][t]);
    }
  }
  EndTile<NP, T>(acc, y, ldy, nrows);
}

// The f32 panel [kc][16] of columns [k0, k0 + kc) of a panel: in place for packed F32, else
// converted or dequantized (exactly) into `out`.
template <GgmlType kType>
const float* FloatPanelOf(const Matrix& w, int64_t panel, int64_t k0, int64_t kc, float* out, uint8_t* packed,
                          const Decoded& dec) {
  if constexpr (kType == GgmlType::F32 || kType == GgmlType::F16 || kType == GgmlType::BF16) {
    const uint8_t* tiles = PanelTiles(w, panel, k0, k0 + kc, packed);
    if constexpr (kType == GgmlType::F32) {
      if (w.packed != nullptr) return reinterpret_cast<const float*>(tiles);
      std::memcpy(out, tiles, static_cast<size_t>(kc) * 64);
    } else if constexpr (kType == GgmlType::F16) {
      V::F16ToF32(reinterpret_cast<const uint16_t*>(tiles), out, kc * 16);
    } else {
      V::Bf16ToF32(reinterpret_cast<const uint16_t*>(tiles), out, kc * 16);
    }
    return out;
  } else {
    const int64_t bs = Tile<kType>::kBlock;
    Tile<kType>::Decode(PanelTiles(w, panel, k0 / bs, (k0 + kc) / bs, packed), kc / bs, dec);
    DequantDecoded<kType>(dec, kc, out);
    return out;
  }
}

// Column k of a packed float panel ([cols][16] of kType) as 16 floats (exact conversions).
template <GgmlType kType>
inline typename V::F LoadPanelColumn(const uint8_t* panel, int64_t k) {
  if constexpr (kType == GgmlType::F32) return V::FLoad(reinterpret_cast<const float*>(panel) + 16 * k);
  if constexpr (kType == GgmlType::F16) return V::LoadF16(reinterpret_cast<const uint16_t*>(panel) + 16 * k);
  if constexpr (kType == GgmlType::BF16) return V::LoadBf16(reinterpret_cast<const uint16_t*>(panel) + 16 * k);
}

// Few tokens (at most one token tile), float weights packed in place: each column of NP panels is
// converted in registers and used at once, instead of converted into an f32 buffer 256 columns at a
// time and read back (with one token tile there is no reuse to pay for the buffer). The same fma
// per column and row as FloatTile, in the same order, so the same bits.
constexpr int64_t kFloatPrefetchBytes = 2048;  // FloatTileDirect: software prefetch distance per panel

template <GgmlType kType, int NP, int T>
void FloatTileDirect(const uint8_t* const* panels, int64_t cols, const float* x, int64_t ldx, float* y, int64_t ldy,
                     const int* nrows) {
  using F = typename V::F;
  constexpr int64_t kColBytes = 16 * static_cast<int64_t>(kType == GgmlType::F32 ? 4 : 2);
  constexpr int64_t kPerLine = 64 / kColBytes;  // columns per cache line
  F acc[NP][T];
#pragma GCC unroll 16
  for (int t = 0; t < T; ++t) {
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p) acc[p][t] = V::FZero();
  }
  auto column = [&](int64_t k) {
    F w[NP];
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p) w[p] = LoadPanelColumn<kType>(panels[p], k);
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
      const F xv = V::FSet1(x[t * ldx + k]);
#pragma GCC unroll 16
      for (int p = 0; p < NP; ++p) acc[p][t] = V::Fma(w[p], xv, acc[p][t]);
    }
  };
  int64_t k = 0;
  for (; k + kPerLine <= cols; k += kPerLine) {
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p) __builtin_prefetch(panels[p] + k * kColBytes + kFloatPrefetchBytes);
#pragma GCC unroll 4
    for (int64_t i = 0; i < kPerLine; ++i) column(k + i);
  }
  for (; k < cols; ++k) column(k);
  EndTile<NP, T>(acc, y, ldy, nrows);
}

template <GgmlType kType>
void FloatPanelsDirect(const MatMulArgs& a, int64_t p0, int64_t p1) {
  const int64_t panel_bytes = PanelBytes(a.w);
  for (int64_t pg = p0; pg < p1; pg += V::kPanels) {
    const int np = static_cast<int>(std::min<int64_t>(V::kPanels, p1 - pg));
    int nrows[V::kPanels];
    const uint8_t* panels[V::kPanels];
    for (int p = 0; p < np; ++p) {
      nrows[p] = NRows(a, pg + p);
      panels[p] = a.w.packed + (pg + p) * panel_bytes;
    }
    WithCount<V::kPanels>(np, [&]<int NP>() {
      WithCount<V::kFloatTokens>(a.n, [&]<int T>() {
        FloatTileDirect<kType, NP, T>(panels, a.w.cols, a.x, a.ldx, a.y + pg * kPanelRows, a.ldy, nrows);
      });
    });
  }
}

template <GgmlType kType>
void FloatPanels(const MatMulArgs& a, int64_t p0, int64_t p1, KernelScratch& s) {
  if constexpr (kType == GgmlType::F32 || kType == GgmlType::F16 || kType == GgmlType::BF16) {
    if (FloatDirect(a)) return FloatPanelsDirect<kType>(a, p0, p1);
  }
  const int64_t cols = a.w.cols;
  // Quantized types dequantize whole blocks: chunks of 256 columns hold whole blocks of every type.
  const int64_t max_kc = std::min(cols, kFloatChunk);
  float* fbuf = s.fpanel.Get<float>(static_cast<size_t>(V::kPanels * max_kc * 16));
  uint8_t* packed = s.packed.Get<uint8_t>(static_cast<size_t>(max_kc * 64));  // >= 16 tiles of any type per chunk
  Decoded dec[V::kPanels];
  DecodedBuffers(s, max_kc, dec);
  for (int64_t pg = p0; pg < p1; pg += V::kPanels) {
    const int np = static_cast<int>(std::min<int64_t>(V::kPanels, p1 - pg));
    int nrows[V::kPanels];
    for (int p = 0; p < np; ++p) nrows[p] = NRows(a, pg + p);
    for (int64_t k0 = 0; k0 < cols; k0 += kFloatChunk) {
      const int64_t kc = std::min(kFloatChunk, cols - k0);
      const float* pf[V::kPanels];
      for (int p = 0; p < np; ++p) pf[p] = FloatPanelOf<kType>(a.w, pg + p, k0, kc, fbuf + p * max_kc * 16, packed, dec[0]);
      for (int64_t t0 = 0; t0 < a.n; t0 += V::kFloatTokens) {
        const int64_t nt = std::min<int64_t>(V::kFloatTokens, a.n - t0);
        WithCount<V::kPanels>(np, [&]<int NP>() {
          WithCount<V::kFloatTokens>(nt, [&]<int T>() {
            FloatTile<NP, T>(pf, kc, a.x + t0 * a.ldx + k0, a.ldx, a.y + t0 * a.ldy + pg * kPanelRows, a.ldy, nrows,
                             k0 > 0);
          });
        });
      }
    }
  }
}

// ---- Entry points of the IsaOps table ----

template <template <GgmlType> class Fn>
void WithType(const MatMulArgs& a, int64_t p0, int64_t p1, KernelScratch& s) {
  switch (a.w.type) {
    case GgmlType::F32: return Fn<GgmlType::F32>::Run(a, p0, p1, s);
    case GgmlType::F16: return Fn<GgmlType::F16>::Run(a, p0, p1, s);
    case GgmlType::BF16: return Fn<GgmlType::BF16>::Run(a, p0, p1, s);
    case GgmlType::Q4_0: return Fn<GgmlType::Q4_0>::Run(a, p0, p1, s);
    case GgmlType::Q4_1: return Fn<GgmlType::Q4_1>::Run(a, p0, p1, s);
    case GgmlType::Q5_0: return Fn<GgmlType::Q5_0>::Run(a, p0, p1, s);
    case GgmlType::Q5_1: return Fn<GgmlType::Q5_1>::Run(a, p0, p1, s);
    case GgmlType::Q8_0: return Fn<GgmlType::Q8_0>::Run(a, p0, p1, s);
    case GgmlType::Q4_K: return Fn<GgmlType::Q4_K>::Run(a, p0, p1, s);
    case GgmlType::Q5_K: return Fn<GgmlType::Q5_K>::Run(a, p0, p1, s);
    case GgmlType::Q6_K: return Fn<GgmlType::Q6_K>::Run(a, p0, p1, s);
    default: Fail("MatMul: weight type %s has no kernel", TypeName(a.w.type));
  }
}
template <GgmlType kType>
struct PanelsFn {
  static void Run(const MatMulArgs& a, int64_t p0, int64_t p1, KernelScratch& s) {
    if constexpr (kType == GgmlType::F32 || kType == GgmlType::F16 || kType == GgmlType::BF16) {
      FloatPanels<kType>(a, p0, p1, s);
    } else {
      if (a.acts != nullptr) {
        QuantPanels<kType>(a, p0, p1, s);
      } else {
        FloatPanels<kType>(a, p0, p1, s);
      }
    }
  }
};

// Panels per task. The few-token kernels over packed weights (FloatPanelsDirect, QuantPanelsDirect)
// stream memory: a task of about kStreamTaskBytes of weights (and at least 16 tasks a matrix, for
// balance) lets a thread read one long run of memory, which the hardware prefetchers follow; tasks
// of V::kPanels panels interleaved the two threads' reads every few KB (E2B generation, 2 threads:
// 10.4 -> 12.4 t/s). Otherwise V::kPanels panels, the register tile. The tail of a matrix is dealt
// in quarters of that (`tail`), so that one thread does not wait for the other's whole last task.
constexpr int64_t kStreamTaskBytes = int64_t{256} << 10;
inline int64_t PanelsPerTask(const MatMulArgs& a, bool tail) {
  if (a.w.packed == nullptr || !(QuantDirect(a) || FloatDirect(a))) return V::kPanels;
  const int64_t by_bytes = std::min(kStreamTaskBytes / PanelBytes(a.w), NumPanels(a.w.rows) / 16) / (tail ? 4 : 1);
  return std::max<int64_t>(V::kPanels, by_bytes / V::kPanels * V::kPanels);
}
inline void MatMulPanels(const MatMulArgs& a, int64_t p0, int64_t p1, KernelScratch* s) {
  WithType<PanelsFn>(a, p0, p1, *s);
}

// Reserves every scratch buffer at its largest size for this call's shape (see the paths above), so
// that a worker's first rows of a shape never allocate in the middle of a call.
inline void ReserveScratch(const MatMulArgs& a, KernelScratch* sp) {
  KernelScratch& s = *sp;
  const bool quant = a.acts != nullptr;
  const int64_t kc = std::min(a.w.cols, quant ? kQuantChunk : kFloatChunk);
  Decoded dec[V::kPanels];
  DecodedBuffers(s, kc, dec);
  s.packed.Get<uint8_t>(quant ? PackedScratchBytes(a.w.type, kc) : static_cast<size_t>(kc * 64));
  if (!quant) s.fpanel.Get<float>(static_cast<size_t>(V::kPanels * kc * 16));
}
