// Portable kernels for any x86-64 (or other) CPU, and the reference the SIMD kernels are tested
// against bit for bit: the fast path uses the per-type reference dot products (ref_dot.cc) row by
// row, the exact path dequantizes each row with DequantizeRow and accumulates with fma, left to right.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/kquants.h"
#include "kernels/ops.h"
#include "kernels/panel.h"
#include "kernels/quant_blocks.h"
#include "kernels/scratch.h"
#include "util/error.h"
#include "util/fp16.h"

namespace g4::kernels {
namespace scalar {

struct V {
  static constexpr bool kSignedQ8 = false;
  static void HalfToFloat16(const uint16_t* h, float* out) {
    for (int i = 0; i < 16; ++i) out[i] = g4::F16ToF32(h[i]);
  }

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

// The decoders use 64-byte vector types; without AVX GCC notes that passing them by value has
// another ABI. They never cross this translation unit (all inline, in this namespace).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
#include "kernels/decode-inl.h"
#include "kernels/exp-inl.h"
#pragma GCC diagnostic pop
#include "kernels/acts-inl.h"

namespace {

float DotF32Impl(const float* a, const float* b, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

int64_t PanelsPerTask(const MatMulArgs&, bool) { return 1; }

void ReserveScratch(const MatMulArgs& a, KernelScratch* s) {
  s->rowb.Get<uint8_t>(a.w.row_bytes());
  s->rowf.Get<float>(static_cast<size_t>(a.w.cols));
}

// The reference, row by row: each row in GGUF layout (unpacked from the panel layout if packed),
// then RefDotQuant or RefDotFloat over its exact f32 values.
void MatMulPanels(const MatMulArgs& a, int64_t p0, int64_t p1, KernelScratch* s) {
  uint8_t* rowb = s->rowb.Get<uint8_t>(a.w.row_bytes());
  float* rowf = s->rowf.Get<float>(static_cast<size_t>(a.w.cols));
  const int64_t tiles = a.w.cols / TileCols(a.w.type);
  for (int64_t p = p0; p < p1; ++p) {
    for (int r = 0; r < kPanelRows && p * kPanelRows + r < a.w.rows; ++r) {
      const int64_t row = p * kPanelRows + r;
      const uint8_t* src = a.w.row(row);
      if (a.w.packed != nullptr) {
        UnpackPanelRow(a.w.type, a.w.packed + p * PanelBytes(a.w), tiles, r, rowb);
        src = rowb;
      }
      if (a.acts != nullptr) {
        for (int64_t t = 0; t < a.n; ++t) a.y[t * a.ldy + row] = RefDotQuant(a.w.type, src, *a.acts, t);
      } else {
        DequantizeRow(a.w.type, src, rowf, a.w.cols);
        for (int64_t t = 0; t < a.n; ++t) a.y[t * a.ldy + row] = RefDotFloat(rowf, a.x + t * a.ldx, a.w.cols);
      }
    }
  }
}

// Attention on cached rows: each row dequantized exactly (DequantizeRow), then fma chains in order.
void AttnScoresImpl(const float* q, int64_t ldq, int nq, GgmlType kt, const uint8_t* k, int64_t k_stride, int nk,
                    int hd, float* s, int64_t lds, const uint8_t*, int64_t, int64_t) {
  float row[1024];
  G4_CHECK(hd <= 1024);
  for (int j = 0; j < nk; ++j) {
    DequantizeRow(kt, k + j * k_stride, row, hd);
    for (int i = 0; i < nq; ++i) s[i * lds + j] = RefDotFloat(q + i * ldq, row, hd);
  }
}
void AttnAccumulateImpl(const float* p, int64_t ldp, int nq, GgmlType vt, const uint8_t* v, int64_t v_stride, int nk,
                        int hd, float* acc, int64_t ldacc) {
  float row[1024];
  G4_CHECK(hd <= 1024);
  for (int j = 0; j < nk; ++j) {
    DequantizeRow(vt, v + j * v_stride, row, hd);
    for (int i = 0; i < nq; ++i) {
      float* a = acc + i * ldacc;
      const float w = p[i * ldp + j];
      for (int d = 0; d < hd; ++d) a[d] = std::fma(w, row[d], a[d]);
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

}  // namespace
}  // namespace scalar

const IsaOps* ScalarOps() {
  static const IsaOps ops = {
      Isa::kScalar,         scalar::QuantizeActsImpl, scalar::PanelsPerTask, scalar::ReserveScratch,
      scalar::MatMulPanels, scalar::DotF32Impl,       scalar::F16ToF32,      scalar::F32ToF16,
      scalar::Bf16ToF32,    scalar::F32ToBf16,     scalar::AttnScoresImpl, scalar::AttnAccumulateImpl, scalar::ExpShiftedImpl, scalar::GeGluTanhImpl,
      scalar::SoftCapImpl,
  };
  return &ops;
}

}  // namespace g4::kernels
