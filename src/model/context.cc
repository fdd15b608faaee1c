// The Gemma forward pass. One call to Forward() runs a micro-batch of tokens (possibly of several
// sequences) through every layer:
//
//   x = embed(tokens) * sqrt(n_embd)                    (soft tokens of images/audio: as given)
//   for each layer:
//     a = attention(rms_norm(x) * attn_norm)            q/k norms, RoPE, K/V appended to the cache
//     x = x + rms_norm(o_proj(a)) * post_attn_norm
//     f = down(gelu(gate(h)) * up(h)), h = rms_norm(x) * ffn_norm    (+ experts on MoE layers)
//     x = x + rms_norm(f) * post_ffw_norm
//     x = x + per-layer-embedding branch                (E2B/E4B)
//     x = x * layer_scalar                              (Gemma 4)
//   logits = softcap(rms_norm(x) * output_norm @ E^T)
#include "model/context.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "model/attention.h"
#include "model/ops.h"
#include "util/error.h"
#include "util/fp16.h"

namespace g4 {

using kernels::MatMul;

// Activations of one micro-batch. Row-major, one row per token.
struct Context::Scratch {
  std::vector<float> x;        // [n][n_embd] residual stream
  std::vector<float> xn;       // [n][n_embd] normed input of a sublayer
  std::vector<float> q;        // [n][n_head * head_dim]
  std::vector<float> k;        // [n][n_head_kv * head_dim]
  std::vector<float> v;        // [n][n_head_kv * head_dim]
  std::vector<float> att;      // [n][n_head * head_dim]
  std::vector<float> o;        // [n][n_embd]
  std::vector<float> gate;     // [n][n_ff]
  std::vector<float> up;       // [n][n_ff]
  std::vector<float> ple;      // [n][n_layer * n_embd_per_layer]
  std::vector<float> ple_tmp;  // [n][n_layer * n_embd_per_layer]
  std::vector<float> ple_g;    // [n][n_embd_per_layer]
  std::vector<float> rope[2];  // [n][n_rot] (cos, sin) pairs for sliding / full layers
  std::vector<int64_t> group_lo, group_hi;  // [n]
  std::vector<float> moe_x;    // [n][n_embd] input of the experts
  std::vector<float> moe_acc;  // [n][n_embd] weighted sum of expert outputs
  std::vector<float> router;   // [n][n_expert]
  std::vector<float> ex_in;    // [m][n_embd]  rows routed to one expert
  std::vector<float> ex_gate, ex_up;  // [m][n_ff_exp]
  std::vector<float> ex_out;   // [m][n_embd]
  std::vector<float> hn;       // [n_out][n_embd] final-normed hidden of output tokens
  std::vector<int32_t> embd_row;  // [n] index into batch.embd for embedding inputs
};

namespace {
constexpr int64_t kGeGluSlice = 2048;  // values per task of the feed-forward's GeGLU (a multiple of 16)

template <typename T>
void Size(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}
}  // namespace

Context::Context(const Model& model, const ContextOptions& opt)
    : model_(model),
      opt_([&] {
        ContextOptions o = opt;
        if (o.n_batch <= 0) Fail("batch size must be positive (got %lld)", (long long)o.n_batch);
        // Every token of one micro-batch must fit in the sliding ring at once.
        o.kv.slack = std::max(o.kv.slack, o.n_batch);
        return o;
      }()),
      pool_(opt.n_threads),
      kv_(model.config(), opt_.kv),
      s_(std::make_unique<Scratch>()) {
  const ModelConfig& c = model.config();
  for (const LayerConfig& L : c.layers) {
    auto& f = inv_freq_[L.sliding ? 0 : 1];
    if (!f.empty()) continue;
    f.resize(static_cast<size_t>(L.rope.n_rot / 2));
    for (int i = 0; i < L.rope.n_rot / 2; ++i) {
      double inv = L.rope.scale * std::pow(L.rope.base, -2.0 * i / L.rope.n_rot);
      if (L.rope.freq_factors && model.weights().rope_freqs) inv /= model.weights().rope_freqs.data[i];
      f[static_cast<size_t>(i)] = inv;
    }
  }
}

Context::~Context() = default;

const float* Context::Logits(int k) const {
  G4_CHECK(k >= 0 && k < n_out_);
  return logits_.data() + static_cast<size_t>(k) * static_cast<size_t>(config().n_vocab);
}

const float* Context::Hidden(int k) const {
  G4_CHECK(opt_.keep_hidden && k >= 0 && k < n_out_);
  return hidden_.data() + static_cast<size_t>(k) * static_cast<size_t>(config().n_embd);
}

void Context::Validate(const Batch& b) const {
  const ModelConfig& c = config();
  const size_t n = b.token.size();
  if (b.seq.size() != n || b.pos.size() != n || b.output.size() != n || b.group.size() != n) {
    Fail("batch: token, seq, pos, output and group must have the same length");
  }
  size_t n_embd_inputs = 0;
  std::map<int, int64_t> next;  // seq -> next expected position
  std::map<int32_t, std::pair<size_t, size_t>> groups;  // group -> [first, last] index
  for (size_t i = 0; i < n; ++i) {
    if (b.token[i] == -1) {
      ++n_embd_inputs;
    } else if (b.token[i] < 0 || b.token[i] >= c.n_vocab) {
      Fail("batch token %zu: id %d is out of range (vocabulary of %lld)", i, b.token[i], (long long)c.n_vocab);
    }
    const int s = b.seq[i];
    if (s < 0 || s >= kv_.n_seq()) Fail("batch token %zu: sequence %d is out of range (%d slots)", i, s, kv_.n_seq());
    auto it = next.find(s);
    const int64_t expect = it == next.end() ? kv_.SeqLen(s) : it->second;
    if (b.pos[i] != expect) {
      Fail("batch token %zu: position %lld does not continue sequence %d (expected %lld)", i, (long long)b.pos[i], s,
           (long long)expect);
    }
    next[s] = expect + 1;
    if (b.group[i] < 0) Fail("batch token %zu: negative group %d", i, b.group[i]);
    if (b.group[i] > 0) {
      auto g = groups.find(b.group[i]);
      if (g == groups.end()) {
        groups[b.group[i]] = {i, i};
      } else {
        if (g->second.second != i - 1 || b.seq[i - 1] != s) {
          Fail("batch token %zu: the tokens of group %d must be contiguous and of one sequence", i, b.group[i]);
        }
        g->second.second = i;
      }
    }
  }
  if (b.embd.size() != n_embd_inputs * static_cast<size_t>(c.n_embd)) {
    Fail("batch: %zu embedding inputs need %zu values, got %zu", n_embd_inputs, n_embd_inputs * c.n_embd, b.embd.size());
  }
  for (const auto& [s, end] : next) {
    if (end > kv_.options().n_ctx) {
      Fail("sequence %d would hold %lld tokens, more than its context of %lld", s, (long long)end,
           (long long)kv_.options().n_ctx);
    }
  }
  for (const auto& [g, range] : groups) {
    if (static_cast<int64_t>(range.second - range.first + 1) > opt_.n_batch) {
      Fail("batch: group %d has %zu tokens, more than the batch size %lld (an image is processed in one step)", g,
           range.second - range.first + 1, (long long)opt_.n_batch);
    }
  }
}

void Context::Decode(const Batch& b) {
  Validate(b);
  const ModelConfig& c = config();
  n_out_ = b.n_outputs();
  logits_.assign(static_cast<size_t>(n_out_) * static_cast<size_t>(c.n_vocab), 0.0f);
  if (opt_.keep_hidden) hidden_.assign(static_cast<size_t>(n_out_) * static_cast<size_t>(c.n_embd), 0.0f);
  // Embedding-input rows, by batch index.
  s_->embd_row.assign(b.token.size(), -1);
  int32_t next_row = 0;
  for (size_t i = 0; i < b.token.size(); ++i) {
    if (b.token[i] == -1) s_->embd_row[i] = next_row++;
  }
  // Split into micro-batches of at most n_batch tokens, never inside a group.
  int begin = 0;
  const int n = b.size();
  while (begin < n) {
    int end = static_cast<int>(std::min<int64_t>(n, begin + opt_.n_batch));
    while (end < n && end > begin && b.group[end] != 0 && b.group[end] == b.group[end - 1]) --end;
    G4_CHECK(end > begin);
    Forward(b, begin, end);
    begin = end;
  }
}

void Context::Forward(const Batch& b, int begin, int end) {
  const ModelConfig& c = config();
  const ModelWeights& w = model_.weights();
  Scratch& s = *s_;
  const kernels::Math math = opt_.math;
  const int n = end - begin;
  const int64_t E = c.n_embd;
  const float eps = c.rms_eps;

  int64_t max_q = 0, max_kv = 0, max_ff = 0;
  for (const auto& L : c.layers) {
    max_q = std::max<int64_t>(max_q, int64_t{L.n_head} * L.head_dim);
    max_kv = std::max<int64_t>(max_kv, int64_t{L.n_head_kv} * L.head_dim);
    max_ff = std::max(max_ff, L.n_ff);
  }
  const size_t un = static_cast<size_t>(n);
  Size(s.x, un * E);
  Size(s.xn, un * E);
  Size(s.o, un * E);
  Size(s.q, un * max_q);
  Size(s.att, un * max_q);
  Size(s.k, un * max_kv);
  Size(s.v, un * max_kv);
  Size(s.gate, un * max_ff);
  Size(s.up, un * max_ff);
  s.group_lo.assign(un, 1);
  s.group_hi.assign(un, 0);

  const int32_t* seq = b.seq.data() + begin;
  const int64_t* pos = b.pos.data() + begin;

  // Groups (bidirectional spans) as position ranges.
  for (int i = 0; i < n;) {
    int j = i;
    if (b.group[begin + i] != 0) {
      while (j + 1 < n && b.group[begin + j + 1] == b.group[begin + i]) ++j;
      for (int t = i; t <= j; ++t) {
        s.group_lo[t] = pos[i];
        s.group_hi[t] = pos[j];
      }
    }
    i = j + 1;
  }

  // Token embeddings, scaled by sqrt(n_embd); embedding inputs are used unscaled.
  pool_.ParallelFor(n, 4, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      float* xi = s.x.data() + i * E;
      const int32_t tok = b.token[begin + i];
      if (tok >= 0) {
        model_.EmbeddingRow(w.token_embd, tok, xi);
        for (int64_t d = 0; d < E; ++d) xi[d] *= c.embed_scale;
      } else {
        const float* src = b.embd.data() + static_cast<size_t>(s.embd_row[begin + i]) * E;
        std::memcpy(xi, src, static_cast<size_t>(E) * 4);
      }
    }
  });

  // Per-layer embeddings (E2B/E4B): ple[i][l] = (norm(proj(x_i)[l] / sqrt(E)) + embd_l(tok) * sqrt(P)) / sqrt(2).
  const int64_t P = c.n_embd_per_layer, PL = P * c.n_layer;
  if (P > 0) {
    Size(s.ple, un * PL);
    Size(s.ple_tmp, un * PL);
    Size(s.ple_g, un * P);
    MatMul(w.ple_model_proj, s.x.data(), E, n, s.ple.data(), PL, math, pool_);
    const float proj_scale = 1.0f / std::sqrt(static_cast<float>(E));
    const float tok_scale = RoundToBf16(std::sqrt(static_cast<float>(P)));
    const float in_scale = 1.0f / std::sqrt(2.0f);
    pool_.ParallelFor(n, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        float* pi = s.ple.data() + i * PL;
        float* ti = s.ple_tmp.data() + i * PL;
        const int32_t tok = b.token[begin + i];
        model_.EmbeddingRow(w.ple_token_embd, tok >= 0 ? tok : 0, ti);
        for (int l = 0; l < c.n_layer; ++l) {
          float* pl = pi + l * P;
          for (int64_t d = 0; d < P; ++d) pl[d] *= proj_scale;
          ops::RmsNorm(pl, w.ple_proj_norm.data, eps, P, pl);
          for (int64_t d = 0; d < P; ++d) pl[d] = (pl[d] + ti[l * P + d] * tok_scale) * in_scale;
        }
      }
    });
  }

  // Make room in the cache, then the RoPE angles of every token for both layer kinds.
  for (int i = 0; i < n; ++i) kv_.Extend(seq[i], pos[i] + 1);
  for (int kind = 0; kind < 2; ++kind) {
    const int n_rot = static_cast<int>(inv_freq_[kind].size()) * 2;
    if (n_rot == 0) continue;
    Size(s.rope[kind], un * n_rot);
    for (int i = 0; i < n; ++i) {
      ops::RopeAngles(pos[i], inv_freq_[kind].data(), n_rot, s.rope[kind].data() + static_cast<size_t>(i) * n_rot);
    }
  }

  for (int il = 0; il < c.n_layer; ++il) {
    const LayerConfig& L = c.layers[il];
    const LayerWeights& lw = w.layers[il];
    const int hd = L.head_dim;
    const int64_t q_dim = int64_t{L.n_head} * hd, kv_dim = int64_t{L.n_head_kv} * hd;
    const int kind = L.sliding ? 0 : 1;
    const int n_rot = L.rope.n_rot;
    const float* rope = s.rope[kind].data();

    // ---- attention ----
    pool_.ParallelFor(n, 4, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) ops::RmsNorm(s.x.data() + i * E, lw.attn_norm.data, eps, E, s.xn.data() + i * E);
    });
    {
      // Q, K and V in one job (one start and finish of the threads instead of three).
      kernels::MatMulPart qkv[3] = {{lw.wq, s.q.data(), q_dim}};
      int n_qkv = 1;
      if (L.has_kv) {
        qkv[n_qkv++] = {lw.wk, s.k.data(), kv_dim};
        if (!L.k_eq_v) qkv[n_qkv++] = {lw.wv, s.v.data(), kv_dim};
      }
      kernels::MatMulMany(qkv, n_qkv, s.xn.data(), E, n, math, pool_);
    }
    pool_.ParallelFor(n, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const float* cs = rope + i * n_rot;
        for (int h = 0; h < L.n_head; ++h) {
          float* qh = s.q.data() + i * q_dim + int64_t{h} * hd;
          ops::RmsNorm(qh, lw.q_norm.data, eps, hd, qh);
          ops::Rope(qh, cs, n_rot);
        }
        if (!L.has_kv) continue;
        for (int h = 0; h < L.n_head_kv; ++h) {
          float* kh = s.k.data() + i * kv_dim + int64_t{h} * hd;
          float* vh = s.v.data() + i * kv_dim + int64_t{h} * hd;
          if (L.k_eq_v) std::memcpy(vh, kh, static_cast<size_t>(hd) * 4);  // V is the raw K projection
          ops::RmsNorm(kh, lw.k_norm.data, eps, hd, kh);
          ops::Rope(kh, cs, n_rot);
          if (c.v_norm) ops::RmsNorm(vh, nullptr, eps, hd, vh);
          StoreKvRow(kv_.options().type_k, kh, hd, kv_.K(il, seq[i], pos[i], h));
          StoreKvRow(kv_.options().type_v, vh, hd, kv_.V(il, seq[i], pos[i], h));
        }
      }
    });
    AttentionArgs aa;
    aa.cache = &kv_;
    aa.kv_layer = L.kv_source;
    aa.n_head = L.n_head;
    aa.n_head_kv = L.n_head_kv;
    aa.head_dim = hd;
    aa.scale = c.attn_scale;
    aa.window = L.sliding ? c.sliding_window : 0;
    aa.n = n;
    aa.q = s.q.data();
    aa.ldq = q_dim;
    aa.seq = seq;
    aa.pos = pos;
    aa.group_lo = s.group_lo.data();
    aa.group_hi = s.group_hi.data();
    aa.out = s.att.data();
    aa.ldo = q_dim;
    Attention(aa, pool_);
    MatMul(lw.wo, s.att.data(), q_dim, n, s.o.data(), E, math, pool_);
    pool_.ParallelFor(n, 4, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        float* oi = s.o.data() + i * E;
        float* xi = s.x.data() + i * E;
        ops::RmsNorm(oi, lw.post_attn_norm.data, eps, E, oi);
        for (int64_t d = 0; d < E; ++d) xi[d] += oi[d];
        ops::RmsNorm(xi, lw.ffn_norm.data, eps, E, s.xn.data() + i * E);
      }
    });

    // ---- feed-forward (GeGLU) ----
    const int64_t F = L.n_ff;
    const kernels::MatMulPart gate_up[2] = {{lw.ffn_gate, s.gate.data(), F}, {lw.ffn_up, s.up.data(), F}};
    kernels::MatMulMany(gate_up, 2, s.xn.data(), E, n, math, pool_);
    // In slices of kGeGluSlice values, so that one token's GeGLU (generation) is split too.
    const int64_t slices = (F + kGeGluSlice - 1) / kGeGluSlice;
    pool_.ParallelFor(n * slices, 1, [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j) {
        const int64_t at = j / slices * F + j % slices * kGeGluSlice;
        ops::GeGlu(s.gate.data() + at, s.up.data() + at, std::min(kGeGluSlice, F - j % slices * kGeGluSlice),
                   s.gate.data() + at);
      }
    });
    MatMul(lw.ffn_down, s.gate.data(), F, n, s.o.data(), E, math, pool_);
    if (L.moe) {
      // Dense branch gets its own post-norm, the expert branch its own; their sum is post-normed below.
      pool_.ParallelFor(n, 4, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) ops::RmsNorm(s.o.data() + i * E, lw.post_ffw_norm_1.data, eps, E, s.o.data() + i * E);
      });
      Moe(lw, n);
    }
    pool_.ParallelFor(n, 4, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        float* oi = s.o.data() + i * E;
        float* xi = s.x.data() + i * E;
        ops::RmsNorm(oi, lw.post_ffw_norm.data, eps, E, oi);
        for (int64_t d = 0; d < E; ++d) xi[d] += oi[d];
      }
    });

    // ---- per-layer embedding branch (E2B/E4B) ----
    if (P > 0) {
      MatMul(lw.ple_gate, s.x.data(), E, n, s.ple_g.data(), P, math, pool_);
      pool_.ParallelFor(n, 4, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          float* gi = s.ple_g.data() + i * P;
          const float* pi = s.ple.data() + i * PL + int64_t{il} * P;
          ops::GeGlu(gi, pi, P, gi);
        }
      });
      MatMul(lw.ple_proj, s.ple_g.data(), P, n, s.o.data(), E, math, pool_);
      pool_.ParallelFor(n, 4, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          float* oi = s.o.data() + i * E;
          float* xi = s.x.data() + i * E;
          ops::RmsNorm(oi, lw.ple_post_norm.data, eps, E, oi);
          for (int64_t d = 0; d < E; ++d) xi[d] += oi[d];
        }
      });
    }
    if (lw.out_scale != 1.0f) {
      for (int64_t k = 0; k < int64_t{n} * E; ++k) s.x[static_cast<size_t>(k)] *= lw.out_scale;
    }
  }

  // ---- output: final norm and LM head for the tokens that want logits ----
  int out_before = 0;
  for (int i = 0; i < begin; ++i) out_before += b.output[i];
  std::vector<int> rows;
  for (int i = 0; i < n; ++i) {
    if (b.output[begin + i]) rows.push_back(i);
  }
  if (rows.empty()) return;
  Size(s.hn, rows.size() * E);
  for (size_t r = 0; r < rows.size(); ++r) {
    ops::RmsNorm(s.x.data() + rows[r] * E, w.output_norm.data, eps, E, s.hn.data() + r * E);
  }
  if (opt_.keep_hidden) {
    std::memcpy(hidden_.data() + static_cast<size_t>(out_before) * E, s.hn.data(), rows.size() * E * 4);
  }
  float* lg = logits_.data() + static_cast<size_t>(out_before) * c.n_vocab;
  MatMul(w.output, s.hn.data(), E, static_cast<int64_t>(rows.size()), lg, c.n_vocab, math, pool_);
  if (c.final_softcap > 0) {
    const int64_t total = static_cast<int64_t>(rows.size()) * c.n_vocab;
    pool_.ParallelFor(total, 4096, [&](int64_t a0, int64_t a1) { ops::SoftCap(lg + a0, a1 - a0, c.final_softcap); });
  }
}

// Mixture-of-experts branch (26B-A4B), beside the dense FFN:
//   router:  softmax(W_r (rms_norm(x) / sqrt(E) * router_scale)) -> top-k, weights renormalised
//   experts: down_e(gelu(gate_e(h)) * up_e(h)) * down_scale[e],   h = rms_norm(x) * pre_ffw_norm_2
//   s.o += rms_norm(sum_e w_e * expert_e) * post_ffw_norm_2
void Context::Moe(const LayerWeights& lw, int n) {
  const ModelConfig& c = config();
  Scratch& s = *s_;
  const int64_t E = c.n_embd, X = c.n_expert, F = c.n_ff_exp;
  const int K = c.n_expert_used;
  const size_t un = static_cast<size_t>(n);
  Size(s.moe_x, un * E);
  Size(s.router, un * X);
  s.moe_acc.assign(un * E, 0.0f);
  // Router input (raw residual) and expert input.
  pool_.ParallelFor(n, 4, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const float* xi = s.x.data() + i * E;
      float* ri = s.xn.data() + i * E;
      ops::RmsNorm(xi, nullptr, c.rms_eps, E, ri);
      const float inv = 1.0f / std::sqrt(static_cast<float>(E));
      for (int64_t d = 0; d < E; ++d) ri[d] *= inv * lw.moe_router_scale.data[d];
      ops::RmsNorm(xi, lw.pre_ffw_norm_2.data, c.rms_eps, E, s.moe_x.data() + i * E);
    }
  });
  MatMul(lw.moe_router, s.xn.data(), E, n, s.router.data(), X, opt_.math, pool_);
  // Top-k per token: (expert, weight).
  std::vector<std::vector<std::pair<int, float>>> routed(static_cast<size_t>(X));  // expert -> (token, weight)
  for (int i = 0; i < n; ++i) {
    float* lg = s.router.data() + static_cast<size_t>(i) * X;
    float mx = lg[0];
    for (int64_t e = 1; e < X; ++e) mx = std::max(mx, lg[e]);
    double sum = 0;
    for (int64_t e = 0; e < X; ++e) {
      lg[e] = std::exp(lg[e] - mx);
      sum += lg[e];
    }
    for (int64_t e = 0; e < X; ++e) lg[e] = static_cast<float>(lg[e] / sum);
    std::vector<int> idx(static_cast<size_t>(X));
    for (int64_t e = 0; e < X; ++e) idx[static_cast<size_t>(e)] = static_cast<int>(e);
    std::partial_sort(idx.begin(), idx.begin() + K, idx.end(), [&](int a, int b) {
      return lg[a] > lg[b] || (lg[a] == lg[b] && a < b);
    });
    float wsum = 0;
    for (int k = 0; k < K; ++k) wsum += lg[idx[k]];
    wsum = std::max(wsum, 6.103515625e-5f);
    for (int k = 0; k < K; ++k) routed[static_cast<size_t>(idx[k])].push_back({i, lg[idx[k]] / wsum});
  }
  for (int64_t e = 0; e < X; ++e) {
    const auto& toks = routed[static_cast<size_t>(e)];
    if (toks.empty()) continue;
    const int m = static_cast<int>(toks.size());
    const size_t um = static_cast<size_t>(m);
    Size(s.ex_in, um * E);
    Size(s.ex_gate, um * F);
    Size(s.ex_up, um * F);
    Size(s.ex_out, um * E);
    for (int r = 0; r < m; ++r) {
      std::memcpy(s.ex_in.data() + r * E, s.moe_x.data() + static_cast<size_t>(toks[r].first) * E, E * 4);
    }
    // Expert e's rows (RowRange keeps the packed layout when they start on a panel boundary).
    Matrix gate, up;
    if (lw.exp_gate_up.data) {
      gate = lw.exp_gate_up.RowRange(e * 2 * F, F);
      up = lw.exp_gate_up.RowRange(e * 2 * F + F, F);
    } else {
      gate = lw.exp_gate.RowRange(e * F, F);
      up = lw.exp_up.RowRange(e * F, F);
    }
    const Matrix down = lw.exp_down.RowRange(e * E, E);
    MatMul(gate, s.ex_in.data(), E, m, s.ex_gate.data(), F, opt_.math, pool_);
    MatMul(up, s.ex_in.data(), E, m, s.ex_up.data(), F, opt_.math, pool_);
    for (int r = 0; r < m; ++r) ops::GeGlu(s.ex_gate.data() + r * F, s.ex_up.data() + r * F, F, s.ex_gate.data() + r * F);
    MatMul(down, s.ex_gate.data(), F, m, s.ex_out.data(), E, opt_.math, pool_);
    const float dscale = lw.exp_down_scale ? lw.exp_down_scale.data[e] : 1.0f;
    for (int r = 0; r < m; ++r) {
      float* acc = s.moe_acc.data() + static_cast<size_t>(toks[r].first) * E;
      const float* out = s.ex_out.data() + r * E;
      const float wt = toks[r].second * dscale;
      for (int64_t d = 0; d < E; ++d) acc[d] += wt * out[d];
    }
  }
  pool_.ParallelFor(n, 4, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      float* acc = s.moe_acc.data() + i * E;
      ops::RmsNorm(acc, lw.post_ffw_norm_2.data, c.rms_eps, E, acc);
      float* oi = s.o.data() + i * E;
      for (int64_t d = 0; d < E; ++d) oi[d] += acc[d];
    }
  });
}

}  // namespace g4
