// Image sizing and resampling for the vision embedder (GEMMA4.md section 1.2, and the multimodal
// golden README's "Image preprocessing" and "Where llama.cpp differs").
//
// Two conventions:
//  * transformers (the reference the model was trained with): scale every image, up or down, so that
//    it holds about max_tokens 48-pixel patches, flooring each side to a multiple of 48 independently
//    (the aspect ratio is approximately kept, the image is stretched to the grid), resampled with
//    Pillow's BICUBIC filter (a = -0.5, antialiased when downscaling, 8-bit rounding).
//  * llama.cpp (libmtmd, which made the golden embeddings): keep the native size rounded to the
//    nearest multiple of 48 unless it falls outside [min_tokens, max_tokens]; resize with
//    align-corners bilinear interpolation truncated to 8 bits, keeping the aspect ratio exactly and
//    centring the content on a black canvas.
#pragma once

#include "multimodal/image.h"

namespace g4::mm {

constexpr int kPatch = 48;  // pixels per side of one vision soft token

struct Size2 {
  int width = 0;
  int height = 0;
};

// transformers get_aspect_ratio_preserving_size (patch 16, pooling 3, max_patches = 9 * max_tokens),
// computed in double precision like Python. Fails when the image cannot be sized (the reference
// raises the same errors).
Size2 TransformersTargetSize(int width, int height, int max_tokens);

// llama.cpp calc_size_preserved_ratio(align 48, min_tokens * 48^2, max_tokens * 48^2) in float32.
Size2 LlamaCppTargetSize(int width, int height, int min_tokens, int max_tokens);

// Pillow's Image.resize(size, BICUBIC) of an RGB image: separable two-pass convolution, horizontal
// first, fixed-point coefficients of 22 fractional bits, each pass rounded and clamped to 8 bits.
RgbImage ResizeBicubicPillow(const RgbImage& src, int width, int height);

// llama.cpp img_tool::resize(BILINEAR, pad): the content keeps its aspect ratio (ceil of the scaled
// size, at most the target), is resized with align-corners bilinear interpolation truncated to 8
// bits, and is centred on a black canvas of the target size. Same size: an exact copy.
struct Letterbox {
  int content_width = 0, content_height = 0, pad_x = 0, pad_y = 0;
};
RgbImage ResizeLlamaCpp(const RgbImage& src, int width, int height, Letterbox* box = nullptr);

}  // namespace g4::mm
