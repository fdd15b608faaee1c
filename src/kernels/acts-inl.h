// Per-ISA (include inside namespace g4::kernels::<isa> after decode-inl.h and the ISA's policy `V`,
// which supplies QuantizeBlockQ8_0, QuantizeBlockQ8_K and kSignedQ8): quantizes MatMul activations
// into a QuantActs (layout and exact semantics in ops.h; values identical on every ISA).

// std::fill without the risk of an out-of-line copy compiled for this ISA (see scratch.h).
template <typename T>
inline void Fill(T* begin, T* end, T value) {
  for (T* p = begin; p != end; ++p) *p = value;
}

// The zero level of the decoded weight levels (decode-inl.h) of a type: the bias is -offset * sum.
inline int ActOffset(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_0: return Tile<GgmlType::Q4_0>::kOffset;
    case GgmlType::Q5_0: return Tile<GgmlType::Q5_0>::kOffset;
    case GgmlType::Q8_0: return Tile<GgmlType::Q8_0>::kOffset;
    case GgmlType::Q6_K: return Tile<GgmlType::Q6_K>::kOffset;
    default: return 0;
  }
}

inline void QuantizeActsImpl(const float* x, int64_t ldx, int64_t t0, int64_t t1, QuantActs* a) {
  const int64_t cols = a->cols, ng = a->groups();
  for (int64_t t = t0; t < t1; ++t) {
    const float* xt = x + t * ldx;
    int8_t* q = a->q + t * a->q_stride;
    float* d = a->d + t * a->g_stride;
    int32_t* sum = a->sum + t * a->g_stride;
    if (IsKQuant(a->wtype)) {
      const int per_block = kQK_K / a->group;  // groups per super-block
      for (int64_t b = 0; b < cols / kQK_K; ++b) {
        float db;
        int32_t sum16[16];
        V::QuantizeBlockQ8_K(xt + b * kQK_K, q + b * kQK_K, &db, sum16);
        for (int j = 0; j < per_block; ++j) {
          d[b * per_block + j] = db;
          sum[b * per_block + j] = per_block == 16 ? sum16[j] : sum16[2 * j] + sum16[2 * j + 1];
        }
      }
    } else {
      for (int64_t b = 0; b < cols / kQK; ++b) V::QuantizeBlockQ8_0(xt + b * kQK, q + b * kQK, d + b, sum + b);
    }
    std::memset(q + cols, 0, static_cast<size_t>(a->q_stride - cols));
    for (int64_t g = ng; g < a->g_stride; ++g) {
      d[g] = 0;
      sum[g] = 0;
    }
  }
  FinishQuantActs(a, t0, t1, ActOffset(a->wtype));
}

