// AVX-512 (F, BW, DQ, VL) + VNNI kernels. Compiled with those -m flags only; selected at run time
// when the CPU has them. Integer dot products use vpdpbusd (unsigned weight levels x signed int8
// activations, 4 products summed per 32-bit lane) and vpdpwssd; floats use 16-lane FMA. One panel
// (16 rows) is one register.
// GCC 12 warns that the _mm512_undefined_* values inside its own intrinsics are uninitialized
// (GCC bug 105593); the warnings point into the intrinsics headers, so silence them there only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>

#include "kernels/ops.h"
#include "kernels/panel.h"
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

namespace {

inline int32_t LoadI32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline __mmask16 RowMask(int nrows) {
  return nrows >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << std::max(nrows, 0)) - 1);
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

// The 16-lane vector policy of the shared kernels (tiling-inl.h): one register per panel.
struct V {
  using I = __m512i;
  using F = __m512;
  static constexpr bool kSignedQ8 = false;  // Q8_0 levels are value + 128, for vpdpbusd
  static constexpr int kPanels = 2;         // panels per register tile and unit of work
  static constexpr int kQuantTokens = 4;    // token tile of the integer kernels
  static constexpr int kDirectTokens = 4;   // quantized weights with at most this many tokens: QuantTileK/G
  static constexpr int kFloatTokens = 6;    // and of the float kernels

  static I Zero() { return _mm512_setzero_si512(); }
  static I Set1(int32_t v) { return _mm512_set1_epi32(v); }
  static I Load(const void* p) { return _mm512_loadu_si512(p); }
  static I Add(I a, I b) { return _mm512_add_epi32(a, b); }
  static I MulLo(I a, I b) { return _mm512_mullo_epi32(a, b); }
  // acc + per lane the sum of 4 products: unsigned levels of w x the 4 signed bytes at x.
  static I Dot4(I acc, I w, const int8_t* x) { return _mm512_dpbusd_epi32(acc, w, _mm512_set1_epi32(LoadI32(x))); }
  static I Dot4Signed(I acc, I, const int8_t*) { return acc; }  // unused: kSignedQ8 is false
  // acc + lo16(a) * lo16(b) + hi16(a) * hi16(b), signed, per lane.
  static I DotPairs(I acc, I a, int32_t b) { return _mm512_dpwssd_epi32(acc, a, _mm512_set1_epi32(b)); }
  static F ToF(I v) { return _mm512_cvtepi32_ps(v); }
  static F FZero() { return _mm512_setzero_ps(); }
  static F FSet1(float v) { return _mm512_set1_ps(v); }
  static F FLoad(const float* p) { return _mm512_loadu_ps(p); }
  static F Mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F Fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F Neg(F a) { return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), _mm512_set1_epi32(INT32_MIN))); }
  static F LoadRows(const float* y, int nrows) { return _mm512_maskz_loadu_ps(RowMask(nrows), y); }
  static void StoreRows(float* y, F v, int nrows) { _mm512_mask_storeu_ps(y, RowMask(nrows), v); }
  static void HalfToFloat16(const uint16_t* h, float* out) {
    _mm512_storeu_ps(out, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h))));
  }

  // Attention (attn-inl.h): tiles of keys x queries for scores, dims (x16) x queries for values.
  static constexpr int kAttnKeys = 4, kAttnQueries = 6, kAttnDims = 4;
  static void FStore(float* p, F v) { _mm512_storeu_ps(p, v); }
  static float HSum(F v) { return _mm512_reduce_add_ps(v); }
  static F LoadF16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static F LoadBf16(const uint16_t* p) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static F LoadI8(const int8_t* p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
  // (nibble - offset) of 16 bytes: the low nibbles, or the high ones.
  static F LoadNibbles(const uint8_t* qs, bool high, int offset) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    if (high) v = _mm_srli_epi16(v, 4);
    const __m512i n = _mm512_cvtepu8_epi32(_mm_and_si128(v, _mm_set1_epi8(15)));
    return _mm512_cvtepi32_ps(_mm512_sub_epi32(n, _mm512_set1_epi32(offset)));
  }

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

#include "kernels/decode-inl.h"
#include "kernels/acts-inl.h"
#include "kernels/tiling-inl.h"
#include "kernels/attn-inl.h"
#include "kernels/exp-inl.h"

}  // namespace avx512

const IsaOps* Avx512Ops() {
  static const IsaOps ops = {
      Isa::kAvx512,         avx512::QuantizeActsImpl, avx512::PanelsPerTask, avx512::ReserveScratch,
      avx512::MatMulPanels, avx512::DotF32Impl,       avx512::V::F16ToF32,   avx512::V::F32ToF16,
      avx512::V::Bf16ToF32, avx512::V::F32ToBf16,     avx512::AttnScoresImpl, avx512::AttnAccumulateImpl, avx512::ExpShiftedImpl, avx512::GeGluTanhImpl,
      avx512::SoftCapImpl,
  };
  return &ops;
}

}  // namespace g4::kernels
