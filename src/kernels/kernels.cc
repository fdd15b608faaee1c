// Minimal portable implementation of kernels.h (exact path for every type). The SIMD kernels and
// the fast path replace it; this file keeps the reference semantics.
#include "kernels/kernels.h"

#include <cstring>
#include <vector>

#include "util/error.h"
#include "util/fp16.h"

namespace g4::kernels {

void DequantizeRow(GgmlType t, const void* src, float* dst, int64_t n) {
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
    case GgmlType::Q8_0:
      for (int64_t b = 0; b < n / 32; ++b) {
        const uint8_t* blk = p + b * 34;
        uint16_t h;
        std::memcpy(&h, blk, 2);
        const float d = F16ToF32(h);
        for (int j = 0; j < 32; ++j) dst[b * 32 + j] = d * static_cast<int8_t>(blk[2 + j]);
      }
      return;
    default:
      Fail("dequantize: type %s is not implemented yet", TypeName(t));
  }
}

void QuantizeRow(GgmlType t, const float*, void*, int64_t) { Fail("quantize: type %s is not implemented yet", TypeName(t)); }

float DotF32(const float* a, const float* b, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

void MatMul(const Matrix& w, const float* x, int64_t ldx, int64_t n, float* y, int64_t ldy, Math, ThreadPool& pool) {
  pool.ParallelFor(w.rows, 16, [&](int64_t r0, int64_t r1) {
    std::vector<float> row(static_cast<size_t>(w.cols));
    for (int64_t r = r0; r < r1; ++r) {
      DequantizeRow(w.type, w.row(r), row.data(), w.cols);
      for (int64_t i = 0; i < n; ++i) y[i * ldy + r] = DotF32(row.data(), x + i * ldx, w.cols);
    }
  });
}

const char* ActiveIsa() { return "scalar"; }

}  // namespace g4::kernels
