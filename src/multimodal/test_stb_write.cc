// stb_image_write for the tests (JPEG encoding); third-party code, compiled without warnings.
#include <cstdint>
#include <vector>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#define STBI_WRITE_NO_STDIO
#include <stb/stb_image_write.h>

namespace g4::mm::test {

std::vector<uint8_t> StbWriteJpeg(const uint8_t* rgb, int w, int h, int quality) {
  std::vector<uint8_t> out;
  stbi_write_jpg_to_func(
      [](void* ctx, void* data, int size) {
        auto* o = static_cast<std::vector<uint8_t>*>(ctx);
        o->insert(o->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
      },
      &out, w, h, 3, rgb, quality);
  return out;
}

}  // namespace g4::mm::test
