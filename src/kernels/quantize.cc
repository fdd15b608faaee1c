// Reference QuantizeRow / DequantizeRow for the plain and 32-element types, and the per-type
// dispatch. Every function computes exactly what ggml's quantize_row_*_ref / dequantize_row_* do,
// with the same float operations in the same order (this file is compiled with -ffp-contract=off,
// as ggml-base is compiled without FMA), so the bytes and floats agree bit for bit.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "kernels/kernels.h"
#include "kernels/kquants.h"
#include "kernels/quant_blocks.h"
#include "util/error.h"
#include "util/fp16.h"

namespace g4::kernels {

namespace {

// Absolute maximum of a block and the signed value that has it (the first one on ties).
struct SignedMax {
  float amax = 0;
  float max = 0;
};
SignedMax FindSignedMax(const float* x, int n) {
  SignedMax r;
  for (int j = 0; j < n; ++j) {
    if (r.amax < std::fabs(x[j])) {
      r.amax = std::fabs(x[j]);
      r.max = x[j];
    }
  }
  return r;
}

void QuantizeQ4_0(const float* x, BlockQ4_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    const float d = FindSignedMax(x, kQK).max / -8;  // the largest magnitude maps to level 0 (-8)
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = F32ToF16(d);
    for (int j = 0; j < kQK / 2; ++j) {
      const int lo = std::min(15, static_cast<int>(x[j] * id + 8.5f));
      const int hi = std::min(15, static_cast<int>(x[j + kQK / 2] * id + 8.5f));
      y[i].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void QuantizeQ4_1(const float* x, BlockQ4_1* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < kQK; ++j) {
      if (x[j] < lo) lo = x[j];
      if (x[j] > hi) hi = x[j];
    }
    const float d = (hi - lo) / 15;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = F32ToF16(d);
    y[i].m = F32ToF16(lo);
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = std::min(15, static_cast<int>((x[j] - lo) * id + 0.5f));
      const int q1 = std::min(15, static_cast<int>((x[j + kQK / 2] - lo) * id + 0.5f));
      y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void QuantizeQ5_0(const float* x, BlockQ5_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    const float d = FindSignedMax(x, kQK).max / -16;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = F32ToF16(d);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = std::min(31, static_cast<int>(x[j] * id + 16.5f));
      const int q1 = std::min(31, static_cast<int>(x[j + kQK / 2] * id + 16.5f));
      y[i].qs[j] = static_cast<uint8_t>((q0 & 15) | ((q1 & 15) << 4));
      qh |= static_cast<uint32_t>(q0 >> 4) << j;
      qh |= static_cast<uint32_t>(q1 >> 4) << (j + kQK / 2);
    }
    std::memcpy(y[i].qh, &qh, 4);
  }
}

void QuantizeQ5_1(const float* x, BlockQ5_1* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < kQK; ++j) {
      if (x[j] < lo) lo = x[j];
      if (x[j] > hi) hi = x[j];
    }
    const float d = (hi - lo) / 31;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = F32ToF16(d);
    y[i].m = F32ToF16(lo);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      // No clamp here (as in ggml): (x - min) * id <= 31 up to rounding, so + 0.5 truncates to <= 31.
      const uint8_t q0 = static_cast<uint8_t>(static_cast<int>((x[j] - lo) * id + 0.5f));
      const uint8_t q1 = static_cast<uint8_t>(static_cast<int>((x[j + kQK / 2] - lo) * id + 0.5f));
      y[i].qs[j] = static_cast<uint8_t>((q0 & 15) | ((q1 & 15) << 4));
      qh |= static_cast<uint32_t>((q0 >> 4) & 1) << j;
      qh |= static_cast<uint32_t>((q1 >> 4) & 1) << (j + kQK / 2);
    }
    std::memcpy(y[i].qh, &qh, 4);
  }
}

void QuantizeQ8_0(const float* x, BlockQ8_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    float amax = 0;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = F32ToF16(d);
    for (int j = 0; j < kQK; ++j) y[i].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
  }
}

void DequantizeQ4_0(const BlockQ4_0* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = F16ToF32(x[i].d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = static_cast<float>((x[i].qs[j] & 15) - 8) * d;
      y[j + kQK / 2] = static_cast<float>((x[i].qs[j] >> 4) - 8) * d;
    }
  }
}

void DequantizeQ4_1(const BlockQ4_1* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = F16ToF32(x[i].d), m = F16ToF32(x[i].m);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = static_cast<float>(x[i].qs[j] & 15) * d + m;
      y[j + kQK / 2] = static_cast<float>(x[i].qs[j] >> 4) * d + m;
    }
  }
}

void DequantizeQ5_0(const BlockQ5_0* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = F16ToF32(x[i].d);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, 4);
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = (x[i].qs[j] & 15) | static_cast<int>(((qh >> j) & 1) << 4);
      const int q1 = (x[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
      y[j] = static_cast<float>(q0 - 16) * d;
      y[j + kQK / 2] = static_cast<float>(q1 - 16) * d;
    }
  }
}

void DequantizeQ5_1(const BlockQ5_1* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = F16ToF32(x[i].d), m = F16ToF32(x[i].m);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, 4);
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = (x[i].qs[j] & 15) | static_cast<int>(((qh >> j) & 1) << 4);
      const int q1 = (x[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
      y[j] = static_cast<float>(q0) * d + m;
      y[j + kQK / 2] = static_cast<float>(q1) * d + m;
    }
  }
}

void DequantizeQ8_0(const BlockQ8_0* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = F16ToF32(x[i].d);
    for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

void CheckRowLength(const char* what, GgmlType t, int64_t n) {
  const int64_t bs = Traits(t).block_size;
  if (n < 0 || n % bs != 0) {
    Fail("%s: a row of type %s needs a multiple of %lld elements, got %lld", what, TypeName(t),
         static_cast<long long>(bs), static_cast<long long>(n));
  }
}

}  // namespace

void DequantizeRow(GgmlType t, const void* src, float* dst, int64_t n) {
  CheckRowLength("dequantize", t, n);
  const uint8_t* p = static_cast<const uint8_t*>(src);
  switch (t) {
    case GgmlType::F32:
      std::memcpy(dst, p, static_cast<size_t>(n) * 4);
      return;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        dst[i] = F16ToF32(h);
      }
      return;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        dst[i] = Bf16ToF32(h);
      }
      return;
    case GgmlType::Q4_0: return DequantizeQ4_0(reinterpret_cast<const BlockQ4_0*>(p), dst, n / kQK);
    case GgmlType::Q4_1: return DequantizeQ4_1(reinterpret_cast<const BlockQ4_1*>(p), dst, n / kQK);
    case GgmlType::Q5_0: return DequantizeQ5_0(reinterpret_cast<const BlockQ5_0*>(p), dst, n / kQK);
    case GgmlType::Q5_1: return DequantizeQ5_1(reinterpret_cast<const BlockQ5_1*>(p), dst, n / kQK);
    case GgmlType::Q8_0: return DequantizeQ8_0(reinterpret_cast<const BlockQ8_0*>(p), dst, n / kQK);
    case GgmlType::Q4_K: return DequantizeRowQ4_K(reinterpret_cast<const BlockQ4_K*>(p), dst, n / kQK_K);
    case GgmlType::Q5_K: return DequantizeRowQ5_K(reinterpret_cast<const BlockQ5_K*>(p), dst, n / kQK_K);
    case GgmlType::Q6_K: return DequantizeRowQ6_K(reinterpret_cast<const BlockQ6_K*>(p), dst, n / kQK_K);
    case GgmlType::Q8_K: return DequantizeRowQ8_K(reinterpret_cast<const BlockQ8_K*>(p), dst, n / kQK_K);
    default:
      Fail("dequantize: type %s is not supported", TypeName(t));
  }
}

void QuantizeRow(GgmlType t, const float* src, void* dst, int64_t n) {
  CheckRowLength("quantize", t, n);
  uint8_t* p = static_cast<uint8_t*>(dst);
  switch (t) {
    case GgmlType::F32:
      std::memcpy(p, src, static_cast<size_t>(n) * 4);
      return;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = F32ToF16(src[i]);
        std::memcpy(p + 2 * i, &h, 2);
      }
      return;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = F32ToBf16(src[i]);
        std::memcpy(p + 2 * i, &h, 2);
      }
      return;
    case GgmlType::Q4_0: return QuantizeQ4_0(src, reinterpret_cast<BlockQ4_0*>(p), n / kQK);
    case GgmlType::Q4_1: return QuantizeQ4_1(src, reinterpret_cast<BlockQ4_1*>(p), n / kQK);
    case GgmlType::Q5_0: return QuantizeQ5_0(src, reinterpret_cast<BlockQ5_0*>(p), n / kQK);
    case GgmlType::Q5_1: return QuantizeQ5_1(src, reinterpret_cast<BlockQ5_1*>(p), n / kQK);
    case GgmlType::Q8_0: return QuantizeQ8_0(src, reinterpret_cast<BlockQ8_0*>(p), n / kQK);
    case GgmlType::Q4_K: return QuantizeRowQ4_K(src, reinterpret_cast<BlockQ4_K*>(p), n / kQK_K);
    case GgmlType::Q5_K: return QuantizeRowQ5_K(src, reinterpret_cast<BlockQ5_K*>(p), n / kQK_K);
    case GgmlType::Q6_K: return QuantizeRowQ6_K(src, reinterpret_cast<BlockQ6_K*>(p), n / kQK_K);
    case GgmlType::Q8_K: return QuantizeRowQ8_K(src, reinterpret_cast<BlockQ8_K*>(p), n / kQK_K);
    default:
      Fail("quantize: type %s is not supported", TypeName(t));
  }
}

}  // namespace g4::kernels
