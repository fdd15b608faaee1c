#include "multimodal/synthetic_mmproj.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "formats/gguf.h"
#include "kernels/kernels.h"
#include "multimodal/projector.h"
#include "util/error.h"
#include "util/rng.h"

namespace g4::mm {

void WriteSyntheticMmproj(const SyntheticMmprojOptions& opt, const std::string& path) {
  const int64_t D = opt.n_embd;
  if (D <= 0) Fail("synthetic mmproj: bad hidden size %lld", (long long)D);
  if (!kernels::SupportsMatMul(opt.matrix_type)) Fail("synthetic mmproj: unsupported matrix type %s", TypeName(opt.matrix_type));
  gguf::Writer w;
  w.SetString("general.architecture", "clip");
  w.SetString("general.type", "mmproj");
  w.SetString("general.name", opt.name);
  w.SetUInt32("general.file_type", opt.matrix_type == GgmlType::F32 ? 0 : 1);
  w.SetBool("clip.has_vision_encoder", true);
  w.SetBool("clip.has_audio_encoder", true);
  w.SetString("clip.vision.projector_type", "gemma4uv");
  w.SetString("clip.audio.projector_type", "gemma4ua");
  w.SetUInt32("clip.vision.image_size", 224);
  w.SetUInt32("clip.vision.patch_size", 16);
  w.SetUInt32("clip.vision.embedding_length", static_cast<uint32_t>(D));
  w.SetUInt32("clip.vision.feed_forward_length", 0);
  w.SetUInt32("clip.vision.block_count", 0);
  w.SetUInt32("clip.vision.attention.head_count", 0);
  w.SetUInt32("clip.vision.projection_dim", static_cast<uint32_t>(D));
  w.SetFloat32("clip.vision.attention.layer_norm_epsilon", 1e-6f);
  w.SetFloat32Array("clip.vision.image_mean", {0, 0, 0});
  w.SetFloat32Array("clip.vision.image_std", {1, 1, 1});
  w.SetUInt32("clip.audio.embedding_length", kAudioFrame);
  w.SetUInt32("clip.audio.feed_forward_length", 0);
  w.SetUInt32("clip.audio.block_count", 0);
  w.SetUInt32("clip.audio.attention.head_count", 0);
  w.SetUInt32("clip.audio.projection_dim", static_cast<uint32_t>(D));
  w.SetUInt32("clip.audio.num_mel_bins", 128);
  w.SetFloat32("clip.audio.attention.layer_norm_epsilon", 1e-6f);

  struct Plan {
    const char* name;
    std::vector<int64_t> ne;
    float mean, stdev;
    bool matrix;
  };
  const float s_patch = 1.0f / std::sqrt(static_cast<float>(kPatchValues));
  const float s_d = 1.0f / std::sqrt(static_cast<float>(D));
  const std::vector<Plan> plan = {
      {"v.patch_norm.1.weight", {kPatchValues}, 1, 0.1f, false},
      {"v.patch_norm.1.bias", {kPatchValues}, 0, 0.02f, false},
      {"v.patch_embd.weight", {kPatchValues, D}, 0, s_patch, true},
      {"v.patch_embd.bias", {D}, 0, 0.02f, false},
      {"v.patch_norm.2.weight", {D}, 1, 0.1f, false},
      {"v.patch_norm.2.bias", {D}, 0, 0.02f, false},
      {"v.position_embd.weight", {D, kPositionTable, 2}, 0, 0.5f, true},
      {"v.patch_norm.3.weight", {D}, 1, 0.1f, false},
      {"v.patch_norm.3.bias", {D}, 0, 0.02f, false},
      {"mm.input_projection.weight", {D, D}, 0, s_d, true},
      {"mm.a.input_projection.weight", {kAudioFrame, D}, 0, 1.0f / std::sqrt(static_cast<float>(kAudioFrame)), true},
  };
  for (size_t k = 0; k < plan.size(); ++k) {
    const Plan p = plan[k];
    const GgmlType type = p.matrix ? opt.matrix_type : GgmlType::F32;
    const uint64_t seed = opt.seed * 0x100000001b3ull + (k + 1) * 0x9e3779b97f4a7c15ull;
    w.AddTensor(p.name, type, p.ne, [p, type, seed](uint8_t* dst, size_t) {
      const int64_t cols = p.ne[0];
      int64_t rows = 1;
      for (size_t d = 1; d < p.ne.size(); ++d) rows *= p.ne[d];
      const size_t row_bytes = static_cast<size_t>(RowBytes(type, cols));
      std::vector<float> row(static_cast<size_t>(cols));  // [cols]
      for (int64_t r = 0; r < rows; ++r) {
        SplitMix64 rng{seed ^ (static_cast<uint64_t>(r) * 0xd1b54a32d192ed03ull)};
        for (int64_t c = 0; c < cols; ++c) row[c] = p.mean + p.stdev * rng.Normal();
        kernels::QuantizeRow(type, row.data(), dst + static_cast<size_t>(r) * row_bytes, cols);
      }
    });
  }
  w.Write(path);
}

}  // namespace g4::mm
