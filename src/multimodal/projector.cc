#include "multimodal/projector.h"

#include <cmath>
#include <cstring>

#include "model/ops.h"
#include "util/error.h"

namespace g4::mm {

Patches PatchifyChw(const RgbImage& img, const float mean[3], const float stdev[3]) {
  if (img.width <= 0 || img.height <= 0 || img.width % 48 != 0 || img.height % 48 != 0) {
    Fail("an image of %dx%d cannot be cut into 48x48 patches (both sides must be positive multiples of 48)", img.width,
         img.height);
  }
  Patches p;
  p.rows = img.height / 48;
  p.cols = img.width / 48;
  p.values.resize(static_cast<size_t>(p.count()) * kPatchValues);
  for (int pr = 0; pr < p.rows; ++pr) {
    for (int pc = 0; pc < p.cols; ++pc) {
      float* out = p.values.data() + (static_cast<size_t>(pr) * p.cols + pc) * kPatchValues;  // [3][48][48]
      for (int c = 0; c < 3; ++c) {
        for (int r = 0; r < 48; ++r) {
          for (int x = 0; x < 48; ++x) {
            const float v = static_cast<float>(img.at(pc * 48 + x, pr * 48 + r, c)) / 255.0f;
            out[(c * 48 + r) * 48 + x] = (v - mean[c]) / stdev[c];
          }
        }
      }
    }
  }
  return p;
}

namespace {

// ggml_norm followed by the affine weight and bias: mean and variance accumulated in double, the
// scale 1/sqrt(var + eps) in float. In place on one row of n values.
void LayerNorm(float* x, const float* w, const float* b, int64_t n, float eps) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  double sum2 = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i] - mean;
    sum2 += static_cast<double>(v) * v;
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(sum2 / static_cast<double>(n)) + eps);
  for (int64_t i = 0; i < n; ++i) x[i] = (x[i] - mean) * scale * w[i] + b[i];
}

constexpr float kLayerNormEps = 1e-5f;  // nn.LayerNorm default; llama.cpp hard-codes it for gemma4uv
constexpr float kAudioEps = 1e-6f;      // llama.cpp hard-codes it for gemma4ua

const char* kAudioTensor = "mm.a.input_projection.weight";

}  // namespace

std::unique_ptr<Projector> Projector::Open(const std::string& path) {
  std::unique_ptr<Projector> p(new Projector());
  p->owned_ = gguf::File::Open(path);
  const gguf::File& f = *p->owned_;
  const std::string arch = f.GetStringOpt("general.architecture").value_or("");
  if (arch != "clip") {
    Fail("%snot a multimodal projector: general.architecture is '%s', expected 'clip'", f.Where().c_str(), arch.c_str());
  }
  const bool v = f.GetBoolOpt("clip.has_vision_encoder").value_or(false);
  const bool a = f.GetBoolOpt("clip.has_audio_encoder").value_or(false);
  auto check_type = [&](const char* key, const char* want) {
    std::string t = f.GetStringOpt(key).value_or(f.GetStringOpt("clip.projector_type").value_or(""));
    if (t != want) {
      Fail("%s%s is '%s': only Gemma 4 unified projectors ('gemma4uv' for images, 'gemma4ua' for audio) are supported",
           f.Where().c_str(), key, t.c_str());
    }
  };
  if (v) check_type("clip.vision.projector_type", "gemma4uv");
  if (a) check_type("clip.audio.projector_type", "gemma4ua");
  if (!v && !a) Fail("%sthe projector has neither a vision nor an audio part", f.Where().c_str());
  p->source_ = path;
  p->Bind(f, v, a);
  return p;
}

std::unique_ptr<Projector> Projector::FromModelFile(const gguf::File& f) {
  const bool v = f.FindTensor("v.patch_embd.weight") != nullptr;
  const bool a = f.FindTensor(kAudioTensor) != nullptr;
  if (!v && !a) return nullptr;
  std::unique_ptr<Projector> p(new Projector());
  p->source_ = f.path();
  p->Bind(f, v, a);
  return p;
}

void Projector::Bind(const gguf::File& f, bool vision, bool audio) {
  const std::string where = f.Where();
  auto matrix = [&](const char* name) {
    const gguf::TensorInfo* t = f.FindTensor(name);
    if (!t) Fail("%smissing tensor '%s'", where.c_str(), name);
    if (!kernels::SupportsMatMul(t->type)) {
      Fail("%stensor '%s' has type %s, which the matrix kernels do not support", where.c_str(), name, TypeName(t->type));
    }
    tensors_.push_back(t);
    kernels::Matrix m;
    m.type = t->type;
    m.cols = t->ne[0];
    m.rows = t->ne[1] * t->ne[2] * t->ne[3];
    m.data = t->data;
    return m;
  };
  auto vec = [&](const char* name, int64_t n) {
    const gguf::TensorInfo& t = f.RequireTensor(name, {n});
    if (t.type != GgmlType::F32 && t.type != GgmlType::F16 && t.type != GgmlType::BF16) {
      Fail("%stensor '%s' has type %s; norms and biases must be f32, f16 or bf16", where.c_str(), name, TypeName(t.type));
    }
    tensors_.push_back(&t);
    std::vector<float> out(static_cast<size_t>(n));
    kernels::DequantizeRow(t.type, t.data, out.data(), n);
    return out;
  };
  if (vision) {
    const gguf::TensorInfo* pe = f.FindTensor("v.patch_embd.weight");
    if (!pe) Fail("%smissing tensor 'v.patch_embd.weight'", where.c_str());
    n_embd_ = pe->ne[1];
    const int64_t patch = f.GetUIntOpt("clip.vision.patch_size").value_or(16) *
                          static_cast<int64_t>(f.GetFloatOpt("clip.vision.projector.scale_factor").value_or(3));
    if (patch != 48) Fail("%sunsupported vision patch size %lld (the Gemma 4 embedder uses 48)", where.c_str(), (long long)patch);
    const int64_t D = n_embd_;
    if (D <= 0) Fail("%stensor 'v.patch_embd.weight' has shape %s", where.c_str(), pe->ShapeString().c_str());
    f.RequireTensor("v.patch_embd.weight", {kPatchValues, D});
    f.RequireTensor("v.position_embd.weight", {D, kPositionTable, 2});
    f.RequireTensor("mm.input_projection.weight", {D, D});
    ln1_w_ = vec("v.patch_norm.1.weight", kPatchValues);
    ln1_b_ = vec("v.patch_norm.1.bias", kPatchValues);
    patch_w_ = matrix("v.patch_embd.weight");
    patch_b_ = vec("v.patch_embd.bias", D);
    ln2_w_ = vec("v.patch_norm.2.weight", D);
    ln2_b_ = vec("v.patch_norm.2.bias", D);
    pos_ = matrix("v.position_embd.weight");
    ln3_w_ = vec("v.patch_norm.3.weight", D);
    ln3_b_ = vec("v.patch_norm.3.bias", D);
    proj_ = matrix("mm.input_projection.weight");
    eps_ = static_cast<float>(f.GetFloatOpt("clip.vision.attention.layer_norm_epsilon").value_or(1e-6));
    if (!(eps_ > 0 && eps_ < 1)) Fail("%sclip.vision.attention.layer_norm_epsilon is %g", where.c_str(), eps_);
    if (f.Has("clip.vision.image_mean") || f.Has("clip.vision.image_std")) {
      const std::vector<float> m = f.GetFloatArray("clip.vision.image_mean");
      const std::vector<float> s = f.GetFloatArray("clip.vision.image_std");
      if (m.size() != 3 || s.size() != 3) Fail("%sclip.vision.image_mean and image_std must have 3 values", where.c_str());
      for (int c = 0; c < 3; ++c) {
        if (!(s[c] > 0)) Fail("%sclip.vision.image_std[%d] is %g", where.c_str(), c, s[c]);
        mean_[c] = m[c];
        std_[c] = s[c];
      }
    }
    has_vision_ = true;
  }
  if (audio) {
    const gguf::TensorInfo* t = f.FindTensor(kAudioTensor);
    if (!t) Fail("%smissing tensor '%s'", where.c_str(), kAudioTensor);
    if (n_embd_ == 0) n_embd_ = t->ne[1];
    f.RequireTensor(kAudioTensor, {kAudioFrame, n_embd_});
    audio_proj_ = matrix(kAudioTensor);
    has_audio_ = true;
  }
}

std::vector<float> Projector::EmbedPatches(const Patches& p, ThreadPool& pool, kernels::Math math) const {
  if (!has_vision_) Fail("%s: the projector has no vision embedder", source_.c_str());
  const int64_t n = p.count(), D = n_embd_;
  G4_CHECK(static_cast<int64_t>(p.values.size()) == n * kPatchValues);
  if (p.cols > kPositionTable || p.rows > kPositionTable) {
    Fail("a grid of %dx%d patches exceeds the position table (%d a side)", p.rows, p.cols, kPositionTable);
  }
  std::vector<float> x(p.values);              // [n][6912]
  std::vector<float> h(static_cast<size_t>(n * D));  // [n][D]
  std::vector<float> out(static_cast<size_t>(n * D));  // [n][D]
  pool.ParallelFor(n, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      LayerNorm(x.data() + i * kPatchValues, ln1_w_.data(), ln1_b_.data(), kPatchValues, kLayerNormEps);
    }
  });
  kernels::MatMul(patch_w_, x.data(), kPatchValues, n, h.data(), D, math, pool);
  pool.ParallelFor(n, 4, [&](int64_t i0, int64_t i1) {
    std::vector<float> px(static_cast<size_t>(D)), py(static_cast<size_t>(D));  // position rows
    for (int64_t i = i0; i < i1; ++i) {
      float* hi = h.data() + i * D;
      for (int64_t d = 0; d < D; ++d) hi[d] += patch_b_[d];
      LayerNorm(hi, ln2_w_.data(), ln2_b_.data(), D, kLayerNormEps);
      const int64_t col = i % p.cols, row = i / p.cols;
      kernels::DequantizeRow(pos_.type, pos_.row(col), px.data(), D);
      kernels::DequantizeRow(pos_.type, pos_.row(kPositionTable + row), py.data(), D);
      for (int64_t d = 0; d < D; ++d) hi[d] = hi[d] + px[d] + py[d];
      LayerNorm(hi, ln3_w_.data(), ln3_b_.data(), D, kLayerNormEps);
      ops::RmsNorm(hi, nullptr, eps_, D, hi);
    }
  });
  kernels::MatMul(proj_, h.data(), D, n, out.data(), D, math, pool);
  return out;
}

std::vector<float> Projector::EmbedFrames(const float* frames, int64_t n, ThreadPool& pool, kernels::Math math) const {
  if (!has_audio_) Fail("%s: the projector has no audio projection", source_.c_str());
  const int64_t D = n_embd_;
  std::vector<float> x(frames, frames + n * kAudioFrame);  // [n][640]
  std::vector<float> out(static_cast<size_t>(n * D));      // [n][D]
  pool.ParallelFor(n, 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) ops::RmsNorm(x.data() + i * kAudioFrame, nullptr, kAudioEps, kAudioFrame, x.data() + i * kAudioFrame);
  });
  kernels::MatMul(audio_proj_, x.data(), kAudioFrame, n, out.data(), D, math, pool);
  return out;
}

}  // namespace g4::mm
