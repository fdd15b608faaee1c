// A loaded model: the mapped GGUF file, its configuration and its weights. Immutable after loading,
// so one Model is shared by every context (server slots, drafters) that runs it.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "formats/ggml_types.h"
#include "formats/gguf.h"
#include "model/config.h"
#include "model/weights.h"

namespace g4 {

class Model {
 public:
  // Maps and validates the file, reads the configuration and binds every tensor. Throws g4::Error
  // naming the file and what is wrong.
  static std::unique_ptr<Model> Load(const std::string& path);

  const gguf::File& file() const { return *file_; }
  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const std::string& path() const { return file_->path(); }

  // The KV cache element type used when the user does not choose one: the cache keeps the
  // precision of the attention weights, so F32 models (the golden test models) get an F32 cache and
  // every quantized or half-precision model an F16 one (half the memory, as llama.cpp's default).
  GgmlType DefaultCacheType() const;

  // Reads every page of the weights once, in file order, so the first tokens do not wait for page
  // faults; progress(fraction) is called as it goes (the loading bar of `gemma4 run`).
  void Prefault(const std::function<void(double)>& progress) const;

 private:
  Model() = default;
  std::unique_ptr<gguf::File> file_;
  ModelConfig config_;
  ModelWeights weights_;
};

}  // namespace g4
