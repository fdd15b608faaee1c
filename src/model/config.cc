#include "model/config.h"

#include <cmath>

#include "util/error.h"
#include "util/fp16.h"

namespace g4 {

const char* ArchName(Arch a) {
  switch (a) {
    case Arch::kGemma4: return "gemma4";
    case Arch::kGemma3: return "gemma3";
    case Arch::kGemma4Assistant: return "gemma4-assistant";
  }
  return "?";
}

int64_t ModelConfig::KvElementsPerToken(bool sliding) const {
  int64_t n = 0;
  for (const auto& l : layers) {
    if (l.has_kv && l.sliding == sliding) n += 2 * static_cast<int64_t>(l.n_head_kv) * l.head_dim;
  }
  return n;
}

int ModelConfig::LastLayerOfType(bool sliding) const {
  int last = -1;
  for (int i = 0; i < n_layer; ++i) {
    if (layers[i].has_kv && layers[i].sliding == sliding) last = i;
  }
  return last;
}

namespace {

int64_t Positive(const gguf::File& f, const std::string& key, int64_t v, int64_t max = int64_t{1} << 32) {
  if (v <= 0 || v > max) Fail("%smetadata key '%s' = %lld is out of range", f.Where().c_str(), key.c_str(), (long long)v);
  return v;
}

// Per-layer sliding flags: Gemma 4 stores a bool array; Gemma 3 a period (default 6) or nothing.
std::vector<bool> SlidingPattern(const gguf::File& f, const std::string& arch, int n_layer, bool gemma4) {
  const std::string key = arch + ".attention.sliding_window_pattern";
  const gguf::Value* v = f.Find(key);
  std::vector<bool> out(static_cast<size_t>(n_layer));
  if (v && v->type == gguf::ValueType::ARRAY) {
    std::vector<bool> a = f.GetBoolArray(key);
    if (a.size() != out.size()) {
      Fail("%smetadata key '%s' has %zu elements, expected one per layer (%d)", f.Where().c_str(), key.c_str(),
           a.size(), n_layer);
    }
    return a;
  }
  if (gemma4 && !v) Fail("%smissing required metadata key '%s'", f.Where().c_str(), key.c_str());
  int64_t period = 6;
  if (v) period = static_cast<int64_t>(f.GetUInt(key));
  if (period < 0 || period > n_layer + 1) Fail("%smetadata key '%s' = %lld is out of range", f.Where().c_str(), key.c_str(), (long long)period);
  for (int i = 0; i < n_layer; ++i) out[i] = period == 0 || (i % period < period - 1);
  return out;
}

}  // namespace

ModelConfig ReadModelConfig(const gguf::File& f) {
  ModelConfig c;
  const std::string arch = f.GetString("general.architecture");
  if (arch == "gemma4") {
    c.arch = Arch::kGemma4;
  } else if (arch == "gemma3") {
    c.arch = Arch::kGemma3;
  } else if (arch == "gemma4-assistant") {
    c.arch = Arch::kGemma4Assistant;
  } else {
    Fail("%sunsupported architecture '%s' (gemma4.cpp runs gemma4, gemma3 and gemma4-assistant)", f.Where().c_str(),
         arch.c_str());
  }
  const bool g4 = c.arch != Arch::kGemma3;
  const std::string p = arch + ".";
  c.name = f.GetStringOpt("general.name").value_or("");
  c.n_embd = Positive(f, p + "embedding_length", static_cast<int64_t>(f.GetUInt(p + "embedding_length")), 1 << 20);
  c.n_layer = static_cast<int>(Positive(f, p + "block_count", static_cast<int64_t>(f.GetUInt(p + "block_count")), 1024));
  c.n_ctx_train = Positive(f, p + "context_length", static_cast<int64_t>(f.GetUInt(p + "context_length")), 1 << 24);
  c.rms_eps = static_cast<float>(f.GetFloat(p + "attention.layer_norm_rms_epsilon"));
  if (!(c.rms_eps > 0 && c.rms_eps < 1)) Fail("%s%sattention.layer_norm_rms_epsilon = %g is out of range", f.Where().c_str(), p.c_str(), c.rms_eps);

  const auto n_head = f.GetIntPerLayer(p + "attention.head_count", c.n_layer);
  const auto n_head_kv = f.GetIntPerLayer(p + "attention.head_count_kv", c.n_layer);
  const auto n_ff = f.GetIntPerLayer(p + "feed_forward_length", c.n_layer);
  const int64_t hd_full = static_cast<int64_t>(f.GetUInt(p + "attention.key_length"));
  const int64_t hd_full_v = static_cast<int64_t>(f.GetUIntOpt(p + "attention.value_length").value_or(hd_full));
  if (hd_full != hd_full_v) Fail("%skey_length %lld != value_length %lld is not supported", f.Where().c_str(), (long long)hd_full, (long long)hd_full_v);
  int64_t hd_swa = hd_full;
  if (g4) {
    hd_swa = static_cast<int64_t>(f.GetUInt(p + "attention.key_length_swa"));
    const int64_t hd_swa_v = static_cast<int64_t>(f.GetUIntOpt(p + "attention.value_length_swa").value_or(hd_swa));
    if (hd_swa != hd_swa_v) Fail("%skey_length_swa != value_length_swa is not supported", f.Where().c_str());
  }
  Positive(f, p + "attention.key_length", hd_full, 4096);
  Positive(f, p + "attention.key_length_swa", hd_swa, 4096);

  const auto sliding = SlidingPattern(f, arch, c.n_layer, g4);
  c.sliding_window = static_cast<int>(f.GetUIntOpt(p + "attention.sliding_window").value_or(0));
  bool any_sliding = false;
  for (bool s : sliding) any_sliding |= s;
  if (any_sliding && c.sliding_window <= 0) Fail("%smissing or zero '%sattention.sliding_window'", f.Where().c_str(), p.c_str());

  // RoPE. Full layers: rope.freq_base (and linear scaling for Gemma 3); sliding layers: freq_base_swa (1e4).
  RopeConfig rope_full, rope_swa;
  rope_full.base = f.GetFloatOpt(p + "rope.freq_base").value_or(10000.0);
  rope_swa.base = f.GetFloatOpt(p + "rope.freq_base_swa").value_or(10000.0);
  if (auto type = f.GetStringOpt(p + "rope.scaling.type"); type && *type != "none") {
    if (*type != "linear") Fail("%sunsupported %srope.scaling.type '%s'", f.Where().c_str(), p.c_str(), type->c_str());
    const double factor = f.GetFloatOpt(p + "rope.scaling.factor").value_or(1.0);
    if (!(factor > 0)) Fail("%s%srope.scaling.factor must be positive", f.Where().c_str(), p.c_str());
    rope_full.scale = 1.0 / factor;
  }
  rope_full.n_rot = static_cast<int>(f.GetUIntOpt(p + "rope.dimension_count").value_or(hd_full));
  rope_swa.n_rot = static_cast<int>(f.GetUIntOpt(p + "rope.dimension_count_swa").value_or(g4 ? hd_swa : hd_full));
  rope_full.freq_factors = g4 && f.FindTensor("rope_freqs.weight") != nullptr;

  c.final_softcap = static_cast<float>(f.GetFloatOpt(p + "final_logit_softcapping").value_or(0.0));
  if (c.arch == Arch::kGemma4Assistant) c.final_softcap = 0;  // the drafter's head has no softcap
  c.v_norm = g4;

  const int n_shared = static_cast<int>(f.GetUIntOpt(p + "attention.shared_kv_layers").value_or(0));
  if (n_shared < 0 || n_shared > c.n_layer) Fail("%s%sattention.shared_kv_layers = %d is out of range", f.Where().c_str(), p.c_str(), n_shared);
  c.n_embd_per_layer = static_cast<int64_t>(f.GetUIntOpt(p + "embedding_length_per_layer_input").value_or(0));
  c.n_expert = static_cast<int>(f.GetUIntOpt(p + "expert_count").value_or(0));
  c.n_expert_used = static_cast<int>(f.GetUIntOpt(p + "expert_used_count").value_or(0));
  c.n_ff_exp = static_cast<int64_t>(f.GetUIntOpt(p + "expert_feed_forward_length").value_or(0));
  if (c.n_expert > 0 && (c.n_expert_used <= 0 || c.n_expert_used > c.n_expert || c.n_ff_exp <= 0)) {
    Fail("%sinconsistent expert counts: expert_count %d, expert_used_count %d, expert_feed_forward_length %lld",
         f.Where().c_str(), c.n_expert, c.n_expert_used, (long long)c.n_ff_exp);
  }

  c.layers.resize(static_cast<size_t>(c.n_layer));
  for (int i = 0; i < c.n_layer; ++i) {
    LayerConfig& L = c.layers[i];
    L.sliding = sliding[i];
    L.n_head = static_cast<int>(Positive(f, p + "attention.head_count", n_head[i], 4096));
    L.n_head_kv = static_cast<int>(Positive(f, p + "attention.head_count_kv", n_head_kv[i], 4096));
    if (L.n_head % L.n_head_kv != 0) {
      Fail("%slayer %d: %d query heads are not a multiple of %d KV heads", f.Where().c_str(), i, L.n_head, L.n_head_kv);
    }
    L.head_dim = static_cast<int>(L.sliding ? hd_swa : hd_full);
    L.n_ff = Positive(f, p + "feed_forward_length", n_ff[i], int64_t{1} << 20);
    L.rope = L.sliding ? rope_swa : rope_full;
    if (L.rope.n_rot <= 0 || L.rope.n_rot > L.head_dim || L.rope.n_rot % 2) {
      Fail("%slayer %d: RoPE dimension count %d does not fit head size %d", f.Where().c_str(), i, L.rope.n_rot, L.head_dim);
    }
    L.has_kv = c.arch != Arch::kGemma4Assistant && i < c.n_layer - n_shared;
    L.kv_source = i;
  }
  // A KV-shared layer reads the cache of the last non-shared layer of its own type (HF
  // Gemma4TextAttention: store_full_length_kv / shared_kv_states).
  for (int i = 0; i < c.n_layer; ++i) {
    LayerConfig& L = c.layers[i];
    if (L.has_kv || c.arch == Arch::kGemma4Assistant) continue;
    int src = -1;
    for (int j = 0; j < c.n_layer - n_shared; ++j) {
      if (c.layers[j].sliding == L.sliding) src = j;
    }
    if (src < 0) Fail("%slayer %d shares KV but no earlier layer of its type computes any", f.Where().c_str(), i);
    if (c.layers[src].n_head_kv != L.n_head_kv || c.layers[src].head_dim != L.head_dim) {
      Fail("%slayer %d shares the KV cache of layer %d but their KV shapes differ", f.Where().c_str(), i, src);
    }
    L.kv_source = src;
  }

  if (c.arch == Arch::kGemma3) {
    // llama.cpp (after gemma_pytorch): query_pre_attn_scalar is n_embd/n_head for the 27B, head_dim otherwise.
    const bool is27b = c.n_layer == 62;
    c.attn_scale = static_cast<float>(1.0 / std::sqrt(is27b ? double(c.n_embd / c.layers[0].n_head) : double(hd_full)));
  } else {
    c.attn_scale = 1.0f;
  }
  if (c.arch == Arch::kGemma4Assistant) {
    c.n_embd_backbone = static_cast<int64_t>(f.GetUInt(p + "embedding_length_out"));
  }
  // HF/JAX multiply by sqrt(hidden) cast to the weight dtype (bf16): 61.97 -> 62.0 for the 12B.
  c.embed_scale = RoundToBf16(std::sqrt(static_cast<float>(c.n_embd)));
  return c;
}

}  // namespace g4
