// The exponential of the attention softmax, vectorized (kernels/exp-inl.h): out[j] =
// exp(x[j] * scale - shift) for j < n (out may equal x). A fixed sequence of unfused IEEE
// operations, so every instruction set gives the same bits; within 2 ulp of exp for arguments
// <= 0 (the softmax subtracts the running maximum), 0 below -87.3.
#pragma once

#include <cstdint>

namespace g4::kernels {

void ExpShifted(const float* x, int64_t n, float scale, float shift, float* out);

}  // namespace g4::kernels
