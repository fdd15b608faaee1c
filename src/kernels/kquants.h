// Reference k-quant conversions (Q4_K, Q5_K, Q6_K and the activation type Q8_K), bit-exact with
// ggml's quantize_row_*_ref / dequantize_row_* (the scale searches that `llama-quantize` runs when
// it has no importance matrix). nb = number of 256-element super-blocks.
#pragma once

#include <cstdint>

#include "kernels/quant_blocks.h"

namespace g4::kernels {

void QuantizeRowQ4_K(const float* x, BlockQ4_K* y, int64_t nb);
void QuantizeRowQ5_K(const float* x, BlockQ5_K* y, int64_t nb);
void QuantizeRowQ6_K(const float* x, BlockQ6_K* y, int64_t nb);
void QuantizeRowQ8_K(const float* x, BlockQ8_K* y, int64_t nb);

void DequantizeRowQ4_K(const BlockQ4_K* x, float* y, int64_t nb);
void DequantizeRowQ5_K(const BlockQ5_K* x, float* y, int64_t nb);
void DequantizeRowQ6_K(const BlockQ6_K* x, float* y, int64_t nb);
void DequantizeRowQ8_K(const BlockQ8_K* x, float* y, int64_t nb);

// Round to nearest, ties to even, for |f| < 2^22 (ggml's nearest_int): adding 1.5 * 2^23 leaves no
// fraction bits in the sum, so the addition itself rounds; the integer is then in the low mantissa.
inline int NearestInt(float f) {
  const float biased = f + 12582912.0f;
  uint32_t bits;
  __builtin_memcpy(&bits, &biased, 4);
  return static_cast<int>(bits & 0x007fffffu) - 0x00400000;
}

}  // namespace g4::kernels
