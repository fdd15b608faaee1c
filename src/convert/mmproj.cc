#include "convert/mmproj.h"

#include <cstring>
#include <functional>
#include <memory>
#include <unistd.h>

#include "convert/convert.h"
#include "formats/gguf.h"
#include "kernels/kernels.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace g4::convert {

namespace {

constexpr int64_t kPatch = 48, kPatchValues = kPatch * kPatch * 3, kPositions = 1120;

// HF index (row r, column x, channel c) of GGUF patch index i = c*48*48 + r*48 + x.
int64_t HwcIndex(int64_t i) {
  const int64_t c = i / (kPatch * kPatch), r = (i / kPatch) % kPatch, x = i % kPatch;
  return r * kPatch * 3 + x * 3 + c;
}

const StTensor& Need(const Checkpoint& c, const std::string& name, std::vector<int64_t> shape) {
  const StTensor* t = c.Find(name);
  if (!t) Fail("%s: missing tensor '%s' (the multimodal embedder needs it)", c.dir().c_str(), name.c_str());
  if (t->shape != shape) {
    std::string w = "[";
    for (size_t i = 0; i < shape.size(); ++i) w += (i ? ", " : "") + std::to_string(shape[i]);
    w += "]";
    Fail("%s: tensor '%s' has shape %s, expected %s", t->file->c_str(), name.c_str(), t->ShapeString().c_str(), w.c_str());
  }
  return *t;
}

struct Out {
  std::string name;
  std::vector<int64_t> ne;
  GgmlType type;
  std::function<void(int64_t row, float* dst)> row;  // fills GGUF row `row` (ne[0] values)
};

}  // namespace

bool HasMultimodalEmbedder(const Checkpoint& c) {
  return c.Find("model.vision_embedder.patch_dense.weight") || c.Find("model.embed_audio.embedding_projection.weight");
}

std::string WriteMmproj(const Checkpoint& c, const std::string& out_path, GgmlType type, int n_threads, bool quiet) {
  const std::string V = "model.vision_embedder.";
  const bool vision = c.Find(V + "patch_dense.weight") != nullptr;
  const bool audio = c.Find("model.embed_audio.embedding_projection.weight") != nullptr;
  if (!vision && !audio) Fail("%s: no multimodal embedder tensors (model.vision_embedder.*, model.embed_audio.*)", c.dir().c_str());
  const nlohmann::json& cfg = c.config();
  const nlohmann::json& tc = cfg.contains("text_config") ? cfg["text_config"] : cfg;
  if (!tc.contains("hidden_size") || !tc["hidden_size"].is_number_integer()) Fail("%s: no hidden_size", c.Path("config.json").c_str());
  const int64_t D = tc["hidden_size"].get<int64_t>();
  const float eps = tc.contains("rms_norm_eps") && tc["rms_norm_eps"].is_number() ? tc["rms_norm_eps"].get<float>() : 1e-6f;

  std::vector<Out> outs;
  auto plain = [&](const std::string& name, const StTensor& t, GgmlType ty) {
    const int64_t cols = t.shape.back();
    std::vector<int64_t> ne(t.shape.rbegin(), t.shape.rend());
    outs.push_back({name, ne, ty, [&t, cols](int64_t r, float* dst) { ReadF32(t, r * cols, cols, dst); }});
  };
  auto chw_vector = [&](const std::string& name, const StTensor& t) {
    outs.push_back({name, {kPatchValues}, GgmlType::F32, [&t](int64_t, float* dst) {
                      std::vector<float> hwc(kPatchValues);
                      ReadF32(t, 0, kPatchValues, hwc.data());
                      for (int64_t i = 0; i < kPatchValues; ++i) dst[i] = hwc[HwcIndex(i)];
                    }});
  };
  if (vision) {
    chw_vector("v.patch_norm.1.weight", Need(c, V + "patch_ln1.weight", {kPatchValues}));
    chw_vector("v.patch_norm.1.bias", Need(c, V + "patch_ln1.bias", {kPatchValues}));
    const StTensor& pd = Need(c, V + "patch_dense.weight", {D, kPatchValues});
    outs.push_back({"v.patch_embd.weight", {kPatchValues, D}, type, [&pd](int64_t r, float* dst) {
                      std::vector<float> hwc(kPatchValues);
                      ReadF32(pd, r * kPatchValues, kPatchValues, hwc.data());
                      for (int64_t i = 0; i < kPatchValues; ++i) dst[i] = hwc[HwcIndex(i)];
                    }});
    plain("v.patch_embd.bias", Need(c, V + "patch_dense.bias", {D}), GgmlType::F32);
    plain("v.patch_norm.2.weight", Need(c, V + "patch_ln2.weight", {D}), GgmlType::F32);
    plain("v.patch_norm.2.bias", Need(c, V + "patch_ln2.bias", {D}), GgmlType::F32);
    // [1120, 2, D] -> ggml [D, 1120, 2]: GGUF row (table t, position p) is HF [p][t].
    const StTensor& pe = Need(c, V + "pos_embedding", {kPositions, 2, D});
    outs.push_back({"v.position_embd.weight", {D, kPositions, 2}, type, [&pe, D](int64_t row, float* dst) {
                      const int64_t t = row / kPositions, p = row % kPositions;
                      ReadF32(pe, (p * 2 + t) * D, D, dst);
                    }});
    plain("v.patch_norm.3.weight", Need(c, V + "pos_norm.weight", {D}), GgmlType::F32);
    plain("v.patch_norm.3.bias", Need(c, V + "pos_norm.bias", {D}), GgmlType::F32);
    plain("mm.input_projection.weight", Need(c, "model.embed_vision.embedding_projection.weight", {D, D}), type);
  }
  if (audio) plain("mm.a.input_projection.weight", Need(c, "model.embed_audio.embedding_projection.weight", {D, 640}), type);

  gguf::Writer w;
  w.SetString("general.architecture", "clip");
  w.SetString("general.type", "mmproj");
  w.SetString("general.name", "mmproj-" + c.dir().substr(c.dir().find_last_of('/') + 1));
  w.SetUInt32("general.file_type", static_cast<uint32_t>(type == GgmlType::F32 ? FileType::F32
                                                         : type == GgmlType::F16 ? FileType::F16 : FileType::BF16));
  w.SetBool("clip.has_vision_encoder", vision);
  w.SetBool("clip.has_audio_encoder", audio);
  if (vision) {
    w.SetString("clip.vision.projector_type", "gemma4uv");
    w.SetUInt32("clip.vision.image_size", 224);
    w.SetUInt32("clip.vision.patch_size", 16);
    w.SetUInt32("clip.vision.embedding_length", static_cast<uint32_t>(D));
    w.SetUInt32("clip.vision.feed_forward_length", 0);
    w.SetUInt32("clip.vision.block_count", 0);
    w.SetUInt32("clip.vision.attention.head_count", 0);
    w.SetUInt32("clip.vision.projection_dim", static_cast<uint32_t>(D));
    w.SetFloat32("clip.vision.attention.layer_norm_epsilon", eps);
    w.SetFloat32Array("clip.vision.image_mean", {0, 0, 0});
    w.SetFloat32Array("clip.vision.image_std", {1, 1, 1});
  }
  if (audio) {
    w.SetString("clip.audio.projector_type", "gemma4ua");
    w.SetUInt32("clip.audio.embedding_length", 640);
    w.SetUInt32("clip.audio.feed_forward_length", 0);
    w.SetUInt32("clip.audio.block_count", 0);
    w.SetUInt32("clip.audio.attention.head_count", 0);
    w.SetUInt32("clip.audio.projection_dim", static_cast<uint32_t>(D));
    w.SetUInt32("clip.audio.num_mel_bins", 128);
    w.SetFloat32("clip.audio.attention.layer_norm_epsilon", eps);
  }
  auto pool = std::make_shared<ThreadPool>(n_threads);
  for (const Out& o : outs) {
    const Out* p = &o;
    w.AddTensor(o.name, o.type, o.ne, [p, pool](uint8_t* dst, size_t) {
      const int64_t cols = p->ne[0];
      int64_t rows = 1;
      for (size_t d = 1; d < p->ne.size(); ++d) rows *= p->ne[d];
      const size_t rb = static_cast<size_t>(RowBytes(p->type, cols));
      pool->ParallelFor(rows, 4, [&](int64_t r0, int64_t r1) {
        std::vector<float> row(static_cast<size_t>(cols));
        for (int64_t r = r0; r < r1; ++r) {
          p->row(r, row.data());
          kernels::QuantizeRow(p->type, row.data(), dst + static_cast<size_t>(r) * rb, cols);
        }
      });
    });
  }
  const bool tty = !quiet && isatty(2);
  w.Write(out_path, [&](size_t done, size_t n) {
    if (tty || (!quiet && done == n)) DrawProgress(done, n, done < n ? outs[done].name : "done");
  });
  std::string s = "clip mmproj: ";
  s += std::to_string(outs.size());
  s += " tensors";
  s += vision ? ", vision" : "";
  s += audio ? ", audio" : "";
  return s;
}

}  // namespace g4::convert
