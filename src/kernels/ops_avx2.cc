// AVX2 + FMA + F16C kernels. Compiled with those -m flags only; selected at run time when the CPU
// has them. Integer dot products use vpmaddubsw (u8 x s8 -> pairs summed to i16, no saturation for
// levels < 64) then vpmaddwd with ones (-> i32); Q8_0 weights are signed and use |w| * sign(x, w).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/ops.h"
#include "kernels/quant_blocks.h"
#include "kernels/scratch.h"
#include "util/error.h"

namespace g4::kernels {
namespace avx2 {

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

inline float HSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float HMax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline int32_t HSumI32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}
inline __m256 Abs(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

// 16 int32 (two vectors, each in [-127, 127]) -> 16 int8 in order.
inline __m128i PackI8(__m256i a, __m256i b) {
  const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xd8);  // a0..7 b0..7 as i16
  return _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
}

// Stores (or adds to) PR = 16 consecutive outputs of one token; only the first nrows are written.
inline void StoreRows(float* y, __m256 v0, __m256 v1, int nrows, bool accumulate) {
  if (nrows >= 16) {
    if (accumulate) {
      v0 = _mm256_add_ps(v0, _mm256_loadu_ps(y));
      v1 = _mm256_add_ps(v1, _mm256_loadu_ps(y + 8));
    }
    _mm256_storeu_ps(y, v0);
    _mm256_storeu_ps(y + 8, v1);
    return;
  }
  alignas(32) float tmp[16];
  _mm256_store_ps(tmp, v0);
  _mm256_store_ps(tmp + 8, v1);
  for (int r = 0; r < nrows; ++r) y[r] = accumulate ? tmp[r] + y[r] : tmp[r];
}

template <WKind W>
inline __m256 LoadW(const void* w, int64_t i) {
  if constexpr (W == WKind::kF32) {
    return _mm256_loadu_ps(static_cast<const float*>(w) + i);
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + i));
    if constexpr (W == WKind::kF16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
}
template <WKind W>
inline float LoadWScalar(const void* w, int64_t i) {
  if constexpr (W == WKind::kF32) {
    return static_cast<const float*>(w)[i];
  } else if constexpr (W == WKind::kF16) {
    return HalfToFloat(static_cast<const uint16_t*>(w)[i]);
  } else {
    return Bf16Bits(static_cast<const uint16_t*>(w)[i]);
  }
}

float DotF32Impl(const float* a, const float* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  if (i + 8 <= n) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    i += 8;
  }
  float s = HSum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

struct K {
  static constexpr int kVecBytes = 32;
  static constexpr int kLanes = 8;  // 32-bit lanes per vector
  static constexpr int kPanelRows = 16;
  static constexpr bool kSignedQ8 = true;
  static constexpr int kQuantTile = 2;
  static constexpr int kFloatTile = 6;
  static constexpr int kMinPanelTokens = 4;       // integer kernels: panel path from 4 tokens
  static constexpr int kMinPanelTokensFloat = 16;  // float weights: row tiles win below (measured)

  // One Q8_0-style block of 32 (ops.h): d = f16(amax / 127), q = round_even(x * 127 / amax).
  static void QuantizeBlockQ8_0(const float* x, int8_t* q, float* d, int32_t* sum) {
    const __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
    const __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
    const float amax = HMax(_mm256_max_ps(_mm256_max_ps(Abs(v0), Abs(v1)), _mm256_max_ps(Abs(v2), Abs(v3))));
    *d = HalfToFloat(FloatToHalf(amax / 127.f));
    const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.f / amax : 0.0f);
    const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, id));  // MXCSR default: nearest even
    const __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, id));
    const __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, id));
    const __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, id));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q), PackI8(i0, i1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), PackI8(i2, i3));
    *sum = HSumI32(_mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3)));
  }

  // One Q8_K super-block of 256 as quantize_row_q8_K_ref; sum16 = sums of the 16 groups of 16.
  static void QuantizeBlockQ8_K(const float* x, int8_t* q, float* d, int32_t* sum16) {
    __m256 amaxv = _mm256_setzero_ps();
    for (int i = 0; i < 32; ++i) amaxv = _mm256_max_ps(amaxv, Abs(_mm256_loadu_ps(x + 8 * i)));
    const float amax = HMax(amaxv);
    if (amax == 0) {
      std::memset(q, 0, kQK_K);
      for (int i = 0; i < 16; ++i) sum16[i] = 0;
      *d = 0;
      return;
    }
    float max = 0;  // the first element whose magnitude is amax, with its sign
    for (int i = 0; i < 32; ++i) {
      const int m = _mm256_movemask_ps(_mm256_cmp_ps(Abs(_mm256_loadu_ps(x + 8 * i)), _mm256_set1_ps(amax), _CMP_EQ_OQ));
      if (m != 0) {
        max = x[8 * i + __builtin_ctz(static_cast<unsigned>(m))];
        break;
      }
    }
    const float iscale = -127.f / max;
    const __m256 vs = _mm256_set1_ps(iscale);
    const __m256i top = _mm256_set1_epi32(127);
    for (int i = 0; i < 16; ++i) {
      const __m256i a = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16 * i), vs)), top);
      const __m256i b = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16 * i + 8), vs)), top);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16 * i), PackI8(a, b));
      sum16[i] = HSumI32(_mm256_add_epi32(a, b));
    }
    *d = 1 / iscale;
  }

  // acc[t] += dot(decoded row chunk, token t0 + t); see avx512 for the contract.
  template <class D, int T>
  static void DotDecoded(const uint8_t* q, const float* lanes, const float* mterm, int64_t ng, const QuantActs& a,
                         int64_t t0, int64_t g0, float* acc) {
    constexpr int G = D::kGroup;
    const int8_t* xq[T];
    const float* xd[T];
    const int32_t* xb[T];
    __m256 facc[T];
    #pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
      xq[t] = a.qt(t0 + t) + g0 * G;
      xd[t] = a.dlt(t0 + t) + g0 * G / 4;
      xb[t] = a.blt(t0 + t) + g0 * G / 4;
      facc[t] = _mm256_setzero_ps();
    }
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t e = 0; e < ng * G; e += 32) {
      const __m256i qv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + e));
      const __m256i aq = D::kSigned ? _mm256_abs_epi8(qv) : qv;
      const __m256 sv = _mm256_loadu_ps(lanes + e / 4);
      #pragma GCC unroll 16
      for (int t = 0; t < T; ++t) {
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[t] + e));
        const __m256i p16 = _mm256_maddubs_epi16(aq, D::kSigned ? _mm256_sign_epi8(xv, qv) : xv);
        __m256i p32 = _mm256_madd_epi16(p16, ones);
        if constexpr (D::kOffset != 0) {
          p32 = _mm256_add_epi32(p32, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb[t] + e / 4)));
        }
        facc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p32), _mm256_mul_ps(sv, _mm256_loadu_ps(xd[t] + e / 4)), facc[t]);
      }
    }
    #pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
      acc[t] += HSum(facc[t]);
      if constexpr (D::kHasMin) acc[t] += DotF32Impl(mterm, a.dsumt(t0 + t) + g0, ng);
    }
  }

  // Panel microkernel: 16 rows (two vectors of 8) x T tokens over the panel's ng groups.
  template <class D, int T>
  static void PanelQuant(const uint8_t* pq, const float* ps, const float* pm, int64_t ng, const QuantActs& a,
                         int64_t t0, int64_t g0, float* y, int64_t ldy, int nrows, bool accumulate) {
    constexpr int G = D::kGroup, KG = G / 4;
    const int8_t* xq[T];
    const float* xd[T];
    const int32_t* xb[T];
    const float* xs[T];
    __m256 f0[T], f1[T];
    #pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
      xq[t] = a.qt(t0 + t) + g0 * G;
      xd[t] = a.dt(t0 + t) + g0;
      xb[t] = a.biast(t0 + t) + g0;
      xs[t] = a.dsumt(t0 + t) + g0;
      f0[t] = f1[t] = _mm256_setzero_ps();
    }
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t g = 0; g < ng; ++g) {
      __m256i i0[T], i1[T];
      #pragma GCC unroll 16
      for (int t = 0; t < T; ++t) {
        i0[t] = i1[t] = D::kOffset != 0 ? _mm256_set1_epi32(xb[t][g]) : _mm256_setzero_si256();
      }
      const uint8_t* qg = pq + g * KG * 64;
      for (int kg = 0; kg < KG; ++kg) {
        const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qg + kg * 64));
        const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qg + kg * 64 + 32));
        const __m256i a0 = D::kSigned ? _mm256_abs_epi8(w0) : w0;
        const __m256i a1 = D::kSigned ? _mm256_abs_epi8(w1) : w1;
        #pragma GCC unroll 16
        for (int t = 0; t < T; ++t) {
          const __m256i xv = _mm256_set1_epi32(LoadI32(xq[t] + g * G + kg * 4));
          const __m256i p0 = _mm256_maddubs_epi16(a0, D::kSigned ? _mm256_sign_epi8(xv, w0) : xv);
          const __m256i p1 = _mm256_maddubs_epi16(a1, D::kSigned ? _mm256_sign_epi8(xv, w1) : xv);
          i0[t] = _mm256_add_epi32(i0[t], _mm256_madd_epi16(p0, ones));
          i1[t] = _mm256_add_epi32(i1[t], _mm256_madd_epi16(p1, ones));
        }
      }
      const __m256 s0 = _mm256_loadu_ps(ps + g * 16), s1 = _mm256_loadu_ps(ps + g * 16 + 8);
      #pragma GCC unroll 16
      for (int t = 0; t < T; ++t) {
        const __m256 dv = _mm256_set1_ps(xd[t][g]);
        f0[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i0[t]), _mm256_mul_ps(s0, dv), f0[t]);
        f1[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i1[t]), _mm256_mul_ps(s1, dv), f1[t]);
      }
      if constexpr (D::kHasMin) {
        const __m256 m0 = _mm256_loadu_ps(pm + g * 16), m1 = _mm256_loadu_ps(pm + g * 16 + 8);
        #pragma GCC unroll 16
        for (int t = 0; t < T; ++t) {
          const __m256 sv = _mm256_set1_ps(xs[t][g]);
          f0[t] = _mm256_fmadd_ps(m0, sv, f0[t]);
          f1[t] = _mm256_fmadd_ps(m1, sv, f1[t]);
        }
      }
    }
    #pragma GCC unroll 16
    for (int t = 0; t < T; ++t) StoreRows(y + t * ldy, f0[t], f1[t], nrows, accumulate);
  }

  // Row-path tile for float weights: out[i * 4 + t] = dot(w[i][0..k), x[t][0..k)) for i < R rows
  // (R = 4 for up to 2 tokens, else 2: 16 registers) and T tokens. The caller passes kFloatRows row
  // pointers; rows past R are not read.
  static constexpr int kFloatRows = 4;
  template <WKind W, int T>
  static void DotRowsFloat(const void* const* w, const float* const* x, int64_t k, float* out) {
    if constexpr (T <= 2) {
      DotRowsFloatR<W, 4, T>(w, x, k, out);
    } else {
      DotRowsFloatR<W, 2, T>(w, x, k, out);
      DotRowsFloatR<W, 2, T>(w + 2, x, k, out + 8);
    }
  }
  template <WKind W, int R, int T>
  static void DotRowsFloatR(const void* const* w, const float* const* x, int64_t k, float* out) {
    constexpr int U = T == 1 ? 2 : 1;
    __m256 facc[R][T][U];
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
#pragma GCC unroll 16
      for (int t = 0; t < T; ++t) {
#pragma GCC unroll 16
        for (int u = 0; u < U; ++u) facc[i][t][u] = _mm256_setzero_ps();
      }
    }
    int64_t j = 0;
    for (; j + 8 * U <= k; j += 8 * U) {
#pragma GCC unroll 16
      for (int u = 0; u < U; ++u) {
        __m256 xv[T];
#pragma GCC unroll 16
        for (int t = 0; t < T; ++t) xv[t] = _mm256_loadu_ps(x[t] + j + 8 * u);
#pragma GCC unroll 16
        for (int i = 0; i < R; ++i) {
          const __m256 wv = LoadW<W>(w[i], j + 8 * u);
#pragma GCC unroll 16
          for (int t = 0; t < T; ++t) facc[i][t][u] = _mm256_fmadd_ps(wv, xv[t], facc[i][t][u]);
        }
      }
    }
    for (; j + 8 <= k; j += 8) {
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        const __m256 wv = LoadW<W>(w[i], j);
#pragma GCC unroll 16
        for (int t = 0; t < T; ++t) facc[i][t][0] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x[t] + j), facc[i][t][0]);
      }
    }
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
#pragma GCC unroll 16
      for (int t = 0; t < T; ++t) {
        if constexpr (U == 2) facc[i][t][0] = _mm256_add_ps(facc[i][t][0], facc[i][t][U - 1]);
        float sum = HSum(facc[i][t][0]);
        for (int64_t jj = j; jj < k; ++jj) sum += LoadWScalar<W>(w[i], jj) * x[t][jj];
        out[i * 4 + t] = sum;
      }
    }
  }

  // f32 panel microkernel: 16 rows x T tokens; x points at token t0, column e0 ([T][ldx]).
  template <int T>
  static void PanelFloat(const float* pf, int64_t kc, const float* x, int64_t ldx, float* y, int64_t ldy, int nrows,
                         bool accumulate) {
    __m256 f0[T], f1[T];
    #pragma GCC unroll 16
    for (int t = 0; t < T; ++t) f0[t] = f1[t] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; ++k) {
      const __m256 w0 = _mm256_loadu_ps(pf + k * 16), w1 = _mm256_loadu_ps(pf + k * 16 + 8);
      #pragma GCC unroll 16
      for (int t = 0; t < T; ++t) {
        const __m256 xv = _mm256_broadcast_ss(x + t * ldx + k);
        f0[t] = _mm256_fmadd_ps(w0, xv, f0[t]);
        f1[t] = _mm256_fmadd_ps(w1, xv, f1[t]);
      }
    }
    #pragma GCC unroll 16
    for (int t = 0; t < T; ++t) StoreRows(y + t * ldy, f0[t], f1[t], nrows, accumulate);
  }

  // dst[c * dst_stride + r] = rows[r][col0 + c] for r, c < 8 (an 8 x 8 transpose of 32-bit words).
  static void Transpose(const uint32_t* const* rows, int64_t col0, uint32_t* dst, int64_t dst_stride) {
    __m256 r[8], t[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm256_castsi256_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[i] + col0)));
    for (int i = 0; i < 8; i += 2) {
      t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
      t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
      r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
      r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
      r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
      r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    for (int i = 0; i < 4; ++i) {
      t[i] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x20);
      t[i + 4] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x31);
    }
    for (int i = 0; i < 8; ++i) _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i * dst_stride), _mm256_castps_si256(t[i]));
  }

  static void F16ToF32(const uint16_t* src, float* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, LoadW<WKind::kF16>(src, i));
    for (; i < n; ++i) dst[i] = HalfToFloat(src[i]);
  }
  static void Bf16ToF32(const uint16_t* src, float* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, LoadW<WKind::kBF16>(src, i));
    for (; i < n; ++i) dst[i] = Bf16Bits(src[i]);
  }
  static void F32ToF16(const float* src, uint16_t* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                       _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    for (; i < n; ++i) dst[i] = FloatToHalf(src[i]);
  }
  // Round to nearest even in integer arithmetic; nan -> quiet nan (as util/fp16.h).
  static void F32ToBf16(const float* src, uint16_t* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const __m256 v = _mm256_loadu_ps(src + i);
      const __m256i u = _mm256_castps_si256(v);
      const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
      const __m256i rounded =
          _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
      const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(64));
      const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
      const __m256i r = _mm256_blendv_epi8(rounded, quiet, nan);
      // 8 x u32 (each < 65536) -> 8 x u16.
      const __m128i packed = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), packed);
    }
    for (; i < n; ++i) {  // the same rounding, one element at a time
      uint32_t u;
      std::memcpy(&u, src + i, 4);
      dst[i] = (u & 0x7fffffffu) > 0x7f800000u ? static_cast<uint16_t>((u >> 16) | 64)
                                               : static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
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

}  // namespace avx2

const IsaOps* Avx2Ops() {
  static const IsaOps ops = {
      Isa::kAvx2,         avx2::QuantizeActsImpl, avx2::ActLayouts, avx2::RowsPerTask, avx2::ReserveScratch, avx2::MatMulRows,
      avx2::DotF32Impl,   avx2::K::F16ToF32,      avx2::K::F32ToF16, avx2::K::Bf16ToF32,
      avx2::K::F32ToBf16, avx2::DequantizeRowIsa,
  };
  return &ops;
}

}  // namespace g4::kernels
