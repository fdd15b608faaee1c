// Element-wise functions of the forward pass, vectorized (kernels/exp-inl.h). Each is a fixed
// sequence of unfused IEEE operations, so every instruction set gives the same bits.
#pragma once

#include <cstdint>

namespace g4::kernels {

// The exponential of the attention softmax: out[j] = exp(x[j] * scale - shift) for j < n (out may
// equal x). Within 2 ulp of exp for arguments <= 0 (the softmax subtracts the running maximum);
// 0 below -87.3.
void ExpShifted(const float* x, int64_t n, float scale, float shift, float* out);

// GeGLU with the tanh GELU: out[i] = gelu(gate[i]) * up[i], gelu(x) = 0.5 x (1 + tanh(u)),
// u = sqrt(2 / pi) (x + 0.044715 x^3), computed as x / (1 + exp(-2u)) (the same function, without
// the cancellation of 1 + tanh(u) for negative x). out may equal gate or up.
void GeGluTanh(const float* gate, const float* up, int64_t n, float* out);

// Gemma's logit soft-capping: out[i] = cap * tanh(x[i] * (1 / cap)) (out may equal x). tanh as Cephes'
// tanhf: an odd polynomial below |z| = 0.625, 1 - 2 / (exp(2|z|) + 1) above it (no cancellation in
// either); within 3 ulp of tanh.
void SoftCap(const float* x, int64_t n, float cap, float* out);

}  // namespace g4::kernels
