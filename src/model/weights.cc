#include "model/weights.h"

#include <set>

#include "util/error.h"

namespace g4 {

namespace {

class Binder {
 public:
  Binder(const gguf::File& f, ModelWeights& w) : f_(f), w_(w) {}

  const gguf::TensorInfo* Find(const std::string& name) { return f_.FindTensor(name); }

  // A 2-D (or 3-D, flattened over its outer dims) matrix of shape [rows][cols] in ggml order {cols, rows...}.
  Matrix Mat(const std::string& name, std::initializer_list<int64_t> ne, bool required = true) {
    const gguf::TensorInfo* t = f_.FindTensor(name);
    if (!t) {
      if (required) Fail("%smissing required tensor '%s'", f_.Where().c_str(), name.c_str());
      return {};
    }
    f_.RequireTensor(name, ne);
    CheckType(*t);
    Count(*t);
    Matrix m;
    m.type = t->type;
    m.cols = t->ne[0];
    m.rows = t->ne[1] * t->ne[2] * t->ne[3];
    m.data = t->data;
    return m;
  }

  Vec V(const std::string& name, int64_t n, bool required = true) {
    const gguf::TensorInfo* t = f_.FindTensor(name);
    if (!t) {
      if (required) Fail("%smissing required tensor '%s'", f_.Where().c_str(), name.c_str());
      return {};
    }
    f_.RequireTensor(name, {n});
    if (t->type != GgmlType::F32) {
      Fail("%stensor '%s' has type %s; 1-D tensors must be f32", f_.Where().c_str(), name.c_str(), TypeName(t->type));
    }
    if (reinterpret_cast<uintptr_t>(t->data) % alignof(float) != 0) {
      Fail("%stensor '%s' data is not 4-byte aligned", f_.Where().c_str(), name.c_str());
    }
    Count(*t);
    return {reinterpret_cast<const float*>(t->data), n};
  }

  uint64_t bytes() const { return bytes_; }

 private:
  void CheckType(const gguf::TensorInfo& t) {
    if (!Traits(t.type).supported) {
      Fail("%stensor '%s' has type %s, which gemma4.cpp does not support (supported: f32, f16, bf16, q4_0, q4_1, "
           "q5_0, q5_1, q8_0, q4_K, q5_K, q6_K)",
           f_.Where().c_str(), t.name.c_str(), TypeName(t.type));
    }
  }
  void Count(const gguf::TensorInfo& t) {
    if (counted_.insert(t.name).second) bytes_ += t.nbytes;
  }
  const gguf::File& f_;
  ModelWeights& w_;
  std::set<std::string> counted_;
  uint64_t bytes_ = 0;
};

std::string Blk(int i, const char* name) { return "blk." + std::to_string(i) + "." + name; }

}  // namespace

ModelWeights BindWeights(const gguf::File& f, ModelConfig& cfg) {
  ModelWeights w;
  Binder b(f, w);
  const int64_t E = cfg.n_embd;

  const gguf::TensorInfo* te = b.Find("token_embd.weight");
  if (!te) Fail("%smissing required tensor 'token_embd.weight'", f.Where().c_str());
  if (te->n_dims != 2 || te->ne[0] != E) {
    Fail("%stensor 'token_embd.weight' has shape %s, expected [%lld, n_vocab]", f.Where().c_str(),
         te->ShapeString().c_str(), (long long)E);
  }
  cfg.n_vocab = te->ne[1];
  const int64_t V = cfg.n_vocab;
  w.token_embd = b.Mat("token_embd.weight", {E, V});
  w.output = b.Find("output.weight") ? b.Mat("output.weight", {E, V}) : w.token_embd;
  w.output_norm = b.V("output_norm.weight", E);

  if (cfg.arch != Arch::kGemma3) {
    // rope_freqs: [head_dim_full / 2], used by full-attention layers.
    for (const auto& L : cfg.layers) {
      if (!L.sliding && L.rope.freq_factors) {
        w.rope_freqs = b.V("rope_freqs.weight", L.head_dim / 2);
        break;
      }
    }
  }
  if (cfg.n_embd_per_layer > 0) {
    const int64_t P = cfg.n_embd_per_layer, PL = P * cfg.n_layer;
    w.ple_token_embd = b.Mat("per_layer_token_embd.weight", {PL, V});
    w.ple_model_proj = b.Mat("per_layer_model_proj.weight", {E, PL});
    w.ple_proj_norm = b.V("per_layer_proj_norm.weight", P);
  }
  if (cfg.arch == Arch::kGemma4Assistant) {
    const int64_t B = cfg.n_embd_backbone;
    w.nextn_pre_proj = b.Mat("nextn.pre_projection.weight", {2 * B, E});
    w.nextn_post_proj = b.Mat("nextn.post_projection.weight", {E, B});
  }

  w.layers.resize(static_cast<size_t>(cfg.n_layer));
  for (int i = 0; i < cfg.n_layer; ++i) {
    LayerConfig& L = cfg.layers[i];
    LayerWeights& l = w.layers[i];
    const int64_t hd = L.head_dim, q_dim = int64_t{L.n_head} * hd, kv_dim = int64_t{L.n_head_kv} * hd;
    l.attn_norm = b.V(Blk(i, "attn_norm.weight"), E);
    l.wq = b.Mat(Blk(i, "attn_q.weight"), {E, q_dim});
    l.wo = b.Mat(Blk(i, "attn_output.weight"), {q_dim, E});
    l.q_norm = b.V(Blk(i, "attn_q_norm.weight"), hd);
    if (L.has_kv) {
      l.wk = b.Mat(Blk(i, "attn_k.weight"), {E, kv_dim});
      l.k_norm = b.V(Blk(i, "attn_k_norm.weight"), hd);
      l.wv = b.Mat(Blk(i, "attn_v.weight"), {E, kv_dim}, /*required=*/cfg.arch == Arch::kGemma3);
      L.k_eq_v = l.wv.data == nullptr;
    }
    l.post_attn_norm = b.V(Blk(i, "post_attention_norm.weight"), E);
    l.ffn_norm = b.V(Blk(i, "ffn_norm.weight"), E);
    l.ffn_gate = b.Mat(Blk(i, "ffn_gate.weight"), {E, L.n_ff});
    l.ffn_up = b.Mat(Blk(i, "ffn_up.weight"), {E, L.n_ff});
    l.ffn_down = b.Mat(Blk(i, "ffn_down.weight"), {L.n_ff, E});
    l.post_ffw_norm = b.V(Blk(i, "post_ffw_norm.weight"), E);
    if (cfg.arch != Arch::kGemma3) {
      const bool required = cfg.arch == Arch::kGemma4Assistant;
      if (Vec s = b.V(Blk(i, "layer_output_scale.weight"), 1, required)) l.out_scale = s.data[0];
    }
    if (cfg.n_embd_per_layer > 0) {
      const int64_t P = cfg.n_embd_per_layer;
      l.ple_gate = b.Mat(Blk(i, "inp_gate.weight"), {E, P});
      l.ple_proj = b.Mat(Blk(i, "proj.weight"), {P, E});
      l.ple_post_norm = b.V(Blk(i, "post_norm.weight"), E);
    }
    if (cfg.n_expert > 0 && b.Find(Blk(i, "ffn_gate_inp.weight"))) {
      const int64_t X = cfg.n_expert, F = cfg.n_ff_exp;
      L.moe = true;
      l.moe_router = b.Mat(Blk(i, "ffn_gate_inp.weight"), {E, X});
      l.moe_router_scale = b.V(Blk(i, "ffn_gate_inp.scale"), E);
      l.pre_ffw_norm_2 = b.V(Blk(i, "pre_ffw_norm_2.weight"), E);
      l.post_ffw_norm_1 = b.V(Blk(i, "post_ffw_norm_1.weight"), E);
      l.post_ffw_norm_2 = b.V(Blk(i, "post_ffw_norm_2.weight"), E);
      if (b.Find(Blk(i, "ffn_gate_up_exps.weight"))) {
        l.exp_gate_up = b.Mat(Blk(i, "ffn_gate_up_exps.weight"), {E, 2 * F, X});
      } else {
        l.exp_gate = b.Mat(Blk(i, "ffn_gate_exps.weight"), {E, F, X});
        l.exp_up = b.Mat(Blk(i, "ffn_up_exps.weight"), {E, F, X});
      }
      l.exp_down = b.Mat(Blk(i, "ffn_down_exps.weight"), {F, E, X});
      l.exp_down_scale = b.V(Blk(i, "ffn_down_exps.scale"), X, /*required=*/false);
    }
  }
  w.total_bytes = b.bytes();
  return w;
}

uint64_t BytesReadPerToken(const ModelWeights& w, const ModelConfig& cfg) {
  double bytes = 0;
  auto mat = [&](const Matrix& m, double fraction = 1.0) {
    if (m.data != nullptr) bytes += fraction * static_cast<double>(m.rows) * static_cast<double>(m.row_bytes());
  };
  auto vec = [&](const Vec& v) { bytes += 4.0 * static_cast<double>(v.n); };
  auto row = [&](const Matrix& m) {
    if (m.data != nullptr) bytes += static_cast<double>(m.row_bytes());
  };
  row(w.token_embd);
  row(w.ple_token_embd);
  mat(w.output);
  vec(w.output_norm);
  mat(w.ple_model_proj);
  vec(w.ple_proj_norm);
  const double experts = cfg.n_expert > 0 ? static_cast<double>(cfg.n_expert_used) / cfg.n_expert : 1.0;
  for (const LayerWeights& l : w.layers) {
    for (const Matrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_gate, &l.ffn_up, &l.ffn_down, &l.ple_gate, &l.ple_proj,
                            &l.moe_router}) {
      mat(*m);
    }
    for (const Matrix* m : {&l.exp_gate_up, &l.exp_gate, &l.exp_up, &l.exp_down}) mat(*m, experts);
    for (const Vec* v : {&l.attn_norm, &l.q_norm, &l.k_norm, &l.post_attn_norm, &l.ffn_norm, &l.post_ffw_norm,
                         &l.ple_post_norm, &l.moe_router_scale, &l.pre_ffw_norm_2, &l.post_ffw_norm_1,
                         &l.post_ffw_norm_2}) {
      vec(*v);
    }
  }
  return static_cast<uint64_t>(bytes);
}

}  // namespace g4
