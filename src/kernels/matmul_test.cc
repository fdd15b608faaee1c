// MatMul and the other dispatched kernels on every instruction set this CPU runs: every path gives
// the scalar reference's bits (RefDotQuant / RefDotFloat, ops.h) for every weight type, shape and
// number of tokens, with or without the packed layout; a token's row of MatMul(n) is the same bits
// as MatMul(1) of that token alone (batch invariance); the exact path matches a double-precision
// reference within float rounding.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/ops.h"
#include "kernels/panel.h"
#include "kernels/quant_blocks.h"
#include "kernels/test_inputs.h"
#include "util/error.h"
#include "util/fp16.h"
#include "util/thread_pool.h"

namespace g4::kernels::testing {
uint64_t NewCount();  // alloc_counter.cc: operator new calls so far in this binary
}  // namespace g4::kernels::testing

namespace g4::kernels {
namespace {

using testing::FixtureRow;
using testing::SplitMix64;

constexpr double kU = 0x1p-24;  // unit roundoff of f32

const GgmlType kWeightTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0,
                                 GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0,
                                 GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};
const GgmlType kQuantTypes[] = {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
                                GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};
const Isa kSimdIsas[] = {Isa::kAvx2, Isa::kAvx512};

bool SameBits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

#define G4_REQUIRE_ISA(isa)                                                                      \
  do {                                                                                           \
    if (!IsaSupported(isa)) GTEST_SKIP() << IsaName(isa) << " is not supported by this CPU/build"; \
  } while (0)

// A weight matrix quantized from varied rows (all FixtureRow kinds), owning its bytes.
struct Weights {
  GgmlType type;
  int64_t rows, cols;
  std::vector<uint8_t> bytes;
  std::vector<float> deq;  // exact f32 values, [rows][cols]
  Matrix m() const { return Matrix{type, rows, cols, bytes.data()}; }
  // The same matrix with its packed layout (PackMatrix) attached.
  std::vector<uint8_t> packed;
  Matrix mp() {
    if (packed.empty()) {
      ThreadPool pool(2);
      packed.assign(static_cast<size_t>(PackedBytes(m())), 0xcd);
      PackMatrix(m(), packed.data(), pool);
    }
    return Matrix{type, rows, cols, bytes.data(), packed.data()};
  }
};

Weights MakeWeights(GgmlType t, int64_t rows, int64_t cols, uint64_t seed) {
  Weights w{t, rows, cols, {}, {}};
  const size_t rb = static_cast<size_t>(RowBytes(t, cols));
  w.bytes.resize(rb * static_cast<size_t>(rows));
  w.deq.resize(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    // Mostly weight-like rows; every 5th row another kind (offsets, outliers, zero blocks, ...).
    const int kind = r % 5 == 4 ? static_cast<int>(1 + r / 5 % 7) : 0;
    const std::vector<float> x = FixtureRow(kind, cols + (256 - cols % 256) % 256, seed * 7919 + r);
    QuantizeRow(t, x.data(), w.bytes.data() + r * rb, cols);
    DequantizeRow(t, w.bytes.data() + r * rb, w.deq.data() + r * cols, cols);
  }
  return w;
}

// Activations [n][ldx] with varied magnitudes per token; the padding beyond cols is NaN so that a
// kernel reading it would poison its result.
std::vector<float> MakeActivations(int64_t n, int64_t cols, int64_t ldx, uint64_t seed) {
  std::vector<float> x(static_cast<size_t>(n * ldx), std::numeric_limits<float>::quiet_NaN());
  SplitMix64 rng(seed);
  for (int64_t t = 0; t < n; ++t) {
    const float scale = t % 3 == 0 ? 1.0f : t % 3 == 1 ? 30.0f : 0.01f;
    for (int64_t c = 0; c < cols; ++c) x[t * ldx + c] = rng.Gauss() * scale;
  }
  return x;
}

std::vector<float> RunMatMul(Isa isa, const Matrix& m, const std::vector<float>& x, int64_t ldx, int64_t n,
                             int64_t ldy, Math math, int threads) {
  ThreadPool pool(threads);
  std::vector<float> y(static_cast<size_t>(n * ldy), -12345.0f);
  MatMulIsa(isa, m, x.data(), ldx, n, y.data(), ldy, math, pool);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t r = m.rows; r < ldy; ++r) {
      EXPECT_EQ(y[t * ldy + r], -12345.0f) << "MatMul wrote beyond rows (token " << t << ", column " << r << ")";
    }
  }
  return y;
}

std::vector<float> RunMatMul(Isa isa, const Weights& w, const std::vector<float>& x, int64_t ldx, int64_t n,
                             int64_t ldy, Math math, int threads) {
  return RunMatMul(isa, w.m(), x, ldx, n, ldy, math, threads);
}

// ---- Panel layout ----

TEST(Panel, PackThenUnpackGivesTheRowsBack) {
  for (GgmlType t : kWeightTypes) {
    for (int64_t rows : {1, 16, 37}) {
      const int64_t cols = IsKQuant(t) ? 512 : IsFloatType(t) ? 48 : 96;
      Weights w = MakeWeights(t, rows, cols, 3);
      const Matrix m = w.mp();
      ASSERT_EQ(PackedBytes(m), (rows + 15) / 16 * 16 * static_cast<int64_t>(m.row_bytes()));
      std::vector<uint8_t> row(m.row_bytes());
      const int64_t tiles = cols / TileCols(t);
      for (int64_t r = 0; r < rows; ++r) {
        UnpackPanelRow(t, m.packed + r / 16 * PanelBytes(m), tiles, static_cast<int>(r % 16), row.data());
        ASSERT_EQ(std::memcmp(row.data(), m.row(r), row.size()), 0) << TypeName(t) << " row " << r;
      }
      // Padding rows of the last panel unpack to all-zero blocks.
      if (rows % 16 != 0) {
        UnpackPanelRow(t, m.packed + rows / 16 * PanelBytes(m), tiles, 15, row.data());
        for (uint8_t b : row) ASSERT_EQ(b, 0) << TypeName(t);
      }
    }
  }
}

TEST(Panel, RowRangeKeepsThePackedLayoutAtPanelBoundaries) {
  Weights w = MakeWeights(GgmlType::Q4_K, 64, 256, 1);
  const Matrix m = w.mp();
  EXPECT_EQ(m.RowRange(32, 16).packed, m.packed + 32 * m.row_bytes());
  EXPECT_EQ(m.RowRange(32, 16).data, m.row(32));
  EXPECT_EQ(m.RowRange(8, 16).packed, nullptr);
  EXPECT_EQ(m.RowRange(8, 16).rows, 16);
}

// ---- Activation quantization ----

TEST(QuantActs, SameOnEveryIsaAndAsReference) {
  for (GgmlType t : kQuantTypes) {
    const int64_t cols = IsKQuant(t) ? 768 : 96, n = 5;
    std::vector<float> x;
    for (int k = 0; k < n; ++k) {
      const std::vector<float> row = FixtureRow(k, 768, 11);
      x.insert(x.end(), row.begin(), row.begin() + cols);
    }
    OwnedQuantActs ref;
    QuantizeActsForTest(Isa::kScalar, t, x.data(), cols, n, cols, &ref);
    const QuantActs& a = ref.acts;
    for (int64_t tok = 0; tok < n; ++tok) {  // sum pairs: two int16 sums per int32
      for (int64_t i = 0; 2 * i + 1 < a.groups(); ++i) {
        ASSERT_EQ(static_cast<int16_t>(a.spt(tok)[i] & 0xffff), a.sumt(tok)[2 * i]);
        ASSERT_EQ(a.spt(tok)[i] >> 16, a.sumt(tok)[2 * i + 1]);
      }
    }
    // The scalar quantizer against the formulas in ops.h.
    for (int64_t tok = 0; tok < n; ++tok) {
      const float* xt = x.data() + tok * cols;
      if (IsKQuant(t)) {
        for (int64_t b = 0; b < cols / kQK_K; ++b) {
          BlockQ8_K blk;
          QuantizeRow(GgmlType::Q8_K, xt + b * kQK_K, &blk, kQK_K);
          const int per = kQK_K / a.group;
          for (int j = 0; j < kQK_K; ++j) ASSERT_EQ(a.qt(tok)[b * kQK_K + j], blk.qs[j]);
          for (int g = 0; g < per; ++g) {
            ASSERT_TRUE(SameBits(a.dt(tok)[b * per + g], blk.d));
            const int32_t want = per == 16 ? blk.bsums[g] : blk.bsums[2 * g] + blk.bsums[2 * g + 1];
            ASSERT_EQ(a.sumt(tok)[b * per + g], want);
          }
        }
      } else {
        for (int64_t b = 0; b < cols / kQK; ++b) {
          float amax = 0;
          for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(xt[b * kQK + j]));
          ASSERT_TRUE(SameBits(a.dt(tok)[b], F16ToF32(F32ToF16(amax / 127.f))));
          const float id = amax != 0 ? 127.f / amax : 0.f;
          int32_t sum = 0;
          for (int j = 0; j < kQK; ++j) {
            const int want = static_cast<int>(std::nearbyint(xt[b * kQK + j] * id));
            ASSERT_EQ(a.qt(tok)[b * kQK + j], want) << "token " << tok << " element " << b * kQK + j;
            sum += want;
          }
          ASSERT_EQ(a.sumt(tok)[b], sum);
        }
      }
    }
    for (Isa isa : kSimdIsas) {
      if (!IsaSupported(isa)) continue;
      OwnedQuantActs got;
      QuantizeActsForTest(isa, t, x.data(), cols, n, cols, &got);
      for (int64_t tok = 0; tok < n; ++tok) {
        ASSERT_EQ(std::memcmp(got.acts.qt(tok), a.qt(tok), static_cast<size_t>(a.q_stride)), 0)
            << IsaName(isa) << " " << TypeName(t) << " token " << tok;
        ASSERT_EQ(std::memcmp(got.acts.dt(tok), a.dt(tok), 4 * static_cast<size_t>(a.g_stride)), 0)
            << IsaName(isa) << " " << TypeName(t);
        ASSERT_EQ(std::memcmp(got.acts.sumt(tok), a.sumt(tok), 4 * static_cast<size_t>(a.g_stride)), 0)
            << IsaName(isa) << " " << TypeName(t);
        ASSERT_EQ(std::memcmp(got.acts.dsumt(tok), a.dsumt(tok), 4 * static_cast<size_t>(a.g_stride)), 0)
            << IsaName(isa) << " " << TypeName(t);
        ASSERT_EQ(std::memcmp(got.acts.spt(tok), a.spt(tok), 2 * static_cast<size_t>(a.g_stride)), 0)
            << IsaName(isa) << " " << TypeName(t);
      }
    }
  }
}

// ---- Every path gives the reference's bits ----

struct Shape {
  int64_t rows, cols, n;
};

class FastPath : public ::testing::TestWithParam<std::tuple<Isa, GgmlType>> {};

// Quantized weights with Math::kFast: RefDotQuant row by row, bit for bit, packed or not.
TEST_P(FastPath, EqualsScalarReferenceBitForBit) {
  const auto [isa, t] = GetParam();
  G4_REQUIRE_ISA(isa);
  const bool k = IsKQuant(t);
  // Odd row counts (partial panels), cols with an odd number of blocks, and shapes wider than a
  // decoded chunk (1024 columns) so that column chunks accumulate.
  const Shape shapes[] = {{37, k ? 512 : 96, 1},  {37, k ? 512 : 96, 2},  {67, k ? 768 : 160, 3},
                          {67, k ? 768 : 160, 7}, {33, k ? 256 : 32, 16}, {45, k ? 512 : 224, 33},
                          {21, 4352, 9},          {50, k ? 1280 : 1088, 5}};
  for (const Shape& s : shapes) {
    SCOPED_TRACE(::testing::Message() << IsaName(isa) << " " << TypeName(t) << " rows " << s.rows << " cols "
                                      << s.cols << " n " << s.n);
    Weights w = MakeWeights(t, s.rows, s.cols, static_cast<uint64_t>(s.rows * 31 + s.n));
    const int64_t ldx = s.cols + 13, ldy = s.rows + 5;
    const std::vector<float> x = MakeActivations(s.n, s.cols, ldx, static_cast<uint64_t>(s.n));
    OwnedQuantActs acts;
    QuantizeActsForTest(Isa::kScalar, t, x.data(), ldx, s.n, s.cols, &acts);
    for (const bool packed : {false, true}) {
      const std::vector<float> got = RunMatMul(isa, packed ? w.mp() : w.m(), x, ldx, s.n, ldy, Math::kFast, 2);
      for (int64_t tok = 0; tok < s.n; ++tok) {
        for (int64_t r = 0; r < s.rows; ++r) {
          const float want = RefDotQuant(t, w.m().row(r), acts.acts, tok);
          ASSERT_TRUE(SameBits(got[tok * ldy + r], want))
              << (packed ? "packed" : "gguf") << " token " << tok << " row " << r << ": " << got[tok * ldy + r]
              << " vs " << want;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, FastPath, ::testing::Combine(::testing::ValuesIn(kSimdIsas), ::testing::ValuesIn(kQuantTypes)),
                         [](const ::testing::TestParamInfo<std::tuple<Isa, GgmlType>>& p) {
                           std::string s = std::string(IsaName(std::get<0>(p.param))) + "_" + TypeName(std::get<1>(p.param));
                           for (char& c : s) c = c == '-' ? '_' : c;
                           return s;
                         });

// Integer dot products must match the reference exactly. With block scales that are small multiples
// of powers of two >= 1/4 and activations whose blocks quantize exactly (max |x| = 127 * unit, all
// multiples of unit, unit in {1, 1/2, 1/4}), every float the kernels form is a multiple of 2^-4 below
// 2^20 in magnitude (one 256-column super-block, scales <= 3), hence exact: any summation order gives
// the same bits, so SIMD == scalar bit for bit.
std::vector<uint8_t> ExactWeights(GgmlType t, int64_t rows, int64_t cols, SplitMix64& rng) {
  const size_t rb = static_cast<size_t>(RowBytes(t, cols));
  std::vector<uint8_t> bytes(rb * static_cast<size_t>(rows));
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(rng.Next());
  const size_t bs = static_cast<size_t>(Traits(t).type_size);
  const uint16_t pow2[4] = {F32ToF16(0.25f), F32ToF16(-0.5f), F32ToF16(1.0f), F32ToF16(0.5f)};
  for (size_t b = 0; b < bytes.size() / bs; ++b) {
    uint8_t* blk = bytes.data() + b * bs;
    const uint16_t d = pow2[rng.Next() % 4], m = pow2[rng.Next() % 4];
    switch (t) {
      case GgmlType::Q4_0: case GgmlType::Q5_0: case GgmlType::Q8_0:
        std::memcpy(blk, &d, 2);
        break;
      case GgmlType::Q4_1: case GgmlType::Q5_1:
        std::memcpy(blk, &d, 2);
        std::memcpy(blk + 2, &m, 2);
        break;
      case GgmlType::Q4_K: case GgmlType::Q5_K: {
        std::memcpy(blk, &d, 2);
        std::memcpy(blk + 2, &m, 2);
        // 6-bit scales and mins <= 3: bytes 0-7 hold sub-blocks 0-3 (low 6 bits) and the top bits
        // of 4-7; bytes 8-11 hold the low nibbles of 4-7.
        for (int i = 0; i < 8; ++i) blk[4 + i] &= 0x03;
        for (int i = 8; i < 12; ++i) blk[4 + i] &= 0x33;
        break;
      }
      case GgmlType::Q6_K: {
        BlockQ6_K* k6 = reinterpret_cast<BlockQ6_K*>(blk);
        k6->d = d;
        for (int8_t& s : k6->scales) s = static_cast<int8_t>(static_cast<int>(rng.Next() % 7) - 3);
        break;
      }
      default: break;
    }
  }
  return bytes;
}

std::vector<float> ExactActivations(int64_t n, int64_t cols, SplitMix64& rng) {
  std::vector<float> x(static_cast<size_t>(n * cols));
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t b = 0; b < cols / kQK_K; ++b) {
      const float unit = std::ldexp(1.0f, -static_cast<int>(rng.Next() % 3));
      float* xb = x.data() + t * cols + b * kQK_K;
      for (int j = 0; j < kQK_K; ++j) xb[j] = unit * static_cast<float>(static_cast<int>(rng.Next() % 31) - 15);
      for (int j = 0; j < kQK_K; j += kQK) xb[j + static_cast<int>(rng.Next() % kQK)] = unit * 127.f;  // each block's max
    }
  }
  return x;
}

class IntegerExact : public ::testing::TestWithParam<std::tuple<Isa, GgmlType>> {};

TEST_P(IntegerExact, SimdEqualsScalarBitForBit) {
  const auto [isa, t] = GetParam();
  G4_REQUIRE_ISA(isa);
  SplitMix64 rng(99);
  for (int64_t n : {1, 3, 8, 19}) {
    const int64_t rows = 35, cols = 256;
    Weights w{t, rows, cols, ExactWeights(t, rows, cols, rng), {}};
    const std::vector<float> x = ExactActivations(n, cols, rng);
    const std::vector<float> want = RunMatMul(Isa::kScalar, w, x, cols, n, rows, Math::kFast, 1);
    const std::vector<float> got = RunMatMul(isa, w, x, cols, n, rows, Math::kFast, 2);
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_TRUE(SameBits(got[i], want[i])) << IsaName(isa) << " " << TypeName(t) << " n " << n << " token "
                                             << i / rows << " row " << i % rows << ": " << got[i] << " vs " << want[i];
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, IntegerExact, ::testing::Combine(::testing::ValuesIn(kSimdIsas), ::testing::ValuesIn(kQuantTypes)),
                         [](const ::testing::TestParamInfo<std::tuple<Isa, GgmlType>>& p) {
                           std::string s = std::string(IsaName(std::get<0>(p.param))) + "_" + TypeName(std::get<1>(p.param));
                           for (char& c : s) c = c == '-' ? '_' : c;
                           return s;
                         });

// ---- Exact path (and float weights on either path) vs a double-precision reference ----
//
// Every ISA forms the exact products w * x (f32 FMA rounds once) and adds K of them in some order,
// so |y - exact| <= (K + 1) * u * sum |w x| (the classic bound for any summation order).

class ExactPath : public ::testing::TestWithParam<std::tuple<Isa, GgmlType>> {};

TEST_P(ExactPath, WithinFloatRoundingOfDoubleReference) {
  const auto [isa, t] = GetParam();
  G4_REQUIRE_ISA(isa);
  const bool k = IsKQuant(t);
  std::vector<Shape> shapes = {{37, k ? 256 : 96, 1}, {23, k ? 256 : 64, 2}, {19, k ? 512 : 320, 3},
                               {41, k ? 768 : 544, 7}, {13, k ? 512 : 352, 16}, {33, 256, 33}};
  // Float types take any column count: odd ones end the few-token kernel's cache-line loop early.
  if (IsFloatType(t)) shapes.insert(shapes.end(), {{21, 75, 1}, {18, 33, 6}, {40, 131, 4}});
  for (const Math math : {Math::kExact, Math::kFast}) {
    if (math == Math::kFast && !IsFloatType(t)) continue;  // quantized fast path: see FastPath
    for (const Shape& s : shapes) {
      SCOPED_TRACE(::testing::Message() << IsaName(isa) << " " << TypeName(t) << (math == Math::kExact ? " exact" : " fast")
                                        << " rows " << s.rows << " cols " << s.cols << " n " << s.n);
      Weights w = MakeWeights(t, s.rows, s.cols, 5);
      const int64_t ldx = s.cols + 3, ldy = s.rows + 2;
      const std::vector<float> x = MakeActivations(s.n, s.cols, ldx, 17);
      const std::vector<float> y = RunMatMul(isa, w, x, ldx, s.n, ldy, math, 2);
      const std::vector<float> yp = RunMatMul(isa, w.mp(), x, ldx, s.n, ldy, math, 2);
      for (int64_t tok = 0; tok < s.n; ++tok) {
        for (int64_t r = 0; r < s.rows; ++r) {
          // The fma chain of RefDotFloat over the exact values, bit for bit, packed or not.
          const float want = RefDotFloat(w.deq.data() + r * s.cols, x.data() + tok * ldx, s.cols);
          ASSERT_TRUE(SameBits(y[tok * ldy + r], want)) << "token " << tok << " row " << r << ": " << y[tok * ldy + r]
                                                        << " vs " << want;
          ASSERT_TRUE(SameBits(yp[tok * ldy + r], want)) << "packed: token " << tok << " row " << r;
          double exact = 0, mag = 0;
          for (int64_t c = 0; c < s.cols; ++c) {
            const double p = static_cast<double>(w.deq[r * s.cols + c]) * x[tok * ldx + c];
            exact += p;
            mag += std::fabs(p);
          }
          ASSERT_NEAR(y[tok * ldy + r], exact, (s.cols + 1) * kU * mag) << "token " << tok << " row " << r;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, ExactPath,
                         ::testing::Combine(::testing::Values(Isa::kScalar, Isa::kAvx2, Isa::kAvx512),
                                            ::testing::ValuesIn(kWeightTypes)),
                         [](const ::testing::TestParamInfo<std::tuple<Isa, GgmlType>>& p) {
                           std::string s = std::string(IsaName(std::get<0>(p.param))) + "_" + TypeName(std::get<1>(p.param));
                           for (char& c : s) c = c == '-' ? '_' : c;
                           return s;
                         });

// ---- Batch invariance ----
//
// A token's outputs must not depend on the other tokens of the call (the server batches requests,
// speculative decoding verifies drafts in one call): every token's row of MatMul(n) equals
// MatMul(1) of that token alone, bit for bit, for n = 1..40, both numerics, every weight type and
// instruction set, packed or not.

class BatchInvariance : public ::testing::TestWithParam<Isa> {};

TEST_P(BatchInvariance, EveryTokenEqualsItselfAlone) {
  const Isa isa = GetParam();
  G4_REQUIRE_ISA(isa);
  for (GgmlType t : kWeightTypes) {
    const int64_t rows = 45, cols = IsKQuant(t) ? 1280 : 1088, ldx = cols + 7;
    Weights w = MakeWeights(t, rows, cols, 21);
    const std::vector<float> x = MakeActivations(40, cols, ldx, 23);
    for (const Math math : {Math::kFast, Math::kExact}) {
      for (const bool packed : {false, true}) {
        const Matrix m = packed ? w.mp() : w.m();
        std::vector<std::vector<float>> alone;
        for (int64_t tok = 0; tok < 40; ++tok) {
          const std::vector<float> xt(x.begin() + tok * ldx, x.begin() + (tok + 1) * ldx);
          alone.push_back(RunMatMul(isa, m, xt, ldx, 1, rows, math, 2));
        }
        for (int64_t n = 1; n <= 40; ++n) {
          const std::vector<float> y = RunMatMul(isa, m, x, ldx, n, rows, math, 2);
          for (int64_t tok = 0; tok < n; ++tok) {
            ASSERT_EQ(std::memcmp(y.data() + tok * rows, alone[tok].data(), 4 * rows), 0)
                << IsaName(isa) << " " << TypeName(t) << (math == Math::kFast ? " fast" : " exact")
                << (packed ? " packed" : "") << " n " << n << " token " << tok;
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isas, BatchInvariance, ::testing::Values(Isa::kScalar, Isa::kAvx2, Isa::kAvx512),
                         [](const ::testing::TestParamInfo<Isa>& p) {
                           std::string s = IsaName(p.param);
                           for (char& c : s) c = c == '-' ? '_' : c;
                           return s;
                         });

// ---- Threads, errors, helpers ----

TEST(MatMul, ResultDoesNotDependOnThreadCount) {
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q8_0, GgmlType::BF16}) {
    const Weights w = MakeWeights(t, 200, 512, 8);
    for (int64_t n : {1, 24}) {
      const std::vector<float> x = MakeActivations(n, 512, 512, 4);
      const std::vector<float> y1 = RunMatMul(ActiveIsaLevel(), w, x, 512, n, 200, Math::kFast, 1);
      for (int threads : {2, 3}) {
        const std::vector<float> yt = RunMatMul(ActiveIsaLevel(), w, x, 512, n, 200, Math::kFast, threads);
        ASSERT_EQ(std::memcmp(y1.data(), yt.data(), 4 * y1.size()), 0) << TypeName(t) << " n " << n << " threads " << threads;
      }
    }
  }
}

// Steady state: once scratch memory has grown for a shape, further calls allocate nothing (neither
// operator new nor scratch growth), on every ISA, path and thread.
// Generation over packed weights hands each thread tasks of many panels (PanelsPerTask); the
// panels of a task, the last one partial, give the bits of the GGUF layout's two-panel tasks.
TEST(MatMul, StreamingTasksOfManyPanelsGiveTheSameBits) {
  const int64_t rows = 16 * 80 + 5, cols = 512;  // 81 panels: tasks of 4 panels, the last one short
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::BF16, GgmlType::F16,
                     GgmlType::F32}) {
    Weights w = MakeWeights(t, rows, cols, 31);
    for (int64_t n : {1, 3}) {
      const std::vector<float> x = MakeActivations(n, cols, cols, 9);
      const std::vector<float> want = RunMatMul(ActiveIsaLevel(), w.m(), x, cols, n, rows, Math::kFast, 1);
      for (int threads : {1, 2, 3}) {
        const std::vector<float> got = RunMatMul(ActiveIsaLevel(), w.mp(), x, cols, n, rows, Math::kFast, threads);
        ASSERT_EQ(std::memcmp(want.data(), got.data(), 4 * want.size()), 0)
            << TypeName(t) << " n " << n << " threads " << threads;
      }
    }
  }
}

// MatMulMany deals the rows of several matrices as one job (with smaller tasks at the end of each);
// every part gives MatMul's bits, whatever the mix of types (parts of one type share quantized
// activations), layouts, token counts and threads; a part with no rows is skipped.
TEST(MatMulMany, EachPartGivesMatMulsBits) {
  const int64_t cols = 512;
  struct Spec {
    GgmlType type;
    int64_t rows;
    bool packed;
  };
  const std::vector<Spec> specs = {{GgmlType::Q4_K, 16 * 40 + 3, true}, {GgmlType::Q6_K, 256, true},
                                   {GgmlType::Q4_K, 100, false},        {GgmlType::F32, 37, true}};
  std::vector<Weights> ws;
  for (size_t k = 0; k < specs.size(); ++k) ws.push_back(MakeWeights(specs[k].type, specs[k].rows, cols, 50 + k));
  for (Math math : {Math::kFast, Math::kExact}) {
    for (int64_t n : {1, 3, 20}) {
      const std::vector<float> x = MakeActivations(n, cols, cols, 77);
      for (int threads : {1, 2, 3}) {
        ThreadPool pool(threads);
        std::vector<std::vector<float>> ys(specs.size());
        MatMulPart parts[kMaxMatMulParts + 1];
        for (size_t k = 0; k < specs.size(); ++k) {
          ys[k].assign(static_cast<size_t>(n * (specs[k].rows + 3)), -12345.0f);  // RunMatMul's filler
          parts[k] = {specs[k].packed ? ws[k].mp() : ws[k].m(), ys[k].data(), specs[k].rows + 3};
        }
        MatMulMany(parts, static_cast<int>(specs.size()), x.data(), cols, n, math, pool);
        for (size_t k = 0; k < specs.size(); ++k) {
          const std::vector<float> want = RunMatMul(ActiveIsaLevel(), ws[k].m(), x, cols, n, specs[k].rows + 3, math, 1);
          ASSERT_EQ(std::memcmp(want.data(), ys[k].data(), 4 * want.size()), 0)
              << "part " << k << " (" << TypeName(specs[k].type) << ") n " << n << " threads " << threads;
          for (int64_t t = 0; t < n; ++t) {  // every row written (the filler is not a product of these)
            for (int64_t r = 0; r < specs[k].rows; ++r) {
              ASSERT_NE(ys[k][t * (specs[k].rows + 3) + r], -12345.0f) << "part " << k << " row " << r << " token " << t;
            }
          }
        }
        // A part with no rows is skipped; the others are unchanged.
        std::vector<float> y0 = ys[0];
        parts[1].w.rows = 0;
        MatMulMany(parts, 2, x.data(), cols, n, math, pool);
        EXPECT_EQ(std::memcmp(y0.data(), ys[0].data(), 4 * y0.size()), 0);
      }
    }
  }
}

TEST(MatMulMany, RejectsBadParts) {
  ThreadPool pool(1);
  const Weights a = MakeWeights(GgmlType::Q4_K, 16, 512, 1), b = MakeWeights(GgmlType::Q4_K, 16, 256, 2);
  std::vector<float> x(512), y(64);
  auto expect_error = [&](const MatMulPart* parts, int n_parts, const char* needle) {
    try {
      MatMulMany(parts, n_parts, x.data(), 512, 1, Math::kFast, pool);
      ADD_FAILURE() << "expected an error mentioning " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  const MatMulPart mixed[2] = {{a.m(), y.data(), 16}, {b.m(), y.data() + 16, 16}};
  expect_error(mixed, 2, "part 1 has 256 cols");
  expect_error(mixed, 0, "0 parts");
  const MatMulPart many[kMaxMatMulParts + 1] = {{a.m(), y.data(), 16}, {a.m(), y.data(), 16}, {a.m(), y.data(), 16},
                                                {a.m(), y.data(), 16}, {a.m(), y.data(), 16}};
  expect_error(many, kMaxMatMulParts + 1, "parts, expected 1 to");
  const MatMulPart short_y[1] = {{a.m(), y.data(), 8}};
  expect_error(short_y, 1, "ldy");
}

TEST(MatMul, SteadyStateDoesNotAllocate) {
  ThreadPool pool(2);
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (!IsaSupported(isa)) continue;
    for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q8_0, GgmlType::F16}) {
      for (Math math : {Math::kFast, Math::kExact}) {
        const Weights w = MakeWeights(t, 96, 512, 1);
        for (int64_t n : {1, 3, 40}) {
          const std::vector<float> x = MakeActivations(n, 512, 512, 2);
          std::vector<float> y(static_cast<size_t>(n * 96));
          for (int warm = 0; warm < 3; ++warm) MatMulIsa(isa, w.m(), x.data(), 512, n, y.data(), 96, math, pool);
          const uint64_t news = testing::NewCount(), grows = AlignedBuffer::GrowCount();
          for (int i = 0; i < 5; ++i) MatMulIsa(isa, w.m(), x.data(), 512, n, y.data(), 96, math, pool);
          EXPECT_EQ(testing::NewCount() - news, 0u) << IsaName(isa) << " " << TypeName(t) << " n " << n;
          EXPECT_EQ(AlignedBuffer::GrowCount() - grows, 0u) << IsaName(isa) << " " << TypeName(t) << " n " << n;
        }
      }
    }
  }
}

TEST(MatMul, RejectsBadArguments) {
  ThreadPool pool(1);
  std::vector<uint8_t> data(1 << 16);
  std::vector<float> x(1024), y(1024);
  auto expect_error = [&](const Matrix& m, int64_t ldx, int64_t ldy, const char* needle) {
    try {
      MatMul(m, x.data(), ldx, 1, y.data(), ldy, Math::kFast, pool);
      ADD_FAILURE() << "expected an error mentioning " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error(Matrix{GgmlType::Q2_K, 4, 256, data.data()}, 256, 4, "q2_K");
  expect_error(Matrix{GgmlType::Q4_K, 4, 200, data.data()}, 256, 4, "256");
  expect_error(Matrix{GgmlType::Q8_0, 4, 64, data.data()}, 32, 4, "ldx");
  expect_error(Matrix{GgmlType::Q8_0, 4, 64, data.data()}, 64, 3, "ldy");
  EXPECT_FALSE(SupportsMatMul(GgmlType::Q3_K));
  EXPECT_TRUE(SupportsMatMul(GgmlType::Q5_1));
}

TEST(GetRows, DequantizesSelectedRows) {
  // From the file's layout and from the packed one (the tied LM head's copy serves the embedding),
  // rows in the first, a middle and the last, partial panel.
  for (GgmlType t : kWeightTypes) {
    Weights w = MakeWeights(t, 37, 256, 2);
    const int32_t ids[5] = {7, 0, 36, 17, 7};
    for (const bool packed : {false, true}) {
      std::vector<float> out(5 * 300, 0.0f);
      GetRows(packed ? w.mp() : w.m(), ids, 5, out.data(), 300);
      for (int i = 0; i < 5; ++i) {
        ASSERT_EQ(std::memcmp(out.data() + i * 300, w.deq.data() + ids[i] * 256, 256 * 4), 0)
            << TypeName(t) << (packed ? " packed" : "") << " row " << ids[i];
      }
    }
  }
  const Weights w = MakeWeights(GgmlType::Q6_K, 10, 256, 2);
  std::vector<float> out(300, 0.0f);
  const int32_t bad[1] = {10};
  try {
    GetRows(w.m(), bad, 1, out.data(), 300);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("10"), std::string::npos) << e.what();
  }
}

// Bit patterns every conversion must handle: zeros, subnormals, normals, rounding ties, overflow,
// infinities, nans; then many random bit patterns.
std::vector<uint32_t> SpecialFloatBits() {
  std::vector<uint32_t> v = {0x00000000, 0x80000000, 0x00000001, 0x807fffff, 0x33000000, 0x33000001, 0x387fe000,
                             0x38800000, 0x3f800000, 0x3f801000, 0x3f803000, 0x3f808000, 0x3f818000, 0x477fefff,
                             0x477ff000, 0x7f7fffff, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffc12345};
  SplitMix64 rng(5);
  for (int i = 0; i < 20000; ++i) v.push_back(static_cast<uint32_t>(rng.Next()));
  return v;
}

TEST(Conversions, SimdMatchesScalarBitForBit) {
  const std::vector<uint32_t> bits = SpecialFloatBits();
  std::vector<float> f(bits.size());
  std::memcpy(f.data(), bits.data(), 4 * bits.size());
  std::vector<uint16_t> h(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) h[i] = static_cast<uint16_t>(bits[i]);
  const size_t n = bits.size() - 3;  // not a multiple of the vector width: exercises tails
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (!IsaSupported(isa)) continue;
    const IsaOps& ops = OpsFor(isa);
    std::vector<uint16_t> h16(n), hb16(n);
    std::vector<float> f16(n), fb16(n);
    ops.f32_to_f16(f.data(), h16.data(), static_cast<int64_t>(n));
    ops.f32_to_bf16(f.data(), hb16.data(), static_cast<int64_t>(n));
    ops.f16_to_f32(h.data(), f16.data(), static_cast<int64_t>(n));
    ops.bf16_to_f32(h.data(), fb16.data(), static_cast<int64_t>(n));
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(h16[i], F32ToF16(f[i])) << IsaName(isa) << " f32->f16 of " << std::hex << bits[i];
      ASSERT_EQ(hb16[i], F32ToBf16(f[i])) << IsaName(isa) << " f32->bf16 of " << std::hex << bits[i];
      // f16 -> f32 is exact; F16C quiets signalling nans (sets the top mantissa bit), so nans only
      // have to stay nans.
      if (std::isnan(F16ToF32(h[i]))) {
        ASSERT_TRUE(std::isnan(f16[i])) << IsaName(isa) << " f16->f32 of " << std::hex << h[i];
      } else {
        ASSERT_TRUE(SameBits(f16[i], F16ToF32(h[i]))) << IsaName(isa) << " f16->f32 of " << std::hex << h[i];
      }
      ASSERT_TRUE(SameBits(fb16[i], Bf16ToF32(h[i]))) << IsaName(isa) << " bf16->f32 of " << std::hex << h[i];
    }
  }
}

TEST(DotF32, EveryIsaWithinRoundingOfDouble) {
  SplitMix64 rng(3);
  for (int64_t n : {0, 1, 7, 8, 15, 16, 17, 33, 100, 1000}) {
    std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
    double exact = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i) {
      a[i] = rng.Gauss();
      b[i] = rng.Gauss();
      exact += static_cast<double>(a[i]) * b[i];
      mag += std::fabs(static_cast<double>(a[i]) * b[i]);
    }
    for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
      if (!IsaSupported(isa)) continue;
      EXPECT_NEAR(OpsFor(isa).dot_f32(a.data(), b.data(), n), exact, (n + 1) * kU * mag) << IsaName(isa) << " n " << n;
    }
  }
  EXPECT_NEAR(DotF32(std::vector<float>{1, 2, 3}.data(), std::vector<float>{4, 5, 6}.data(), 3), 32.0f, 0.0f);
}

// The bandwidth probe must really read every byte (a checksum that ignores some would let the
// compiler or a bug skip them and overstate the bandwidth): changing any one byte changes it.
TEST(ReadStream, EveryByteCounts) {
  for (const size_t n : {size_t{0}, size_t{63}, size_t{64 * 8}, size_t{64 * 8 * 37 + 45}}) {
    std::vector<uint8_t> buf(n);
    for (size_t i = 0; i < n; ++i) buf[i] = static_cast<uint8_t>(i * 37 + 11);
    const uint64_t base = ReadStream(buf.data(), n);
    for (size_t i = 0; i < n; i += (n > 600 ? 7 : 1)) {
      buf[i] ^= 0x10;
      ASSERT_NE(ReadStream(buf.data(), n), base) << "byte " << i << " of " << n;
      buf[i] ^= 0x10;
    }
  }
}

// Bandwidth over caller-held ranges (gemma4 bench reads the packed weights with it): ranges of odd
// sizes split over 1-3 threads, each thread's share crossing range ends (the sanitizer build checks
// that nothing outside the ranges is read); no bytes give 0.
TEST(MeasureReadBandwidth, OverRangesOfOddSizes) {
  std::vector<std::vector<uint8_t>> bufs;
  for (size_t n : {size_t{100003}, size_t{64}, size_t{1}, size_t{4096 * 33 + 7}}) bufs.emplace_back(n, uint8_t{3});
  std::vector<ByteRange> ranges;
  for (const auto& b : bufs) ranges.push_back({b.data(), b.size()});
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    const double bw = MeasureReadBandwidthOver(pool, ranges, 2);
    EXPECT_TRUE(std::isfinite(bw) && bw > 0) << bw << " at " << threads << " threads";
    EXPECT_EQ(MeasureReadBandwidthOver(pool, {}, 2), 0.0);
    EXPECT_EQ(MeasureReadBandwidthOver(pool, {ByteRange{bufs[0].data(), 0}}, 2), 0.0);
  }
}

TEST(Isa, ActiveIsaIsSupportedAndNamed) {
  EXPECT_TRUE(IsaSupported(ActiveIsaLevel()));
  EXPECT_STREQ(ActiveIsa(), IsaName(ActiveIsaLevel()));
  EXPECT_TRUE(IsaSupported(Isa::kScalar));
}

}  // namespace
}  // namespace g4::kernels
