// The attention kernels (AttnScores / AttnAccumulate, kernels.h) on every instruction set this CPU
// runs, for every KV-cache type: each score and each accumulated value is exactly the fixed order
// kernels.h promises, whatever the number of queries and keys in the call (so a query's attention
// does not depend on what it is batched with), with rows read in place at any stride.
//   scores, scalar: one fma chain over d (RefDotFloat) on the exactly dequantized row;
//   scores, SIMD:   16 lane chains (lane l takes d = l, l + 16, ...), then the lane tree
//                   (l, l + 8), (l, l + 4), (l, l + 2), (0, 1) of V::HSum;
//   accumulate, every ISA: acc = fma(p[i][j], V_j[d], acc) over j in order.
// And the element-wise functions (elementwise.h): the same bits on every ISA, close to their definition.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/ops.h"
#include "kernels/elementwise.h"
#include "kernels/test_inputs.h"

namespace g4::kernels {
namespace {

using testing::SplitMix64;

const GgmlType kKvTypes[] = {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0};
const Isa kIsas[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512};

bool SameBits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

float Uniform(SplitMix64& rng) { return static_cast<float>(static_cast<double>(rng.Next() >> 11) * 0x1p-53 * 2 - 1); }

// nk rows of hd random values stored as type t, `stride` bytes apart; deq gets their exact values.
std::vector<uint8_t> MakeRows(GgmlType t, int nk, int hd, int64_t stride, SplitMix64& rng, std::vector<float>* deq) {
  std::vector<uint8_t> rows(static_cast<size_t>(stride * nk), 0xA5);
  std::vector<float> x(static_cast<size_t>(hd));
  deq->assign(static_cast<size_t>(nk) * hd, 0.0f);
  for (int j = 0; j < nk; ++j) {
    for (float& v : x) v = 3.0f * Uniform(rng);
    uint8_t* dst = rows.data() + j * stride;
    switch (t) {
      case GgmlType::F32: std::memcpy(dst, x.data(), x.size() * 4); break;
      case GgmlType::F16: F32ToF16Row(x.data(), reinterpret_cast<uint16_t*>(dst), hd); break;
      case GgmlType::BF16: F32ToBf16Row(x.data(), reinterpret_cast<uint16_t*>(dst), hd); break;
      default: QuantizeRow(t, x.data(), dst, hd); break;
    }
    DequantizeRow(t, dst, deq->data() + static_cast<size_t>(j) * hd, hd);
  }
  return rows;
}

float LaneTreeDot(const float* q, const float* k, int hd) {
  float lane[16] = {};
  for (int d = 0; d < hd; ++d) lane[d % 16] = std::fma(q[d], k[d], lane[d % 16]);
  for (int half = 8; half >= 1; half /= 2) {
    for (int i = 0; i < half; ++i) lane[i] = lane[i] + lane[i + half];
  }
  return lane[0];
}

float ChainDot(const float* q, const float* k, int hd) {
  float acc = 0;
  for (int d = 0; d < hd; ++d) acc = std::fma(q[d], k[d], acc);
  return acc;
}

struct Shape {
  int nq, nk, hd;
};
const Shape kShapes[] = {{1, 1, 32}, {1, 67, 512}, {16, 64, 512}, {5, 3, 256}, {19, 9, 64}, {32, 64, 256}, {7, 70, 96}};

// Calls fn for every ISA this CPU runs, KV type and shape, under a trace naming them, with a
// generator seeded from the case.
template <typename Fn>
void ForEachCase(Fn fn) {
  for (Isa isa : kIsas) {
    if (!IsaSupported(isa)) continue;
    for (GgmlType t : kKvTypes) {
      for (const Shape& sh : kShapes) {
        SCOPED_TRACE(std::string(IsaName(isa)) + " " + TypeName(t) + " nq " + std::to_string(sh.nq) + " nk " +
                     std::to_string(sh.nk) + " hd " + std::to_string(sh.hd));
        SplitMix64 rng(static_cast<uint64_t>(sh.nq * 1000 + sh.nk * 10 + sh.hd) ^ static_cast<uint64_t>(t));
        fn(isa, t, sh, rng);
        if (::testing::Test::HasFatalFailure()) return;  // the first failing case is enough
      }
    }
  }
}

TEST(AttnKernels, ScoresFollowTheFixedOrderOnEveryIsa) {
  ForEachCase([](Isa isa, GgmlType t, const Shape& sh, SplitMix64& rng) {
    const int64_t stride = RowBytes(t, sh.hd) + 64, ldq = sh.hd + 16, lds = sh.nk + 5;
    std::vector<float> deq;
    const std::vector<uint8_t> k = MakeRows(t, sh.nk, sh.hd, stride, rng, &deq);
    std::vector<float> q(static_cast<size_t>(sh.nq * ldq));
    for (float& v : q) v = Uniform(rng);
    std::vector<float> s(static_cast<size_t>(sh.nq * lds), -1.0f);
    // Also prefetch some other rows (the V rows): a hint, which must not change anything.
    OpsFor(isa).attn_scores(q.data(), ldq, sh.nq, t, k.data(), stride, sh.nk, sh.hd, s.data(), lds, k.data(),
                            stride, RowBytes(t, sh.hd));
    for (int i = 0; i < sh.nq; ++i) {
      for (int j = 0; j < sh.nk; ++j) {
        const float* qi = q.data() + i * ldq;
        const float* kj = deq.data() + static_cast<size_t>(j) * sh.hd;
        const float want = isa == Isa::kScalar ? ChainDot(qi, kj, sh.hd) : LaneTreeDot(qi, kj, sh.hd);
        ASSERT_TRUE(SameBits(s[static_cast<size_t>(i * lds + j)], want))
            << "query " << i << " key " << j << ": " << s[static_cast<size_t>(i * lds + j)] << " vs " << want;
      }
      for (int64_t j = sh.nk; j < lds; ++j) ASSERT_EQ(s[static_cast<size_t>(i * lds + j)], -1.0f) << "wrote past nk";
    }
  });
}

TEST(AttnKernels, AccumulateIsTheFmaChainOnEveryIsa) {
  ForEachCase([](Isa isa, GgmlType t, const Shape& sh, SplitMix64& rng) {
    const int64_t stride = RowBytes(t, sh.hd) + 32, ldp = sh.nk + 3, ldacc = sh.hd + 16;
    std::vector<float> deq;
    const std::vector<uint8_t> v = MakeRows(t, sh.nk, sh.hd, stride, rng, &deq);
    std::vector<float> p(static_cast<size_t>(sh.nq * ldp)), acc(static_cast<size_t>(sh.nq * ldacc));
    for (float& x : p) x = 0.5f * (Uniform(rng) + 1.0f);
    for (float& x : acc) x = Uniform(rng);
    std::vector<float> want = acc;
    for (int i = 0; i < sh.nq; ++i) {
      for (int j = 0; j < sh.nk; ++j) {
        for (int d = 0; d < sh.hd; ++d) {
          float& w = want[static_cast<size_t>(i * ldacc + d)];
          w = std::fma(p[static_cast<size_t>(i * ldp + j)], deq[static_cast<size_t>(j) * sh.hd + d], w);
        }
      }
    }
    OpsFor(isa).attn_accumulate(p.data(), ldp, sh.nq, t, v.data(), stride, sh.nk, sh.hd, acc.data(), ldacc);
    for (size_t e = 0; e < acc.size(); ++e) {
      ASSERT_TRUE(SameBits(acc[e], want[e])) << "query " << e / ldacc << " dim " << e % ldacc << ": " << acc[e]
                                              << " vs " << want[e];
    }
  });
}

// Distance in units in the last place between a float and the double it approximates.
double Ulps(float got, double want) {
  const double ulp = std::ldexp(1.0, std::ilogb(static_cast<float>(want)) - 23);
  return std::fabs(static_cast<double>(got) - want) / ulp;
}

TEST(ExpShifted, SameBitsOnEveryIsaAndWithinTwoUlp) {
  // Arguments x * scale - shift over [-87.3, 0] (what the softmax passes) and a little above 0.
  const int64_t n = 200003;  // not a multiple of 16: the tail path too
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(i)] = -87.3f + 90.0f * static_cast<float>(i) / static_cast<float>(n);
  const float scale = 0.5f, shift = 1.25f;
  std::vector<float> want(x.size());
  OpsFor(Isa::kScalar).exp_shifted(x.data(), n, scale, shift, want.data());
  double worst = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float arg = x[static_cast<size_t>(i)] * scale - shift;
    const double ref = std::exp(static_cast<double>(arg));
    worst = std::max(worst, Ulps(want[static_cast<size_t>(i)], ref));
  }
  EXPECT_LE(worst, 2.0);
  for (Isa isa : kIsas) {
    if (!IsaSupported(isa)) continue;
    std::vector<float> got = x;  // in place: out == x
    OpsFor(isa).exp_shifted(got.data(), n, scale, shift, got.data());
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_TRUE(SameBits(got[i], want[i])) << IsaName(isa) << " x " << x[i] << ": " << got[i] << " vs " << want[i];
    }
  }
  // The dispatched entry point, and the ends: exp(0) = 1 exactly, 0 below -87.3, no NaN from -inf.
  const float edge[] = {0.0f, -87.29f, -87.31f, -1000.0f, -std::numeric_limits<float>::infinity(), -1e-30f, 1.0f};
  float out[7];
  ExpShifted(edge, 7, 1.0f, 0.0f, out);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_GT(out[1], 0.0f);
  EXPECT_EQ(out[2], 0.0f);
  EXPECT_EQ(out[3], 0.0f);
  EXPECT_EQ(out[4], 0.0f);
  EXPECT_EQ(out[5], 1.0f);
  EXPECT_LE(Ulps(out[6], std::exp(1.0)), 2.0);
}

TEST(GeGluTanh, SameBitsOnEveryIsaAndCloseToTheTanhForm) {
  const int64_t n = 100003;
  std::vector<float> gate(static_cast<size_t>(n)), up(gate.size());
  for (int64_t i = 0; i < n; ++i) {
    gate[static_cast<size_t>(i)] = -12.0f + 24.0f * static_cast<float>(i) / static_cast<float>(n);
    up[static_cast<size_t>(i)] = 1.0f + 0.5f * std::sin(static_cast<float>(i));
  }
  std::vector<float> want(gate.size());
  OpsFor(Isa::kScalar).geglu_tanh(gate.data(), up.data(), n, want.data());
  // Against the function in double, in the form x / (1 + exp(-2u)) = 0.5 x (1 + tanh(u)) (in the tanh
  // form even double loses all digits of 1 + tanh(u) for x below about -6). Rounding 2u to float
  // (a few operations, each within half an ulp) moves exp(-2u) by up to about 2|u| x 2 ulp relative,
  // which the exact function cannot avoid either, so: within 4 + 4|2u| ulp wherever the result is not
  // tiny (for very negative x it underflows towards 0; there the absolute error is what matters).
  double worst = 0, worst_abs = 0;  // worst: ulps beyond the allowance
  for (int64_t i = 0; i < n; ++i) {
    const double x = gate[static_cast<size_t>(i)];
    const double two_u = 2.0 * 0.79788456080286535588 * (x + 0.044715 * x * x * x);
    const double g = x / (1.0 + std::exp(-two_u));
    const double ref = g * static_cast<double>(up[static_cast<size_t>(i)]);
    const float got = want[static_cast<size_t>(i)];
    if (std::fabs(ref) > 1e-30) {
      worst = std::max(worst, Ulps(got, ref) - 4.0 * std::fabs(two_u));
    } else {
      worst_abs = std::max(worst_abs, std::fabs(static_cast<double>(got) - ref));
    }
  }
  EXPECT_LE(worst, 4.0);
  EXPECT_LE(worst_abs, 1e-30);
  for (Isa isa : kIsas) {
    if (!IsaSupported(isa)) continue;
    std::vector<float> got = gate;  // in place: out == gate
    OpsFor(isa).geglu_tanh(got.data(), up.data(), n, got.data());
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_TRUE(SameBits(got[i], want[i])) << IsaName(isa) << " x " << gate[i] << ": " << got[i] << " vs " << want[i];
    }
  }
  float out = -1;
  const float zero = 0, one = 1;
  GeGluTanh(&zero, &one, 1, &out);
  EXPECT_EQ(out, 0.0f);
}

TEST(SoftCap, SameBitsOnEveryIsaAndWithinThreeUlpOfTanh) {
  // Logits over [-400, 400] with cap 30 (z over [-13.3, 13.3]: both branches, the switch at
  // |z| = 0.625, and saturation), plus values around 0.
  const int64_t n = 400009;
  const float cap = 30.0f;
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(i)] = -400.0f + 800.0f * static_cast<float>(i) / static_cast<float>(n);
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-7f, 18.75f, -18.75f, 18.7499f, 18.7501f, 1e30f, -1e30f}) x.push_back(v);
  const int64_t m = static_cast<int64_t>(x.size());
  std::vector<float> want(x.size());
  OpsFor(Isa::kScalar).soft_cap(x.data(), m, cap, want.data());
  double worst = 0;
  for (int64_t i = 0; i < m; ++i) {
    // tanh of the float argument the function sees (x * (1 / cap), one rounding, as before).
    const float z = x[static_cast<size_t>(i)] * (1.0f / cap);
    const double ref = static_cast<double>(cap) * std::tanh(static_cast<double>(z));
    const float got = want[static_cast<size_t>(i)];
    if (ref == 0) {
      EXPECT_EQ(got, 0.0f) << x[static_cast<size_t>(i)];
    } else {
      worst = std::max(worst, Ulps(got, ref));
    }
  }
  EXPECT_LE(worst, 3.0);
  for (Isa isa : kIsas) {
    if (!IsaSupported(isa)) continue;
    std::vector<float> got = x;  // in place: out == x
    OpsFor(isa).soft_cap(got.data(), m, cap, got.data());
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_TRUE(SameBits(got[i], want[i])) << IsaName(isa) << " x " << x[i] << ": " << got[i] << " vs " << want[i];
    }
  }
  // The dispatched entry point: odd, saturating at +-cap, NaN stays NaN.
  const float edge[] = {1e6f, -1e6f, std::numeric_limits<float>::quiet_NaN()};
  float out[3];
  SoftCap(edge, 3, cap, out);
  EXPECT_EQ(out[0], cap);
  EXPECT_EQ(out[1], -cap);
  EXPECT_TRUE(std::isnan(out[2]));
}

}  // namespace
}  // namespace g4::kernels
