// Scalar reference dot products of the fast path, one per weight type, written directly against the
// GGUF block layouts (independently of the decoders the SIMD kernels use, so tests comparing the
// two check the decoders too). Integer parts are exact; the float steps are the ones ops.h defines
// (llama.cpp's per-type formulas, with fused multiply-adds).
#include <cmath>
#include <cstring>

#include "kernels/ops.h"
#include "kernels/quant_blocks.h"
#include "util/error.h"
#include "util/fp16.h"

namespace g4::kernels {

namespace {

// Shared shape of the 32-element types: block b's levels come from `level(b, j)` (signed, offset
// removed), `with_min` adds m * d_x * sum_x.
template <typename Block, typename Level>
float Dot32(const uint8_t* wrow, const QuantActs& a, int64_t t, Level level) {
  const Block* blocks = reinterpret_cast<const Block*>(wrow);
  const int8_t* xq = a.qt(t);
  const float* xd = a.dt(t);
  const int32_t* xs = a.sumt(t);
  float sumf = 0;
  for (int64_t b = 0; b < a.cols / kQK; ++b) {
    int isum = 0;
    for (int j = 0; j < kQK; ++j) isum += level(blocks[b], j) * xq[b * kQK + j];
    sumf = std::fma(static_cast<float>(isum), F16ToF32(blocks[b].d) * xd[b], sumf);
    if constexpr (requires { blocks[b].m; }) {
      sumf = std::fma(F16ToF32(blocks[b].m), xd[b] * static_cast<float>(xs[b]), sumf);
    }
  }
  return sumf;
}

inline int Nibble(const uint8_t* qs, int j) { return j < 16 ? qs[j] & 15 : qs[j - 16] >> 4; }
inline int HighBit(const uint8_t* qh, int j) {
  uint32_t h;
  std::memcpy(&h, qh, 4);
  return static_cast<int>((h >> j) & 1);
}

// Q4_K / Q5_K: per super-block d_x * (d * sum_j sc_j * isum_j) - d_x * (dmin * sum_j m_j * xsum_j).
template <typename Block, int kBits>
float DotK4K5(const uint8_t* wrow, const QuantActs& a, int64_t t) {
  const Block* blocks = reinterpret_cast<const Block*>(wrow);
  const int8_t* xq = a.qt(t);
  const float* xd = a.dt(t);
  const int32_t* xs = a.sumt(t);  // per 32
  float sumf = 0;
  for (int64_t b = 0; b < a.cols / kQK_K; ++b) {
    const Block& blk = blocks[b];
    int sumi = 0, summ = 0;
    for (int s = 0; s < 8; ++s) {  // sub-block s: chunk s / 2, low nibbles if s is even
      uint8_t sc, m;
      UnpackScaleMinK4(blk.scales, s, &sc, &m);
      int isum = 0;
      for (int l = 0; l < 32; ++l) {
        const uint8_t byte = blk.qs[32 * (s / 2) + l];
        int q = s % 2 == 0 ? byte & 15 : byte >> 4;
        if constexpr (kBits == 5) q |= ((blk.qh[l] >> s) & 1) << 4;
        isum += q * xq[b * kQK_K + 32 * s + l];
      }
      sumi += sc * isum;
      summ += m * xs[b * 8 + s];
    }
    const float dx = xd[b * 8];
    sumf = std::fma(static_cast<float>(sumi), dx * F16ToF32(blk.d), sumf);
    sumf = std::fma(static_cast<float>(summ), -(dx * F16ToF32(blk.dmin)), sumf);
  }
  return sumf;
}

float DotQ6_K(const uint8_t* wrow, const QuantActs& a, int64_t t) {
  const BlockQ6_K* blocks = reinterpret_cast<const BlockQ6_K*>(wrow);
  const int8_t* xq = a.qt(t);
  const float* xd = a.dt(t);
  float sumf = 0;
  for (int64_t b = 0; b < a.cols / kQK_K; ++b) {
    const BlockQ6_K& blk = blocks[b];
    int sumi = 0;
    for (int e = 0; e < kQK_K; e += 16) {  // sub-block e / 16
      int isum = 0;
      for (int i = e; i < e + 16; ++i) {
        const int h = i / 128, l = i % 32, quarter = (i % 128) / 32;  // element 128h + 32 quarter + l
        const uint8_t lo_byte = blk.ql[64 * h + l + (quarter % 2) * 32];
        const int lo = quarter < 2 ? lo_byte & 15 : lo_byte >> 4;
        const int hi = (blk.qh[32 * h + l] >> (2 * quarter)) & 3;
        isum += ((lo | (hi << 4)) - 32) * xq[b * kQK_K + i];
      }
      sumi += blk.scales[e / 16] * isum;
    }
    sumf = std::fma(static_cast<float>(sumi), xd[b * 16] * F16ToF32(blk.d), sumf);
  }
  return sumf;
}

}  // namespace

float RefDotQuant(GgmlType wtype, const uint8_t* wrow, const QuantActs& a, int64_t t) {
  switch (wtype) {
    case GgmlType::Q4_0:
      return Dot32<BlockQ4_0>(wrow, a, t, [](const BlockQ4_0& b, int j) { return Nibble(b.qs, j) - 8; });
    case GgmlType::Q4_1:
      return Dot32<BlockQ4_1>(wrow, a, t, [](const BlockQ4_1& b, int j) { return Nibble(b.qs, j); });
    case GgmlType::Q5_0:
      return Dot32<BlockQ5_0>(wrow, a, t, [](const BlockQ5_0& b, int j) {
        return (Nibble(b.qs, j) | (HighBit(b.qh, j) << 4)) - 16;
      });
    case GgmlType::Q5_1:
      return Dot32<BlockQ5_1>(wrow, a, t,
                              [](const BlockQ5_1& b, int j) { return Nibble(b.qs, j) | (HighBit(b.qh, j) << 4); });
    case GgmlType::Q8_0:
      return Dot32<BlockQ8_0>(wrow, a, t, [](const BlockQ8_0& b, int j) { return static_cast<int>(b.qs[j]); });
    case GgmlType::Q4_K: return DotK4K5<BlockQ4_K, 4>(wrow, a, t);
    case GgmlType::Q5_K: return DotK4K5<BlockQ5_K, 5>(wrow, a, t);
    case GgmlType::Q6_K: return DotQ6_K(wrow, a, t);
    default:
      Fail("reference dot: %s is not a quantized weight type", TypeName(wtype));
  }
}

float RefDotFloat(const float* w, const float* x, int64_t n) {
  float acc = 0;
  for (int64_t c = 0; c < n; ++c) acc = std::fma(w[c], x[c], acc);
  return acc;
}

}  // namespace g4::kernels
