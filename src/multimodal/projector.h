// The Gemma 4 12B's encoder-free multimodal input: the vision embedder (48x48-pixel patches to soft
// tokens) and the audio projection (640-sample frames to soft tokens). GEMMA4.md section 1.2.
//
// Weights come from llama.cpp's multimodal projector GGUF (`general.architecture = clip`, projector
// types gemma4uv / gemma4ua) or from a model file that carries the same tensors. Tensor layout (ggml
// order, innermost first; D = the text model's hidden size):
//   v.patch_norm.1.{weight,bias}  [6912]       LayerNorm over a patch, inputs in (channel, row, col) order
//   v.patch_embd.{weight,bias}    [6912, D] [D]  Linear; its input columns are in the same CHW order
//   v.patch_norm.2.{weight,bias}  [D]
//   v.position_embd.weight        [D, 1120, 2]  table 0: column (x), table 1: row (y)
//   v.patch_norm.3.{weight,bias}  [D]
//   mm.input_projection.weight    [D, D]        after a no-scale RMSNorm
//   mm.a.input_projection.weight  [640, D]      audio: no-scale RMSNorm, then this
// llama.cpp's converter permutes the HF (row, col, channel) patch order to CHW because ggml's im2col
// emits channel-major patches; this engine flattens patches CHW too (see PatchifyChw), so no weight
// is permuted and quantized projector files work as they are. Matrices may be any type MatMul takes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "kernels/kernels.h"
#include "multimodal/image.h"
#include "util/thread_pool.h"

namespace g4::mm {

constexpr int kPatchValues = 48 * 48 * 3;  // 6912 inputs per patch
constexpr int kAudioFrame = 640;           // 40 ms at 16 kHz
constexpr int kPositionTable = 1120;       // rows of each position table: the largest grid side

// Patches of one image, in row-major grid order.
struct Patches {
  int rows = 0, cols = 0;
  std::vector<float> values;  // [rows * cols][6912]: (channel, row, col) within a patch, pixels / 255
  int64_t count() const { return int64_t{rows} * cols; }
};

// Cuts an RGB image whose sides are multiples of 48 into patches, scaling pixels as
// (x / 255 - mean[c]) / std[c] (mean 0 and std 1 for the 12B: no normalisation).
Patches PatchifyChw(const RgbImage& img, const float mean[3], const float stdev[3]);

class Projector {
 public:
  // Opens a llama.cpp mmproj GGUF (gemma4uv and/or gemma4ua). Throws naming the file and problem.
  static std::unique_ptr<Projector> Open(const std::string& path);
  // The projector tensors inside a model file, or null when it has none. The file must outlive it.
  static std::unique_ptr<Projector> FromModelFile(const gguf::File& file);

  bool has_vision() const { return has_vision_; }
  bool has_audio() const { return has_audio_; }
  int64_t n_embd() const { return n_embd_; }
  const std::string& source() const { return source_; }
  const float* image_mean() const { return mean_; }
  const float* image_std() const { return std_; }
  // Tensors it uses, for `gemma4 info`.
  const std::vector<const gguf::TensorInfo*>& tensors() const { return tensors_; }

  // Soft tokens of an image: [patches.count()][n_embd].
  std::vector<float> EmbedPatches(const Patches& p, ThreadPool& pool, kernels::Math math) const;
  // Soft tokens of audio: frames [n][640] of 16 kHz samples -> [n][n_embd].
  std::vector<float> EmbedFrames(const float* frames, int64_t n, ThreadPool& pool, kernels::Math math) const;

 private:
  Projector() = default;
  void Bind(const gguf::File& f, bool require_vision, bool require_audio);

  std::unique_ptr<gguf::File> owned_;
  std::string source_;
  std::vector<const gguf::TensorInfo*> tensors_;
  bool has_vision_ = false, has_audio_ = false;
  int64_t n_embd_ = 0;
  float eps_ = 1e-6f;          // the no-scale RMSNorm before each projection
  float mean_[3] = {0, 0, 0};  // pixel normalisation (clip.vision.image_mean / image_std)
  float std_[3] = {1, 1, 1};
  // Vision.
  std::vector<float> ln1_w_, ln1_b_;  // [6912]
  std::vector<float> ln2_w_, ln2_b_, ln3_w_, ln3_b_, patch_b_;  // [D]
  kernels::Matrix patch_w_;           // [D][6912]
  kernels::Matrix pos_;               // [2 * 1120][D]
  kernels::Matrix proj_;              // [D][D]
  // Audio.
  kernels::Matrix audio_proj_;        // [D][640]
};

}  // namespace g4::mm
