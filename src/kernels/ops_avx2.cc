// AVX2 + FMA + F16C kernels. Compiled with those -m flags only; selected at run time when the CPU
// has them. Integer dot products use vpmaddubsw (u8 x s8 -> pairs summed to i16, no saturation for
// levels < 64) then vpmaddwd with ones (-> i32); Q8_0 weights are signed and use |w| * sign(x, w).
// One panel (16 rows) is two registers.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/ops.h"
#include "kernels/panel.h"
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


// The 16-lane vector policy of the shared kernels (tiling-inl.h): two registers per panel.
struct V {
  struct I {
    __m256i lo, hi;
  };
  struct F {
    __m256 lo, hi;
  };
  static constexpr bool kSignedQ8 = true;  // Q8_0 levels are the int8 values (|w| * sign(x, w))
  static constexpr int kPanels = 1;        // panels per register tile and unit of work
  static constexpr int kQuantTokens = 2;   // token tile of the integer kernels
  // QuantTileK is off (the panel path serves every n): without AVX-512, GCC keeps the decoders'
  // 64-byte vectors in memory, and decoding them in registers is 4x slower than the buffer.
  static constexpr int kDirectTokens = 0;
  static constexpr int kFloatTokens = 4;   // and of the float kernels

  static I Zero() { return {_mm256_setzero_si256(), _mm256_setzero_si256()}; }
  static I Set1(int32_t v) { return {_mm256_set1_epi32(v), _mm256_set1_epi32(v)}; }
  static I Load(const void* p) {
    const __m256i* v = static_cast<const __m256i*>(p);
    return {_mm256_loadu_si256(v), _mm256_loadu_si256(v + 1)};
  }
  static I Add(I a, I b) { return {_mm256_add_epi32(a.lo, b.lo), _mm256_add_epi32(a.hi, b.hi)}; }
  static I MulLo(I a, I b) { return {_mm256_mullo_epi32(a.lo, b.lo), _mm256_mullo_epi32(a.hi, b.hi)}; }
  // acc + per lane the sum of 4 products: unsigned levels (< 64) of w x the 4 signed bytes at x.
  static I Dot4(I acc, I w, const int8_t* x) {
    const __m256i xv = _mm256_set1_epi32(LoadI32(x)), ones = _mm256_set1_epi16(1);
    return {_mm256_add_epi32(acc.lo, _mm256_madd_epi16(_mm256_maddubs_epi16(w.lo, xv), ones)),
            _mm256_add_epi32(acc.hi, _mm256_madd_epi16(_mm256_maddubs_epi16(w.hi, xv), ones))};
  }
  // The same for signed levels w: |w| x sign(x, w) keeps the pair sums within int16.
  static I Dot4Signed(I acc, I w, const int8_t* x) {
    const __m256i xv = _mm256_set1_epi32(LoadI32(x)), ones = _mm256_set1_epi16(1);
    const __m256i lo = _mm256_maddubs_epi16(_mm256_abs_epi8(w.lo), _mm256_sign_epi8(xv, w.lo));
    const __m256i hi = _mm256_maddubs_epi16(_mm256_abs_epi8(w.hi), _mm256_sign_epi8(xv, w.hi));
    return {_mm256_add_epi32(acc.lo, _mm256_madd_epi16(lo, ones)), _mm256_add_epi32(acc.hi, _mm256_madd_epi16(hi, ones))};
  }
  // acc + lo16(a) * lo16(b) + hi16(a) * hi16(b), signed, per lane.
  static I DotPairs(I acc, I a, int32_t b) {
    const __m256i bv = _mm256_set1_epi32(b);
    return {_mm256_add_epi32(acc.lo, _mm256_madd_epi16(a.lo, bv)), _mm256_add_epi32(acc.hi, _mm256_madd_epi16(a.hi, bv))};
  }
  static F ToF(I v) { return {_mm256_cvtepi32_ps(v.lo), _mm256_cvtepi32_ps(v.hi)}; }
  static F FZero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
  static F FSet1(float v) { return {_mm256_set1_ps(v), _mm256_set1_ps(v)}; }
  static F FLoad(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
  static F Mul(F a, F b) { return {_mm256_mul_ps(a.lo, b.lo), _mm256_mul_ps(a.hi, b.hi)}; }
  static F Fma(F a, F b, F c) { return {_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)}; }
  static F Neg(F a) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    return {_mm256_xor_ps(a.lo, sign), _mm256_xor_ps(a.hi, sign)};
  }
  static __m256i Mask(int nrows) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(nrows), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static F LoadRows(const float* y, int nrows) {
    if (nrows >= 16) return FLoad(y);
    return {_mm256_maskload_ps(y, Mask(nrows)), _mm256_maskload_ps(y + 8, Mask(nrows - 8))};
  }
  static void StoreRows(float* y, F v, int nrows) {
    if (nrows >= 16) {
      _mm256_storeu_ps(y, v.lo);
      _mm256_storeu_ps(y + 8, v.hi);
      return;
    }
    _mm256_maskstore_ps(y, Mask(nrows), v.lo);
    _mm256_maskstore_ps(y + 8, Mask(nrows - 8), v.hi);
  }
  // Attention (attn-inl.h): tiles of keys x queries for scores, dims (x16) x queries for values.
  static constexpr int kAttnKeys = 2, kAttnQueries = 2, kAttnDims = 2;
  static void FStore(float* p, F v) {
    _mm256_storeu_ps(p, v.lo);
    _mm256_storeu_ps(p + 8, v.hi);
  }
  static float HSum(F v) { return avx2::HSum(_mm256_add_ps(v.lo, v.hi)); }
  static F LoadF16(const uint16_t* p) {
    const __m128i* h = reinterpret_cast<const __m128i*>(p);
    return {_mm256_cvtph_ps(_mm_loadu_si128(h)), _mm256_cvtph_ps(_mm_loadu_si128(h + 1))};
  }
  static F LoadBf16(const uint16_t* p) {
    const __m128i* h = reinterpret_cast<const __m128i*>(p);
    return {_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(h)), 16)),
            _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(h + 1)), 16))};
  }
  static F LoadI8(const int8_t* p) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return {_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v, 8)))};
  }
  // (nibble - offset) of 16 bytes: the low nibbles, or the high ones.
  static F LoadNibbles(const uint8_t* qs, bool high, int offset) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    if (high) v = _mm_srli_epi16(v, 4);
    v = _mm_and_si128(v, _mm_set1_epi8(15));
    const __m256i off = _mm256_set1_epi32(offset);
    return {_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(v), off)),
            _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(v, 8)), off))};
  }
  static void HalfToFloat16(const uint16_t* h, float* out) {
    const __m128i* p = reinterpret_cast<const __m128i*>(h);
    _mm256_storeu_ps(out, _mm256_cvtph_ps(_mm_loadu_si128(p)));
    _mm256_storeu_ps(out + 8, _mm256_cvtph_ps(_mm_loadu_si128(p + 1)));
  }

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

// The decoders use 64-byte vector types; without AVX-512 GCC notes that passing them by value has
// another ABI. They never cross this translation unit (all inline, in this namespace).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
#include "kernels/decode-inl.h"
#include "kernels/acts-inl.h"
#include "kernels/tiling-inl.h"
#include "kernels/attn-inl.h"
#include "kernels/exp-inl.h"
#pragma GCC diagnostic pop

}  // namespace avx2

const IsaOps* Avx2Ops() {
  static const IsaOps ops = {
      Isa::kAvx2,         avx2::QuantizeActsImpl, avx2::PanelsPerTask, avx2::ReserveScratch,
      avx2::MatMulPanels, avx2::DotF32Impl,       avx2::V::F16ToF32,   avx2::V::F32ToF16,
      avx2::V::Bf16ToF32, avx2::V::F32ToBf16,     avx2::AttnScoresImpl, avx2::AttnAccumulateImpl, avx2::ExpShiftedImpl, avx2::GeGluTanhImpl,
      avx2::SoftCapImpl,
  };
  return &ops;
}

}  // namespace g4::kernels
