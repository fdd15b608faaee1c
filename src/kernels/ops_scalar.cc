// Portable kernels for any x86-64 (or other) CPU, and the reference the SIMD kernels are tested
// against: the fast path uses the per-type reference dot products (ref_dot.cc) row by row, the
// exact path dequantizes each row with DequantizeRow and accumulates in f32, left to right.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/kquants.h"
#include "kernels/ops.h"
#include "kernels/quant_blocks.h"
#include "kernels/scratch.h"
#include "util/error.h"
#include "util/fp16.h"

namespace g4::kernels {
namespace scalar {

inline float HalfToFloat(uint16_t h) { return g4::F16ToF32(h); }
inline void ScaleBytes8(const uint8_t* b, float d, bool negate, float* out) {
  for (int i = 0; i < 8; ++i) out[i] = negate ? -(d * b[i]) : d * b[i];
}
inline void ScaleSBytes8(const int8_t* b, float d, float* out) {
  for (int i = 0; i < 8; ++i) out[i] = d * b[i];
}

// The decoders use 32-byte vector types; without AVX GCC notes that passing them by value has
// another ABI. They never cross this translation unit (all inline, in this namespace).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
#include "kernels/decode-inl.h"
#pragma GCC diagnostic pop

struct K {
  static constexpr bool kSignedQ8 = false;  // offsets are unused by the reference dots

  static void QuantizeBlockQ8_0(const float* x, int8_t* q, float* d, int32_t* sum) {
    float amax = 0;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    *d = F16ToF32(F32ToF16(amax / 127.f));
    const float id = amax != 0.0f ? 127.f / amax : 0.0f;
    int32_t s = 0;
    for (int j = 0; j < kQK; ++j) {
      q[j] = static_cast<int8_t>(NearestInt(x[j] * id));
      s += q[j];
    }
    *sum = s;
  }

  static void QuantizeBlockQ8_K(const float* x, int8_t* q, float* d, int32_t* sum16) {
    BlockQ8_K b;
    QuantizeRowQ8_K(x, &b, 1);
    std::memcpy(q, b.qs, kQK_K);
    for (int i = 0; i < 16; ++i) sum16[i] = b.bsums[i];
    *d = b.d;
  }
};

#include "kernels/acts-inl.h"

namespace {

float DotF32Impl(const float* a, const float* b, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

int64_t RowsPerTask(const MatMulArgs&) { return 8; }
int ActLayouts(const MatMulArgs&) { return 0; }

AlignedBuffer& RowBuffer() {
  thread_local AlignedBuffer row_buffer;
  return row_buffer;
}
void ReserveScratch(const MatMulArgs& a) { RowBuffer().Get<float>(static_cast<size_t>(a.w.cols)); }

void MatMulRows(const MatMulArgs& a, int64_t r0, int64_t r1) {
  float* rowf = RowBuffer().Get<float>(static_cast<size_t>(a.w.cols));
  for (int64_t r = r0; r < r1; ++r) {
    if (a.acts != nullptr) {
      for (int64_t t = 0; t < a.n; ++t) a.y[t * a.ldy + r] = RefDotQuant(a.w.type, a.w.row(r), *a.acts, t);
    } else {
      DequantizeRow(a.w.type, a.w.row(r), rowf, a.w.cols);
      for (int64_t t = 0; t < a.n; ++t) a.y[t * a.ldy + r] = DotF32Impl(rowf, a.x + t * a.ldx, a.w.cols);
    }
  }
}

void F16ToF32(const uint16_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = g4::F16ToF32(src[i]);
}
void F32ToF16(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = g4::F32ToF16(src[i]);
}
void Bf16ToF32(const uint16_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = g4::Bf16ToF32(src[i]);
}
void F32ToBf16(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = g4::F32ToBf16(src[i]);
}
void DequantizeRowIsa(GgmlType t, const uint8_t* src, float* dst, int64_t n) { DequantizeRow(t, src, dst, n); }

}  // namespace
}  // namespace scalar

const IsaOps* ScalarOps() {
  static const IsaOps ops = {
      Isa::kScalar,       scalar::QuantizeActsImpl, scalar::ActLayouts, scalar::RowsPerTask, scalar::ReserveScratch, scalar::MatMulRows,
      scalar::DotF32Impl, scalar::F16ToF32,         scalar::F32ToF16,    scalar::Bf16ToF32,
      scalar::F32ToBf16,  scalar::DequantizeRowIsa,
  };
  return &ops;
}

}  // namespace g4::kernels
