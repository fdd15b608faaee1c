// Per-ISA (include inside namespace g4::kernels::<isa>, after <cstring>, quant_blocks.h and the
// ISA's definitions of
//   float HalfToFloat(uint16_t h);
//   void ScaleBytes8(const uint8_t* b, float d, bool negate, float* out);  // out[i] = (+-)(d * b[i])
//   void ScaleSBytes8(const int8_t* b, float d, float* out);               // out[i] = d * b[i]
// ): decoders from GGUF blocks to the "decoded" form all SIMD kernels consume.
//
// Decoded form of a run of whole blocks of one row:
//   q[e]      uint8 level of element e (for the signed Q8_0 variant: the int8 value's bits)
//   scale[g]  float, one per group of kGroup elements
//   mterm[g]  float, one per group (types with a min only)
// Element value = scale[g] * (q[e] - kOffset) + mterm[g]. The floats are exactly the ones ggml's
// dequantize_row_* multiplies and adds (e.g. Q4_K: scale = d * sc, mterm = -(dmin * m)), so
// DequantDecoded below reproduces DequantizeRow bit for bit.
//
// The loops are plain C++ so that the compiler vectorises them for the TU's instruction set.

// Byte vectors (GCC/Clang vector extensions: compiled to SSE2, AVX2 or AVX-512 code by each TU).
typedef uint8_t U8x16 __attribute__((vector_size(16)));
typedef uint8_t U8x32 __attribute__((vector_size(32)));
template <typename V>
inline V LoadV(const uint8_t* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}
template <typename V>
inline void StoreV(uint8_t* p, V v) {
  std::memcpy(p, &v, sizeof(V));
}

// 32 bytes, byte j = 16 if bit j of the little-endian 32-bit qh is set, else 0.
inline U8x32 HighBits32(const uint8_t* qh) {
  U8x32 src = {};
  std::memcpy(&src, qh, 4);
  const U8x32 spread = __builtin_shufflevector(src, src, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                               2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const U8x32 bit = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128,
                     1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  return reinterpret_cast<U8x32>((spread & bit) != 0) & 16;
}

template <GgmlType kType, bool kSignedQ8 = false>
struct Decoder;

// Q4_0 / Q4_1 block: nibbles, low = elements 0..15, high = 16..31.
inline void DecodeNibbles16(const uint8_t* qs, uint8_t* q) {
  const U8x16 v = LoadV<U8x16>(qs);
  StoreV(q, v & 15);
  StoreV(q + 16, v >> 4);
}

template <>
struct Decoder<GgmlType::Q4_0> {
  static constexpr int kBlock = 32, kBlockBytes = 18, kGroup = 32, kOffset = 8;
  static constexpr bool kHasMin = false, kSigned = false;
  static void Decode(const uint8_t* src, int64_t nb, uint8_t* q, float* scale, float*) {
    const BlockQ4_0* b = reinterpret_cast<const BlockQ4_0*>(src);
    for (int64_t i = 0; i < nb; ++i, q += 32) {
      scale[i] = HalfToFloat(b[i].d);
      DecodeNibbles16(b[i].qs, q);
    }
  }
};

template <>
struct Decoder<GgmlType::Q4_1> {
  static constexpr int kBlock = 32, kBlockBytes = 20, kGroup = 32, kOffset = 0;
  static constexpr bool kHasMin = true, kSigned = false;
  static void Decode(const uint8_t* src, int64_t nb, uint8_t* q, float* scale, float* mterm) {
    const BlockQ4_1* b = reinterpret_cast<const BlockQ4_1*>(src);
    for (int64_t i = 0; i < nb; ++i, q += 32) {
      scale[i] = HalfToFloat(b[i].d);
      mterm[i] = HalfToFloat(b[i].m);
      DecodeNibbles16(b[i].qs, q);
    }
  }
};

// Q5_0 / Q5_1: nibble plus the 5th bit from qh (bit j for element j).
inline void Decode5BitBlock(const uint8_t* qs, const uint8_t* qh, uint8_t* q) {
  DecodeNibbles16(qs, q);
  StoreV(q, LoadV<U8x32>(q) | HighBits32(qh));
}

template <>
struct Decoder<GgmlType::Q5_0> {
  static constexpr int kBlock = 32, kBlockBytes = 22, kGroup = 32, kOffset = 16;
  static constexpr bool kHasMin = false, kSigned = false;
  static void Decode(const uint8_t* src, int64_t nb, uint8_t* q, float* scale, float*) {
    const BlockQ5_0* b = reinterpret_cast<const BlockQ5_0*>(src);
    for (int64_t i = 0; i < nb; ++i, q += 32) {
      scale[i] = HalfToFloat(b[i].d);
      Decode5BitBlock(b[i].qs, b[i].qh, q);
    }
  }
};

template <>
struct Decoder<GgmlType::Q5_1> {
  static constexpr int kBlock = 32, kBlockBytes = 24, kGroup = 32, kOffset = 0;
  static constexpr bool kHasMin = true, kSigned = false;
  static void Decode(const uint8_t* src, int64_t nb, uint8_t* q, float* scale, float* mterm) {
    const BlockQ5_1* b = reinterpret_cast<const BlockQ5_1*>(src);
    for (int64_t i = 0; i < nb; ++i, q += 32) {
      scale[i] = HalfToFloat(b[i].d);
      mterm[i] = HalfToFloat(b[i].m);
      Decode5BitBlock(b[i].qs, b[i].qh, q);
    }
  }
};

// Q8_0, unsigned variant: level = value + 128 (for u8 x s8 dot instructions), offset 128.
template <>
struct Decoder<GgmlType::Q8_0, false> {
  static constexpr int kBlock = 32, kBlockBytes = 34, kGroup = 32, kOffset = 128;
  static constexpr bool kHasMin = false, kSigned = false;
  static void Decode(const uint8_t* src, int64_t nb, uint8_t* q, float* scale, float*) {
    const BlockQ8_0* b = reinterpret_cast<const BlockQ8_0*>(src);
    for (int64_t i = 0; i < nb; ++i, q += 32) {
      scale[i] = HalfToFloat(b[i].d);
      StoreV(q, LoadV<U8x32>(reinterpret_cast<const uint8_t*>(b[i].qs)) ^ 0x80);
    }
  }
};

// Q8_0, signed variant: q holds the int8 values themselves (AVX2 multiplies |w| by sign(x, w)).
template <>
struct Decoder<GgmlType::Q8_0, true> {
  static constexpr int kBlock = 32, kBlockBytes = 34, kGroup = 32, kOffset = 0;
  static constexpr bool kHasMin = false, kSigned = true;
  static void Decode(const uint8_t* src, int64_t nb, uint8_t* q, float* scale, float*) {
    const BlockQ8_0* b = reinterpret_cast<const BlockQ8_0*>(src);
    for (int64_t i = 0; i < nb; ++i, q += 32) {
      scale[i] = HalfToFloat(b[i].d);
      std::memcpy(q, b[i].qs, 32);
    }
  }
};

// The 8 scales and mins of a Q4_K/Q5_K super-block (UnpackScaleMinK4 for all j at once, on
// 32-bit words: sub-blocks 0-3 in the low 6 bits of bytes 0-3 / 4-7; 4-7 from the nibbles of
// bytes 8-11 plus the top two bits of bytes 0-3 / 4-7).
inline void UnpackScalesMinsK4(const uint8_t* s, uint8_t* sc, uint8_t* m) {
  uint32_t u[3];
  std::memcpy(u, s, 12);
  const uint32_t w[4] = {u[0] & 0x3f3f3f3fu, (u[2] & 0x0f0f0f0fu) | ((u[0] >> 2) & 0x30303030u),
                         u[1] & 0x3f3f3f3fu, ((u[2] >> 4) & 0x0f0f0f0fu) | ((u[1] >> 2) & 0x30303030u)};
  std::memcpy(sc, w, 8);
  std::memcpy(m, w + 2, 8);
}

// Q4_K / Q5_K: 8 groups of 32 per super-block.
template <int kBits, typename Block>
void DecodeK4K5(const Block* b, int64_t nb, uint8_t* q, float* scale, float* mterm) {
  for (int64_t i = 0; i < nb; ++i, q += 256, scale += 8, mterm += 8) {
    const float d = HalfToFloat(b[i].d), dmin = HalfToFloat(b[i].dmin);
    uint8_t sc[8], m[8];
    UnpackScalesMinsK4(b[i].scales, sc, m);
    ScaleBytes8(sc, d, false, scale);   // d * sc, as ggml
    ScaleBytes8(m, dmin, true, mterm);  // -(dmin * m)
    U8x32 qh;
    if constexpr (kBits == 5) qh = LoadV<U8x32>(b[i].qh);
    for (int c = 0; c < 4; ++c) {
      const U8x32 v = LoadV<U8x32>(b[i].qs + 32 * c);
      U8x32 lo = v & 15, hi = v >> 4;
      if constexpr (kBits == 5) {
        lo |= ((qh >> (2 * c)) & 1) << 4;
        hi |= ((qh >> (2 * c + 1)) & 1) << 4;
      }
      StoreV(q + 64 * c, lo);
      StoreV(q + 64 * c + 32, hi);
    }
  }
}

template <>
struct Decoder<GgmlType::Q4_K> {
  static constexpr int kBlock = 256, kBlockBytes = 144, kGroup = 32, kOffset = 0;
  static constexpr bool kHasMin = true, kSigned = false;
  static void Decode(const uint8_t* src, int64_t nb, uint8_t* q, float* scale, float* mterm) {
    DecodeK4K5<4>(reinterpret_cast<const BlockQ4_K*>(src), nb, q, scale, mterm);
  }
};

template <>
struct Decoder<GgmlType::Q5_K> {
  static constexpr int kBlock = 256, kBlockBytes = 176, kGroup = 32, kOffset = 0;
  static constexpr bool kHasMin = true, kSigned = false;
  static void Decode(const uint8_t* src, int64_t nb, uint8_t* q, float* scale, float* mterm) {
    DecodeK4K5<5>(reinterpret_cast<const BlockQ5_K*>(src), nb, q, scale, mterm);
  }
};

// Q6_K: 16 groups of 16 per super-block, levels 0..63 with offset 32.
template <>
struct Decoder<GgmlType::Q6_K> {
  static constexpr int kBlock = 256, kBlockBytes = 210, kGroup = 16, kOffset = 32;
  static constexpr bool kHasMin = false, kSigned = false;
  static void Decode(const uint8_t* src, int64_t nb, uint8_t* q, float* scale, float*) {
    const BlockQ6_K* b = reinterpret_cast<const BlockQ6_K*>(src);
    for (int64_t i = 0; i < nb; ++i, q += 256, scale += 16) {
      const float d = HalfToFloat(b[i].d);
      ScaleSBytes8(b[i].scales, d, scale);  // d * sc, as ggml
      ScaleSBytes8(b[i].scales + 8, d, scale + 8);
      for (int h = 0; h < 2; ++h) {
        const U8x32 ql0 = LoadV<U8x32>(b[i].ql + 64 * h), ql1 = LoadV<U8x32>(b[i].ql + 64 * h + 32);
        const U8x32 qh = LoadV<U8x32>(b[i].qh + 32 * h);
        uint8_t* o = q + 128 * h;
        StoreV(o, (ql0 & 15) | ((qh & 3) << 4));
        StoreV(o + 32, (ql1 & 15) | (((qh >> 2) & 3) << 4));
        StoreV(o + 64, (ql0 >> 4) | (((qh >> 4) & 3) << 4));
        StoreV(o + 96, (ql1 >> 4) | ((qh >> 6) << 4));
      }
    }
  }
};

// Exact f32 values of decoded elements [0, n) (n a multiple of D::kGroup), in ggml's float order.
template <class D>
void DequantDecoded(const uint8_t* q, const float* scale, const float* mterm, int64_t n, float* out) {
  for (int64_t g = 0; g < n / D::kGroup; ++g) {
    const float s = scale[g];
    for (int j = 0; j < D::kGroup; ++j) {
      const int64_t e = g * D::kGroup + j;
      const int level = D::kSigned ? static_cast<int>(static_cast<int8_t>(q[e])) : static_cast<int>(q[e]) - D::kOffset;
      if constexpr (D::kHasMin) {
        out[e] = static_cast<float>(level) * s + mterm[g];
      } else {
        out[e] = static_cast<float>(level) * s;
      }
    }
  }
}
