// SplitMix64: a tiny, high-quality generator for synthetic weights. Each tensor row gets a stream of
// its own (seeded from the tensor and the row), so rows can be made in parallel and a file is the
// same whatever the thread count.
#pragma once

#include <cmath>
#include <cstdint>

namespace g4 {

struct SplitMix64 {
  uint64_t s;
  uint64_t Next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double Uniform() { return static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)
  // Standard normal (Box-Muller; one value per call keeps the code simple).
  float Normal() {
    const double u1 = Uniform() + 1e-300, u2 = Uniform();
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
};

}  // namespace g4
