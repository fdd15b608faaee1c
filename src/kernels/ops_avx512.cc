// AVX-512 (F, BW, DQ, VL) + VNNI kernels. Compiled with those -m flags only; selected at run time
// when the CPU has them. Integer dot products use vpdpbusd (unsigned weight levels x signed int8
// activations, 4 products summed per 32-bit lane); floats use 16-lane FMA.
// GCC 12 warns that the _mm512_undefined_* values inside its own intrinsics are uninitialized
// (GCC bug 105593); the warnings point into the intrinsics headers, so silence them there only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/ops.h"
#include "kernels/quant_blocks.h"
#include "kernels/scratch.h"
#include "util/error.h"

namespace g4::kernels {
namespace avx512 {

// F16C conversions (round to nearest even); the same values as util/fp16.h, which is not used here
// so that no inline function of a shared header is compiled with this file's -m flags.
inline float HalfToFloat(uint16_t h) { return _cvtsh_ss(h); }
inline uint16_t FloatToHalf(float f) { return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT)); }
inline float Bf16Bits(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// out[i] = d * b[i] (negated if asked) for 8 bytes, as exact float products.
inline void ScaleBytes8(const uint8_t* b, float d, bool negate, float* out) {
  const __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b))));
  __m256 v = _mm256_mul_ps(f, _mm256_set1_ps(d));
  if (negate) v = _mm256_xor_ps(v, _mm256_set1_ps(-0.0f));
  _mm256_storeu_ps(out, v);
}
inline void ScaleSBytes8(const int8_t* b, float d, float* out) {
  const __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b))));
  _mm256_storeu_ps(out, _mm256_mul_ps(f, _mm256_set1_ps(d)));
}

#include "kernels/decode-inl.h"

namespace {

inline int32_t LoadI32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline __mmask16 RowMask(int nrows) {
  return nrows >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << std::max(nrows, 0)) - 1);
}

// Stores (or adds to) PR = 32 consecutive outputs of one token; only the first nrows are written.
inline void StoreRows(float* y, __m512 v0, __m512 v1, int nrows, bool accumulate) {
  const __mmask16 m0 = RowMask(nrows), m1 = RowMask(nrows - 16);
  if (accumulate) {
    v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, y));
    v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, y + 16));
  }
  _mm512_mask_storeu_ps(y, m0, v0);
  _mm512_mask_storeu_ps(y + 16, m1, v1);
}

template <WKind W>
inline __m512 LoadW(const void* w, int64_t i) {
  if constexpr (W == WKind::kF32) {
    return _mm512_loadu_ps(static_cast<const float*>(w) + i);
  } else {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(w) + i));
    if constexpr (W == WKind::kF16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}
template <WKind W>
inline __m512 LoadWMasked(const void* w, int64_t i, __mmask16 m) {
  if constexpr (W == WKind::kF32) {
    return _mm512_maskz_loadu_ps(m, static_cast<const float*>(w) + i);
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(w) + i);
    if constexpr (W == WKind::kF16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

float DotF32Impl(const float* a, const float* b, int64_t n) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = RowMask(static_cast<int>(std::min<int64_t>(16, n - i)));
    acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

}  // namespace

struct K {
  static constexpr int kVecBytes = 64;
  static constexpr int kLanes = 16;  // 32-bit lanes per vector
  static constexpr int kPanelRows = 32;
  static constexpr bool kSignedQ8 = false;
  static constexpr int kQuantTile = 4;
  static constexpr int kFloatTile = 12;
  static constexpr int kMinPanelTokens = 4;       // integer kernels: panel path from 4 tokens
  static constexpr int kMinPanelTokensFloat = 24;  // float weights: row tiles win below (measured)

  // One Q8_0-style block of 32 (ops.h): d = f16(amax / 127), q = round_even(x * 127 / amax).
  static void QuantizeBlockQ8_0(const float* x, int8_t* q, float* d, int32_t* sum) {
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    *d = HalfToFloat(FloatToHalf(amax / 127.f));
    const __m512 id = _mm512_set1_ps(amax != 0.0f ? 127.f / amax : 0.0f);
    const __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, id));  // MXCSR default: nearest even
    const __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, id));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtsepi32_epi8(i0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtsepi32_epi8(i1));
    *sum = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
  }

  // One Q8_K super-block of 256 as quantize_row_q8_K_ref; sum16 = sums of the 16 groups of 16.
  static void QuantizeBlockQ8_K(const float* x, int8_t* q, float* d, int32_t* sum16) {
    __m512 amaxv = _mm512_setzero_ps();
    for (int i = 0; i < 16; ++i) amaxv = _mm512_max_ps(amaxv, _mm512_abs_ps(_mm512_loadu_ps(x + 16 * i)));
    const float amax = _mm512_reduce_max_ps(amaxv);
    if (amax == 0) {
      std::memset(q, 0, kQK_K);
      for (int i = 0; i < 16; ++i) sum16[i] = 0;
      *d = 0;
      return;
    }
    float max = 0;  // the first element whose magnitude is amax, with its sign
    for (int i = 0; i < 16; ++i) {
      const __mmask16 m = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + 16 * i)), _mm512_set1_ps(amax), _CMP_EQ_OQ);
      if (m != 0) {
        max = x[16 * i + __builtin_ctz(m)];
        break;
      }
    }
    const float iscale = -127.f / max;
    const __m512 vs = _mm512_set1_ps(iscale);
    for (int i = 0; i < 16; ++i) {
      __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * i), vs));
      v = _mm512_min_epi32(v, _mm512_set1_epi32(127));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16 * i), _mm512_cvtsepi32_epi8(v));
      sum16[i] = _mm512_reduce_add_epi32(v);
    }
    *d = 1 / iscale;
  }

  // acc[t] += dot(decoded row chunk, token t0 + t). The chunk holds groups [0, ng) (zero-padded to
  // whole vectors), which are activation groups [g0, g0 + ng); `lanes` is the weight scale of each
  // 4-element lane, and the activations' lane arrays (dl, bl) line up with it.
  template <class D, int T>
  static void DotDecoded(const uint8_t* q, const float* lanes, const float* mterm, int64_t ng, const QuantActs& a,
                         int64_t t0, int64_t g0, float* acc) {
    constexpr int G = D::kGroup;
    const int8_t* xq[T];
    const float* xd[T];
    const int32_t* xb[T];
    __m512 facc[T];
    #pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
      xq[t] = a.qt(t0 + t) + g0 * G;
      xd[t] = a.dlt(t0 + t) + g0 * G / 4;
      xb[t] = a.blt(t0 + t) + g0 * G / 4;
      facc[t] = _mm512_setzero_ps();
    }
    for (int64_t e = 0; e < ng * G; e += 64) {
      const __m512i qv = _mm512_loadu_si512(q + e);
      const __m512 sv = _mm512_loadu_ps(lanes + e / 4);
      #pragma GCC unroll 16
      for (int t = 0; t < T; ++t) {
        __m512i isum = D::kOffset != 0 ? _mm512_loadu_si512(xb[t] + e / 4) : _mm512_setzero_si512();
        isum = _mm512_dpbusd_epi32(isum, qv, _mm512_loadu_si512(xq[t] + e));
        facc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(sv, _mm512_loadu_ps(xd[t] + e / 4)), facc[t]);
      }
    }
    #pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
      acc[t] += _mm512_reduce_add_ps(facc[t]);
      if constexpr (D::kHasMin) acc[t] += DotF32Impl(mterm, a.dsumt(t0 + t) + g0, ng);
    }
  }

  // Panel microkernel: 32 rows (two vectors of 16) x T tokens over the panel's ng groups.
  template <class D, int T>
  static void PanelQuant(const uint8_t* pq, const float* ps, const float* pm, int64_t ng, const QuantActs& a,
                         int64_t t0, int64_t g0, float* y, int64_t ldy, int nrows, bool accumulate) {
    constexpr int G = D::kGroup, KG = G / 4;
    const int8_t* xq[T];
    const float* xd[T];
    const int32_t* xb[T];
    const float* xs[T];
    __m512 f0[T], f1[T];
    #pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
      xq[t] = a.qt(t0 + t) + g0 * G;
      xd[t] = a.dt(t0 + t) + g0;
      xb[t] = a.biast(t0 + t) + g0;
      xs[t] = a.dsumt(t0 + t) + g0;
      f0[t] = f1[t] = _mm512_setzero_ps();
    }
    for (int64_t g = 0; g < ng; ++g) {
      __m512i i0[T], i1[T];
      #pragma GCC unroll 16
      for (int t = 0; t < T; ++t) {
        i0[t] = i1[t] = D::kOffset != 0 ? _mm512_set1_epi32(xb[t][g]) : _mm512_setzero_si512();
      }
      const uint8_t* qg = pq + g * KG * 128;
      for (int kg = 0; kg < KG; ++kg) {
        const __m512i w0 = _mm512_loadu_si512(qg + kg * 128);
        const __m512i w1 = _mm512_loadu_si512(qg + kg * 128 + 64);
        #pragma GCC unroll 16
        for (int t = 0; t < T; ++t) {
          const __m512i xv = _mm512_set1_epi32(LoadI32(xq[t] + g * G + kg * 4));
          i0[t] = _mm512_dpbusd_epi32(i0[t], w0, xv);
          i1[t] = _mm512_dpbusd_epi32(i1[t], w1, xv);
        }
      }
      const __m512 s0 = _mm512_loadu_ps(ps + g * 32), s1 = _mm512_loadu_ps(ps + g * 32 + 16);
      #pragma GCC unroll 16
      for (int t = 0; t < T; ++t) {
        const __m512 dv = _mm512_set1_ps(xd[t][g]);
        f0[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i0[t]), _mm512_mul_ps(s0, dv), f0[t]);
        f1[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i1[t]), _mm512_mul_ps(s1, dv), f1[t]);
      }
      if constexpr (D::kHasMin) {
        const __m512 m0 = _mm512_loadu_ps(pm + g * 32), m1 = _mm512_loadu_ps(pm + g * 32 + 16);
        #pragma GCC unroll 16
        for (int t = 0; t < T; ++t) {
          const __m512 sv = _mm512_set1_ps(xs[t][g]);
          f0[t] = _mm512_fmadd_ps(m0, sv, f0[t]);
          f1[t] = _mm512_fmadd_ps(m1, sv, f1[t]);
        }
      }
    }
    #pragma GCC unroll 16
    for (int t = 0; t < T; ++t) StoreRows(y + t * ldy, f0[t], f1[t], nrows, accumulate);
  }

  // Row-path tile for float weights: out[i * 4 + t] = dot(w[i][0..k), x[t][0..k)) for R rows and
  // T tokens. Each activation load serves R rows; U accumulators per pair hide the FMA latency.
  static constexpr int kFloatRows = 4;
  template <WKind W, int T>
  static void DotRowsFloat(const void* const* w, const float* const* x, int64_t k, float* out) {
    constexpr int R = kFloatRows, U = T == 1 ? 2 : 1;
    __m512 facc[R][T][U];
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
#pragma GCC unroll 16
      for (int t = 0; t < T; ++t) {
#pragma GCC unroll 16
        for (int u = 0; u < U; ++u) facc[i][t][u] = _mm512_setzero_ps();
      }
    }
    int64_t j = 0;
    for (; j + 16 * U <= k; j += 16 * U) {
#pragma GCC unroll 16
      for (int u = 0; u < U; ++u) {
        __m512 xv[T];
#pragma GCC unroll 16
        for (int t = 0; t < T; ++t) xv[t] = _mm512_loadu_ps(x[t] + j + 16 * u);
#pragma GCC unroll 16
        for (int i = 0; i < R; ++i) {
          const __m512 wv = LoadW<W>(w[i], j + 16 * u);
#pragma GCC unroll 16
          for (int t = 0; t < T; ++t) facc[i][t][u] = _mm512_fmadd_ps(wv, xv[t], facc[i][t][u]);
        }
      }
    }
    for (; j < k; j += 16) {
      const __mmask16 m = RowMask(static_cast<int>(std::min<int64_t>(16, k - j)));
      __m512 xv[T];
#pragma GCC unroll 16
      for (int t = 0; t < T; ++t) xv[t] = _mm512_maskz_loadu_ps(m, x[t] + j);
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        const __m512 wv = LoadWMasked<W>(w[i], j, m);
#pragma GCC unroll 16
        for (int t = 0; t < T; ++t) facc[i][t][0] = _mm512_fmadd_ps(wv, xv[t], facc[i][t][0]);
      }
    }
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
#pragma GCC unroll 16
      for (int t = 0; t < T; ++t) {
        if constexpr (U == 2) facc[i][t][0] = _mm512_add_ps(facc[i][t][0], facc[i][t][U - 1]);
        out[i * 4 + t] = _mm512_reduce_add_ps(facc[i][t][0]);
      }
    }
  }

  // f32 panel microkernel: 32 rows x T tokens; x points at token t0, column e0 ([T][ldx]).
  template <int T>
  static void PanelFloat(const float* pf, int64_t kc, const float* x, int64_t ldx, float* y, int64_t ldy, int nrows,
                         bool accumulate) {
    __m512 f0[T], f1[T];
    #pragma GCC unroll 16
    for (int t = 0; t < T; ++t) f0[t] = f1[t] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; ++k) {
      const __m512 w0 = _mm512_loadu_ps(pf + k * 32), w1 = _mm512_loadu_ps(pf + k * 32 + 16);
      #pragma GCC unroll 16
      for (int t = 0; t < T; ++t) {
        const __m512 xv = _mm512_set1_ps(x[t * ldx + k]);
        f0[t] = _mm512_fmadd_ps(w0, xv, f0[t]);
        f1[t] = _mm512_fmadd_ps(w1, xv, f1[t]);
      }
    }
    #pragma GCC unroll 16
    for (int t = 0; t < T; ++t) StoreRows(y + t * ldy, f0[t], f1[t], nrows, accumulate);
  }

  // dst[c * dst_stride + r] = rows[r][col0 + c] for r, c < 16 (a 16 x 16 transpose of 32-bit words:
  // interleave words, then 64-bit pairs, then 128-bit quarters twice).
  static void Transpose(const uint32_t* const* rows, int64_t col0, uint32_t* dst, int64_t dst_stride) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; ++i) r[i] = _mm512_castsi512_ps(_mm512_loadu_si512(rows[i] + col0));
    for (int i = 0; i < 16; i += 2) {
      t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
      t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
      r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
      r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xee);
      r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
      r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    for (int i = 0; i < 4; ++i) {
      t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
      t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
      t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
      t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
    }
    for (int i = 0; i < 8; ++i) {
      r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
      r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
    for (int i = 0; i < 16; ++i) _mm512_storeu_si512(dst + i * dst_stride, _mm512_castps_si512(r[i]));
  }

  static void F16ToF32(const uint16_t* src, float* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, LoadW<WKind::kF16>(src, i));
    if (i < n) {
      const __mmask16 m = RowMask(static_cast<int>(n - i));
      _mm512_mask_storeu_ps(dst + i, m, LoadWMasked<WKind::kF16>(src, i, m));
    }
  }
  static void Bf16ToF32(const uint16_t* src, float* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, LoadW<WKind::kBF16>(src, i));
    if (i < n) {
      const __mmask16 m = RowMask(static_cast<int>(n - i));
      _mm512_mask_storeu_ps(dst + i, m, LoadWMasked<WKind::kBF16>(src, i, m));
    }
  }
  static __m256i ToF16(__m512 v) { return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static void F32ToF16(const float* src, uint16_t* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), ToF16(_mm512_loadu_ps(src + i)));
    if (i < n) {
      const __mmask16 m = RowMask(static_cast<int>(n - i));
      _mm256_mask_storeu_epi16(dst + i, m, ToF16(_mm512_maskz_loadu_ps(m, src + i)));
    }
  }
  // Round to nearest even in integer arithmetic (vcvtneps2bf16 would flush subnormals); nan -> quiet.
  static __m256i ToBf16(__m512 v) {
    const __m512i u = _mm512_castps_si512(v);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    const __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(64));
    return _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, rounded, quiet));
  }
  static void F32ToBf16(const float* src, uint16_t* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), ToBf16(_mm512_loadu_ps(src + i)));
    if (i < n) {
      const __mmask16 m = RowMask(static_cast<int>(n - i));
      _mm256_mask_storeu_epi16(dst + i, m, ToBf16(_mm512_maskz_loadu_ps(m, src + i)));
    }
  }
};

#include "kernels/acts-inl.h"
#include "kernels/tiling-inl.h"

namespace {
void DequantizeRowIsa(GgmlType t, const uint8_t* src, float* dst, int64_t n) {
  if (t == GgmlType::F32) return static_cast<void>(std::memcpy(dst, src, static_cast<size_t>(n) * 4));
  if (t == GgmlType::F16) return K::F16ToF32(reinterpret_cast<const uint16_t*>(src), dst, n);
  if (t == GgmlType::BF16) return K::Bf16ToF32(reinterpret_cast<const uint16_t*>(src), dst, n);
  DequantizeRowFast(t, src, dst, n);
}
}  // namespace

}  // namespace avx512

const IsaOps* Avx512Ops() {
  static const IsaOps ops = {
      Isa::kAvx512,         avx512::QuantizeActsImpl, avx512::ActLayouts, avx512::RowsPerTask, avx512::ReserveScratch, avx512::MatMulRows,
      avx512::DotF32Impl,   avx512::K::F16ToF32,      avx512::K::F32ToF16, avx512::K::Bf16ToF32,
      avx512::K::F32ToBf16, avx512::DequantizeRowIsa,
  };
  return &ops;
}

}  // namespace g4::kernels
