// Per-ISA (include inside namespace g4::kernels::<isa> after decode-inl.h, which defines F32x16):
// exp, and the element-wise functions built on it (elementwise.h), 16 values at a time in GCC
// vector extensions, so that each instruction set's translation unit compiles it to its own
// registers.
//
// exp(x) = 2^n * exp(r): n = round(x / ln 2) (the 1.5 * 2^23 trick: round to nearest even),
// r = x - n ln 2 in two parts (Cody-Waite: n * 0.693359375 is exact), exp(r) for |r| <= ln 2 / 2 by
// the Cephes expf polynomial, 2^n built in the exponent bits. Every step is one IEEE operation,
// unfused (the kernels are built with -ffp-contract=off), so every instruction set, the scalar one
// included, gives the same bits. x < -87.3 gives 0 (exp would be below the smallest normal float);
// x > 88.3 is taken as 88.3. Within 2 ulp of exp over the range the softmax uses (x <= 0).

// In place (no 64-byte vector crosses a call boundary: its ABI differs without AVX-512).
inline void ExpVec(F32x16* xp) {
  const F32x16 x = *xp;
  const F32x16 lo = F32x16{} + -87.3f, hi = F32x16{} + 88.3f, zero = {};
  const F32x16 xc = x < lo ? lo : (x > hi ? hi : x);
  const F32x16 n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  F32x16 r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  F32x16 p = r * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const F32x16 y = (p * (r * r) + r) + 1.0f;
  const I32x16 e = (__builtin_convertvector(n, I32x16) + 127) << 23;
  const F32x16 v = y * reinterpret_cast<F32x16>(e);
  *xp = x < lo ? zero : v;
}

// Loads values [j, j + m) of x (m <= 16) into a vector, zero past m: one vector load when m = 16 (a
// copy of a variable length would go through memory and a library call).
inline void Load16(const float* x, int64_t m, F32x16* v) {
  if (m == 16) {
    std::memcpy(v, x, 64);
  } else {
    float t[16] = {};
    std::memcpy(t, x, static_cast<size_t>(m) * 4);
    std::memcpy(v, t, 64);
  }
}
inline void Store16(const F32x16* v, int64_t m, float* out) {
  if (m == 16) {
    std::memcpy(out, v, 64);
  } else {
    std::memcpy(out, v, static_cast<size_t>(m) * 4);
  }
}

// out[j] = exp(x[j] * scale - shift) for j < n (out may be x).
inline void ExpShiftedImpl(const float* x, int64_t n, float scale, float shift, float* out) {
  for (int64_t j = 0; j < n; j += 16) {
    const int64_t m = std::min<int64_t>(16, n - j);
    F32x16 v;
    Load16(x + j, m, &v);
    v = v * scale - shift;
    ExpVec(&v);
    Store16(&v, m, out + j);
  }
}

// out[i] = cap * tanh(x[i] * (1 / cap)), tanh of z as Cephes' tanhf: z + z^3 P(z^2) for |z| < 0.625,
// else sign(z) (1 - 2 / (exp(2|z|) + 1)) (exp's clamp at 88.3 gives exactly 1 for large |z|).
inline void SoftCapImpl(const float* x, int64_t n, float cap, float* out) {
  const float inv = 1.0f / cap;
  for (int64_t j = 0; j < n; j += 16) {
    const int64_t m = std::min<int64_t>(16, n - j);
    F32x16 z;
    Load16(x + j, m, &z);
    z = z * inv;
    const F32x16 a = z < 0.0f ? -z : z;
    F32x16 e = a * 2.0f;
    ExpVec(&e);
    const F32x16 large = 1.0f - 2.0f / (e + 1.0f);
    const F32x16 s = a * a;
    F32x16 p = s * -5.70498872745e-3f + 2.06390887954e-2f;
    p = p * s - 5.37397155531e-2f;
    p = p * s + 1.33314422036e-1f;
    p = p * s - 3.33332819422e-1f;
    const F32x16 small = p * s * a + a;
    F32x16 t = a < 0.625f ? small : large;
    t = z < 0.0f ? -t : t;
    const F32x16 v = t * cap;
    Store16(&v, m, out + j);
  }
}

// out[i] = gate[i] / (1 + exp(-2u)) * up[i], u = sqrt(2 / pi) * gate[i] * (1 + 0.044715 gate[i]^2).
inline void GeGluTanhImpl(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t j = 0; j < n; j += 16) {
    const int64_t m = std::min<int64_t>(16, n - j);
    F32x16 x, u;
    Load16(gate + j, m, &x);
    Load16(up + j, m, &u);
    F32x16 e = (x * 0.79788456080286535588f) * (1.0f + (x * x) * 0.044715f) * -2.0f;
    ExpVec(&e);
    const F32x16 v = x / (1.0f + e) * u;
    Store16(&v, m, out + j);
  }
}
