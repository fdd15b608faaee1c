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
// level. MatMul gives the same bits on every instruction set (see MatMul).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "formats/ggml_types.h"
#include "util/thread_pool.h"

namespace g4::kernels {

enum class Math { kFast, kExact };

// Rows per panel of the packed layout (panel.h): the unit the MatMul kernels work on.
constexpr int kPanelRows = 16;

// A 2-D weight matrix as stored in a GGUF file: `rows` rows of `cols` elements in `type`, each row
// RowBytes(type, cols) bytes, rows contiguous. In ggml terms ne0 = cols, ne1 = rows.
// `packed`, when set, is the same matrix in the kernels' panel layout (PackMatrix), which MatMul then
// reads instead of `data`; the results are the same bit for bit.
struct Matrix {
  GgmlType type = GgmlType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  const uint8_t* data = nullptr;
  const uint8_t* packed = nullptr;
  size_t row_bytes() const { return static_cast<size_t>(RowBytes(type, cols)); }
  const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes(); }
  // Rows [r0, r0 + n) as a matrix of their own; it keeps the packed layout when r0 is a multiple of
  // kPanelRows (a panel boundary: both layouts then have the same byte offsets).
  Matrix RowRange(int64_t r0, int64_t n) const {
    const size_t off = static_cast<size_t>(r0) * row_bytes();
    return Matrix{type, n, cols, data + off, packed != nullptr && r0 % kPanelRows == 0 ? packed + off : nullptr};
  }
};

// Bytes of the packed layout of w: rows rounded up to whole panels of kPanelRows.
int64_t PackedBytes(const Matrix& w);

// Writes w (w.data, GGUF layout) in the panel layout to dst (PackedBytes(w) bytes), on the pool's
// threads. If `release` is set it is called with each range of w.data that has been read (in
// slices of about 16 MB), so that a caller reading from a mapped file can drop those pages and keep
// resident memory near the size of the weights. Fails on a type MatMul does not support.
void PackMatrix(const Matrix& w, uint8_t* dst, ThreadPool& pool,
                const std::function<void(const uint8_t*, size_t)>& release = {});

// Memory for packed weights: anonymous, page-aligned, zero-filled, with transparent huge pages
// requested (fewer TLB misses while streaming the weights).
class PackedBuffer {
 public:
  explicit PackedBuffer(size_t bytes);
  ~PackedBuffer();
  PackedBuffer(const PackedBuffer&) = delete;
  PackedBuffer& operator=(const PackedBuffer&) = delete;
  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
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
//
// Every y[i][r] depends only on row r of W and row i of x, computed in one fixed order (below), so
// it is the same bit for bit whatever n is, whatever the other rows of x are, whatever the thread
// count, with or without the packed layout, and on every instruction set:
//  * float weights (F32/F16/BF16), and every type with Math::kExact (weights dequantized exactly):
//      acc = 0; for c in order: acc = fma(W[r][c], x[i][c], acc)
//  * quantized weights with Math::kFast: per block, in order, the formula of RefDotQuant (ops.h):
//    exact integer dot products of levels and quantized activations, then float fma's.
void MatMul(const Matrix& w, const float* x, int64_t ldx, int64_t n, float* y, int64_t ldy, Math math,
            ThreadPool& pool);

// Several products of the same activations in one call: parts[k].y = parts[k].w x for k < n_parts
// (at most kMaxMatMulParts, all with the same cols; y: [n][ldy] each, overlapping neither x nor each
// other). Each part gives MatMul's bits; the parts' rows are dealt to the threads as one job, so the
// threads start and finish once instead of once per matrix (generation: Q, K and V; gate and up).
struct MatMulPart {
  Matrix w;
  float* y = nullptr;
  int64_t ldy = 0;
};
constexpr int kMaxMatMulParts = 4;
void MatMulMany(const MatMulPart* parts, int n_parts, const float* x, int64_t ldx, int64_t n, Math math,
                ThreadPool& pool);

// Embedding lookup: out[i][0 .. w.cols) = row ids[i] of w, dequantized exactly (DequantizeRow); read
// from w.packed when it is set (the same bits: the panel layout is a permutation of the file's bytes).
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

// Attention on KV-cache rows of type F32, F16, BF16, Q8_0 or Q4_0 (row j at k + j * k_stride bytes),
// head_dim hd a positive multiple of 32, rows read in place and converted exactly in registers:
//   AttnScores:     s[i][j] = dot(q[i], K_j)                       q: [nq][ldq], s: [nq][lds]
//   AttnAccumulate: acc[i][:] = fma(p[i][j], V_j[:], acc[i][:]) for j = 0, 1, ... in order
//                                                                  p: [nq][ldp], acc: [nq][ldacc]
// Each s[i][j] and acc[i][d] is computed in one fixed order (per instruction set) that does not
// depend on nq, nk or the other rows, so a query's attention is the same whatever is batched with it.
// AttnScores may also prefetch (into L2, interleaved with its work) rows `also` (stride also_stride,
// also_bytes each) for keys 0 .. nk-1: the V rows that the following AttnAccumulate reads.
void AttnScores(const float* q, int64_t ldq, int nq, GgmlType kt, const uint8_t* k, int64_t k_stride, int nk, int hd,
                float* s, int64_t lds, const uint8_t* also = nullptr, int64_t also_stride = 0, int64_t also_bytes = 0);
void AttnAccumulate(const float* p, int64_t ldp, int nq, GgmlType vt, const uint8_t* v, int64_t v_stride, int nk,
                    int hd, float* acc, int64_t ldacc);

// The machine's streaming read bandwidth in bytes/s: the best of `reps` reads of a `bytes` buffer
// (far larger than the last-level cache) split over the pool's threads, each with ReadStream.
// Generation reads every weight once per token, so this divided by the bytes read per token is the
// generation roofline. Allocates and fills the buffer first.
double MeasureReadBandwidth(ThreadPool& pool, size_t bytes = size_t{512} << 20, int reps = 5);

// The same over memory the caller holds (for example a model's packed weights, the very bytes that
// generation streams): the best of `reps` reads of all the ranges, their bytes split evenly over the
// pool's threads. Ranges that fit in a cache measure the cache (as generation over them would).
struct ByteRange {
  const void* data = nullptr;
  size_t bytes = 0;
};
double MeasureReadBandwidthOver(ThreadPool& pool, const std::vector<ByteRange>& ranges, int reps);

// Reads `bytes` at data once, front to back, as fast as this core can (64-byte loads with software
// prefetch, as the GEMV kernels stream weights); returns a checksum so the reads are kept.
uint64_t ReadStream(const void* data, size_t bytes);

// Name of the instruction set the kernels run with ("avx512-vnni", "avx2", "scalar").
const char* ActiveIsa();

}  // namespace g4::kernels
