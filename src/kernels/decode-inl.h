// Per-ISA (include inside namespace g4::kernels::<isa>, after <cstring>, quant_blocks.h and a
// definition of `float HalfToFloat(uint16_t)` for the ISA): decoders from GGUF blocks to the "decoded" form all SIMD kernels consume.
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

template <GgmlType kType, bool kSignedQ8 = false>
struct Decoder;

template <>
struct Decoder<GgmlType::Q4_0> {
  static constexpr int kBlock = 32, kBlockBytes = 18, kGroup = 32, kOffset = 8;
  static constexpr bool kHasMin = false, kSigned = false;
  static void Decode(const uint8_t* src, int64_t nb, uint8_t* q, float* scale, float*) {
    const BlockQ4_0* b = reinterpret_cast<const BlockQ4_0*>(src);
    for (int64_t i = 0; i < nb; ++i, q += 32) {
      scale[i] = HalfToFloat(b[i].d);
      for (int j = 0; j < 16; ++j) {
        q[j] = b[i].qs[j] & 15;
        q[j + 16] = b[i].qs[j] >> 4;
      }
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
      for (int j = 0; j < 16; ++j) {
        q[j] = b[i].qs[j] & 15;
        q[j + 16] = b[i].qs[j] >> 4;
      }
    }
  }
};

// Q5_0 / Q5_1: nibble plus the 5th bit from qh (bit j for element j).
inline void Decode5BitBlock(const uint8_t* qs, const uint8_t* qh_bytes, uint8_t* q) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  for (int j = 0; j < 16; ++j) {
    q[j] = static_cast<uint8_t>((qs[j] & 15) | (((qh >> j) & 1) << 4));
    q[j + 16] = static_cast<uint8_t>((qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4));
  }
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
      for (int j = 0; j < 32; ++j) q[j] = static_cast<uint8_t>(b[i].qs[j]) ^ 0x80;
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

// Q4_K / Q5_K: 8 groups of 32 per super-block.
template <int kBits, typename Block>
void DecodeK4K5(const Block* b, int64_t nb, uint8_t* q, float* scale, float* mterm) {
  for (int64_t i = 0; i < nb; ++i, q += 256, scale += 8, mterm += 8) {
    const float d = HalfToFloat(b[i].d), dmin = HalfToFloat(b[i].dmin);
    for (int s = 0; s < 8; ++s) {
      uint8_t sc, m;
      UnpackScaleMinK4(b[i].scales, s, &sc, &m);
      scale[s] = d * sc;
      mterm[s] = -(dmin * m);
    }
    for (int c = 0; c < 4; ++c) {
      const uint8_t* qs = b[i].qs + 32 * c;
      uint8_t* lo = q + 64 * c;
      uint8_t* hi = lo + 32;
      for (int l = 0; l < 32; ++l) {
        lo[l] = qs[l] & 15;
        hi[l] = qs[l] >> 4;
      }
      if constexpr (kBits == 5) {
        for (int l = 0; l < 32; ++l) {
          lo[l] |= static_cast<uint8_t>(((b[i].qh[l] >> (2 * c)) & 1) << 4);
          hi[l] |= static_cast<uint8_t>(((b[i].qh[l] >> (2 * c + 1)) & 1) << 4);
        }
      }
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
      for (int s = 0; s < 16; ++s) scale[s] = d * b[i].scales[s];
      for (int h = 0; h < 2; ++h) {
        const uint8_t* ql = b[i].ql + 64 * h;
        const uint8_t* qh = b[i].qh + 32 * h;
        uint8_t* o = q + 128 * h;
        for (int l = 0; l < 32; ++l) {
          o[l] = static_cast<uint8_t>((ql[l] & 15) | ((qh[l] & 3) << 4));
          o[l + 32] = static_cast<uint8_t>((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4));
          o[l + 64] = static_cast<uint8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
          o[l + 96] = static_cast<uint8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
        }
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
