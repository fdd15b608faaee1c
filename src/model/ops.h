// Element-wise operations of the Gemma forward pass, written to be read top to bottom. They work on
// one row at a time; the forward pass parallelises over rows.
#pragma once

#include <cstdint>

namespace g4::ops {

// y = x / sqrt(mean(x^2) + eps) * w   (w may be null: the no-scale RMSNorm of v_norm and routers).
// The sum of squares is accumulated in double, as ggml does. y may alias x.
void RmsNorm(const float* x, const float* w, float eps, int64_t n, float* y);

// out[i] = gelu(gate[i]) * up[i] with the tanh GELU, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
// (HF gelu_pytorch_tanh), vectorized: kernels::GeGluTanh. out may alias gate or up.
void GeGlu(const float* gate, const float* up, int64_t n, float* out);

// x = cap * tanh(x / cap)
void SoftCap(float* x, int64_t n, float cap);

// RoPE in the NeoX / rotate_half layout: pairs (i, i + n_rot/2) for i < n_rot/2 rotate by
// angle[i]; dims >= n_rot pass through. x is one head of head_dim values.
// cos_sin holds n_rot/2 (cos, sin) pairs for the position.
void Rope(float* x, const float* cos_sin, int n_rot);

// Fills cos_sin[2*i], cos_sin[2*i+1] for i < n_rot/2 at `pos`. The angle pos * inv_freq[i] is
// formed and reduced in double precision, so even position 262,143 loses nothing to float rounding.
void RopeAngles(int64_t pos, const double* inv_freq, int n_rot, float* cos_sin);

}  // namespace g4::ops
