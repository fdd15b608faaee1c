// Thin wrappers over stb_image (compiled privately in stb_image_impl.cc). Internal to multimodal/.
#pragma once

#include <cstddef>
#include <cstdint>

namespace g4::mm::stb {

// Reads the dimensions from the header only. False if stb does not recognise the data.
bool Info(const uint8_t* data, size_t size, int* w, int* h, int* comp);
// Decodes to 8-bit RGB ([h][w][3]): alpha is dropped, gray replicated, palettes expanded, 16-bit
// samples keep their high byte; GIF gives its first frame. Null on failure (see FailureReason).
uint8_t* LoadRgb(const uint8_t* data, size_t size, int* w, int* h);
void Free(uint8_t* pixels);
// Why the last call on this thread failed (stb's short message, e.g. "bad zlib header").
const char* FailureReason();

}  // namespace g4::mm::stb
