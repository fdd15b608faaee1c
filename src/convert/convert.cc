#include "convert/convert.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <unistd.h>

#include "convert/checkpoint.h"
#include "convert/hf_vocab.h"
#include "convert/mmproj.h"
#include "formats/gguf.h"
#include "kernels/kernels.h"
#include "util/error.h"
#include "util/fp16.h"
#include "util/thread_pool.h"

namespace g4::convert {

using nlohmann::json;

void DrawProgress(size_t done, size_t total, const std::string& what) {
  constexpr int kWidth = 30;
  const int filled = total ? static_cast<int>(kWidth * done / total) : kWidth;
  std::string bar(static_cast<size_t>(filled), '=');
  bar.resize(kWidth, ' ');
  std::string name = what.substr(0, 40);
  std::fprintf(stderr, "\r[%s] %zu/%zu %-40s", bar.c_str(), done, total, name.c_str());
  if (done == total) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

namespace {

enum class Family { kGemma4, kGemma3, kAssistant };

// One tensor of the output: where it comes from and what it must look like.
struct Planned {
  std::string name;            // GGUF name
  std::vector<int64_t> ne;     // ggml order
  const StTensor* src = nullptr;
  int64_t src_rows = 0;        // rows taken from src (the embedding may be cut)
  float add = 0;               // Gemma 3 norms: stored as 1 + w
  std::vector<float> values;   // generated tensors (rope_freqs)
};

// The hyperparameters the mapping needs, from config.json (text_config for multimodal models).
struct Hparams {
  Family family = Family::kGemma4;
  std::string arch;            // GGUF architecture name
  const json* tc = nullptr;    // the text config
  int n_layer = 0;
  int64_t E = 0, n_vocab_ckpt = 0;
  int n_head = 0, n_kv = 0, n_kv_full = 0;
  int hd = 0, hd_full = 0;
  std::vector<int64_t> ff;     // per layer
  std::vector<bool> swa;       // per layer: sliding
  bool k_eq_v = false;
  int n_shared = 0;
  int64_t ple = 0;
  int window = 0;
  double theta_full = 1e6, theta_swa = 1e4, partial_full = 1.0, partial_swa = 1.0;
  double linear_factor = 1.0;  // Gemma 3 global RoPE
  double softcap = 0;
  double eps = 1e-6;
  int64_t ctx = 0;
  int64_t backbone = 0;        // assistant: target hidden size
};

const char* Where(const Checkpoint& c) {
  static thread_local std::string s;
  s = c.Path("config.json");
  return s.c_str();
}

int64_t Int(const Checkpoint& c, const json& j, const char* key, std::optional<int64_t> def = std::nullopt) {
  if (!j.contains(key) || j[key].is_null()) {
    if (def) return *def;
    Fail("%s: missing \"%s\"", Where(c), key);
  }
  if (!j[key].is_number_integer() || j[key].get<int64_t>() < 0) Fail("%s: \"%s\" must be a non-negative integer", Where(c), key);
  return j[key].get<int64_t>();
}

double Num(const Checkpoint& c, const json& j, const char* key, double def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_number()) Fail("%s: \"%s\" must be a number", Where(c), key);
  return j[key].get<double>();
}

Hparams ReadHparams(const Checkpoint& c) {
  const json& cfg = c.config();
  Hparams h;
  std::string arch;
  if (cfg.contains("architectures") && cfg["architectures"].is_array() && !cfg["architectures"].empty() &&
      cfg["architectures"][0].is_string()) {
    arch = cfg["architectures"][0].get<std::string>();
  }
  static const std::map<std::string, Family> kArchs = {
      {"Gemma4ForConditionalGeneration", Family::kGemma4}, {"Gemma4UnifiedForConditionalGeneration", Family::kGemma4},
      {"Gemma4ForCausalLM", Family::kGemma4},              {"Gemma3ForCausalLM", Family::kGemma3},
      {"Gemma3ForConditionalGeneration", Family::kGemma3}, {"Gemma4AssistantForCausalLM", Family::kAssistant},
      {"Gemma4UnifiedAssistantForCausalLM", Family::kAssistant}};
  auto it = kArchs.find(arch);
  if (it == kArchs.end()) {
    std::string known;
    for (const auto& [k, v] : kArchs) known += (known.empty() ? "" : ", ") + k;
    Fail("%s: unknown architecture '%s' (convert reads %s)", Where(c), arch.c_str(), known.c_str());
  }
  h.family = it->second;
  h.arch = h.family == Family::kGemma3 ? "gemma3" : h.family == Family::kAssistant ? "gemma4-assistant" : "gemma4";
  h.tc = cfg.contains("text_config") && cfg["text_config"].is_object() ? &cfg["text_config"] : &cfg;
  const json& t = *h.tc;
  h.n_layer = static_cast<int>(Int(c, t, "num_hidden_layers"));
  if (h.n_layer <= 0 || h.n_layer > 1024) Fail("%s: num_hidden_layers = %d is out of range", Where(c), h.n_layer);
  h.E = Int(c, t, "hidden_size");
  h.n_vocab_ckpt = Int(c, t, "vocab_size", 0);
  h.n_head = static_cast<int>(Int(c, t, "num_attention_heads"));
  h.n_kv = static_cast<int>(Int(c, t, "num_key_value_heads", h.n_head));
  h.n_kv_full = static_cast<int>(Int(c, t, "num_global_key_value_heads", h.n_kv));
  h.hd = static_cast<int>(Int(c, t, "head_dim", h.n_head ? h.E / h.n_head : 0));
  h.hd_full = static_cast<int>(Int(c, t, "global_head_dim", h.hd));
  if (h.E <= 0 || h.n_head <= 0 || h.n_kv <= 0 || h.hd <= 0 || h.hd_full <= 0) Fail("%s: zero sizes", Where(c));
  h.k_eq_v = t.value("attention_k_eq_v", false);
  h.n_shared = static_cast<int>(Int(c, t, "num_kv_shared_layers", 0));
  h.ple = Int(c, t, "hidden_size_per_layer_input", 0);
  h.window = static_cast<int>(Int(c, t, "sliding_window", 0));
  h.eps = Num(c, t, "rms_norm_eps", 1e-6);
  h.softcap = Num(c, t, "final_logit_softcapping", 0);
  h.ctx = Int(c, t, "max_position_embeddings", 131072);
  if (t.value("enable_moe_block", false) || Int(c, t, "num_experts", 0) > 0) {
    Fail("%s: mixture-of-experts checkpoints (26B-A4B) are not supported by convert yet", Where(c));
  }
  const int64_t ff = Int(c, t, "intermediate_size");
  const bool double_wide = t.value("use_double_wide_mlp", false);
  for (int i = 0; i < h.n_layer; ++i) h.ff.push_back(double_wide && i >= h.n_layer - h.n_shared ? 2 * ff : ff);
  // Layer types: the explicit list, else Gemma 3's period (sliding_window_pattern, default 6).
  if (t.contains("layer_types") && t["layer_types"].is_array()) {
    if (t["layer_types"].size() != static_cast<size_t>(h.n_layer)) Fail("%s: layer_types needs %d entries", Where(c), h.n_layer);
    for (const auto& lt : t["layer_types"]) {
      if (lt != "sliding_attention" && lt != "full_attention") Fail("%s: unknown layer type %s", Where(c), lt.dump().c_str());
      h.swa.push_back(lt == "sliding_attention");
    }
  } else {
    const int64_t period = Int(c, t, "sliding_window_pattern", 6);
    for (int i = 0; i < h.n_layer; ++i) h.swa.push_back(period > 0 && (i + 1) % period != 0);
  }
  // RoPE: rope_parameters per layer type (Gemma 4, new Gemma 3 configs) or the older flat keys.
  if (t.contains("rope_parameters") && t["rope_parameters"].is_object() && t["rope_parameters"].contains("full_attention")) {
    const json& rf = t["rope_parameters"]["full_attention"];
    h.theta_full = Num(c, rf, "rope_theta", 1e6);
    h.partial_full = Num(c, rf, "partial_rotary_factor", 1.0);
    if (rf.value("rope_type", "default") == "linear") h.linear_factor = Num(c, rf, "factor", 1.0);
    if (t["rope_parameters"].contains("sliding_attention")) {
      const json& rs = t["rope_parameters"]["sliding_attention"];
      h.theta_swa = Num(c, rs, "rope_theta", 1e4);
      h.partial_swa = Num(c, rs, "partial_rotary_factor", 1.0);
    }
  } else {
    h.theta_full = Num(c, t, "rope_theta", 1e6);
    h.theta_swa = Num(c, t, "rope_local_base_freq", 1e4);
    if (t.contains("rope_scaling") && t["rope_scaling"].is_object()) {
      const json& rs = t["rope_scaling"];
      const std::string type = rs.value("rope_type", rs.value("type", std::string("default")));
      if (type == "linear") h.linear_factor = Num(c, rs, "factor", 1.0);
    }
  }
  if (h.family == Family::kAssistant) {
    h.backbone = Int(c, c.config(), "backbone_hidden_size");
    h.softcap = 0;  // the drafter's head has no softcap
  }
  return h;
}

// The prefix of the text model's weights: it differs between the checkpoint classes.
std::string TextPrefix(const Checkpoint& c, const Hparams& h) {
  for (const char* p : {"model.language_model.", "language_model.model.", "model.", ""}) {
    if (c.Find(std::string(p) + "embed_tokens.weight")) return p;
  }
  Fail("%s: no embed_tokens.weight (looked for model.language_model., language_model.model. and model.)",
       c.dir().c_str());
  (void)h;
}

bool IsMultimodal(const std::string& n) {
  for (const char* p : {"model.vision_embedder.", "model.embed_vision.", "model.embed_audio.", "model.vision_tower.",
                        "model.audio_tower.", "model.multi_modal_projector.", "vision_tower.", "multi_modal_projector.",
                        "model.multimodal_embedder.", "embed_vision.", "embed_audio."}) {
    if (n.rfind(p, 0) == 0) return true;
  }
  return false;
}

class Planner {
 public:
  Planner(const Checkpoint& c) : c_(c) {}

  // Adds tensor `hf` (HF shape `shape`, outermost first) as GGUF `name`.
  void Add(const std::string& name, const std::string& hf, std::vector<int64_t> shape, float add = 0,
           int64_t keep_rows = -1) {
    const StTensor* t = c_.Find(hf);
    if (!t) Fail("%s: missing tensor '%s' (config.json implies it)", c_.dir().c_str(), hf.c_str());
    std::vector<int64_t> want = shape;
    if (keep_rows >= 0) want[0] = t->shape.empty() ? 0 : t->shape[0];  // rows checked below
    if (t->shape != want) {
      std::string w = "[";
      for (size_t i = 0; i < want.size(); ++i) w += (i ? ", " : "") + std::to_string(want[i]);
      w += "]";
      Fail("%s: tensor '%s' has shape %s, expected %s from config.json", t->file->c_str(), hf.c_str(),
           t->ShapeString().c_str(), w.c_str());
    }
    if (t->dtype != StDtype::F32 && t->dtype != StDtype::F16 && t->dtype != StDtype::BF16) {
      Fail("%s: tensor '%s' has dtype %s (convert reads F32, F16 and BF16)", t->file->c_str(), hf.c_str(),
           StDtypeName(t->dtype));
    }
    Planned p;
    p.name = name;
    p.src = t;
    p.add = add;
    if (keep_rows >= 0) {
      if (t->shape[0] < keep_rows) {
        Fail("%s: tensor '%s' has %lld rows but the tokenizer has %lld tokens", t->file->c_str(), hf.c_str(),
             (long long)t->shape[0], (long long)keep_rows);
      }
      shape[0] = keep_rows;
    }
    p.ne.assign(shape.rbegin(), shape.rend());
    p.src_rows = 1;
    for (size_t i = 0; i + 1 < shape.size(); ++i) p.src_rows *= shape[i];
    used_.insert(hf);
    dtypes_[t->dtype]++;
    plan_.push_back(std::move(p));
  }
  void Generated(const std::string& name, std::vector<float> values) {
    Planned p;
    p.name = name;
    p.ne = {static_cast<int64_t>(values.size())};
    p.values = std::move(values);
    plan_.push_back(std::move(p));
  }
  void Skip(const std::string& hf) { used_.insert(hf); }

  std::vector<Planned>& plan() { return plan_; }
  const std::set<std::string>& used() const { return used_; }
  StDtype MainDtype() const {
    StDtype best = StDtype::F32;
    int n = -1;
    for (const auto& [d, k] : dtypes_) {
      if (k > n) best = d, n = k;
    }
    return best;
  }

 private:
  const Checkpoint& c_;
  std::vector<Planned> plan_;
  std::set<std::string> used_;
  std::map<StDtype, int> dtypes_;
};

void PlanText(const Checkpoint& c, const Hparams& h, int64_t n_vocab, Planner& P) {
  const std::string pre = h.family == Family::kAssistant ? "model." : TextPrefix(c, h);
  const float norm_add = h.family == Family::kGemma3 ? 1.0f : 0.0f;
  const int64_t E = h.E;
  P.Add("token_embd.weight", pre + "embed_tokens.weight", {n_vocab, E}, 0, n_vocab);
  if (h.ple > 0) {
    const int64_t PL = h.ple * h.n_layer;
    P.Add("per_layer_token_embd.weight", pre + "embed_tokens_per_layer.weight", {n_vocab, PL}, 0, n_vocab);
    P.Add("per_layer_model_proj.weight", pre + "per_layer_model_projection.weight", {PL, E});
    P.Add("per_layer_proj_norm.weight", pre + "per_layer_projection_norm.weight", {h.ple});
  }
  P.Add("output_norm.weight", pre + "norm.weight", {E}, norm_add);
  if (h.family != Family::kGemma3) {
    // Proportional RoPE on full layers as llama.cpp realises it: n_rot = the whole head, and the
    // pairs that must not rotate get a frequency divisor of 1e30.
    const int r = static_cast<int>(h.hd_full * h.partial_full / 2);
    std::vector<float> f(static_cast<size_t>(h.hd_full / 2), 1e30f);
    std::fill(f.begin(), f.begin() + std::min<size_t>(f.size(), static_cast<size_t>(std::max(r, 0))), 1.0f);
    P.Generated("rope_freqs.weight", f);
  }
  if (h.family == Family::kAssistant) {
    P.Add("nextn.pre_projection.weight", "pre_projection.weight", {E, 2 * h.backbone});
    P.Add("nextn.post_projection.weight", "post_projection.weight", {h.backbone, E});
  }
  for (int i = 0; i < h.n_layer; ++i) {
    const std::string L = pre + "layers." + std::to_string(i) + ".";
    const std::string B = "blk." + std::to_string(i) + ".";
    const bool full = !h.swa[i];
    const int hd = full ? h.hd_full : h.hd;
    const int kv = full ? h.n_kv_full : h.n_kv;
    const bool shared = h.family == Family::kAssistant || i >= h.n_layer - h.n_shared;
    const bool no_v = shared || (full && h.k_eq_v && h.family != Family::kGemma3);
    P.Add(B + "attn_norm.weight", L + "input_layernorm.weight", {E}, norm_add);
    P.Add(B + "attn_q.weight", L + "self_attn.q_proj.weight", {int64_t{h.n_head} * hd, E});
    if (!shared) {
      P.Add(B + "attn_k.weight", L + "self_attn.k_proj.weight", {int64_t{kv} * hd, E});
      if (!no_v) P.Add(B + "attn_v.weight", L + "self_attn.v_proj.weight", {int64_t{kv} * hd, E});
      P.Add(B + "attn_k_norm.weight", L + "self_attn.k_norm.weight", {hd}, norm_add);
    }
    P.Add(B + "attn_q_norm.weight", L + "self_attn.q_norm.weight", {hd}, norm_add);
    P.Add(B + "attn_output.weight", L + "self_attn.o_proj.weight", {E, int64_t{h.n_head} * hd});
    P.Add(B + "post_attention_norm.weight", L + "post_attention_layernorm.weight", {E}, norm_add);
    P.Add(B + "ffn_norm.weight", L + "pre_feedforward_layernorm.weight", {E}, norm_add);
    P.Add(B + "ffn_gate.weight", L + "mlp.gate_proj.weight", {h.ff[i], E});
    P.Add(B + "ffn_up.weight", L + "mlp.up_proj.weight", {h.ff[i], E});
    P.Add(B + "ffn_down.weight", L + "mlp.down_proj.weight", {E, h.ff[i]});
    P.Add(B + "post_ffw_norm.weight", L + "post_feedforward_layernorm.weight", {E}, norm_add);
    if (h.ple > 0) {
      P.Add(B + "inp_gate.weight", L + "per_layer_input_gate.weight", {h.ple, E});
      P.Add(B + "proj.weight", L + "per_layer_projection.weight", {E, h.ple});
      P.Add(B + "post_norm.weight", L + "post_per_layer_input_norm.weight", {E});
    }
    if (h.family != Family::kGemma3) P.Add(B + "layer_output_scale.weight", L + "layer_scalar", {1});
  }
  // Tied heads and buffers that are not weights.
  for (const char* n : {"lm_head.weight", "model.lm_head.weight"}) {
    if (c.Find(n)) P.Skip(n);
  }
}

void WriteHparams(gguf::Writer& w, const Hparams& h) {
  const std::string a = h.arch + ".";
  w.SetUInt32(a + "context_length", static_cast<uint32_t>(h.ctx));
  w.SetUInt32(a + "embedding_length", static_cast<uint32_t>(h.E));
  w.SetUInt32(a + "block_count", static_cast<uint32_t>(h.n_layer));
  bool ff_varies = false, kv_varies = false;
  std::vector<int32_t> ff, kv;
  for (int i = 0; i < h.n_layer; ++i) {
    ff.push_back(static_cast<int32_t>(h.ff[i]));
    kv.push_back(h.swa[i] ? h.n_kv : h.n_kv_full);
    ff_varies |= ff.back() != ff[0];
    kv_varies |= kv.back() != kv[0];
  }
  if (ff_varies) {
    w.SetInt32Array(a + "feed_forward_length", ff);
  } else {
    w.SetUInt32(a + "feed_forward_length", static_cast<uint32_t>(ff[0]));
  }
  w.SetUInt32(a + "attention.head_count", static_cast<uint32_t>(h.n_head));
  // llama.cpp writes a per-layer array when the config gives separate global KV heads.
  if (h.family != Family::kGemma3 && (kv_varies || h.tc->contains("num_global_key_value_heads"))) {
    w.SetInt32Array(a + "attention.head_count_kv", kv);
  } else {
    w.SetUInt32(a + "attention.head_count_kv", static_cast<uint32_t>(h.n_kv));
  }
  w.SetUInt32(a + "attention.key_length", static_cast<uint32_t>(h.hd_full));
  w.SetUInt32(a + "attention.value_length", static_cast<uint32_t>(h.hd_full));
  w.SetFloat32(a + "attention.layer_norm_rms_epsilon", static_cast<float>(h.eps));
  w.SetFloat32(a + "rope.freq_base", static_cast<float>(h.theta_full));
  if (h.window > 0) w.SetUInt32(a + "attention.sliding_window", static_cast<uint32_t>(h.window));
  if (h.family == Family::kGemma3) {
    if (h.linear_factor != 1.0) {
      w.SetString(a + "rope.scaling.type", "linear");
      w.SetFloat32(a + "rope.scaling.factor", static_cast<float>(h.linear_factor));
    }
    if (h.softcap > 0) w.SetFloat32(a + "final_logit_softcapping", static_cast<float>(h.softcap));
    return;
  }
  w.SetUInt32(a + "attention.key_length_swa", static_cast<uint32_t>(h.hd));
  w.SetUInt32(a + "attention.value_length_swa", static_cast<uint32_t>(h.hd));
  w.SetFloat32(a + "rope.freq_base_swa", static_cast<float>(h.theta_swa));
  w.SetUInt32(a + "rope.dimension_count", static_cast<uint32_t>(h.hd_full));
  w.SetUInt32(a + "rope.dimension_count_swa", static_cast<uint32_t>(h.hd * h.partial_swa));
  w.SetBoolArray(a + "attention.sliding_window_pattern", h.swa);
  w.SetUInt32(a + "attention.shared_kv_layers",
              static_cast<uint32_t>(h.family == Family::kAssistant ? h.n_layer : h.n_shared));
  w.SetUInt32(a + "embedding_length_per_layer_input", static_cast<uint32_t>(h.ple));
  if (h.softcap > 0) w.SetFloat32(a + "final_logit_softcapping", static_cast<float>(h.softcap));
  if (h.family == Family::kAssistant) {
    w.SetUInt32(a + "embedding_length_out", static_cast<uint32_t>(h.backbone));
    w.SetUInt32(a + "nextn_predict_layers", static_cast<uint32_t>(h.n_layer));
  }
}

void ConvertRow(GgmlType type, const float* src, int64_t n, uint8_t* dst) {
  switch (type) {
    case GgmlType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      break;
    case GgmlType::F16:
      kernels::F32ToF16Row(src, reinterpret_cast<uint16_t*>(dst), n);
      break;
    case GgmlType::BF16:
      kernels::F32ToBf16Row(src, reinterpret_cast<uint16_t*>(dst), n);
      break;
    default:
      kernels::QuantizeRow(type, src, dst, n);
  }
}

}  // namespace

std::string ConvertCheckpointToGguf(const std::string& hf_dir, const std::string& out_path, const ConvertOptions& o) {
  auto ckpt = Checkpoint::Open(hf_dir);
  const Hparams h = ReadHparams(*ckpt);

  // Vocabulary.
  if (!ckpt->HasFile("tokenizer.json")) Fail("%s: missing (the vocabulary is read from it)", ckpt->Path("tokenizer.json").c_str());
  const json tok_cfg = ckpt->ReadJson("tokenizer_config.json", false);
  GgufVocab vocab = VocabFromTokenizerJson(ckpt->ReadJson("tokenizer.json", true), tok_cfg, ckpt->Path("tokenizer.json"));
  if (h.family == Family::kGemma3) vocab.model = "llama";
  if (vocab.chat_template.empty() && ckpt->HasFile("chat_template.jinja")) {
    FILE* f = std::fopen(ckpt->Path("chat_template.jinja").c_str(), "rb");
    if (f) {
      char buf[65536];
      size_t k;
      while ((k = std::fread(buf, 1, sizeof(buf), f)) > 0) vocab.chat_template.append(buf, k);
      std::fclose(f);
    }
  }
  const int64_t n_vocab = static_cast<int64_t>(vocab.tokens.size());

  Planner P(*ckpt);
  PlanText(*ckpt, h, n_vocab, P);
  // Every checkpoint tensor must be accounted for: a name we do not know means a layout we do not know.
  int n_mm = 0;
  for (const auto& n : ckpt->Names()) {
    if (P.used().count(n)) continue;
    if (IsMultimodal(n)) {
      ++n_mm;
      continue;
    }
    if (h.family == Family::kAssistant && n.find("masked_embedding") != std::string::npos) continue;
    Fail("%s: tensor '%s' is not part of the %s layout convert knows", ckpt->Find(n)->file->c_str(), n.c_str(),
         h.arch.c_str());
  }

  FileType ftype;
  if (o.type) {
    ftype = *o.type;
  } else {
    const StDtype d = P.MainDtype();
    ftype = d == StDtype::BF16 ? FileType::BF16 : d == StDtype::F16 ? FileType::F16 : FileType::F32;
  }

  gguf::Writer w;
  w.SetString("general.architecture", h.arch);
  std::string name = ckpt->config().value("_name_or_path", std::string());
  if (name.empty()) name = ckpt->dir().substr(ckpt->dir().find_last_of('/') + 1);
  w.SetString("general.name", name);
  w.SetUInt32("general.file_type", static_cast<uint32_t>(ftype));
  w.SetUInt32("general.quantization_version", 2);
  WriteHparams(w, h);
  WriteVocab(w, vocab);
  const json gen = ckpt->ReadJson("generation_config.json", false);
  if (gen.is_object() && gen.contains("suppress_tokens") && gen["suppress_tokens"].is_array()) {
    std::vector<int32_t> ids;
    for (const auto& s : gen["suppress_tokens"]) {
      if (!s.is_number_integer() || s.get<int64_t>() < 0 || s.get<int64_t>() >= n_vocab) {
        Fail("%s: suppress_tokens holds %s, not a token id", ckpt->Path("generation_config.json").c_str(), s.dump().c_str());
      }
      ids.push_back(s.get<int32_t>());
    }
    w.SetInt32Array("tokenizer.ggml.suppress_tokens", ids);
  }

  std::vector<QuantMix::TensorDesc> descs;
  for (const auto& p : P.plan()) descs.push_back({p.name, p.ne});
  QuantMix mix(ftype, descs, h.n_layer, 0);
  auto pool = std::make_shared<ThreadPool>(o.n_threads);
  const size_t total = P.plan().size();
  for (size_t k = 0; k < total; ++k) {
    const Planned* p = &P.plan()[k];
    const GgmlType type = mix.TypeFor(k);
    w.AddTensor(p->name, type, p->ne, [p, type, pool](uint8_t* dst, size_t) {
      const int64_t cols = p->ne[0];
      if (!p->values.empty()) {
        ConvertRow(type, p->values.data(), cols, dst);
        return;
      }
      const size_t row_bytes = static_cast<size_t>(RowBytes(type, cols));
      pool->ParallelFor(p->src_rows, 8, [&](int64_t r0, int64_t r1) {
        std::vector<float> row(static_cast<size_t>(cols));
        for (int64_t r = r0; r < r1; ++r) {
          ReadF32(*p->src, r * cols, cols, row.data());
          if (p->add != 0) {
            for (float& x : row) x += p->add;
          }
          ConvertRow(type, row.data(), cols, dst + static_cast<size_t>(r) * row_bytes);
        }
      });
    });
  }
  const bool tty = !o.quiet && isatty(2);
  w.Write(out_path, [&](size_t done, size_t n) {
    if (tty || (!o.quiet && done == n)) DrawProgress(done, n, done < n ? P.plan()[done].name : "done");
  });
  std::string summary = h.arch;
  summary += ": ";
  summary += std::to_string(total);
  summary += " tensors, ";
  summary += std::to_string(n_vocab);
  summary += " tokens, ";
  summary += FileTypeName(ftype);
  if (!o.mmproj_out.empty()) {
    const GgmlType mt = ftype == FileType::F32 ? GgmlType::F32 : ftype == FileType::BF16 ? GgmlType::BF16 : GgmlType::F16;
    summary += "; ";
    summary += WriteMmproj(*ckpt, o.mmproj_out, mt, o.n_threads, o.quiet);
  } else if (n_mm) {
    summary += "; ";
    summary += std::to_string(n_mm);
    summary += " multimodal embedder tensors left out (write them with --mmproj)";
  }
  return summary;
}

}  // namespace g4::convert
