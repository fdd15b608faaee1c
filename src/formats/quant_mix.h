// Which type each tensor gets when a model is written or quantized to a file type such as Q4_K_M.
// These are llama.cpp's per-tensor choices (llama-quant.cpp, without an importance matrix), so a file
// made here has the same tensor types as one made by `llama-quantize`:
//  * 1-D tensors, norms, the MoE router and per_layer_model_proj stay F32;
//  * the tied token embedding (and per_layer_token_embd) get the output treatment (Q6_K, or Q8_0 when
//    the row length is not a multiple of 256);
//  * Q4_K_M / Q5_K_M give attn_v and ffn_down of some layers more bits (Q6_K);
//  * 8-expert models keep attn_k / attn_v at Q8_0;
//  * rows that are not a multiple of a k-quant's 256 fall back (Q4_K->Q5_0, Q5_K->Q5_1, Q6_K->Q8_0).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "formats/ggml_types.h"

namespace g4 {

// llama_ftype values (general.file_type).
enum class FileType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q8_0 = 7,
  Q5_0 = 8,
  Q5_1 = 9,
  Q4_K_S = 14,
  Q4_K_M = 15,
  Q5_K_S = 16,
  Q5_K_M = 17,
  Q6_K = 18,
  BF16 = 32,
};

// "Q4_K_M", "q8_0", "f16"... nullopt when unknown or unsupported.
std::optional<FileType> ParseFileType(const std::string& name);
const char* FileTypeName(FileType t);
std::string SupportedFileTypes();  // for error messages

class QuantMix {
 public:
  struct TensorDesc {
    std::string name;
    std::vector<int64_t> ne;  // ggml order
  };
  // `tensors` in the order they will be written; n_layer and n_expert of the model.
  QuantMix(FileType ftype, const std::vector<TensorDesc>& tensors, int n_layer, int n_expert);

  // Type of tensor k (call in order k = 0, 1, ...: some choices depend on how many tensors of a kind
  // came before, exactly as in llama.cpp).
  GgmlType TypeFor(size_t k);

 private:
  GgmlType Choose(const TensorDesc& t);
  FileType ftype_;
  std::vector<TensorDesc> tensors_;
  int n_layer_, n_expert_;
  int n_attn_v_ = 0, i_attn_v_ = 0, i_ffn_down_ = 0;
  bool tied_ = true;
};

}  // namespace g4
