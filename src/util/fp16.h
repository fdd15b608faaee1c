// Half-precision conversions (IEEE binary16 and bfloat16), exact and portable. Hot loops use the
// SIMD conversions in src/kernels; these are the reference.
#pragma once

#include <cstdint>
#include <cstring>

namespace g4 {

inline float Bits2F32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t F32Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// binary16 -> float, exact for every input (subnormals, inf, nan).
inline float F16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t man = h & 0x3ffu;
  if (exp == 0) {
    if (man == 0) return Bits2F32(sign);
    // subnormal: man * 2^-24
    const float f = static_cast<float>(man) * 5.9604644775390625e-08f;
    return sign ? -f : f;
  }
  if (exp == 31) return Bits2F32(sign | 0x7f800000u | (man << 13));
  return Bits2F32(sign | ((exp + 112) << 23) | (man << 13));
}

// float -> binary16, round to nearest even (what F16C's vcvtps2ph with rounding mode 0 does).
inline uint16_t F32ToF16(float f) {
  const uint32_t x = F32Bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) {  // inf or nan
    return static_cast<uint16_t>(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u | ((ax >> 13) & 0x3ffu) : 0));
  }
  if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflows to inf
  if (ax < 0x38800000u) {                                                // subnormal or zero in half
    if (ax < 0x33000000u) return static_cast<uint16_t>(sign);           // < 2^-25 rounds to 0
    const uint32_t e = ax >> 23;
    const uint32_t m = (ax & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;  // 14 - (e - 127) + 1 ... aligns to 2^-24 units
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t r = ((ax >> 13) - (112u << 10));
  const uint32_t rem = ax & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;
  return static_cast<uint16_t>(sign | r);
}

inline float Bf16ToF32(uint16_t h) { return Bits2F32(static_cast<uint32_t>(h) << 16); }

// float -> bfloat16, round to nearest even; nan stays nan (as ggml_compute_fp32_to_bf16 does).
inline uint16_t F32ToBf16(float f) {
  uint32_t u = F32Bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 64);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// Rounds a float to the nearest bfloat16 value (used for the embedding scale, as HF/JAX do).
inline float RoundToBf16(float f) { return Bf16ToF32(F32ToBf16(f)); }

}  // namespace g4
