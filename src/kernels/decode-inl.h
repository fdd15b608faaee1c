// Per-ISA (include inside namespace g4::kernels::<isa> after the ISA's vector policy `V`, which
// supplies V::HalfToFloat16 and kSignedQ8): decoders from packed tiles (panel.h) to the decoded
// form every integer kernel consumes, and the exact dequantization of the decoded form.
//
// Decoded form of one panel (16 rows) over a run of whole blocks (columns [0, kc) of the run):
//   q    [kc/4][16][4] uint8: level of element 4s + i of row r at (s * 16 + r) * 4 + i (the int8
//        value itself for signed Q8_0, i.e. when V::kSignedQ8)
//   per group of 32 (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0): f0 [kc/32][16] d, f1 [kc/32][16] m (with a min)
//   per super-block of 256 (Q4_K, Q5_K): f0 [kc/256][16] d, f1 [.][16] dmin,
//        i0 [kc/256][8][16] int32 scales sc_j, i1 [kc/256][4][16] int32 mins m_2i | m_2i+1 << 16
//   per super-block (Q6_K): f0 [kc/256][16] d, i0 [kc/256][16][16] int32 scales (signed)
// Element value (what DequantizeRow computes, same float operations):
//   Q4_0, Q5_0, Q8_0: (level - offset) * d            Q4_1, Q5_1: level * d + m
//   Q4_K, Q5_K: level * (d * sc_j) + -(dmin * m_j)     Q6_K: (level - 32) * (d * sc_j)
//
// The loops use GCC vector extensions on 64-byte vectors (16 rows x 4 bytes), compiled to one
// AVX-512 register or two AVX2 registers by each translation unit.

typedef uint8_t U8x64 __attribute__((vector_size(64)));
typedef uint16_t U16x32 __attribute__((vector_size(64)));
typedef uint32_t U32x16 __attribute__((vector_size(64)));
typedef int32_t I32x16 __attribute__((vector_size(64)));
typedef float F32x16 __attribute__((vector_size(64)));

template <typename Vec>
inline Vec LoadV(const void* p) {
  Vec v;
  std::memcpy(&v, p, sizeof(Vec));
  return v;
}
template <typename Vec>
inline void StoreV(void* p, Vec v) {
  std::memcpy(p, &v, sizeof(Vec));
}

struct Decoded {
  uint8_t* q = nullptr;
  float* f0 = nullptr;
  float* f1 = nullptr;
  int32_t* i0 = nullptr;
  int32_t* i1 = nullptr;
};

enum class KClass { kG32, kG32Min, kK, kK6 };

// One decoder per type: Decode(tiles, nb, out) decodes nb consecutive tiles (blocks) into out.
template <GgmlType kType>
struct Tile;

inline void StoreHalves(const uint8_t* h, float* out) { V::HalfToFloat16(reinterpret_cast<const uint16_t*>(h), out); }

// ---- Types with blocks of 32 ----
//
// Their tiles are read in loads, which both consumers share: Decode (into the decoded form above,
// for many tokens) and the few-token kernel of tiling-inl.h (QuantTileG), which dots the levels
// straight from registers. Load l of a tile gives kPerLoad steps of levels: lv[k] is step
// StepOf(l, k) (elements 4 * StepOf(l, k) + i, as in the decoded form).

// Q4_0 / Q4_1 / Q5_0 / Q5_1: 4 loads of nibbles per tile, low = step s (elements 4s + i), high =
// step 4 + s (elements 16 + 4s + i); Q5 adds the 5th bits from the dword per row after qs.
template <bool kFive, bool kMin>
struct TileNibbles {
  static constexpr KClass kClass = kMin ? KClass::kG32Min : KClass::kG32;
  static constexpr int kBlock = 32, kOffset = kMin ? 0 : (kFive ? 16 : 8);
  static constexpr int64_t kTileBytes = 256 + (kFive ? 64 : 0) + 32 + (kMin ? 32 : 0);
  static constexpr int kLoads = 4, kPerLoad = 2;
  static constexpr int StepOf(int l, int k) { return l + 4 * k; }

  static void LoadLevels(const uint8_t* tile, int s, U8x64* lv) {
    const U8x64 v = LoadV<U8x64>(tile + 64 * s);
    U8x64 lo = v & 15, hi = v >> 4;
    if constexpr (kFive) {
      const U32x16 qh = LoadV<U32x16>(tile + 256);
      lo |= reinterpret_cast<U8x64>((qh << (4 - s)) & 0x10101010u);
      hi |= reinterpret_cast<U8x64>((qh >> s) & 0x10101010u);
    }
    lv[0] = lo;
    lv[1] = hi;
  }
  static const uint8_t* Halves(const uint8_t* tile) { return tile + (kFive ? 320 : 256); }  // f16[16] d
  static const uint8_t* MinHalves(const uint8_t* tile) { return Halves(tile) + 32; }       // f16[16] m

  static void Decode(const uint8_t* tiles, int64_t nb, const Decoded& o) {
    for (int64_t b = 0; b < nb; ++b, tiles += kTileBytes) {
      for (int s = 0; s < kLoads; ++s) {
        U8x64 lv[2];
        LoadLevels(tiles, s, lv);
        StoreV(o.q + b * 512 + 64 * s, lv[0]);
        StoreV(o.q + b * 512 + 64 * (4 + s), lv[1]);
      }
      StoreHalves(Halves(tiles), o.f0 + b * 16);
      if constexpr (kMin) StoreHalves(MinHalves(tiles), o.f1 + b * 16);
    }
  }
};

template <>
struct Tile<GgmlType::Q4_0> : TileNibbles<false, false> {};
template <>
struct Tile<GgmlType::Q4_1> : TileNibbles<false, true> {};
template <>
struct Tile<GgmlType::Q5_0> : TileNibbles<true, false> {};
template <>
struct Tile<GgmlType::Q5_1> : TileNibbles<true, true> {};

// Q8_0: 8 loads of one step each (levels + 128, or the int8 values themselves when V::kSignedQ8).
template <>
struct Tile<GgmlType::Q8_0> {
  static constexpr KClass kClass = KClass::kG32;
  static constexpr int kBlock = 32, kOffset = V::kSignedQ8 ? 0 : 128;
  static constexpr int64_t kTileBytes = 544;
  static constexpr int kLoads = 8, kPerLoad = 1;
  static constexpr int StepOf(int l, int) { return l; }

  static void LoadLevels(const uint8_t* tile, int s, U8x64* lv) {
    const U8x64 v = LoadV<U8x64>(tile + 64 * s);
    lv[0] = V::kSignedQ8 ? v ^ 0x80 : v;
  }
  static const uint8_t* Halves(const uint8_t* tile) { return tile + 512; }  // f16[16] d
  static const uint8_t* MinHalves(const uint8_t* tile) { return tile + 512; }  // unused (no min)

  static void Decode(const uint8_t* tiles, int64_t nb, const Decoded& o) {
    for (int64_t b = 0; b < nb; ++b, tiles += kTileBytes) {
      for (int s = 0; s < kLoads; ++s) {
        U8x64 lv[1];
        LoadLevels(tiles, s, lv);
        StoreV(o.q + b * 512 + 64 * s, lv[0]);
      }
      StoreHalves(Halves(tiles), o.f0 + b * 16);
    }
  }
};

// ---- K-quants (super-blocks of 256) ----
//
// Their tiles are read in units, which both consumers share: Decode (into the decoded form above,
// for many tokens) and the few-token kernel of tiling-inl.h, which dots the levels straight from
// registers and never stores them. A unit is the loads of the packed tile that complete
// kUnitGroups groups at once; UnitLevels gives step s (< kGroupSteps) of each of those groups
// (levels of elements 4 * (kGroupSteps * UnitGroup(u, k) + s) + i, as in the decoded form), and
// Scales the groups' integer scales (and, for Q4_K/Q5_K, the mins in pairs) of the 16 rows.

// Levels of one K-quant super-block in the decoded form (q: 64 steps of 64 bytes).
template <typename Ty>
inline void DecodeLevelsK(const uint8_t* tile, uint8_t* q) {
  for (int u = 0; u < Ty::kUnits; ++u) {
    for (int s = 0; s < Ty::kGroupSteps; ++s) {
      U8x64 lv[Ty::kUnitGroups];
      Ty::UnitLevels(tile, u, s, lv);
      for (int k = 0; k < Ty::kUnitGroups; ++k) StoreV(q + 64 * (Ty::kGroupSteps * Ty::UnitGroup(u, k) + s), lv[k]);
    }
  }
}

// Q4_K / Q5_K scales: the 12 bytes of each row as three dwords (UnpackScaleMinK4 on all rows):
// w[0] = sc_0..3, w[1] = sc_4..7, w[2] = m_0..3, w[3] = m_4..7, one byte each.
struct ScalesK4 {
  using Vec = U32x16;
  U32x16 w[4];
  ScalesK4() = default;
  explicit ScalesK4(const uint8_t* s) {
    const U32x16 u0 = LoadV<U32x16>(s), u1 = LoadV<U32x16>(s + 64), u2 = LoadV<U32x16>(s + 128);
    w[0] = u0 & 0x3f3f3f3fu;
    w[1] = (u2 & 0x0f0f0f0fu) | ((u0 >> 2) & 0x30303030u);
    w[2] = u1 & 0x3f3f3f3fu;
    w[3] = ((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 2) & 0x30303030u);
  }
  void Scale(int j, U32x16* sc) const { *sc = (w[j / 4] >> (8 * (j % 4))) & 0xffu; }
  // m_2i | m_2i+1 << 16 (the operand of DotPairs with the activations' sum pairs).
  void MinPair(int i, U32x16* mp) const {
    const U32x16 m = w[2 + i / 2] >> (16 * (i % 2));  // bytes m_2i, m_2i+1 in the low half
    *mp = (m & 0xffu) | ((m & 0xff00u) << 8);
  }
};

// Q4_K / Q5_K: unit u is the 8 steps of qs holding elements [64u, 64u + 64): low nibbles are group
// 2u, high nibbles group 2u + 1 (Q5_K adds bit 2u / 2u + 1 of qh as bit 4).
template <bool kFive>
struct TileK4K5 {
  static constexpr KClass kClass = KClass::kK;
  static constexpr int kBlock = 256, kOffset = 0;
  static constexpr int64_t kTileBytes = kFive ? 2816 : 2304, kScalesAt = kFive ? 2560 : 2048;
  static constexpr int kGroups = 8, kGroupSteps = 8, kUnits = 4, kUnitGroups = 2;
  static constexpr int UnitGroup(int u, int k) { return 2 * u + k; }
  using Scales = ScalesK4;

  static void UnitLevels(const uint8_t* tile, int u, int s, U8x64* lv) {
    const U8x64 v = LoadV<U8x64>(tile + 64 * (8 * u + s));
    U8x64 lo = v & 15, hi = v >> 4;
    if constexpr (kFive) {
      const U8x64 h = LoadV<U8x64>(tile + 2048 + 64 * s);
      lo |= ((h >> (2 * u)) & 1) << 4;
      hi |= ((h >> (2 * u + 1)) & 1) << 4;
    }
    lv[0] = lo;
    lv[1] = hi;
  }
  static const uint8_t* Halves(const uint8_t* tile) { return tile + kScalesAt + 192; }   // f16[16] d
  static const uint8_t* MinHalves(const uint8_t* tile) { return tile + kScalesAt + 224; }  // f16[16] dmin

  static void Decode(const uint8_t* tiles, int64_t nb, const Decoded& o) {
    for (int64_t b = 0; b < nb; ++b, tiles += kTileBytes) {
      DecodeLevelsK<TileK4K5>(tiles, o.q + b * 4096);
      const Scales sc(tiles + kScalesAt);
      U32x16 v;
      for (int j = 0; j < kGroups; ++j) {
        sc.Scale(j, &v);
        StoreV(o.i0 + b * 128 + 16 * j, v);
      }
      for (int i = 0; i < 4; ++i) {
        sc.MinPair(i, &v);
        StoreV(o.i1 + b * 64 + 16 * i, v);
      }
      StoreHalves(Halves(tiles), o.f0 + b * 16);
      StoreHalves(MinHalves(tiles), o.f1 + b * 16);
    }
  }
};

template <>
struct Tile<GgmlType::Q4_K> : TileK4K5<false> {};
template <>
struct Tile<GgmlType::Q5_K> : TileK4K5<true> {};

// Q6_K scales: 16 signed bytes per row as four dwords.
struct ScalesK6 {
  using Vec = I32x16;
  I32x16 w[4];
  ScalesK6() = default;
  explicit ScalesK6(const uint8_t* s) {
    for (int i = 0; i < 4; ++i) w[i] = LoadV<I32x16>(s + 64 * i);
  }
  void Scale(int j, I32x16* sc) const { *sc = (w[j / 4] << (24 - 8 * (j % 4))) >> 24; }  // sign-extended byte j % 4
};

// Q6_K: the 16 packed steps (h, s) each hold elements 128h + 4s + i (+ 32, + 64, + 96): low and
// high nibbles of ql[64h + 4s + i] and ql[64h + 32 + 4s + i], 2-bit pairs of qh[32h + 4s + i].
// Unit u = (h, s / 4, which ql) gives, over 4 steps, two groups of 16: with x = ql0 (u even),
// groups 8h + s / 4 (low nibbles, qh bits 0-1) and 8h + 4 + s / 4 (high nibbles, bits 4-5); with
// x = ql1, groups 8h + 2 + s / 4 (bits 2-3) and 8h + 6 + s / 4 (bits 6-7).
template <>
struct Tile<GgmlType::Q6_K> {
  static constexpr KClass kClass = KClass::kK6;
  static constexpr int kBlock = 256, kOffset = 32;
  static constexpr int64_t kTileBytes = 3360, kScalesAt = 3072;
  static constexpr int kGroups = 16, kGroupSteps = 4, kUnits = 8, kUnitGroups = 2;
  // u = 4h + 2 * half + which: groups 8h + 2 * which + half and 8h + 4 + 2 * which + half.
  static constexpr int UnitGroup(int u, int k) { return 8 * (u / 4) + 4 * k + 2 * (u % 2) + u / 2 % 2; }
  using Scales = ScalesK6;

  // Shifts are on 16-bit lanes (one instruction; a byte shift costs a shift and a mask): the bits a
  // lane carries in from the neighbouring byte land where the masks below drop them (after >> 2,
  // bits 6-7 of a byte; after >> 4 and << 4, the nibble that is not kept).
  static void UnitLevels(const uint8_t* tile, int u, int s, U8x64* lv) {
    const int which = u % 2;
    const uint8_t* base = tile + 192 * (8 * (u / 4) + 4 * (u / 2 % 2) + s);
    const U8x64 x = LoadV<U8x64>(base + 64 * which);
    U16x32 qh = LoadV<U16x32>(base + 128);  // this ql's bit pairs at bits 0-1 and 4-5 of each byte
    if (which != 0) qh >>= 2;
    lv[0] = (x & 15) | (reinterpret_cast<U8x64>(qh << 4) & 0x30);
    lv[1] = (reinterpret_cast<U8x64>(reinterpret_cast<U16x32>(x) >> 4) & 15) | (reinterpret_cast<U8x64>(qh) & 0x30);
  }
  static const uint8_t* Halves(const uint8_t* tile) { return tile + 3328; }  // f16[16] d

  static void Decode(const uint8_t* tiles, int64_t nb, const Decoded& o) {
    for (int64_t b = 0; b < nb; ++b, tiles += kTileBytes) {
      DecodeLevelsK<Tile>(tiles, o.q + b * 4096);
      const Scales sc(tiles + kScalesAt);
      for (int j = 0; j < kGroups; ++j) {
        I32x16 v;
        sc.Scale(j, &v);
        StoreV(o.i0 + b * 256 + 16 * j, v);
      }
      StoreHalves(Halves(tiles), o.f0 + b * 16);
    }
  }
};

// Exact f32 values of a decoded run of kc elements, written as a float panel [kc][16].
template <GgmlType kType>
void DequantDecoded(const Decoded& d, int64_t kc, float* out) {
  using Ty = Tile<kType>;
  for (int64_t s = 0; s < kc / 4; ++s) {
    const I32x16 lv = LoadV<I32x16>(d.q + 64 * s);
    const int64_t e = 4 * s;
    F32x16 scale, mterm = {};
    if constexpr (Ty::kClass == KClass::kG32 || Ty::kClass == KClass::kG32Min) {
      scale = LoadV<F32x16>(d.f0 + e / 32 * 16);
      if constexpr (Ty::kClass == KClass::kG32Min) mterm = LoadV<F32x16>(d.f1 + e / 32 * 16);
    } else if constexpr (Ty::kClass == KClass::kK) {
      const int64_t b = e / 256, j = e % 256 / 32;
      const I32x16 mp = LoadV<I32x16>(d.i1 + b * 64 + 16 * (j / 2));
      const I32x16 m = j % 2 == 0 ? (mp & 0xffff) : (mp >> 16);
      scale = LoadV<F32x16>(d.f0 + b * 16) * __builtin_convertvector(LoadV<I32x16>(d.i0 + b * 128 + 16 * j), F32x16);
      mterm = -(LoadV<F32x16>(d.f1 + b * 16) * __builtin_convertvector(m, F32x16));
    } else {
      const int64_t b = e / 256, j = e % 256 / 16;
      scale = LoadV<F32x16>(d.f0 + b * 16) * __builtin_convertvector(LoadV<I32x16>(d.i0 + b * 256 + 16 * j), F32x16);
    }
    for (int i = 0; i < 4; ++i) {
      I32x16 level = (lv << (24 - 8 * i)) >> 24;  // byte i, sign-extended
      if (!(kType == GgmlType::Q8_0 && V::kSignedQ8)) level &= 0xff;
      level -= Ty::kOffset;
      F32x16 v = __builtin_convertvector(level, F32x16) * scale;
      if constexpr (Ty::kClass == KClass::kG32Min || Ty::kClass == KClass::kK) v = v + mterm;
      StoreV(out + (e + i) * 16, v);
    }
  }
}
