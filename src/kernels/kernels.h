// The compute kernels the model is written against. The model code calls only these functions, so
// kernels can be replaced per CPU (and later per GPU) without touching it.
//
// Two kinds of numerics:
//  * Math::kExact: the reference. Quantized weights are dequantized exactly to f32 and every product
//    is accumulated in f32 (no activation quantization, no approximate functions).
//  * Math::kFast: what runs by default. Activations may be quantized the way llama.cpp does it
//    (Q8_0 blocks for the 32-element types, Q8_K for k-quants, f16/bf16 for half weights), and
//    integer dot products (AVX2, AVX-512 VNNI) are used.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "formats/ggml_types.h"
#include "util/thread_pool.h"

namespace g4::kernels {

enum class Math { kFast, kExact };

// A 2-D weight matrix as stored in a GGUF file: `rows` rows of `cols` elements in `type`, each row
// RowBytes(type, cols) bytes, rows contiguous. In ggml terms ne0 = cols, ne1 = rows.
struct Matrix {
  GgmlType type = GgmlType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  const uint8_t* data = nullptr;
  size_t row_bytes() const { return static_cast<size_t>(RowBytes(type, cols)); }
  const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes(); }
};

// Reference conversions, bit-exact with ggml's dequantize_row_* / quantize_row_*_ref.
// n must be a multiple of the type's block size.
void DequantizeRow(GgmlType t, const void* src, float* dst, int64_t n);
void QuantizeRow(GgmlType t, const float* src, void* dst, int64_t n);

// y[i][r] = sum_c W[r][c] * x[i][c] for i < n, r < w.rows.
//   x: [n][ldx] f32 (ldx >= w.cols)      y: [n][ldy] f32 (ldy >= w.rows)
// Work is split over the pool's threads.
void MatMul(const Matrix& w, const float* x, int64_t ldx, int64_t n, float* y, int64_t ldy, Math math,
            ThreadPool& pool);

// Small f32 helpers for attention and norms.
float DotF32(const float* a, const float* b, int64_t n);

// Name of the instruction set the kernels run with ("avx512-vnni", "avx2", "scalar").
const char* ActiveIsa();

}  // namespace g4::kernels
