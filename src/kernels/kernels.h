// The compute kernels the model is written against. The model code calls only these functions, so
// kernels can be replaced per CPU (and later per GPU) without touching it.
//
// Two kinds of numerics:
//  * Math::kExact: the reference. Quantized weights are dequantized exactly to f32 and every product
//    is accumulated in f32 (no activation quantization, no approximate functions).
//  * Math::kFast: what runs by default. Activations are quantized the way llama.cpp's x86 CPU backend
//    does it (Q8_0 blocks of 32 for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 weights, Q8_K super-blocks of 256 for
//    Q4_K/Q5_K/Q6_K) and multiplied with integer dot products (AVX2, AVX-512 VNNI). F32, F16 and
//    BF16 weights keep f32 activations (products exact, f32 accumulation), so for them kFast and
//    kExact compute the same math.
//
// The instruction set (scalar, AVX2+FMA+F16C, AVX-512 F/BW/DQ/VL+VNNI) is chosen once at startup
// from the CPU's features; the environment variable GEMMA4_ISA=scalar|avx2|avx512 forces a lower
// level. Results of different instruction sets differ only in float rounding (summation order).
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

// Reference conversions, bit-exact with ggml's dequantize_row_* / quantize_row_*_ref (k-quants
// without an importance matrix, as `llama-quantize` does without --imatrix). Types: F32, F16, BF16,
// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, Q8_K. n must be a multiple of the type's block
// size (32 or 256); any other type or length fails naming it. Block layouts: quant_blocks.h.
void DequantizeRow(GgmlType t, const void* src, float* dst, int64_t n);
void QuantizeRow(GgmlType t, const float* src, void* dst, int64_t n);

// True for the weight types MatMul accepts: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K,
// Q5_K, Q6_K.
bool SupportsMatMul(GgmlType t);

// y[i][r] = sum_c W[r][c] * x[i][c] for i < n, r < w.rows.
//   x: [n][ldx] f32 (ldx >= w.cols)      y: [n][ldy] f32 (ldy >= w.rows)
// Output rows are split over the pool's threads. Quantized activations (kFast) are computed once
// per call. Scratch memory is per thread and reused, so steady-state calls do not allocate.
// y must not overlap x. Fails (g4::Error) on an unsupported type or inconsistent sizes.
void MatMul(const Matrix& w, const float* x, int64_t ldx, int64_t n, float* y, int64_t ldy, Math math,
            ThreadPool& pool);

// Embedding lookup: out[i][0 .. w.cols) = row ids[i] of w, dequantized exactly (DequantizeRow).
//   out: [n][ldo] f32, ldo >= w.cols. An id outside [0, w.rows) fails naming it.
void GetRows(const Matrix& w, const int32_t* ids, int64_t n, float* out, int64_t ldo);

// Small f32 helpers for attention and norms (SIMD; f32 accumulation in lanes).
float DotF32(const float* a, const float* b, int64_t n);

// Row conversions (SIMD), the same bits as util/fp16.h's scalar functions for every input except
// that f16 -> f32 may quiet a signalling nan: f16 -> f32 and bf16 -> f32 are exact; f32 -> f16 and
// f32 -> bf16 round to nearest even; nans stay nans.
void F16ToF32Row(const uint16_t* src, float* dst, int64_t n);
void F32ToF16Row(const float* src, uint16_t* dst, int64_t n);
void Bf16ToF32Row(const uint16_t* src, float* dst, int64_t n);
void F32ToBf16Row(const float* src, uint16_t* dst, int64_t n);

// Name of the instruction set the kernels run with ("avx512-vnni", "avx2", "scalar").
const char* ActiveIsa();

}  // namespace g4::kernels
