// Block layouts of the quantized ggml types, byte for byte as ggml stores them (ggml-common.h), so
// GGUF files are interchangeable with llama.cpp. All multi-byte fields are little-endian; `d`, `m`,
// `dmin` are IEEE binary16 bit patterns (see util/fp16.h).
//
// Value of element j of a block (what DequantizeRow computes, in this float operation order):
//   Q4_0: ((qs[j%16] >> 4*(j/16)) & 15) - 8) * d                      (nibble: low = first half)
//   Q4_1: nibble * d + m
//   Q5_0: ((nibble | hbit << 4) - 16) * d, hbit = bit j of qh
//   Q5_1: (nibble | hbit << 4) * d + m
//   Q8_0: qs[j] * d
//   Q4_K, Q5_K: 256 elements in 8 sub-blocks of 32; sub-block s has a 6-bit scale sc and 6-bit min m
//         packed in scales[12] (see UnpackScaleMinK4); value = (d * sc) * q - (dmin * m).
//         qs: 4 chunks of 64 elements, 32 bytes each: low nibbles = sub-block 2c, high = 2c + 1.
//         Q5_K adds qh[32]: bit (2c) of qh[l] is the 5th bit of element l of sub-block 2c,
//         bit (2c + 1) that of sub-block 2c + 1.
//   Q6_K: 256 elements in 16 sub-blocks of 16, int8 scales; value = (d * sc) * (q - 32), q 6 bits.
//         Two halves of 128: in half h, ql[64h + l] holds the low 4 bits of elements l (low nibble)
//         and l + 64 (high nibble), ql[64h + 32 + l] those of l + 32 and l + 96; qh[32h + l] holds
//         the high 2 bits of l, l + 32, l + 64, l + 96 in bit pairs 0-1, 2-3, 4-5, 6-7.
//   Q8_K: (activations only) value = d * qs[j], d is a float; bsums[i] = sum of qs[16i .. 16i+15].
#pragma once

#include <cstdint>

namespace g4::kernels {

constexpr int kQK = 32;    // elements per block of the 32-element types
constexpr int kQK_K = 256; // elements per super-block of the k-quants

struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQK / 2];
};
struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kQK / 2];
};
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];  // 5th bits, little-endian uint32: bit j belongs to element j
  uint8_t qs[kQK / 2];
};
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQK];
};
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[kQK_K / 2];
};
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;
};
struct BlockQ8_K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];
};

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);
// Weight blocks are read through these structs in place. That needs only 2-byte alignment: GGUF
// tensor data is 32-byte aligned and every block size is even, so every row starts at an even
// address. Q8_K (float field) only ever lives in buffers we allocate.
static_assert(alignof(BlockQ4_K) == 2 && alignof(BlockQ6_K) == 2);

// Scale j (0..7) and min of a Q4_K/Q5_K super-block from the 12 packed bytes: sub-blocks 0-3 keep
// their 6 bits in the low bits of bytes j and j + 4; sub-blocks 4-7 keep the low 4 bits in byte
// j + 4 (scale: low nibble, min: high nibble) and the top 2 bits in the top bits of bytes j - 4
// (scale) and j (min).
inline void UnpackScaleMinK4(const uint8_t* s, int j, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((s[j + 4] & 15) | ((s[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

}  // namespace g4::kernels
