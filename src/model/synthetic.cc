#include "model/synthetic.h"

#include <cmath>
#include <cstring>

#include "formats/gguf.h"
#include "kernels/kernels.h"
#include "model/vocab_synth.h"
#include "util/error.h"
#include "util/rng.h"
#include "util/thread_pool.h"

namespace g4 {

const std::vector<Preset>& Presets() {
  static const std::vector<Preset> presets = [] {
    std::vector<Preset> v;
    Preset p;
    // --- tiny shapes for tests and the quick start ---
    p = {};
    p.name = "tiny";
    p.arch = "gemma4";
    p.description = "Gemma 4 12B layout in miniature: 6 layers (5 sliding : 1 full), K=V full layers";
    p.n_layer = 6, p.n_embd = 256, p.n_head = 4, p.n_head_kv_swa = 2, p.n_head_kv_full = 1;
    p.head_dim_swa = 64, p.head_dim_full = 128, p.n_ff = 512, p.window = 32, p.k_eq_v = true;
    p.n_vocab = 512, p.n_ctx = 8192, p.suppress_media_end = true;
    v.push_back(p);
    p.name = "tiny-e2b";
    p.description = "Gemma 4 E2B layout in miniature: per-layer embeddings, KV sharing, double-wide FFN";
    p.full_every = 3, p.k_eq_v = false, p.n_head_kv_swa = 1, p.n_shared_kv = 3, p.ple_dim = 64, p.n_ff = 256;
    p.n_ff_shared = 512, p.suppress_media_end = false;
    v.push_back(p);
    p = v[0];
    p.name = "tiny-moe";
    p.description = "Gemma 4 26B-A4B layout in miniature: 8 experts (top 2) beside the dense FFN";
    p.n_expert = 8, p.n_expert_used = 2, p.n_ff_exp = 256, p.n_ff = 256, p.suppress_media_end = false;
    v.push_back(p);
    p = v[0];
    p.name = "tiny-kv";
    p.description = "Memory-planner test shape: a 32K vocabulary (41 MB of F32 weights, mostly the tied LM head) and "
                    "wide full-attention layers (16 KB of F32 KV per token), cheap to run to thousands of tokens";
    p.n_layer = 4, p.full_every = 2, p.n_embd = 256, p.n_head = 4, p.n_head_kv_swa = 1, p.n_head_kv_full = 4;
    p.head_dim_swa = 128, p.head_dim_full = 256, p.n_ff = 256, p.window = 64, p.k_eq_v = false;
    p.n_vocab = 32768, p.n_ctx = 32768, p.suppress_media_end = false;
    v.push_back(p);
    p = v[0];
    p.name = "tiny-long";
    p.description = "Long-context test shape: the 12B layout in miniature with a 16-token window and a 64K context, "
                    "narrow enough to run tens of thousands of tokens one by one";
    p.n_embd = 128, p.n_head = 2, p.n_head_kv_swa = 1, p.n_ff = 256, p.window = 16, p.n_ctx = 65536;
    p.suppress_media_end = false;
    v.push_back(p);
    p = {};
    p.name = "tiny-gemma3";
    p.arch = "gemma3";
    p.description = "Gemma 3 layout in miniature";
    p.n_layer = 6, p.n_embd = 256, p.n_head = 4, p.n_head_kv_swa = p.n_head_kv_full = 1;
    p.head_dim_swa = p.head_dim_full = 64, p.n_ff = 512, p.window = 32, p.n_vocab = 512, p.n_ctx = 8192;
    p.rope_linear_factor = 8;
    v.push_back(p);
    // --- real Gemma 4 shapes (GEMMA4.md section 1.0) ---
    p = {};
    p.arch = "gemma4";
    p.name = "gemma4-12b";
    p.description = "Gemma 4 12B (unified): 48 layers, hidden 3840";
    p.n_layer = 48, p.n_embd = 3840, p.n_head = 16, p.n_head_kv_swa = 8, p.n_head_kv_full = 1;
    p.head_dim_swa = 256, p.head_dim_full = 512, p.n_ff = 15360, p.window = 1024, p.k_eq_v = true;
    p.n_ctx = 262144, p.suppress_media_end = true;
    v.push_back(p);
    p = v.back();
    p.name = "gemma4-31b";
    p.description = "Gemma 4 31B: 60 layers, hidden 5376";
    p.n_layer = 60, p.n_embd = 5376, p.n_head = 32, p.n_head_kv_swa = 16, p.n_head_kv_full = 4, p.n_ff = 21504;
    p.n_ctx = 131072, p.suppress_media_end = false;
    v.push_back(p);
    p = v.back();
    p.name = "gemma4-26b-a4b";
    p.description = "Gemma 4 26B-A4B: 30 layers, hidden 2816, 128 experts (top 8)";
    p.n_layer = 30, p.n_embd = 2816, p.n_head = 16, p.n_head_kv_swa = 8, p.n_head_kv_full = 2, p.n_ff = 2112;
    p.n_expert = 128, p.n_expert_used = 8, p.n_ff_exp = 704;
    v.push_back(p);
    p = {};
    p.arch = "gemma4";
    p.name = "gemma4-e2b";
    p.description = "Gemma 4 E2B: 35 layers, hidden 1536, per-layer embeddings, 20 KV-shared layers";
    p.n_layer = 35, p.n_embd = 1536, p.n_head = 8, p.n_head_kv_swa = 1, p.n_head_kv_full = 1;
    p.head_dim_swa = 256, p.head_dim_full = 512, p.n_ff = 6144, p.n_ff_shared = 12288, p.window = 512;
    p.full_every = 5, p.n_shared_kv = 20, p.ple_dim = 256;
    v.push_back(p);
    p.name = "gemma4-e4b";
    p.description = "Gemma 4 E4B: 42 layers, hidden 2560, per-layer embeddings, 18 KV-shared layers";
    p.n_layer = 42, p.n_embd = 2560, p.n_head_kv_swa = p.n_head_kv_full = 2, p.n_ff = 10240, p.n_ff_shared = 0;
    p.full_every = 6, p.n_shared_kv = 18;
    v.push_back(p);
    // --- real Gemma 3 shapes (GEMMA4.md section 2) ---
    auto g3 = [&](const char* name, int L, int64_t E, int H, int KV, int hd, int64_t F, int W, double lin, int64_t ctx) {
      Preset q;
      q.arch = "gemma3";
      q.name = name;
      q.description = std::string("Gemma 3 ") + (name + 7);
      q.n_layer = L, q.n_embd = E, q.n_head = H, q.n_head_kv_swa = q.n_head_kv_full = KV;
      q.head_dim_swa = q.head_dim_full = hd, q.n_ff = F, q.window = W, q.rope_linear_factor = lin, q.n_ctx = ctx;
      v.push_back(q);
    };
    g3("gemma3-270m", 18, 640, 4, 1, 256, 2048, 512, 1, 32768);
    g3("gemma3-1b", 26, 1152, 4, 1, 256, 6912, 512, 1, 32768);
    g3("gemma3-4b", 34, 2560, 8, 4, 256, 10240, 1024, 8, 131072);
    g3("gemma3-12b", 48, 3840, 16, 8, 256, 15360, 1024, 8, 131072);
    g3("gemma3-27b", 62, 5376, 32, 16, 128, 21504, 1024, 8, 131072);
    return v;
  }();
  return presets;
}

const Preset* FindPreset(const std::string& name) {
  for (const auto& p : Presets()) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

namespace {

enum class Dist { kNormal, kUniform, kRopeFreqs };
struct Init {
  Dist dist = Dist::kNormal;
  float a = 0, b = 0.02f;  // normal: mean, std; uniform: [a, b]
};

bool EndsWith(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// How a tensor is initialised (after ../shared/golden/README.md "Model construction").
Init InitFor(const std::string& name, bool gemma4) {
  if (name == "rope_freqs.weight") return {Dist::kRopeFreqs};
  if (name == "token_embd.weight") return {Dist::kNormal, 0, 0.03f};
  if (name == "per_layer_token_embd.weight") return {Dist::kNormal, 0, 0.1f};
  if (name == "output_norm.weight") return {Dist::kNormal, 4, 0.4f};
  if (EndsWith(name, "layer_output_scale.weight") || EndsWith(name, "ffn_down_exps.scale")) return {Dist::kUniform, 0.5f, 1.5f};
  if (gemma4 && (EndsWith(name, "attn_q_norm.weight") || EndsWith(name, "attn_k_norm.weight"))) {
    return {Dist::kNormal, 0.3f, 0.05f};
  }
  if (EndsWith(name, "norm.weight") || EndsWith(name, "ffn_gate_inp.scale")) return {Dist::kNormal, 1, 0.1f};
  if (EndsWith(name, "ffn_gate_inp.weight")) return {Dist::kNormal, 0, 1};
  if (name == "per_layer_model_proj.weight" || EndsWith(name, "inp_gate.weight") || EndsWith(name, ".proj.weight")) {
    return {Dist::kNormal, 0, 0.05f};
  }
  return {Dist::kNormal, 0, 0.02f};
}

struct TensorPlan {
  std::string name;
  std::vector<int64_t> ne;
};

std::vector<TensorPlan> PlanTensors(const Preset& p, int64_t n_vocab) {
  std::vector<TensorPlan> t;
  const int64_t E = p.n_embd;
  const bool g4 = p.arch == "gemma4";
  t.push_back({"token_embd.weight", {E, n_vocab}});
  if (p.ple_dim > 0) {
    t.push_back({"per_layer_token_embd.weight", {p.ple_dim * p.n_layer, n_vocab}});
    t.push_back({"per_layer_model_proj.weight", {E, p.ple_dim * p.n_layer}});
    t.push_back({"per_layer_proj_norm.weight", {p.ple_dim}});
  }
  t.push_back({"output_norm.weight", {E}});
  if (g4) t.push_back({"rope_freqs.weight", {p.head_dim_full / 2}});
  for (int i = 0; i < p.n_layer; ++i) {
    const bool full = (i + 1) % p.full_every == 0 || i == p.n_layer - 1;
    const bool shared = i >= p.n_layer - p.n_shared_kv;
    const int64_t hd = full ? p.head_dim_full : p.head_dim_swa;
    const int64_t kv = (full ? p.n_head_kv_full : p.n_head_kv_swa) * hd;
    const int64_t ff = shared && p.n_ff_shared > 0 ? p.n_ff_shared : p.n_ff;
    const std::string b = "blk." + std::to_string(i) + ".";
    t.push_back({b + "attn_norm.weight", {E}});
    t.push_back({b + "attn_q.weight", {E, p.n_head * hd}});
    if (!shared) {
      t.push_back({b + "attn_k.weight", {E, kv}});
      if (!(full && p.k_eq_v)) t.push_back({b + "attn_v.weight", {E, kv}});
      t.push_back({b + "attn_k_norm.weight", {hd}});
    }
    t.push_back({b + "attn_q_norm.weight", {hd}});
    t.push_back({b + "attn_output.weight", {p.n_head * hd, E}});
    t.push_back({b + "post_attention_norm.weight", {E}});
    t.push_back({b + "ffn_norm.weight", {E}});
    t.push_back({b + "ffn_gate.weight", {E, ff}});
    t.push_back({b + "ffn_up.weight", {E, ff}});
    t.push_back({b + "ffn_down.weight", {ff, E}});
    t.push_back({b + "post_ffw_norm.weight", {E}});
    if (p.n_expert > 0) {
      t.push_back({b + "ffn_gate_inp.weight", {E, p.n_expert}});
      t.push_back({b + "ffn_gate_inp.scale", {E}});
      t.push_back({b + "pre_ffw_norm_2.weight", {E}});
      t.push_back({b + "post_ffw_norm_1.weight", {E}});
      t.push_back({b + "post_ffw_norm_2.weight", {E}});
      t.push_back({b + "ffn_gate_up_exps.weight", {E, 2 * p.n_ff_exp, p.n_expert}});
      t.push_back({b + "ffn_down_exps.weight", {p.n_ff_exp, E, p.n_expert}});
      t.push_back({b + "ffn_down_exps.scale", {p.n_expert}});
    }
    if (p.ple_dim > 0) {
      t.push_back({b + "inp_gate.weight", {E, p.ple_dim}});
      t.push_back({b + "proj.weight", {p.ple_dim, E}});
      t.push_back({b + "post_norm.weight", {E}});
    }
    if (g4) t.push_back({b + "layer_output_scale.weight", {1}});
  }
  return t;
}


void WriteHyperparameters(gguf::Writer& w, const Preset& p) {
  const std::string a = p.arch + ".";
  const bool g4 = p.arch == "gemma4";
  w.SetString("general.architecture", p.arch);
  w.SetString("general.name", "synthetic " + p.name);
  w.SetUInt32(a + "context_length", static_cast<uint32_t>(p.n_ctx));
  w.SetUInt32(a + "embedding_length", static_cast<uint32_t>(p.n_embd));
  w.SetUInt32(a + "block_count", static_cast<uint32_t>(p.n_layer));
  std::vector<int32_t> ff, kv;
  std::vector<bool> swa;
  bool ff_varies = false, kv_varies = false;
  for (int i = 0; i < p.n_layer; ++i) {
    const bool full = (i + 1) % p.full_every == 0 || i == p.n_layer - 1;
    const bool shared = i >= p.n_layer - p.n_shared_kv;
    ff.push_back(static_cast<int32_t>(shared && p.n_ff_shared > 0 ? p.n_ff_shared : p.n_ff));
    kv.push_back(full ? p.n_head_kv_full : p.n_head_kv_swa);
    swa.push_back(!full);
    ff_varies |= ff.back() != ff[0];
    kv_varies |= kv.back() != kv[0];
  }
  if (ff_varies) {
    w.SetInt32Array(a + "feed_forward_length", ff);
  } else {
    w.SetUInt32(a + "feed_forward_length", static_cast<uint32_t>(p.n_ff));
  }
  w.SetUInt32(a + "attention.head_count", static_cast<uint32_t>(p.n_head));
  if (kv_varies) {
    w.SetInt32Array(a + "attention.head_count_kv", kv);
  } else {
    w.SetUInt32(a + "attention.head_count_kv", static_cast<uint32_t>(kv[0]));
  }
  w.SetUInt32(a + "attention.key_length", static_cast<uint32_t>(p.head_dim_full));
  w.SetUInt32(a + "attention.value_length", static_cast<uint32_t>(p.head_dim_full));
  w.SetFloat32(a + "attention.layer_norm_rms_epsilon", 1e-6f);
  w.SetFloat32(a + "rope.freq_base", static_cast<float>(p.rope_base_full));
  w.SetUInt32(a + "attention.sliding_window", static_cast<uint32_t>(p.window));
  if (g4) {
    w.SetUInt32(a + "attention.key_length_swa", static_cast<uint32_t>(p.head_dim_swa));
    w.SetUInt32(a + "attention.value_length_swa", static_cast<uint32_t>(p.head_dim_swa));
    w.SetFloat32(a + "rope.freq_base_swa", 10000.0f);
    w.SetUInt32(a + "rope.dimension_count", static_cast<uint32_t>(p.head_dim_full));
    w.SetUInt32(a + "rope.dimension_count_swa", static_cast<uint32_t>(p.head_dim_swa));
    w.SetBoolArray(a + "attention.sliding_window_pattern", swa);
    w.SetUInt32(a + "attention.shared_kv_layers", static_cast<uint32_t>(p.n_shared_kv));
    w.SetUInt32(a + "embedding_length_per_layer_input", static_cast<uint32_t>(p.ple_dim));
    w.SetFloat32(a + "final_logit_softcapping", 30.0f);
    if (p.n_expert > 0) {
      w.SetUInt32(a + "expert_count", static_cast<uint32_t>(p.n_expert));
      w.SetUInt32(a + "expert_used_count", static_cast<uint32_t>(p.n_expert_used));
      w.SetUInt32(a + "expert_feed_forward_length", static_cast<uint32_t>(p.n_ff_exp));
    }
  } else {
    if (p.rope_linear_factor != 1) {
      w.SetString(a + "rope.scaling.type", "linear");
      w.SetFloat32(a + "rope.scaling.factor", static_cast<float>(p.rope_linear_factor));
    }
  }
}

}  // namespace

void CreateSyntheticModel(const CreateOptions& opt, const std::string& out_path,
                          const std::function<void(size_t, size_t)>& progress) {
  const Preset* pp = FindPreset(opt.preset);
  if (!pp) {
    std::string names;
    for (const auto& p : Presets()) names += (names.empty() ? "" : ", ") + p.name;
    Fail("unknown preset '%s' (presets: %s)", opt.preset.c_str(), names.c_str());
  }
  const Preset& p = *pp;
  const bool g4 = p.arch == "gemma4";
  gguf::Writer w;
  WriteHyperparameters(w, p);
  // Vocabulary: copied from another GGUF, or synthesised.
  std::vector<std::string> tokens;
  std::unique_ptr<gguf::File> vocab;
  bool has_suppress = false;
  if (!opt.vocab_file.empty()) {
    vocab = gguf::File::Open(opt.vocab_file);
    for (auto t : vocab->GetStringArray("tokenizer.ggml.tokens")) tokens.emplace_back(t);
    for (const auto& kv : vocab->kvs()) {
      if (kv.key.rfind("tokenizer.", 0) == 0) w.CopyValue(kv.key, kv.value);
    }
    has_suppress = vocab->Has("tokenizer.ggml.suppress_tokens");
  } else {
    SyntheticVocab v = MakeSyntheticVocab(p.arch, p.n_vocab);
    WriteVocab(w, v);
    tokens = std::move(v.tokens);
  }
  const int64_t n_vocab = static_cast<int64_t>(tokens.size());
  if (p.suppress_media_end && !has_suppress) {
    // The unified 12B never generates the end-of-media markers (generation_config.suppress_tokens).
    std::vector<int32_t> ids;
    for (int64_t id = 0; id < n_vocab; ++id) {
      if (tokens[id] == "<image|>" || tokens[id] == "<audio|>") ids.push_back(static_cast<int32_t>(id));
    }
    if (!ids.empty()) w.SetInt32Array("tokenizer.ggml.suppress_tokens", ids);
  }
  w.SetUInt32("general.file_type", static_cast<uint32_t>(opt.type));
  w.SetUInt32("general.quantization_version", 2);

  const auto plan = PlanTensors(p, n_vocab);
  std::vector<QuantMix::TensorDesc> descs;
  for (const auto& t : plan) descs.push_back({t.name, t.ne});
  QuantMix mix(opt.type, descs, p.n_layer, p.n_expert);
  auto pool = std::make_shared<ThreadPool>(opt.n_threads);
  for (size_t k = 0; k < plan.size(); ++k) {
    const TensorPlan t = plan[k];
    const GgmlType type = mix.TypeFor(k);
    const Init init = InitFor(t.name, g4);
    const uint64_t tensor_seed = opt.seed * 0x100000001b3ull + k * 0x9e3779b97f4a7c15ull;
    const int64_t partial_pairs = static_cast<int64_t>(p.head_dim_full * p.partial_rotary / 2);
    w.AddTensor(t.name, type, t.ne, [=](uint8_t* dst, size_t) {
      const int64_t cols = t.ne[0];
      int64_t rows = 1;
      for (size_t d = 1; d < t.ne.size(); ++d) rows *= t.ne[d];
      const size_t row_bytes = static_cast<size_t>(RowBytes(type, cols));
      pool->ParallelFor(rows, 16, [&](int64_t r0, int64_t r1) {
        std::vector<float> row(static_cast<size_t>(cols));
        for (int64_t r = r0; r < r1; ++r) {
          SplitMix64 rng{tensor_seed ^ (static_cast<uint64_t>(r) * 0xd1b54a32d192ed03ull)};
          for (int64_t c = 0; c < cols; ++c) {
            switch (init.dist) {
              case Dist::kNormal: row[c] = init.a + init.b * rng.Normal(); break;
              case Dist::kUniform: row[c] = init.a + (init.b - init.a) * static_cast<float>(rng.Uniform()); break;
              case Dist::kRopeFreqs: row[c] = c < partial_pairs ? 1.0f : 1e30f; break;
            }
          }
          kernels::QuantizeRow(type, row.data(), dst + static_cast<size_t>(r) * row_bytes, cols);
        }
      });
    });
  }
  w.Write(out_path, progress);
}

}  // namespace g4
