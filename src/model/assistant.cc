#include "model/assistant.h"

#include <cmath>
#include <cstring>

#include "model/attention.h"
#include "model/ops.h"
#include "util/error.h"

namespace g4 {

struct AssistantRunner::Scratch {
  std::vector<float> xh;    // [n][2 * n_embd_target]  target embedding, then hidden
  std::vector<float> x;     // [n][n_embd]
  std::vector<float> xn;    // [n][n_embd]
  std::vector<float> q;     // [n][n_head * head_dim]
  std::vector<float> att;   // [n][n_head * head_dim]
  std::vector<float> o;     // [n][n_embd]
  std::vector<float> gate;  // [n][n_ff]
  std::vector<float> up;    // [n][n_ff]
  std::vector<float> rope;  // [n][n_rot]
};

AssistantRunner::AssistantRunner(const Model& assistant, const Model& target, Context& target_ctx)
    : assistant_(assistant), target_(target), ctx_(target_ctx), s_(std::make_shared<Scratch>()) {
  const ModelConfig& a = assistant.config();
  const ModelConfig& t = target.config();
  const std::string where = assistant.path() + ": ";
  if (a.arch != Arch::kGemma4Assistant) {
    Fail("%sarchitecture %s is not a Gemma 4 assistant (gemma4-assistant)", where.c_str(), ArchName(a.arch));
  }
  if (t.arch != Arch::kGemma4) Fail("%sthe target %s is not a Gemma 4 model", where.c_str(), target.path().c_str());
  if (a.n_embd_backbone != t.n_embd) {
    Fail("%sthe assistant drafts for a model of hidden size %lld, but %s has %lld", where.c_str(),
         (long long)a.n_embd_backbone, target.path().c_str(), (long long)t.n_embd);
  }
  if (a.n_vocab != t.n_vocab) {
    Fail("%sthe assistant's vocabulary has %lld tokens, the target's %lld", where.c_str(), (long long)a.n_vocab,
         (long long)t.n_vocab);
  }
  for (int i = 0; i < a.n_layer; ++i) {
    const LayerConfig& L = a.layers[i];
    const int src = t.LastLayerOfType(L.sliding);
    if (src < 0) {
      Fail("%sassistant layer %d reads the target's last %s layer, but the target has none", where.c_str(), i,
           L.sliding ? "sliding" : "full");
    }
    const LayerConfig& T = t.layers[src];
    if (T.n_head_kv != L.n_head_kv || T.head_dim != L.head_dim) {
      Fail("%sassistant layer %d expects %d KV heads of size %d, the target's layer %d has %d of size %d", where.c_str(),
           i, L.n_head_kv, L.head_dim, src, T.n_head_kv, T.head_dim);
    }
    if (L.sliding && a.sliding_window != t.sliding_window) {
      Fail("%sassistant sliding window %d differs from the target's %d", where.c_str(), a.sliding_window,
           t.sliding_window);
    }
    kv_layer_.push_back(src);
    auto& f = inv_freq_[L.sliding ? 0 : 1];
    if (f.empty()) {
      f.resize(static_cast<size_t>(L.rope.n_rot / 2));
      for (int k = 0; k < L.rope.n_rot / 2; ++k) {
        double inv = L.rope.scale * std::pow(L.rope.base, -2.0 * k / L.rope.n_rot);
        if (L.rope.freq_factors && assistant.weights().rope_freqs) inv /= assistant.weights().rope_freqs.data[k];
        f[static_cast<size_t>(k)] = inv;
      }
    }
  }
}

void AssistantRunner::Step(int n, const int32_t* tokens, const float* hidden, const int32_t* seq, const int64_t* pos,
                           float* logits, float* next_hidden) {
  const ModelConfig& c = assistant_.config();
  const ModelWeights& w = assistant_.weights();
  const ModelConfig& tc = target_.config();
  const ModelWeights& tw = target_.weights();
  ThreadPool& pool = ctx_.pool();
  const kernels::Math math = ctx_.options().math;
  const int64_t E = c.n_embd, B = tc.n_embd;
  const float eps = c.rms_eps;
  Scratch& s = *s_;
  int64_t max_q = 0, max_ff = 0, max_rot = 0;
  for (const auto& L : c.layers) {
    max_q = std::max<int64_t>(max_q, int64_t{L.n_head} * L.head_dim);
    max_ff = std::max(max_ff, L.n_ff);
    max_rot = std::max<int64_t>(max_rot, L.rope.n_rot);
  }
  const size_t un = static_cast<size_t>(n);
  s.xh.resize(un * 2 * B);
  s.x.resize(un * E);
  s.xn.resize(un * E);
  s.o.resize(un * E);
  s.q.resize(un * max_q);
  s.att.resize(un * max_q);
  s.gate.resize(un * max_ff);
  s.up.resize(un * max_ff);
  s.rope.resize(un * max_rot);

  // The target's scaled token embedding, then the hidden state.
  for (int i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= tc.n_vocab) Fail("draft token %d is out of range", tokens[i]);
    float* xi = s.xh.data() + static_cast<size_t>(i) * 2 * B;
    target_.EmbeddingRow(tw.token_embd, tokens[i], xi);
    for (int64_t d = 0; d < B; ++d) xi[d] *= tc.embed_scale;
    std::memcpy(xi + B, hidden + static_cast<size_t>(i) * B, static_cast<size_t>(B) * 4);
  }
  kernels::MatMul(w.nextn_pre_proj, s.xh.data(), 2 * B, n, s.x.data(), E, math, pool);

  for (int il = 0; il < c.n_layer; ++il) {
    const LayerConfig& L = c.layers[il];
    const LayerWeights& lw = w.layers[il];
    const int hd = L.head_dim, n_rot = L.rope.n_rot;
    const int64_t q_dim = int64_t{L.n_head} * hd;
    const auto& inv = inv_freq_[L.sliding ? 0 : 1];
    for (int i = 0; i < n; ++i) {
      ops::RmsNorm(s.x.data() + i * E, lw.attn_norm.data, eps, E, s.xn.data() + i * E);
      ops::RopeAngles(pos[i], inv.data(), n_rot, s.rope.data() + static_cast<size_t>(i) * n_rot);
    }
    kernels::MatMul(lw.wq, s.xn.data(), E, n, s.q.data(), q_dim, math, pool);
    for (int i = 0; i < n; ++i) {
      for (int h = 0; h < L.n_head; ++h) {
        float* qh = s.q.data() + i * q_dim + int64_t{h} * hd;
        ops::RmsNorm(qh, lw.q_norm.data, eps, hd, qh);
        ops::Rope(qh, s.rope.data() + static_cast<size_t>(i) * n_rot, n_rot);
      }
    }
    AttentionArgs aa;
    aa.cache = &ctx_.kv();
    aa.kv_layer = kv_layer_[static_cast<size_t>(il)];
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
    aa.out = s.att.data();
    aa.ldo = q_dim;
    Attention(aa, pool);
    kernels::MatMul(lw.wo, s.att.data(), q_dim, n, s.o.data(), E, math, pool);
    for (int i = 0; i < n; ++i) {
      float* oi = s.o.data() + i * E;
      float* xi = s.x.data() + i * E;
      ops::RmsNorm(oi, lw.post_attn_norm.data, eps, E, oi);
      for (int64_t d = 0; d < E; ++d) xi[d] += oi[d];
      ops::RmsNorm(xi, lw.ffn_norm.data, eps, E, s.xn.data() + i * E);
    }
    const int64_t F = L.n_ff;
    const kernels::MatMulPart gate_up[2] = {{lw.ffn_gate, s.gate.data(), F}, {lw.ffn_up, s.up.data(), F}};
    kernels::MatMulMany(gate_up, 2, s.xn.data(), E, n, math, pool);
    for (int i = 0; i < n; ++i) ops::GeGlu(s.gate.data() + i * F, s.up.data() + i * F, F, s.gate.data() + i * F);
    kernels::MatMul(lw.ffn_down, s.gate.data(), F, n, s.o.data(), E, math, pool);
    for (int i = 0; i < n; ++i) {
      float* oi = s.o.data() + i * E;
      float* xi = s.x.data() + i * E;
      ops::RmsNorm(oi, lw.post_ffw_norm.data, eps, E, oi);
      for (int64_t d = 0; d < E; ++d) xi[d] = (xi[d] + oi[d]) * lw.out_scale;
    }
  }
  for (int i = 0; i < n; ++i) ops::RmsNorm(s.x.data() + i * E, w.output_norm.data, eps, E, s.xn.data() + i * E);
  kernels::MatMul(w.output, s.xn.data(), E, n, logits, c.n_vocab, math, pool);
  kernels::MatMul(w.nextn_post_proj, s.xn.data(), E, n, next_hidden, B, math, pool);
}

}  // namespace g4
