#include "model/ops.h"

#include <cmath>

#include "kernels/elementwise.h"

namespace g4::ops {

void RmsNorm(const float* x, const float* w, float eps, int64_t n, float* y) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float scale = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(n)) + eps);
  if (w) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale;
  }
}

void GeGlu(const float* gate, const float* up, int64_t n, float* out) { kernels::GeGluTanh(gate, up, n, out); }

void SoftCap(float* x, int64_t n, float cap) { kernels::SoftCap(x, n, cap, x); }

void Rope(float* x, const float* cos_sin, int n_rot) {
  const int half = n_rot / 2;
  for (int i = 0; i < half; ++i) {
    const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
    const float a = x[i], b = x[i + half];
    x[i] = a * c - b * s;
    x[i + half] = a * s + b * c;
  }
}

void RopeAngles(int64_t pos, const double* inv_freq, int n_rot, float* cos_sin) {
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  for (int i = 0; i < n_rot / 2; ++i) {
    double a = static_cast<double>(pos) * inv_freq[i];
    a = std::fmod(a, kTwoPi);
    cos_sin[2 * i] = static_cast<float>(std::cos(a));
    cos_sin[2 * i + 1] = static_cast<float>(std::sin(a));
  }
}

}  // namespace g4::ops
