// The one translation unit that compiles stb_image (Debian's libstb-dev header, v2.27). Building it
// here instead of linking Debian's libstb.so lets us keep only the formats we accept (PNG, JPEG, BMP,
// GIF), keep its symbols private (STB_IMAGE_STATIC) and run it under the sanitizers with our tests.
// It is compiled without warnings (-w, see CMakeLists.txt): it is third-party code.
#include "multimodal/stb_decode.h"

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_MAX_DIMENSIONS (1 << 16)
#include <stb/stb_image.h>

namespace g4::mm::stb {

bool Info(const uint8_t* data, size_t size, int* w, int* h, int* comp) {
  if (size > static_cast<size_t>(INT32_MAX)) return false;
  return stbi_info_from_memory(data, static_cast<int>(size), w, h, comp) != 0;
}

uint8_t* LoadRgb(const uint8_t* data, size_t size, int* w, int* h) {
  if (size > static_cast<size_t>(INT32_MAX)) return nullptr;
  int comp = 0;
  return stbi_load_from_memory(data, static_cast<int>(size), w, h, &comp, 3);
}

void Free(uint8_t* pixels) { stbi_image_free(pixels); }

const char* FailureReason() {
  const char* r = stbi_failure_reason();
  return r ? r : "unknown error";
}

}  // namespace g4::mm::stb
