// Test helper: deterministic, bit-reproducible f32 inputs covering what quantizers must handle
// (the same floats on every machine and compiler: integer PRNG and exactly-rounded float ops).
// testdata/ fixtures were generated from FixtureMatrix() (see testdata/README.md), so changing
// this file invalidates them.
#pragma once

#include <cstdint>
#include <vector>

namespace g4::kernels::testing {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1), a multiple of 2^-24 (exact).
  float Uniform() { return static_cast<float>(Next() >> 40) * 0x1p-24f; }
  // Roughly N(0, 1): a centred sum of four uniforms, scaled (Irwin-Hall; exact float ops).
  float Gauss() {
    const float s = Uniform() + Uniform() + Uniform() + Uniform();
    return (s - 2.0f) * 1.7320508f;
  }

 private:
  uint64_t s_;
};

// Row r (of 8 kinds, r % 8) with `cols` elements (a multiple of 256):
//   0: N(0, 0.02^2) like trained weights           1: uniform [0.5, 3.5) (all positive, offset)
//   2: small values with x100 outliers              3: 32-blocks of zeros / constants / tiny / a lone spike
//   4: huge magnitudes (~1e4)                       5: tiny magnitudes (~1e-7: f16 scales are subnormal)
//   6: magnitude changing per 32-block (1e-3..1e3)  7: small integers and half-integers (rounding ties)
inline std::vector<float> FixtureRow(int r, int64_t cols, uint64_t seed = 1) {
  SplitMix64 rng(seed * 1000003u + static_cast<uint64_t>(r));
  std::vector<float> x(static_cast<size_t>(cols));
  for (int64_t i = 0; i < cols; ++i) {
    float v = rng.Gauss();
    switch (r % 8) {
      case 0: v *= 0.02f; break;
      case 1: v = 0.5f + 3.0f * rng.Uniform(); break;
      case 2: v = (i % 97 == 5) ? v * 100.0f : v * 0.01f; break;
      case 3: {
        const int64_t kind = (i / 32) % 5;
        v = kind == 0 ? 0.0f : kind == 1 ? 0.7f : kind == 2 ? v * 1e-6f : kind == 3 ? -3.0f : (i % 32 == 7 ? 5.0f : 0.0f);
        break;
      }
      case 4: v *= 1.0e4f; break;
      case 5: v *= 1.0e-7f; break;
      case 6: {
        static const float kScales[7] = {1e-3f, 1e-2f, 1e-1f, 1.0f, 1e1f, 1e2f, 1e3f};
        v *= kScales[(i / 32) % 7];
        break;
      }
      case 7: v = static_cast<float>(static_cast<int>(rng.Next() % 33) - 16) * 0.5f; break;
    }
    x[static_cast<size_t>(i)] = v;
  }
  return x;
}

// The fixture input: `rows` rows of FixtureRow, concatenated ([rows][cols]).
inline std::vector<float> FixtureMatrix(int rows, int64_t cols, uint64_t seed = 1) {
  std::vector<float> m;
  for (int r = 0; r < rows; ++r) {
    const std::vector<float> row = FixtureRow(r, cols, seed);
    m.insert(m.end(), row.begin(), row.end());
  }
  return m;
}

}  // namespace g4::kernels::testing
