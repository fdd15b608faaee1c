// Reference conversions: bit-exactness with ggml (fixtures made by ggml, golden Q8_0 GGUF files made
// by llama-quantize) and per-type error bounds derived from each format.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "kernels/kernels.h"
#include "kernels/quant_blocks.h"
#include "kernels/test_inputs.h"
#include "testutil.h"
#include "util/error.h"
#include "util/fp16.h"

namespace g4::kernels {
namespace {

using testing::FixtureMatrix;
using testing::FixtureRow;

const GgmlType kAllTypes[] = {GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
                              GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q4_K,
                              GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q8_K};

std::string TestData(const std::string& name) { return std::string(GEMMA4_SOURCE_DIR) + "/src/kernels/testdata/" + name; }

std::vector<uint8_t> ReadBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open " + path);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

std::vector<uint8_t> Quantize(GgmlType t, const float* x, int64_t rows, int64_t cols) {
  const size_t rb = static_cast<size_t>(RowBytes(t, cols));
  std::vector<uint8_t> out(rb * static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) QuantizeRow(t, x + r * cols, out.data() + r * rb, cols);
  return out;
}

std::vector<float> Dequantize(GgmlType t, const uint8_t* q, int64_t rows, int64_t cols) {
  const size_t rb = static_cast<size_t>(RowBytes(t, cols));
  std::vector<float> out(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) DequantizeRow(t, q + r * rb, out.data() + r * cols, cols);
  return out;
}

bool SameBits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

TEST(QuantBlocks, LayoutsMatchTypeTraits) {
  struct Case {
    GgmlType t;
    size_t size;
    int64_t block;
  };
  const Case cases[] = {{GgmlType::Q4_0, sizeof(BlockQ4_0), kQK},   {GgmlType::Q4_1, sizeof(BlockQ4_1), kQK},
                        {GgmlType::Q5_0, sizeof(BlockQ5_0), kQK},   {GgmlType::Q5_1, sizeof(BlockQ5_1), kQK},
                        {GgmlType::Q8_0, sizeof(BlockQ8_0), kQK},   {GgmlType::Q4_K, sizeof(BlockQ4_K), kQK_K},
                        {GgmlType::Q5_K, sizeof(BlockQ5_K), kQK_K}, {GgmlType::Q6_K, sizeof(BlockQ6_K), kQK_K},
                        {GgmlType::Q8_K, sizeof(BlockQ8_K), kQK_K}};
  for (const Case& c : cases) {
    EXPECT_EQ(Traits(c.t).type_size, static_cast<int64_t>(c.size)) << TypeName(c.t);
    EXPECT_EQ(Traits(c.t).block_size, c.block) << TypeName(c.t);
  }
}

class GgmlFixture : public ::testing::TestWithParam<GgmlType> {};

TEST_P(GgmlFixture, QuantizeRowReproducesGgmlBytes) {
  const GgmlType t = GetParam();
  const std::vector<float> x = FixtureMatrix(8, 512);
  const std::vector<uint8_t> expected = ReadBytes(TestData(std::string(TypeName(t)) + ".quant"));
  const std::vector<uint8_t> got = Quantize(t, x.data(), 8, 512);
  ASSERT_EQ(got.size(), expected.size());
  const size_t rb = static_cast<size_t>(RowBytes(t, 512));
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i], expected[i]) << TypeName(t) << ": first difference in row " << i / rb << " at byte " << i % rb;
  }
}

TEST_P(GgmlFixture, DequantizeRowReproducesGgmlFloats) {
  const GgmlType t = GetParam();
  const std::vector<uint8_t> q = ReadBytes(TestData(std::string(TypeName(t)) + ".quant"));
  const std::vector<float> expected = g4::testing::ReadF32(TestData(std::string(TypeName(t)) + ".dequant.f32"));
  ASSERT_EQ(expected.size(), 8u * 256u);
  const std::vector<float> got = Dequantize(t, q.data(), 8, 512);
  for (int r = 0; r < 8; ++r) {
    for (int j = 0; j < 256; ++j) {
      ASSERT_TRUE(SameBits(got[r * 512 + j], expected[r * 256 + j]))
          << TypeName(t) << " row " << r << " col " << j << ": " << got[r * 512 + j] << " vs ggml "
          << expected[r * 256 + j];
    }
  }
}

// The same over a large input (256 x 4096: 4096 k-quant super-blocks), compared through an FNV-1a
// digest of ggml's bytes (testdata/digests.txt): scale-search branches that only a small fraction
// of blocks take (e.g. the last Q4_K candidate, ~1% of blocks) are then exercised too.
TEST_P(GgmlFixture, QuantizeRowReproducesGgmlDigestOnLargeInput) {
  const GgmlType t = GetParam();
  std::ifstream f(TestData("digests.txt"));
  ASSERT_TRUE(f) << "missing testdata/digests.txt";
  std::string name, hex, want;
  while (f >> name >> hex) {
    if (name == TypeName(t)) want = hex;
  }
  ASSERT_FALSE(want.empty()) << "no digest for " << TypeName(t);
  const std::vector<float> x = FixtureMatrix(256, 4096, 7);
  const std::vector<uint8_t> q = Quantize(t, x.data(), 256, 4096);
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint8_t b : q) {
    h ^= b;
    h *= 0x100000001b3ull;
  }
  char got[17];
  std::snprintf(got, sizeof(got), "%016llx", static_cast<unsigned long long>(h));
  EXPECT_EQ(want, got) << TypeName(t) << ": bytes differ from ggml's somewhere in the 256 x 4096 input";
}

INSTANTIATE_TEST_SUITE_P(AllTypes, GgmlFixture, ::testing::ValuesIn(kAllTypes),
                         [](const ::testing::TestParamInfo<GgmlType>& p) { return std::string(TypeName(p.param)); });

// ---- Golden GGUF files: Q8_0 made by llama-quantize from the F32 models ----

class GoldenQ8_0 : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (!g4::testing::SharedDir()) GTEST_SKIP() << "shared reference data not found (GEMMA4_SHARED_DIR)";
    const std::string m = GetParam();
    f32_ = gguf::File::Open(g4::testing::SharedPath("golden/" + m + "/" + m + ".f32.gguf"));
    q8_ = gguf::File::Open(g4::testing::SharedPath("golden/" + m + "/" + m + ".q8_0.gguf"));
  }
  std::unique_ptr<gguf::File> f32_, q8_;
};

TEST_P(GoldenQ8_0, QuantizeRowReproducesEveryTensor) {
  int quantized = 0;
  for (const gguf::TensorInfo& t : q8_->tensors()) {
    const gguf::TensorInfo* src = f32_->FindTensor(t.name);
    ASSERT_NE(src, nullptr) << t.name;
    ASSERT_EQ(src->type, GgmlType::F32) << t.name;
    if (t.type == GgmlType::F32) {  // 1-D tensors stay F32
      EXPECT_EQ(std::memcmp(src->data, t.data, t.nbytes), 0) << t.name;
      continue;
    }
    ASSERT_EQ(t.type, GgmlType::Q8_0) << t.name;
    ++quantized;
    const std::vector<uint8_t> got = Quantize(GgmlType::Q8_0, reinterpret_cast<const float*>(src->data), t.Rows(), t.ne[0]);
    ASSERT_EQ(got.size(), t.nbytes) << t.name;
    EXPECT_EQ(std::memcmp(got.data(), t.data, t.nbytes), 0) << t.name << " differs from llama-quantize's bytes";
  }
  EXPECT_GE(quantized, 40);
}

// DequantizeRow equals ggml's formula (value = qs[j] * f16(d), as a float product) for every
// element, and each value is within the Q8_0 bound of the original F32 weight:
//   |x - q * d16| <= |x - q * d| + |q| * |d - d16| <= d / 2 + 127 * |d - d16|,  d = amax / 127,
// because q = round(x / d) (ggml rounds x * (1 / d)); a few ulp of amax cover the float rounding.
TEST_P(GoldenQ8_0, DequantizeIsGgmlFormulaAndWithinHalfStep) {
  for (const gguf::TensorInfo& t : q8_->tensors()) {
    if (t.type != GgmlType::Q8_0) continue;
    const float* orig = reinterpret_cast<const float*>(f32_->FindTensor(t.name)->data);
    const std::vector<float> deq = Dequantize(GgmlType::Q8_0, t.data, t.Rows(), t.ne[0]);
    const BlockQ8_0* blocks = reinterpret_cast<const BlockQ8_0*>(t.data);
    const int64_t nb = t.Elements() / kQK;
    for (int64_t b = 0; b < nb; ++b) {
      const float d16 = F16ToF32(blocks[b].d);
      float amax = 0;
      for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(orig[b * kQK + j]));
      const double d = amax / 127.0;
      const double bound = 0.5 * d + 127.0 * std::fabs(d - d16) + 4 * std::ldexp(amax, -24);
      for (int j = 0; j < kQK; ++j) {
        const int64_t i = b * kQK + j;
        ASSERT_TRUE(SameBits(deq[i], static_cast<float>(blocks[b].qs[j]) * d16)) << t.name << " element " << i;
        ASSERT_LE(std::fabs(static_cast<double>(deq[i]) - orig[i]), bound) << t.name << " element " << i;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, GoldenQ8_0, ::testing::Values("g4u-tiny", "g4-e2b-tiny", "g3-tiny"),
                         [](const ::testing::TestParamInfo<const char*>& p) {
                           std::string s = p.param;
                           for (char& c : s) c = c == '-' ? '_' : c;
                           return s;
                         });

// ---- Error bounds of quantize -> dequantize, derived from each format ----
//
// Inputs: every FixtureRow kind (outliers, zero / constant / tiny blocks, huge and tiny magnitudes,
// ties) with fresh seeds. Bounds are per element, computed from the block's data and stored scales.

// Slack for the float rounding of the dequantization itself: a few ulp of the largest magnitude
// involved.
double Ulps(double magnitude) { return 4 * std::ldexp(magnitude, -24); }

// Types with a signed absolute-max scale d = max / -nmax (Q4_0: 8, Q5_0: 16): levels
// -nmax .. nmax - 1, the block's signed max lands on -nmax, so an element of the opposite sign whose
// position p = x / d exceeds nmax - 1/2 is clamped: error (p - (nmax - 1)) steps instead of 1/2.
// Q8_0 (d = amax / 127, levels -127 .. 127) always rounds to the nearest level. The f16 rounding of d adds |level| * |d - d16| <= nmax * |d - d16|.
void CheckSymmetric(GgmlType t, const std::vector<float>& x, const std::vector<float>& deq, const std::vector<uint8_t>& q) {
  const int nmax = t == GgmlType::Q4_0 ? 8 : t == GgmlType::Q5_0 ? 16 : 127;
  const size_t bytes = static_cast<size_t>(Traits(t).type_size);
  for (size_t b = 0; b < x.size() / kQK; ++b) {
    uint16_t dbits;
    std::memcpy(&dbits, q.data() + b * bytes, 2);  // d is the first field of these blocks
    const float d16 = F16ToF32(dbits);
    float amax = 0, max = 0;
    for (int j = 0; j < kQK; ++j) {
      if (std::fabs(x[b * kQK + j]) > amax) {
        amax = std::fabs(x[b * kQK + j]);
        max = x[b * kQK + j];
      }
    }
    const double d = t == GgmlType::Q8_0 ? amax / 127.0 : static_cast<double>(max) / -nmax;
    for (int j = 0; j < kQK; ++j) {
      const size_t i = b * kQK + j;
      const double p = d == 0 ? 0 : x[i] / d;
      const int top = t == GgmlType::Q8_0 ? 127 : nmax - 1;  // Q8_0's levels are symmetric
      const double steps = p > top + 0.5 ? p - top : 0.5;
      const double bound = steps * std::fabs(d) + nmax * std::fabs(std::fabs(d) - std::fabs(d16)) + Ulps(amax);
      ASSERT_LE(std::fabs(static_cast<double>(deq[i]) - x[i]), bound) << TypeName(t) << " element " << i << " x=" << x[i];
    }
  }
}

// Q4_1 / Q5_1: levels 0 .. nmax span [min, max] with d = (max - min) / nmax: half a step, plus the
// f16 rounding of d (times the level) and of min.
void CheckAffine(GgmlType t, const std::vector<float>& x, const std::vector<float>& deq, const std::vector<uint8_t>& q) {
  const int nmax = t == GgmlType::Q4_1 ? 15 : 31;
  const size_t bytes = static_cast<size_t>(Traits(t).type_size);
  for (size_t b = 0; b < x.size() / kQK; ++b) {
    uint16_t dm[2];
    std::memcpy(dm, q.data() + b * bytes, 4);
    const float d16 = F16ToF32(dm[0]), m16 = F16ToF32(dm[1]);
    float lo = x[b * kQK], hi = x[b * kQK];
    for (int j = 0; j < kQK; ++j) {
      lo = std::min(lo, x[b * kQK + j]);
      hi = std::max(hi, x[b * kQK + j]);
    }
    const double d = (static_cast<double>(hi) - lo) / nmax;
    const double bound = 0.5 * d + nmax * std::fabs(d - d16) + std::fabs(static_cast<double>(lo) - m16) +
                         Ulps(std::max(std::fabs(lo), std::fabs(hi)));
    for (int j = 0; j < kQK; ++j) {
      const size_t i = b * kQK + j;
      ASSERT_LE(std::fabs(static_cast<double>(deq[i]) - x[i]), bound) << TypeName(t) << " element " << i;
    }
  }
}

// K-quants: levels are re-derived from the stored (f16 x 6-bit / int8) sub-block scales, so every
// element must dequantize to the representable value nearest to it (values d_s * l - m_s for
// l = 0..nmax, or d_s * (l - 32) for Q6_K): error <= half a step inside the representable range,
// the distance to the range outside it.
void CheckKQuant(GgmlType t, const std::vector<float>& x, const std::vector<float>& deq, const std::vector<uint8_t>& q) {
  const size_t bytes = static_cast<size_t>(Traits(t).type_size);
  for (size_t b = 0; b < x.size() / kQK_K; ++b) {
    const uint8_t* blk = q.data() + b * bytes;
    for (int e = 0; e < kQK_K; ++e) {
      double step, lowest;
      int nmax;
      if (t == GgmlType::Q6_K) {
        const BlockQ6_K* k6 = reinterpret_cast<const BlockQ6_K*>(blk);
        step = static_cast<double>(F16ToF32(k6->d) * k6->scales[e / 16]);
        lowest = -32 * step;
        nmax = 63;
      } else {
        // Q4_K and Q5_K share the header: d, dmin, scales[12].
        const BlockQ4_K* k4 = reinterpret_cast<const BlockQ4_K*>(blk);
        uint8_t sc, m;
        UnpackScaleMinK4(k4->scales, e / 32, &sc, &m);
        step = static_cast<double>(F16ToF32(k4->d) * sc);
        lowest = -static_cast<double>(F16ToF32(k4->dmin) * m);
        nmax = t == GgmlType::Q4_K ? 15 : 31;
      }
      const double xi = x[b * kQK_K + e];
      double nearest = std::fabs(xi - lowest);
      if (step != 0) {
        const double l = std::clamp(std::nearbyint((xi - lowest) / step), 0.0, static_cast<double>(nmax));
        nearest = std::fabs(xi - (lowest + l * step));
      }
      const double bound = nearest + Ulps(std::fabs(xi) + std::fabs(lowest) + std::fabs(step) * nmax);
      ASSERT_LE(std::fabs(deq[b * kQK_K + e] - xi), bound)
          << TypeName(t) << " block " << b << " element " << e << " x=" << xi << " step=" << step;
    }
  }
}

class ErrorBound : public ::testing::TestWithParam<GgmlType> {};

TEST_P(ErrorBound, QuantizeDequantizeWithinFormatBound) {
  const GgmlType t = GetParam();
  for (uint64_t seed = 2; seed <= 5; ++seed) {
    for (int kind = 0; kind < 8; ++kind) {
      const std::vector<float> x = FixtureRow(kind, 1024, seed);
      const std::vector<uint8_t> q = Quantize(t, x.data(), 1, 1024);
      const std::vector<float> deq = Dequantize(t, q.data(), 1, 1024);
      SCOPED_TRACE(::testing::Message() << "seed " << seed << " row kind " << kind);
      switch (t) {
        case GgmlType::F16:
          for (size_t i = 0; i < x.size(); ++i) {
            ASSERT_LE(std::fabs(deq[i] - x[i]), std::max(std::ldexp(std::fabs(x[i]), -11), std::ldexp(1.0f, -25))) << i;
          }
          break;
        case GgmlType::BF16:
          for (size_t i = 0; i < x.size(); ++i) ASSERT_LE(std::fabs(deq[i] - x[i]), std::ldexp(std::fabs(x[i]), -8)) << i;
          break;
        case GgmlType::Q4_0:
        case GgmlType::Q5_0:
        case GgmlType::Q8_0:
          CheckSymmetric(t, x, deq, q);
          break;
        case GgmlType::Q4_1:
        case GgmlType::Q5_1:
          CheckAffine(t, x, deq, q);
          break;
        case GgmlType::Q8_K: {
          // q = round(x * iscale), value = q / iscale with |iscale| = 127 / amax: half a step.
          for (size_t b = 0; b < x.size() / kQK_K; ++b) {
            const float d = reinterpret_cast<const BlockQ8_K*>(q.data())[b].d;
            for (int e = 0; e < kQK_K; ++e) {
              const size_t i = b * kQK_K + e;
              ASSERT_LE(std::fabs(deq[i] - x[i]), 0.5 * std::fabs(d) + Ulps(127 * std::fabs(d))) << i;
            }
          }
          break;
        }
        default:
          CheckKQuant(t, x, deq, q);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, ErrorBound, ::testing::ValuesIn(kAllTypes),
                         [](const ::testing::TestParamInfo<GgmlType>& p) { return std::string(TypeName(p.param)); });

// Blocks the quantizers must not mangle: all zero -> exact zeros; a constant block -> within the
// f16 rounding of the constant for the types that can represent it.
TEST(QuantizeRow, ZeroAndConstantBlocks) {
  std::vector<float> zeros(512, 0.0f), constant(512, -0.3f);
  for (GgmlType t : kAllTypes) {
    const std::vector<float> dz = Dequantize(t, Quantize(t, zeros.data(), 1, 512).data(), 1, 512);
    for (float v : dz) ASSERT_EQ(v, 0.0f) << TypeName(t);
    const std::vector<float> dc = Dequantize(t, Quantize(t, constant.data(), 1, 512).data(), 1, 512);
    for (float v : dc) ASSERT_NEAR(v, -0.3f, 0.3f * std::ldexp(1.0, -8)) << TypeName(t);
  }
}

TEST(QuantizeRow, RejectsBadLengthsAndTypes) {
  std::vector<float> x(300);
  std::vector<uint8_t> out(4096);
  try {
    QuantizeRow(GgmlType::Q4_K, x.data(), out.data(), 300);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("q4_K"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("256"), std::string::npos) << e.what();
  }
  try {
    DequantizeRow(GgmlType::Q2_K, out.data(), x.data(), 256);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("q2_K"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace g4::kernels
