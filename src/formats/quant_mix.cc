#include "formats/quant_mix.h"

#include <cctype>
#include <cstdio>

#include "util/error.h"

namespace g4 {

namespace {
struct Named {
  FileType t;
  const char* name;
};
constexpr Named kNames[] = {
    {FileType::F32, "F32"},       {FileType::F16, "F16"},       {FileType::BF16, "BF16"},
    {FileType::Q8_0, "Q8_0"},     {FileType::Q6_K, "Q6_K"},     {FileType::Q5_K_M, "Q5_K_M"},
    {FileType::Q5_K_S, "Q5_K_S"}, {FileType::Q4_K_M, "Q4_K_M"}, {FileType::Q4_K_S, "Q4_K_S"},
    {FileType::Q5_0, "Q5_0"},     {FileType::Q5_1, "Q5_1"},     {FileType::Q4_0, "Q4_0"},
    {FileType::Q4_1, "Q4_1"},
};

GgmlType BaseType(FileType t) {
  switch (t) {
    case FileType::F32: return GgmlType::F32;
    case FileType::F16: return GgmlType::F16;
    case FileType::BF16: return GgmlType::BF16;
    case FileType::Q8_0: return GgmlType::Q8_0;
    case FileType::Q6_K: return GgmlType::Q6_K;
    case FileType::Q5_K_M: case FileType::Q5_K_S: return GgmlType::Q5_K;
    case FileType::Q4_K_M: case FileType::Q4_K_S: return GgmlType::Q4_K;
    case FileType::Q5_0: return GgmlType::Q5_0;
    case FileType::Q5_1: return GgmlType::Q5_1;
    case FileType::Q4_0: return GgmlType::Q4_0;
    case FileType::Q4_1: return GgmlType::Q4_1;
  }
  return GgmlType::F32;
}

bool IsQuantized(GgmlType t) { return Traits(t).block_size > 1; }

bool Contains(const std::string& s, const char* sub) { return s.find(sub) != std::string::npos; }

enum class Cat { kOutput, kTokenEmbd, kAttnV, kAttnK, kAttnQ, kAttnOut, kFfnUp, kFfnGate, kFfnDown, kOther };

Cat Category(const std::string& n) {
  if (n == "output.weight") return Cat::kOutput;
  if (n == "token_embd.weight" || n == "per_layer_token_embd.weight") return Cat::kTokenEmbd;
  if (Contains(n, "attn_v.weight")) return Cat::kAttnV;
  if (Contains(n, "attn_k.weight")) return Cat::kAttnK;
  if (Contains(n, "attn_q.weight")) return Cat::kAttnQ;
  if (Contains(n, "attn_output.weight")) return Cat::kAttnOut;
  if (Contains(n, "ffn_up")) return Cat::kFfnUp;
  if (Contains(n, "ffn_gate")) return Cat::kFfnGate;
  if (Contains(n, "ffn_down")) return Cat::kFfnDown;
  return Cat::kOther;
}

bool AllowsQuantization(const QuantMix::TensorDesc& t) {
  if (t.ne.size() < 2) return false;
  const std::string& n = t.name;
  if (n.size() < 6 || n.compare(n.size() - 6, 6, "weight") != 0) return false;
  if (Contains(n, "_norm.weight")) return false;
  if (Contains(n, "ffn_gate_inp.weight")) return false;  // MoE router
  if (Contains(n, "per_layer_model_proj")) return false;
  if (Contains(n, ".position_embd") || Contains(n, ".patch_embd")) return false;
  return true;
}

bool UseMoreBits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

GgmlType Fallback(GgmlType t, int64_t ncols) {
  if (ncols % Traits(t).block_size == 0) return t;
  GgmlType r;
  switch (t) {
    case GgmlType::Q4_K: r = GgmlType::Q5_0; break;
    case GgmlType::Q5_K: r = GgmlType::Q5_1; break;
    case GgmlType::Q6_K: r = GgmlType::Q8_0; break;
    default: r = GgmlType::F16; break;
  }
  if (ncols % Traits(r).block_size != 0) r = GgmlType::F16;
  return r;
}

int LayerOf(const std::string& name) {
  int l = -1;
  if (std::sscanf(name.c_str(), "blk.%d.", &l) != 1) return -1;
  return l;
}
}  // namespace

std::optional<FileType> ParseFileType(const std::string& name) {
  std::string u;
  for (char c : name) u += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const auto& n : kNames) {
    if (u == n.name) return n.t;
  }
  return std::nullopt;
}

const char* FileTypeName(FileType t) {
  for (const auto& n : kNames) {
    if (n.t == t) return n.name;
  }
  return "?";
}

std::string SupportedFileTypes() {
  std::string s;
  for (const auto& n : kNames) s += std::string(s.empty() ? "" : ", ") + n.name;
  return s;
}

QuantMix::QuantMix(FileType ftype, const std::vector<TensorDesc>& tensors, int n_layer, int n_expert)
    : ftype_(ftype), tensors_(tensors), n_layer_(n_layer), n_expert_(n_expert) {
  for (const auto& t : tensors_) {
    const Cat c = Category(t.name);
    if (c == Cat::kAttnV) ++n_attn_v_;
    if (c == Cat::kOutput) tied_ = false;
  }
}

GgmlType QuantMix::TypeFor(size_t k) {
  G4_CHECK(k < tensors_.size());
  return Choose(tensors_[k]);
}

GgmlType QuantMix::Choose(const TensorDesc& t) {
  if (!AllowsQuantization(t)) return GgmlType::F32;
  GgmlType type = BaseType(ftype_);
  if (!IsQuantized(type)) return type;  // F32 / F16 / BF16 files: every 2-D weight in that type
  const Cat cat = Category(t.name);
  const FileType f = ftype_;
  if (cat == Cat::kOutput || (tied_ && cat == Cat::kTokenEmbd)) {
    if (t.ne[0] % Traits(type).block_size != 0) {
      type = GgmlType::Q8_0;
    } else if (type != GgmlType::Q8_0) {
      type = GgmlType::Q6_K;
    }
  } else if (cat == Cat::kAttnV) {
    if ((f == FileType::Q4_K_M || f == FileType::Q5_K_M) && UseMoreBits(i_attn_v_, n_attn_v_)) {
      type = GgmlType::Q6_K;
    } else if (f == FileType::Q4_K_S && i_attn_v_ < 4) {
      type = GgmlType::Q5_K;
    }
    if (n_expert_ == 8) type = GgmlType::Q8_0;
    ++i_attn_v_;
  } else if (cat == Cat::kAttnK) {
    if (n_expert_ == 8) type = GgmlType::Q8_0;
  } else if (cat == Cat::kFfnDown) {
    int i_layer = i_ffn_down_;
    if (n_expert_ > 1) {
      i_layer = LayerOf(t.name);
      if (i_layer < 0 || i_layer >= n_layer_) Fail("cannot determine the layer of tensor '%s'", t.name.c_str());
    }
    const int n = n_layer_;
    if (f == FileType::Q4_K_M) {
      if (UseMoreBits(i_layer, n)) type = GgmlType::Q6_K;
    } else if (f == FileType::Q5_K_M && UseMoreBits(i_layer, n)) {
      type = GgmlType::Q6_K;
    } else if (f == FileType::Q4_K_S && i_layer < n / 8) {
      type = GgmlType::Q5_K;
    }
    ++i_ffn_down_;
  } else if (cat == Cat::kAttnOut) {
    if (n_expert_ == 8 && (f == FileType::Q4_K_S || f == FileType::Q4_K_M)) type = GgmlType::Q5_K;
  }
  return Fallback(type, t.ne[0]);
}

}  // namespace g4
