// Per-ISA (include inside namespace g4::kernels::<isa> after decode-inl.h and the ISA's kernel
// policy `K`): the loops shared by the SIMD instruction sets. K supplies the register-level
// kernels; this file supplies blocking, packing, scratch memory and the choice of strategy.
//
// Two strategies, chosen per call from the number of tokens n (thresholds per ISA, measured):
//  * Row path (few tokens: generation, speculative verification): quantized rows are decoded chunk
//    by chunk into an L1-resident buffer and dotted with every token (4 at a time); float rows are
//    read in place, 4 rows x 4 tokens per register tile. Weights stream from memory exactly once:
//    this is bandwidth-bound by design.
//  * Panel path (prompt processing): a thread packs K::kPanelRows consecutive rows x one chunk of
//    columns into a "panel" whose SIMD lanes are rows, then runs a register-tile microkernel
//    (kPanelRows rows x a few tokens) over all tokens. Each packed weight byte is reused by every
//    token, so this is compute-bound. Panel layouts (PR = kPanelRows, kc = chunk columns):
//      int8:  q [kc/4][PR][4] uint8 (4 consecutive levels of each row per 32-bit lane),
//             scale [kc/G][PR], mterm [kc/G][PR] float (see decode-inl.h for their meaning)
//      f32:   w [kc][PR] float
//    Output tiles are stored as PR consecutive floats of y per token; columns chunks after the
//    first accumulate into y. kPanelsPerPass panels are packed per column chunk and every token
//    tile runs over all of them, so activations stream from cache once per 4 panels.

// Calls f.template operator()<T>() for T = t (1 <= t <= kMax).
template <int kMax, typename F>
inline void WithTokens(int64_t t, F&& f) {
  if constexpr (kMax >= 1) {
    if (t == kMax) {
      f.template operator()<kMax>();
    } else {
      WithTokens<kMax - 1>(t, f);
    }
  }
}

// Per-thread scratch memory, grown on demand and reused (no allocation once warm).
struct Scratch {
  AlignedBuffer dq, dscale, dmterm, acc, rowf, panel_q, panel_s, panel_m, panel_f, tmpf, zeros;
  int64_t zeros_len = 0;
};
inline Scratch& ThreadScratch() {
  thread_local Scratch s;
  return s;
}
// len zero floats (stand-in rows for the rows past a matrix's end).
inline const float* Zeros(Scratch& s, int64_t len) {
  if (len > s.zeros_len) {
    float* z = s.zeros.Get<float>(static_cast<size_t>(len));
    Fill(z, z + len, 0.0f);
    s.zeros_len = len;
  }
  return s.zeros.Get<float>(static_cast<size_t>(len));
}

constexpr int64_t kRowChunk = 4096;        // row path: elements decoded at a time (multiple of 256)
constexpr int64_t kQuantPanelCols = 2048;  // panel path, int8: columns per panel (multiple of 256)
constexpr int64_t kFloatPanelCols = 256;   // panel path, f32
constexpr int kPanelsPerPass = 4;          // panels packed per column chunk: each token tile of
                                           // activations (in L1) is used for all of them

// Float panels cost more to pack (4 bytes per weight to transpose, conversions) than int8 ones, so
// float weights stay on the row path for more tokens.
inline bool UsePanel(const MatMulArgs& a) {
  return a.n >= (a.acts != nullptr ? K::kMinPanelTokens : K::kMinPanelTokensFloat);
}

// Exact dequantization through the decoders (bit-identical to DequantizeRow; tests check it), for
// the exact path. n is a multiple of the type's block size.
template <class D>
void DequantViaDecoder(const uint8_t* src, float* dst, int64_t n) {
  Scratch& s = ThreadScratch();
  uint8_t* dq = s.dq.Get<uint8_t>(kRowChunk);
  float* dscale = s.dscale.Get<float>(kRowChunk / 16);
  float* dmterm = s.dmterm.Get<float>(kRowChunk / 16);
  for (int64_t e0 = 0; e0 < n; e0 += kRowChunk) {
    const int64_t len = std::min(kRowChunk, n - e0);
    D::Decode(src + e0 / D::kBlock * D::kBlockBytes, len / D::kBlock, dq, dscale, dmterm);
    DequantDecoded<D>(dq, dscale, dmterm, len, dst + e0);
  }
}

inline void DequantizeRowFast(GgmlType t, const uint8_t* src, float* dst, int64_t n) {
  switch (t) {
    case GgmlType::Q4_0: return DequantViaDecoder<Decoder<GgmlType::Q4_0>>(src, dst, n);
    case GgmlType::Q4_1: return DequantViaDecoder<Decoder<GgmlType::Q4_1>>(src, dst, n);
    case GgmlType::Q5_0: return DequantViaDecoder<Decoder<GgmlType::Q5_0>>(src, dst, n);
    case GgmlType::Q5_1: return DequantViaDecoder<Decoder<GgmlType::Q5_1>>(src, dst, n);
    case GgmlType::Q8_0: return DequantViaDecoder<Decoder<GgmlType::Q8_0, K::kSignedQ8>>(src, dst, n);
    case GgmlType::Q4_K: return DequantViaDecoder<Decoder<GgmlType::Q4_K>>(src, dst, n);
    case GgmlType::Q5_K: return DequantViaDecoder<Decoder<GgmlType::Q5_K>>(src, dst, n);
    case GgmlType::Q6_K: return DequantViaDecoder<Decoder<GgmlType::Q6_K>>(src, dst, n);
    default: Fail("dequantize: type %s has no decoder", TypeName(t));
  }
}

// ---- Row path ----

template <class D>
void RowPathQuant(const MatMulArgs& a, int64_t r0, int64_t r1) {
  constexpr int G = D::kGroup, L = G / 4;  // L: 32-bit lanes per group
  constexpr int kGroupsPerVec = K::kVecBytes / G;
  const int64_t cols = a.w.cols, n = a.n;
  Scratch& s = ThreadScratch();
  uint8_t* dq = s.dq.Get<uint8_t>(kRowChunk + K::kVecBytes);
  float* dscale = s.dscale.Get<float>(kRowChunk / 16 + 16);
  float* dmterm = s.dmterm.Get<float>(kRowChunk / 16 + 16);
  float* lanes = s.panel_s.Get<float>(kRowChunk / 4 + K::kVecBytes / 4);  // scale of each lane
  float* acc = s.acc.Get<float>(static_cast<size_t>(n));
  for (int64_t r = r0; r < r1; ++r) {
    Fill(acc, acc + n, 0.0f);
    const uint8_t* row = a.w.row(r);
    for (int64_t e0 = 0; e0 < cols; e0 += kRowChunk) {
      const int64_t len = std::min(kRowChunk, cols - e0);
      const int64_t ng = len / G;
      D::Decode(row + e0 / D::kBlock * D::kBlockBytes, len / D::kBlock, dq, dscale, dmterm);
      // Pad to whole vectors with zero weights (the activation arrays are zero-padded as well).
      const int64_t ngp = (ng + kGroupsPerVec - 1) / kGroupsPerVec * kGroupsPerVec;
      std::memset(dq + len, 0, static_cast<size_t>((ngp - ng) * G));
      Fill(dmterm + ng, dmterm + ngp, 0.0f);
      for (int64_t g = 0; g < ngp; ++g) {
        const float v = g < ng ? dscale[g] : 0.0f;
        for (int j = 0; j < L; ++j) lanes[g * L + j] = v;
      }
      for (int64_t t0 = 0; t0 < n; t0 += 4) {
        WithTokens<4>(std::min<int64_t>(4, n - t0), [&]<int T>() {
          K::template DotDecoded<D, T>(dq, lanes, dmterm, ngp, *a.acts, t0, e0 / G, acc + t0);
        });
      }
    }
    for (int64_t t = 0; t < n; ++t) a.y[t * a.ldy + r] = acc[t];
  }
}

// F32/F16/BF16 weights read in place; quantized weights (exact path) dequantized into row buffers.
// Rows go kFloatRows at a time so that every activation load serves several rows.
inline void RowPathFloat(const MatMulArgs& a, int64_t r0, int64_t r1) {
  constexpr int R = K::kFloatRows;
  const int64_t cols = a.w.cols, n = a.n;
  Scratch& s = ThreadScratch();
  WKind kind = WKind::kF32;
  float* rowf = nullptr;
  if (a.w.type == GgmlType::F16) {
    kind = WKind::kF16;
  } else if (a.w.type == GgmlType::BF16) {
    kind = WKind::kBF16;
  } else if (a.w.type != GgmlType::F32) {
    rowf = s.rowf.Get<float>(static_cast<size_t>(R * cols));
  }
  for (int64_t r = r0; r < r1; r += R) {
    const int nr = static_cast<int>(std::min<int64_t>(R, r1 - r));
    const void* w[R];
    for (int i = 0; i < R; ++i) {
      const int64_t row = r + std::min(i, nr - 1);  // a short tile repeats its last row
      if (rowf != nullptr) {
        if (i < nr) DequantizeRowFast(a.w.type, a.w.row(row), rowf + i * cols, cols);
        w[i] = rowf + std::min(i, nr - 1) * cols;
      } else {
        w[i] = a.w.row(row);
      }
    }
    for (int64_t t0 = 0; t0 < n; t0 += 4) {
      const float* xs[4];
      for (int t = 0; t < 4; ++t) xs[t] = a.x + std::min(n - 1, t0 + t) * a.ldx;
      float out[R * 4];
      WithTokens<4>(std::min<int64_t>(4, n - t0), [&]<int T>() {
        switch (kind) {
          case WKind::kF32: K::template DotRowsFloat<WKind::kF32, T>(w, xs, cols, out); break;
          case WKind::kF16: K::template DotRowsFloat<WKind::kF16, T>(w, xs, cols, out); break;
          case WKind::kBF16: K::template DotRowsFloat<WKind::kBF16, T>(w, xs, cols, out); break;
        }
      });
      for (int i = 0; i < nr; ++i) {
        for (int64_t t = t0; t < std::min(n, t0 + 4); ++t) a.y[t * a.ldy + r + i] = out[i * 4 + (t - t0)];
      }
    }
  }
}

// ---- Panel path ----

// Bytes per decoded row of a panel tile: whole transpose blocks (kLanes words of 4 bytes).
inline int64_t PanelTileStride(int64_t len) { return (len + 4 * K::kLanes - 1) / (4 * K::kLanes) * (4 * K::kLanes); }

// Writes columns [0, ncols) (32-bit words) of PR source rows transposed into dst[c][PR]. Full
// blocks of kLanes x kLanes words go through the ISA's register transpose; a column tail is copied
// word by word. Rows must be readable for ncols words.
inline void TransposeToPanel(const uint32_t* const* rows, int64_t ncols, uint32_t* dst) {
  constexpr int PR = K::kPanelRows, L = K::kLanes;
  int64_t c = 0;
  for (; c + L <= ncols; c += L) {
    for (int r0 = 0; r0 < PR; r0 += L) K::Transpose(rows + r0, c, dst + c * PR + r0, PR);
  }
  for (; c < ncols; ++c) {
    for (int r = 0; r < PR; ++r) dst[c * PR + r] = rows[r][c];
  }
}

// Decodes rows [pr0, pr0 + nrows) x columns [e0, e0 + len) (whole blocks) into a row-major tile of
// PR rows (rows past nrows, beyond the matrix's end, are zero), each PanelTileStride(len) bytes
// (zero-padded to whole transpose blocks), with scales / min terms [PR][len / G].
struct DecodedTile {
  const uint8_t* q;
  int64_t stride;
  const float* scale;
  const float* mterm;
};
template <class D>
DecodedTile DecodeTile(const Matrix& w, int64_t pr0, int nrows, int64_t e0, int64_t len, Scratch& s) {
  constexpr int PR = K::kPanelRows, G = D::kGroup;
  const int64_t ng = len / G;
  const int64_t stride = PanelTileStride(len);
  uint8_t* tile = s.dq.Get<uint8_t>(static_cast<size_t>(PR * stride));
  float* tscale = s.dscale.Get<float>(static_cast<size_t>(PR * ng));
  float* tmterm = s.dmterm.Get<float>(static_cast<size_t>(PR * ng));
  for (int r = 0; r < PR; ++r) {
    uint8_t* t = tile + r * stride;
    if (r < nrows) {
      D::Decode(w.row(pr0 + r) + e0 / D::kBlock * D::kBlockBytes, len / D::kBlock, t, tscale + r * ng, tmterm + r * ng);
      std::memset(t + len, 0, static_cast<size_t>(stride - len));
    } else {
      std::memset(t, 0, static_cast<size_t>(stride));
      Fill(tscale + r * ng, tscale + (r + 1) * ng, 0.0f);
      Fill(tmterm + r * ng, tmterm + (r + 1) * ng, 0.0f);
    }
  }
  return DecodedTile{tile, stride, tscale, tmterm};
}

// Packs a decoded tile into an int8 panel (layout at the top of this file).
template <class D>
void PackQuantPanel(const Matrix& w, int64_t pr0, int nrows, int64_t e0, int64_t len, uint8_t* pq, float* ps,
                    float* pm, Scratch& s) {
  constexpr int PR = K::kPanelRows, G = D::kGroup;
  const int64_t ng = len / G;
  const DecodedTile tile = DecodeTile<D>(w, pr0, nrows, e0, len, s);
  const uint32_t* rows[PR];
  for (int r = 0; r < PR; ++r) rows[r] = reinterpret_cast<const uint32_t*>(tile.q + r * tile.stride);
  TransposeToPanel(rows, len / 4, reinterpret_cast<uint32_t*>(pq));
  for (int64_t g = 0; g < ng; ++g) {
    for (int r = 0; r < PR; ++r) ps[g * PR + r] = tile.scale[r * ng + g];
  }
  if constexpr (D::kHasMin) {
    for (int64_t g = 0; g < ng; ++g) {
      for (int r = 0; r < PR; ++r) pm[g * PR + r] = tile.mterm[r * ng + g];
    }
  }
}

template <class D>
void PanelPathQuant(const MatMulArgs& a, int64_t r0, int64_t r1) {
  constexpr int PR = K::kPanelRows, G = D::kGroup;
  const int64_t cols = a.w.cols;
  Scratch& s = ThreadScratch();
  const int64_t max_len = std::min(cols, kQuantPanelCols);
  const int64_t q_size = max_len * PR, s_size = max_len / G * PR;  // per panel
  uint8_t* pq = s.panel_q.Get<uint8_t>(static_cast<size_t>(kPanelsPerPass * q_size));
  float* ps = s.panel_s.Get<float>(static_cast<size_t>(kPanelsPerPass * s_size));
  float* pm = s.panel_m.Get<float>(static_cast<size_t>(kPanelsPerPass * s_size));
  for (int64_t sp0 = r0; sp0 < r1; sp0 += kPanelsPerPass * PR) {
    const int np = static_cast<int>(std::min<int64_t>(kPanelsPerPass, (r1 - sp0 + PR - 1) / PR));
    for (int64_t e0 = 0; e0 < cols; e0 += kQuantPanelCols) {
      const int64_t len = std::min(kQuantPanelCols, cols - e0);
      for (int p = 0; p < np; ++p) {
        const int64_t pr0 = sp0 + p * PR;
        const int nrows = static_cast<int>(std::min<int64_t>(PR, r1 - pr0));
        PackQuantPanel<D>(a.w, pr0, nrows, e0, len, pq + p * q_size, ps + p * s_size, pm + p * s_size, s);
      }
      for (int64_t t0 = 0; t0 < a.n; t0 += K::kQuantTile) {
        WithTokens<K::kQuantTile>(std::min<int64_t>(K::kQuantTile, a.n - t0), [&]<int T>() {
          for (int p = 0; p < np; ++p) {
            const int64_t pr0 = sp0 + p * PR;
            const int nrows = static_cast<int>(std::min<int64_t>(PR, r1 - pr0));
            K::template PanelQuant<D, T>(pq + p * q_size, ps + p * s_size, pm + p * s_size, len / G, *a.acts, t0,
                                         e0 / G, a.y + t0 * a.ldy + pr0, a.ldy, nrows, e0 > 0);
          }
        });
      }
    }
  }
}

// Packs rows [pr0, pr0 + nrows) x columns [e0, e0 + len) as f32 into pf [len][PR]. F32 rows are
// transposed in place; other types are converted / dequantized into a row-major tile first.
inline void PackFloatPanel(const Matrix& w, int64_t pr0, int nrows, int64_t e0, int64_t len, float* pf, Scratch& s) {
  constexpr int PR = K::kPanelRows;
  float* tile = s.tmpf.Get<float>(static_cast<size_t>(PR * len));
  const float* zeros = Zeros(s, len);
  const uint32_t* rows[PR];
  for (int r = 0; r < PR; ++r) {
    const float* src = zeros;
    if (r < nrows) {
      const uint8_t* row = w.row(pr0 + r);
      float* t = tile + r * len;
      switch (w.type) {
        case GgmlType::F32: src = reinterpret_cast<const float*>(row) + e0; break;
        case GgmlType::F16: K::F16ToF32(reinterpret_cast<const uint16_t*>(row) + e0, t, len); src = t; break;
        case GgmlType::BF16: K::Bf16ToF32(reinterpret_cast<const uint16_t*>(row) + e0, t, len); src = t; break;
        default: {
          const int64_t bs = Traits(w.type).block_size;
          DequantizeRowFast(w.type, row + e0 / bs * Traits(w.type).type_size, t, len);
          src = t;
        }
      }
    }
    rows[r] = reinterpret_cast<const uint32_t*>(src);
  }
  TransposeToPanel(rows, len, reinterpret_cast<uint32_t*>(pf));
}

inline void PanelPathFloat(const MatMulArgs& a, int64_t r0, int64_t r1) {
  constexpr int PR = K::kPanelRows;
  constexpr int64_t kPanelSize = kFloatPanelCols * PR;
  const int64_t cols = a.w.cols;
  Scratch& s = ThreadScratch();
  float* pf = s.panel_f.Get<float>(static_cast<size_t>(kPanelsPerPass * kPanelSize));
  for (int64_t sp0 = r0; sp0 < r1; sp0 += kPanelsPerPass * PR) {
    const int np = static_cast<int>(std::min<int64_t>(kPanelsPerPass, (r1 - sp0 + PR - 1) / PR));
    for (int64_t e0 = 0; e0 < cols; e0 += kFloatPanelCols) {
      const int64_t len = std::min(kFloatPanelCols, cols - e0);
      for (int p = 0; p < np; ++p) {
        const int64_t pr0 = sp0 + p * PR;
        PackFloatPanel(a.w, pr0, static_cast<int>(std::min<int64_t>(PR, r1 - pr0)), e0, len, pf + p * kPanelSize, s);
      }
      for (int64_t t0 = 0; t0 < a.n; t0 += K::kFloatTile) {
        WithTokens<K::kFloatTile>(std::min<int64_t>(K::kFloatTile, a.n - t0), [&]<int T>() {
          for (int p = 0; p < np; ++p) {
            const int64_t pr0 = sp0 + p * PR;
            const int nrows = static_cast<int>(std::min<int64_t>(PR, r1 - pr0));
            K::template PanelFloat<T>(pf + p * kPanelSize, len, a.x + t0 * a.ldx + e0, a.ldx, a.y + t0 * a.ldy + pr0,
                                      a.ldy, nrows, e0 > 0);
          }
        });
      }
    }
  }
}

// ---- Scratch reservation ----

// Reserves every scratch buffer the call's path uses at its largest size for this call. Every thread
// runs it before taking work (MatMul's threads pick rows dynamically, so a thread may see its first
// rows of a shape at any call); after that, calls of the same shape never allocate. The paths get
// their buffers with sizes up to these.
inline void ReserveScratch(const MatMulArgs& a) {
  constexpr int PR = K::kPanelRows;
  Scratch& s = ThreadScratch();
  const int64_t cols = a.w.cols;
  int64_t dq = kRowChunk + K::kVecBytes, dscale = kRowChunk / 16 + 16;  // decoders (and DequantViaDecoder)
  if (UsePanel(a) && a.acts != nullptr) {
    const int64_t len = std::min(cols, kQuantPanelCols), ng = len / ActGroup(a.w.type);
    dq = std::max(dq, PR * PanelTileStride(len));
    dscale = std::max(dscale, PR * ng);
    s.panel_q.Get<uint8_t>(static_cast<size_t>(kPanelsPerPass * len * PR));
    s.panel_s.Get<float>(static_cast<size_t>(kPanelsPerPass * ng * PR));
    s.panel_m.Get<float>(static_cast<size_t>(kPanelsPerPass * ng * PR));
  } else if (UsePanel(a)) {
    const int64_t len = std::min(cols, kFloatPanelCols);
    s.panel_f.Get<float>(static_cast<size_t>(kPanelsPerPass * kFloatPanelCols * PR));
    s.tmpf.Get<float>(static_cast<size_t>(PR * len));
    Zeros(s, len);
  } else if (a.acts != nullptr) {
    s.panel_s.Get<float>(kRowChunk / 4 + K::kVecBytes / 4);
    s.acc.Get<float>(static_cast<size_t>(a.n));
  } else if (!IsFloatType(a.w.type)) {
    s.rowf.Get<float>(static_cast<size_t>(K::kFloatRows * cols));
  }
  s.dq.Get<uint8_t>(static_cast<size_t>(dq));
  s.dscale.Get<float>(static_cast<size_t>(dscale));
  s.dmterm.Get<float>(static_cast<size_t>(dscale));
}

// ---- Entry points of the IsaOps table ----

template <template <class> class Fn>
void WithDecoder(GgmlType t, const MatMulArgs& a, int64_t r0, int64_t r1) {
  switch (t) {
    case GgmlType::Q4_0: return Fn<Decoder<GgmlType::Q4_0>>::Run(a, r0, r1);
    case GgmlType::Q4_1: return Fn<Decoder<GgmlType::Q4_1>>::Run(a, r0, r1);
    case GgmlType::Q5_0: return Fn<Decoder<GgmlType::Q5_0>>::Run(a, r0, r1);
    case GgmlType::Q5_1: return Fn<Decoder<GgmlType::Q5_1>>::Run(a, r0, r1);
    case GgmlType::Q8_0: return Fn<Decoder<GgmlType::Q8_0, K::kSignedQ8>>::Run(a, r0, r1);
    case GgmlType::Q4_K: return Fn<Decoder<GgmlType::Q4_K>>::Run(a, r0, r1);
    case GgmlType::Q5_K: return Fn<Decoder<GgmlType::Q5_K>>::Run(a, r0, r1);
    case GgmlType::Q6_K: return Fn<Decoder<GgmlType::Q6_K>>::Run(a, r0, r1);
    default: Fail("MatMul: weight type %s has no integer kernel", TypeName(t));
  }
}
template <class D>
struct RowPathFn {
  static void Run(const MatMulArgs& a, int64_t r0, int64_t r1) { RowPathQuant<D>(a, r0, r1); }
};
template <class D>
struct PanelPathFn {
  static void Run(const MatMulArgs& a, int64_t r0, int64_t r1) { PanelPathQuant<D>(a, r0, r1); }
};

inline int64_t RowsPerTask(const MatMulArgs& a) { return UsePanel(a) ? K::kPanelRows : 8; }
inline int ActLayouts(const MatMulArgs& a) { return UsePanel(a) ? 0 : kActLanes; }

inline void MatMulRows(const MatMulArgs& a, int64_t r0, int64_t r1) {
  const bool quant_fast = a.acts != nullptr;
  if (UsePanel(a)) {
    if (quant_fast) {
      WithDecoder<PanelPathFn>(a.w.type, a, r0, r1);
    } else {
      PanelPathFloat(a, r0, r1);
    }
  } else {
    if (quant_fast) {
      WithDecoder<RowPathFn>(a.w.type, a, r0, r1);
    } else {
      RowPathFloat(a, r0, r1);
    }
  }
}
