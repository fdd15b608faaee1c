// Test helpers: encoders that make media files in memory (PNG of any color type, GIF, BMP, JPEG,
// WebP, WAV of any sample format, FLAC/Ogg/MP3 through libsndfile) and readers for the golden data.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "multimodal/image.h"

namespace g4::mm::test {

using Bytes = std::vector<uint8_t>;

Bytes ReadBytes(const std::string& path);
// A seeded RGB test pattern (gradients and noise).
RgbImage Pattern(int w, int h, uint32_t seed);

// PNG with stored (uncompressed) deflate blocks. color_type: 0 gray, 2 RGB, 3 palette, 4 gray+alpha,
// 6 RGBA; bit depth 8 or 16 (16: each sample is written as (v << 8) | (v ^ 0x5A)). `samples` holds
// the samples per pixel in the color type's order (palette: indices). Optional PLTE / tRNS.
Bytes EncodePng(int w, int h, int color_type, int bit_depth, const std::vector<uint16_t>& samples,
                const std::vector<uint8_t>& plte = {}, const std::vector<uint8_t>& trns = {});
// A PNG chunk with its CRC (to build corrupt files).
Bytes PngChunk(const char* type, const Bytes& data);
uint32_t Crc32(const uint8_t* p, size_t n);

// GIF89a with a global palette of up to 256 colors; each frame is a full-canvas image of palette indices.
Bytes EncodeGif(int w, int h, const std::vector<uint8_t>& palette_rgb, const std::vector<std::vector<uint8_t>>& frames);
// 24-bit bottom-up BMP.
Bytes EncodeBmp(const RgbImage& img);
Bytes EncodeJpeg(const RgbImage& img, int quality);
Bytes EncodeWebpLossless(const RgbImage& img);
Bytes EncodeWebpLosslessRgba(int w, int h, const std::vector<uint8_t>& rgba);
// An animated WebP of full-canvas RGB frames (lossless).
Bytes EncodeWebpAnimated(const std::vector<RgbImage>& frames);

// WAV. format 1 (PCM, bits 8/16/24/32) or 3 (float, bits 32/64); extensible writes WAVE_FORMAT_EXTENSIBLE.
// samples are interleaved in [-1, 1].
Bytes EncodeWav(const std::vector<float>& samples, int rate, int channels, int format, int bits, bool extensible = false);
// Through libsndfile: "flac" (PCM 16), "ogg" (Vorbis), "opus" (Ogg Opus), "mp3" (MPEG layer III).
Bytes EncodeSndfile(const std::vector<float>& samples, int rate, int channels, const std::string& kind);

std::vector<float> Sine(double freq, double amp, int rate, int n, int channels = 1);

}  // namespace g4::mm::test
