// The unified 12B's multimodal embedder (GEMMA4.md 1.2) as llama.cpp's mmproj GGUF (arch "clip",
// projector types gemma4uv / gemma4ua), the file `gemma4 run --mmproj` and llama.cpp's mtmd read:
//   model.vision_embedder.patch_ln1       -> v.patch_norm.1   (permuted from HWC to CHW patch order)
//   model.vision_embedder.patch_dense     -> v.patch_embd     (input columns permuted HWC -> CHW)
//   model.vision_embedder.patch_ln2       -> v.patch_norm.2
//   model.vision_embedder.pos_embedding   -> v.position_embd  ([1120, 2, D] -> ggml [D, 1120, 2])
//   model.vision_embedder.pos_norm        -> v.patch_norm.3
//   model.embed_vision.embedding_projection -> mm.input_projection
//   model.embed_audio.embedding_projection  -> mm.a.input_projection
// (../shared/golden/multimodal/README.md "mmproj GGUF"). The CHW order is ggml's im2col order: GGUF
// index c*48*48 + r*48 + x holds HF index r*48*3 + x*3 + c.
#pragma once

#include <string>

#include "convert/checkpoint.h"
#include "formats/quant_mix.h"

namespace g4::convert {

// True when the checkpoint holds a vision embedder or an audio projection.
bool HasMultimodalEmbedder(const Checkpoint& c);

// Writes the mmproj file; matrices in `type` (F32, F16 or BF16), 1-D tensors in F32. Returns a summary.
std::string WriteMmproj(const Checkpoint& c, const std::string& out_path, GgmlType type, int n_threads, bool quiet);

}  // namespace g4::convert
