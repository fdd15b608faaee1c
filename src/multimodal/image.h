// Image decoding: PNG, JPEG, BMP and GIF (first frame) through stb_image, WebP (still or the first
// frame of an animation) through libwebp. Every image becomes 8-bit RGB the way the reference
// (Pillow's convert("RGB")) and llama.cpp (stb with 3 channels) do it: alpha is dropped without
// compositing, gray is replicated, palettes are expanded. 16-bit samples keep their high byte.
//
// Input is untrusted bytes (the server passes request bodies): the dimensions are read from the
// header and checked against ImageLimits before any pixel is decoded, and the structure of the file
// is walked first (PNG chunks and their CRCs, JPEG segments up to the end-of-image marker, the first
// GIF frame's data blocks, the BMP pixel array), because the decoders tolerate truncated data and
// would silently return an image with a gray or black tail. Every problem is a g4::Error that names
// the image and what is wrong.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace g4::mm {

enum class ImageFormat { kPng, kJpeg, kBmp, kGif, kWebp };
const char* ImageFormatName(ImageFormat f);

// An 8-bit RGB image, rows top to bottom.
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // [height][width][3]
  uint8_t at(int x, int y, int c) const {
    return pixels[(static_cast<size_t>(y) * static_cast<size_t>(width) + static_cast<size_t>(x)) * 3 + c];
  }
};

struct ImageLimits {
  int max_side = 16384;                // pixels, either side
  int64_t max_pixels = 64ll << 20;     // width * height (64 Mpx: 192 MiB of RGB)
};

// The format from the first bytes, or an error naming what was found.
ImageFormat SniffImage(std::span<const uint8_t> bytes, const std::string& name);

// Decodes `bytes` (the whole file). `name` is used in messages ("photo.png", "request image 2").
RgbImage DecodeImage(std::span<const uint8_t> bytes, const std::string& name, const ImageLimits& limits = {});

// Width and height from the header only (no pixel is decoded), after the same checks.
struct ImageHeader {
  ImageFormat format = ImageFormat::kPng;
  int width = 0;
  int height = 0;
};
ImageHeader ReadImageHeader(std::span<const uint8_t> bytes, const std::string& name, const ImageLimits& limits = {});

}  // namespace g4::mm
