// Internal: the per-instruction-set kernel table and the data the MatMul driver hands to it.
// Model code never includes this; tests and benchmarks do (to run every ISA in one process).
//
// Each ISA lives in its own translation unit compiled with its own -m flags (ops_scalar.cc,
// ops_avx2.cc, ops_avx512.cc) and exports one IsaOps table. matmul.cc picks the table once
// (GetCpuFeatures, GEMMA4_ISA) and runs everything that is shared: argument checks, the activation
// workspace, and splitting the output rows over threads.
#pragma once

#include <cstdint>

#include "kernels/kernels.h"
#include "kernels/scratch.h"

namespace g4::kernels {

enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

const char* IsaName(Isa isa);  // "scalar", "avx2", "avx512-vnni"
bool IsaSupported(Isa isa);    // compiled in and runnable on this CPU
Isa ActiveIsaLevel();          // best supported level, lowered by GEMMA4_ISA (read once)

// Activations of one MatMul call quantized for integer dot products (Math::kFast with a quantized
// weight type). Values are the same on every ISA (tests check it):
//  * Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 weights: groups of 32 as llama.cpp's x86 quantize_row_q8_0:
//      amax = max |x|,  d = f16(amax / 127) (kept as float),  q = round_to_even(x * (127 / amax)).
//  * Q4_K, Q5_K, Q6_K weights: super-blocks of 256 exactly as quantize_row_q8_K_ref (d = -max/127,
//    a float; q = round_to_even(x * (-127 / max))), with d repeated for each group of the weight type
//    (32 for Q4_K/Q5_K, 16 for Q6_K; the Q6_K sums are Q8_K's bsums).
// Per group also: sum = sum of q (exact), and two values the ISA kernels precompute per group once
// (so that every output row can use them): bias = -offset * sum, where offset is the zero level of
// the ISA's unsigned weight encoding (e.g. 8 for Q4_0), and dsum = d * sum (for types with a min).
struct QuantActs {
  GgmlType wtype = GgmlType::Q8_0;  // the weight type these activations were made for
  int64_t n = 0;                    // tokens
  int64_t cols = 0;
  int group = 32;                   // elements per group
  int64_t q_stride = 0;             // bytes between tokens in q: cols rounded up to 64
  int64_t g_stride = 0;             // entries between tokens in the group arrays: groups rounded up to 16
  int8_t* q = nullptr;              // [n][q_stride]; the padding is zero
  float* d = nullptr;               // [n][g_stride]; padding zero
  int32_t* sum = nullptr;           // [n][g_stride]
  int32_t* bias = nullptr;          // [n][g_stride]
  float* dsum = nullptr;            // [n][g_stride]
  // Per-lane copies for the row path's vector loops (filled when `lanes`): a lane is 4 consecutive
  // elements (one 32-bit lane of a u8 x s8 dot instruction), so each group spans group / 4 lanes.
  bool lanes = false;
  float* dl = nullptr;    // [n][q_stride / 4]: d of the lane's group (0 in the padding)
  int32_t* bl = nullptr;  // [n][q_stride / 4]: the group's bias in its first lane, 0 elsewhere

  int64_t groups() const { return cols / group; }
  int64_t lane_stride() const { return q_stride / 4; }
  const int8_t* qt(int64_t t) const { return q + t * q_stride; }
  const float* dt(int64_t t) const { return d + t * g_stride; }
  const int32_t* sumt(int64_t t) const { return sum + t * g_stride; }
  const int32_t* biast(int64_t t) const { return bias + t * g_stride; }
  const float* dsumt(int64_t t) const { return dsum + t * g_stride; }
  const float* dlt(int64_t t) const { return dl + t * lane_stride(); }
  const int32_t* blt(int64_t t) const { return bl + t * lane_stride(); }
};

// Group size and activation kind of a weight type on the fast path.
inline bool IsKQuant(GgmlType t) { return t == GgmlType::Q4_K || t == GgmlType::Q5_K || t == GgmlType::Q6_K; }
inline bool IsFloatType(GgmlType t) { return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16; }
inline int ActGroup(GgmlType t) { return t == GgmlType::Q6_K ? 16 : 32; }

// One MatMul call, as the ISA kernels see it (already validated).
struct MatMulArgs {
  Matrix w;
  const float* x = nullptr;  // [n][ldx]
  int64_t ldx = 0;
  int64_t n = 0;
  float* y = nullptr;  // [n][ldy]
  int64_t ldy = 0;
  Math math = Math::kFast;
  const QuantActs* acts = nullptr;  // set for kFast with a quantized weight type
};

enum : int { kActLanes = 1 };

// Element storage of float weights (the per-ISA kernels are templated on it).
enum class WKind { kF32, kF16, kBF16 };

struct IsaOps {
  Isa isa;
  // Quantizes tokens [t0, t1) of x ([n][ldx]) into acts (whose buffers are sized for acts->n
  // tokens), filling q, d, sum, bias, dsum and the optional layouts.
  void (*quantize_acts)(const float* x, int64_t ldx, int64_t t0, int64_t t1, QuantActs* acts);
  // Which optional activation layouts matmul_rows will read (kActLanes: the row path's).
  int (*act_layouts)(const MatMulArgs& a);
  // Output rows per unit of work: MatMul hands matmul_rows ranges that are multiples of it.
  int64_t (*rows_per_task)(const MatMulArgs& a);
  // Grows the calling thread's scratch memory to what matmul_rows needs for this call (every pool
  // thread calls it before taking rows, so that steady-state calls never allocate).
  void (*reserve_scratch)(const MatMulArgs& a);
  // Computes y[t][r] for r in [r0, r1) and every token t. Called concurrently on disjoint ranges.
  void (*matmul_rows)(const MatMulArgs& a, int64_t r0, int64_t r1);
  float (*dot_f32)(const float* a, const float* b, int64_t n);
  void (*f16_to_f32)(const uint16_t* src, float* dst, int64_t n);
  void (*f32_to_f16)(const float* src, uint16_t* dst, int64_t n);
  void (*bf16_to_f32)(const uint16_t* src, float* dst, int64_t n);
  void (*f32_to_bf16)(const float* src, uint16_t* dst, int64_t n);
  // The exact path's dequantization (must equal DequantizeRow bit for bit; tests check it).
  void (*dequantize_row)(GgmlType t, const uint8_t* src, float* dst, int64_t n);
};

// Fills bias = -offset * sum and dsum = d * sum (and zero padding), and dl / bl if a->lanes, for
// tokens [t0, t1) once q, d and sum are set. Every ISA's quantize_acts ends with it.
void FinishQuantActs(QuantActs* a, int64_t t0, int64_t t1, int offset);

// The tables. Avx2Ops / Avx512Ops return nullptr when the build has no x86 SIMD code.
const IsaOps* ScalarOps();
const IsaOps* Avx2Ops();
const IsaOps* Avx512Ops();
// The table of a supported ISA; fails naming the ISA otherwise.
const IsaOps& OpsFor(Isa isa);

// The public kernels with an explicit instruction set (the public ones use ActiveIsaLevel()).
void MatMulIsa(Isa isa, const Matrix& w, const float* x, int64_t ldx, int64_t n, float* y, int64_t ldy,
               Math math, ThreadPool& pool);

// Quantizes activations for `wtype` with the given ISA into a caller-owned QuantActs whose buffers
// this allocates (tests use it to compare ISAs; MatMul reuses a per-thread workspace instead).
struct OwnedQuantActs {
  QuantActs acts;
  AlignedBuffer q, d, sum, bias, dsum, dl, bl;
};
void QuantizeActsForTest(Isa isa, GgmlType wtype, const float* x, int64_t ldx, int64_t n, int64_t cols,
                         OwnedQuantActs* out, int layouts = kActLanes);

// Scalar reference dot products of the fast path: one weight row (GGUF layout, `cols` elements)
// with token t of acts, in llama.cpp's per-type formulas (ggml-cpu/quants.c generic versions, with
// float d and exact integer sums in place of Q8_1's f16 d * sum). Integer block sums are exact.
float RefDotQuant(GgmlType wtype, const uint8_t* wrow, const QuantActs& acts, int64_t t);

}  // namespace g4::kernels
