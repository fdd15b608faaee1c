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
// Per group also: sum = sum of q (exact), and values the ISA kernels precompute per group once (so
// that every output row can use them): bias = -offset * sum, where offset is the zero level of the
// ISA's decoded weight levels (e.g. 8 for Q4_0), dsum = d * sum (for types with a min), and for
// Q4_K/Q5_K the sums of groups 2i and 2i + 1 as two int16 in one int32 (sp, |sum| <= 32 * 127).
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
  int32_t* sp = nullptr;            // [n][g_stride / 2]: sum[2i] & 0xffff | sum[2i + 1] << 16

  int64_t groups() const { return cols / group; }
  const int8_t* qt(int64_t t) const { return q + t * q_stride; }
  const float* dt(int64_t t) const { return d + t * g_stride; }
  const int32_t* sumt(int64_t t) const { return sum + t * g_stride; }
  const int32_t* biast(int64_t t) const { return bias + t * g_stride; }
  const float* dsumt(int64_t t) const { return dsum + t * g_stride; }
  const int32_t* spt(int64_t t) const { return sp + t * (g_stride / 2); }
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

// Element storage of float weights (the ISA conversions are templated on it).
enum class WKind { kF32, kF16, kBF16 };

struct IsaOps {
  Isa isa;
  // Quantizes tokens [t0, t1) of x ([n][ldx]) into acts (whose buffers are sized for acts->n
  // tokens), filling q, d, sum, bias, dsum and sp.
  void (*quantize_acts)(const float* x, int64_t ldx, int64_t t0, int64_t t1, QuantActs* acts);
  // Panels (kPanelRows rows) per unit of work: MatMul hands matmul_panels ranges of whole units.
  // With `tail`, the smaller unit MatMul deals at the end of a matrix, so that the threads finish
  // together (a multiple of the register tile's panels, like the other).
  int64_t (*panels_per_task)(const MatMulArgs& a, bool tail);
  // Grows scratch memory to what matmul_panels needs for this call (each worker slot calls it before
  // taking work, so that steady-state calls never allocate).
  void (*reserve_scratch)(const MatMulArgs& a, KernelScratch* s);
  // Computes y[t][r] for the rows r of panels [p0, p1) and every token t. Called concurrently on
  // disjoint ranges, each with its own scratch.
  void (*matmul_panels)(const MatMulArgs& a, int64_t p0, int64_t p1, KernelScratch* s);
  float (*dot_f32)(const float* a, const float* b, int64_t n);
  void (*f16_to_f32)(const uint16_t* src, float* dst, int64_t n);
  void (*f32_to_f16)(const float* src, uint16_t* dst, int64_t n);
  void (*bf16_to_f32)(const uint16_t* src, float* dst, int64_t n);
  void (*f32_to_bf16)(const float* src, uint16_t* dst, int64_t n);
  // AttnScores / AttnAccumulate (kernels.h), head_dim a multiple of 32.
  void (*attn_scores)(const float* q, int64_t ldq, int nq, GgmlType kt, const uint8_t* k, int64_t k_stride, int nk,
                      int hd, float* s, int64_t lds, const uint8_t* also, int64_t also_stride, int64_t also_bytes);
  void (*attn_accumulate)(const float* p, int64_t ldp, int nq, GgmlType vt, const uint8_t* v, int64_t v_stride, int nk,
                          int hd, float* acc, int64_t ldacc);
  // ExpShifted, GeGluTanh, SoftCap (elementwise.h); the same bits on every instruction set.
  void (*exp_shifted)(const float* x, int64_t n, float scale, float shift, float* out);
  void (*geglu_tanh)(const float* gate, const float* up, int64_t n, float* out);
  void (*soft_cap)(const float* x, int64_t n, float cap, float* out);
};

// Fills bias = -offset * sum, dsum = d * sum and sp (and zero padding) for tokens [t0, t1) once q,
// d and sum are set. Every ISA's quantize_acts ends with it.
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
void MatMulManyIsa(Isa isa, const MatMulPart* parts, int n_parts, const float* x, int64_t ldx, int64_t n, Math math,
                   ThreadPool& pool);

// Quantizes activations for `wtype` with the given ISA into a caller-owned QuantActs whose buffers
// this allocates (tests use it to compare ISAs; MatMul reuses a per-thread workspace instead).
struct OwnedQuantActs {
  QuantActs acts;
  AlignedBuffer q, d, sum, bias, dsum, sp;
};
void QuantizeActsForTest(Isa isa, GgmlType wtype, const float* x, int64_t ldx, int64_t n, int64_t cols,
                         OwnedQuantActs* out);

// Scalar reference dot products of the fast path: one weight row (GGUF layout, `cols` elements)
// with token t of acts. This is the definition every MatMul kernel reproduces bit for bit: integer
// dot products per group are exact, and the float steps are, per block b in order (acc = 0 first;
// xd = the token's d, fma = fused multiply-add, one rounding):
//   Q4_0, Q5_0, Q8_0:  isum = sum (level - offset) * q           acc = fma(isum, d * xd, acc)
//   Q4_1, Q5_1:        isum = sum level * q                       acc = fma(isum, d * xd, acc)
//                                                                 acc = fma(m, xd * xsum, acc)
//   Q4_K, Q5_K:        sumi = sum_j sc_j * isum_j, summ = sum_j m_j * xsum_j (j: groups of 32)
//                      acc = fma(sumi, xd * d, acc);  acc = fma(summ, -(xd * dmin), acc)
//   Q6_K:              sumi = sum_j sc_j * sum (level - 32) * q  (j: groups of 16)
//                      acc = fma(sumi, xd * d, acc)
// (xsum = sum of the group's q; d, m, dmin, sc as stored in the block.)
float RefDotQuant(GgmlType wtype, const uint8_t* wrow, const QuantActs& acts, int64_t t);

// The float reference: acc = 0; acc = fma(w[c], x[c], acc) for c in order (w dequantized exactly).
float RefDotFloat(const float* w, const float* x, int64_t n);

}  // namespace g4::kernels
