// Image decoding, bad-media errors, and both resize conventions against the golden data.
#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "multimodal/image.h"
#include "multimodal/resize.h"
#include "multimodal/test_media.h"
#include "testutil.h"
#include "util/error.h"

namespace g4::mm {
namespace {

using test::Bytes;
using nlohmann::json;

RgbImage Decode(const Bytes& b, const ImageLimits& lim = {}) { return DecodeImage(b, "test image", lim); }

// Expects a g4::Error whose message contains `what`.
template <typename F>
void ExpectError(F&& f, const std::string& what) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one containing '" << what << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << "message: " << e.what();
  }
}

TEST(ImageDecode, PngColorTypesBecomeRgb) {
  const int w = 5, h = 3;
  std::vector<uint16_t> gray, ga, rgb, rgba, pal;
  for (int i = 0; i < w * h; ++i) {
    const uint16_t v = static_cast<uint16_t>(i * 17);
    gray.push_back(v);
    ga.insert(ga.end(), {v, static_cast<uint16_t>(255 - v)});
    rgb.insert(rgb.end(), {v, static_cast<uint16_t>(v / 2), static_cast<uint16_t>(255 - v)});
    rgba.insert(rgba.end(), {v, static_cast<uint16_t>(v / 2), static_cast<uint16_t>(255 - v), static_cast<uint16_t>(i)});
    pal.push_back(static_cast<uint16_t>(i % 4));
  }
  const std::vector<uint8_t> plte = {10, 20, 30, 40, 50, 60, 70, 80, 90, 200, 210, 220};
  auto check = [&](const RgbImage& img, auto expect) {
    ASSERT_EQ(img.width, w);
    ASSERT_EQ(img.height, h);
    for (int i = 0; i < w * h; ++i) {
      const auto e = expect(i);
      for (int c = 0; c < 3; ++c) EXPECT_EQ(img.pixels[3 * i + c], e[c]) << "pixel " << i << " channel " << c;
    }
  };
  auto g = [&](int i) { return std::array<int, 3>{i * 17, i * 17, i * 17}; };
  auto c3 = [&](int i) { return std::array<int, 3>{i * 17, i * 17 / 2, 255 - i * 17}; };
  auto p = [&](int i) { return std::array<int, 3>{plte[3 * (i % 4)], plte[3 * (i % 4) + 1], plte[3 * (i % 4) + 2]}; };
  check(Decode(test::EncodePng(w, h, 0, 8, gray)), g);            // gray replicated
  check(Decode(test::EncodePng(w, h, 4, 8, ga)), g);              // gray + alpha: alpha dropped
  check(Decode(test::EncodePng(w, h, 2, 8, rgb)), c3);
  check(Decode(test::EncodePng(w, h, 6, 8, rgba)), c3);           // alpha dropped, not composited
  check(Decode(test::EncodePng(w, h, 2, 16, rgb)), c3);           // 16-bit: high byte
  check(Decode(test::EncodePng(w, h, 0, 16, gray)), g);
  check(Decode(test::EncodePng(w, h, 3, 8, pal, plte)), p);       // palette expanded
  check(Decode(test::EncodePng(w, h, 3, 8, pal, plte, {0, 128})), p);  // palette with transparency
}

TEST(ImageDecode, GifFirstFrame) {
  const int w = 20, h = 30;
  std::vector<uint8_t> palette(768);
  for (int i = 0; i < 768; ++i) palette[i] = static_cast<uint8_t>(i * 7);
  std::vector<uint8_t> f1(w * h), f2(w * h);
  for (int i = 0; i < w * h; ++i) {
    f1[i] = static_cast<uint8_t>(i % 256);
    f2[i] = static_cast<uint8_t>(255 - i % 256);
  }
  const RgbImage img = Decode(test::EncodeGif(w, h, palette, {f1, f2}));
  ASSERT_EQ(img.width, w);
  ASSERT_EQ(img.height, h);
  for (int i = 0; i < w * h; ++i) {
    for (int c = 0; c < 3; ++c) ASSERT_EQ(img.pixels[3 * i + c], palette[3 * f1[i] + c]) << i;
  }
}

TEST(ImageDecode, BmpJpegWebp) {
  const RgbImage src = test::Pattern(37, 23, 5);
  EXPECT_EQ(Decode(test::EncodeBmp(src)).pixels, src.pixels);
  EXPECT_EQ(Decode(test::EncodeWebpLossless(src)).pixels, src.pixels);
  const RgbImage jpg = Decode(test::EncodeJpeg(src, 100));
  ASSERT_EQ(jpg.width, src.width);
  int max_diff = 0;
  for (size_t i = 0; i < src.pixels.size(); ++i) max_diff = std::max(max_diff, std::abs(jpg.pixels[i] - src.pixels[i]));
  EXPECT_LE(max_diff, 40);  // lossy, chroma-subsampled; a wrong decode differs by ~255
  // WebP with alpha: alpha dropped.
  std::vector<uint8_t> rgba;
  for (size_t i = 0; i < src.pixels.size() / 3; ++i) {
    rgba.insert(rgba.end(), {src.pixels[3 * i], src.pixels[3 * i + 1], src.pixels[3 * i + 2], static_cast<uint8_t>(i * 3)});
  }
  const RgbImage wa = Decode(test::EncodeWebpLosslessRgba(src.width, src.height, rgba));
  for (size_t i = 0; i < src.pixels.size() / 3; ++i) {
    if (rgba[4 * i + 3] == 0) continue;  // the lossless encoder may change the color of invisible pixels
    for (int c = 0; c < 3; ++c) ASSERT_EQ(wa.pixels[3 * i + c], src.pixels[3 * i + c]) << i;
  }
  // Animated WebP: the first frame.
  const RgbImage second = test::Pattern(37, 23, 6);
  EXPECT_EQ(Decode(test::EncodeWebpAnimated({src, second})).pixels, src.pixels);
}

TEST(ImageDecode, HeaderOnly) {
  const ImageHeader h = ReadImageHeader(test::EncodeBmp(test::Pattern(7, 9, 1)), "x");
  EXPECT_EQ(h.format, ImageFormat::kBmp);
  EXPECT_EQ(h.width, 7);
  EXPECT_EQ(h.height, 9);
}

// Every strict prefix of a valid file is refused with an error, never decoded partially or crashed on.
// (A GIF is read up to the end of its first frame: only its final trailer byte may be missing.)
void ExpectEveryTruncationFails(const Bytes& file, const char* what, size_t stride = 1, size_t tail_ok = 0) {
  ASSERT_NO_THROW(Decode(file)) << what;
  for (size_t n = 0; n < file.size() - tail_ok; n += (n < 64 ? 1 : stride)) {
    Bytes cut(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_THROW(Decode(cut), Error) << what << " cut to " << n << " of " << file.size() << " bytes";
  }
}

TEST(ImageBad, TruncatedFilesOfEveryFormat) {
  const RgbImage src = test::Pattern(40, 30, 9);
  std::vector<uint16_t> rgb(src.pixels.begin(), src.pixels.end());
  ExpectEveryTruncationFails(test::EncodePng(40, 30, 2, 8, rgb), "PNG");
  ExpectEveryTruncationFails(test::EncodeJpeg(src, 90), "JPEG", 7);
  ExpectEveryTruncationFails(test::EncodeBmp(src), "BMP", 11);
  std::vector<uint8_t> palette(768, 9);
  ExpectEveryTruncationFails(test::EncodeGif(40, 30, palette, {std::vector<uint8_t>(1200, 3)}), "GIF", 1, 1);
  ExpectEveryTruncationFails(test::EncodeWebpLossless(src), "WebP", 5);
}

TEST(ImageBad, ClearErrors) {
  const RgbImage src = test::Pattern(16, 16, 2);
  std::vector<uint16_t> rgb(src.pixels.begin(), src.pixels.end());
  const Bytes png = test::EncodePng(16, 16, 2, 8, rgb);
  ExpectError([] { Decode({}); }, "empty file");
  ExpectError([] { Decode({'I', 'I', '*', 0, 8, 0, 0, 0}); }, "not a supported image (PNG, JPEG, BMP, GIF or WebP); it starts with bytes 49 49 2A 00");
  Bytes cut(png.begin(), png.end() - 20);
  ExpectError([&] { Decode(cut); }, "truncated PNG");
  Bytes flipped = png;
  flipped[60] ^= 0x10;  // inside IDAT
  ExpectError([&] { Decode(flipped); }, "CRC mismatch in chunk 'IDAT'");
  ExpectError([&] { Decode(test::EncodePng(0, 5, 2, 8, {})); }, "zero-size image (0x5)");
  Bytes jpg = test::EncodeJpeg(src, 90);
  ExpectError([&] { Decode(Bytes(jpg.begin(), jpg.end() - 2)); }, "truncated JPEG");
  // A JPEG whose frame header says 0 lines.
  for (size_t i = 2; i + 8 < jpg.size(); ++i) {
    if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) {
      jpg[i + 5] = 0, jpg[i + 6] = 0;
      break;
    }
  }
  ExpectError([&] { Decode(jpg); }, "zero-size image");
  // A Huffman table claiming more than 256 codes (stb 2.27 would write past its table).
  Bytes dht = test::EncodeJpeg(src, 90);
  for (size_t i = 2; i + 21 < dht.size(); ++i) {
    if (dht[i] == 0xFF && dht[i + 1] == 0xC4) {
      for (int k = 0; k < 16; ++k) dht[i + 5 + k] = 200;
      break;
    }
  }
  ExpectError([&] { Decode(dht); }, "declares 3200 codes (at most 256)");
  Bytes bmp = test::EncodeBmp(src);
  bmp[30] = 1;  // BI_RLE8
  ExpectError([&] { Decode(bmp); }, "RLE-compressed BMP");
}

// Trials per format of the corruption tests; G4_FUZZ_TRIALS raises it for a longer local run.
int FuzzTrials() {
  const char* e = std::getenv("G4_FUZZ_TRIALS");
  return e && std::atoi(e) > 0 ? std::atoi(e) : 150;
}

// Random byte corruption: decoding gives an image or a g4::Error, never a crash (run under ASan/UBSan
// in CI). PNG is decoded with its CRCs patched, so that the corruption reaches the decoder.
TEST(ImageBad, RandomCorruptionNeverCrashes) {
  const RgbImage src = test::Pattern(48, 40, 4);
  std::vector<uint16_t> rgb(src.pixels.begin(), src.pixels.end());
  std::vector<uint8_t> palette(768);
  for (int i = 0; i < 768; ++i) palette[i] = static_cast<uint8_t>(i);
  std::vector<uint8_t> idx(48 * 40);
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<uint8_t>(i * 7);
  const std::vector<Bytes> files = {test::EncodeJpeg(src, 80), test::EncodeBmp(src),
                                    test::EncodeGif(48, 40, palette, {idx, idx}), test::EncodeWebpLossless(src),
                                    test::EncodeWebpAnimated({src, src})};
  uint32_t s = 12345;
  auto next = [&] { return s = s * 1664525u + 1013904223u; };
  int decoded = 0, refused = 0;
  for (const Bytes& f : files) {
    for (int trial = 0; trial < FuzzTrials(); ++trial) {
      Bytes b = f;
      for (int k = 0, n = 1 + next() % 4; k < n; ++k) b[next() % b.size()] = static_cast<uint8_t>(next() >> 24);
      try {
        const RgbImage img = Decode(b);
        EXPECT_EQ(img.pixels.size(), static_cast<size_t>(img.width) * img.height * 3);
        ++decoded;
      } catch (const Error&) {
        ++refused;
      }
    }
  }
  // PNG: corrupt the compressed data and fix the CRC.
  const Bytes png = test::EncodePng(48, 40, 2, 8, rgb);
  for (int trial = 0; trial < FuzzTrials(); ++trial) {
    Bytes b = png;
    const size_t idat = 8 + 25;  // signature + IHDR chunk
    const uint32_t len = uint32_t{b[idat]} << 24 | uint32_t{b[idat + 1]} << 16 | uint32_t{b[idat + 2]} << 8 | b[idat + 3];
    for (int k = 0, n = 1 + next() % 4; k < n; ++k) b[idat + 8 + next() % len] = static_cast<uint8_t>(next() >> 24);
    const uint32_t crc = test::Crc32(b.data() + idat + 4, len + 4);
    for (int i = 0; i < 4; ++i) b[idat + 8 + len + i] = static_cast<uint8_t>(crc >> (24 - 8 * i));
    try {
      Decode(b);
      ++decoded;
    } catch (const Error&) {
      ++refused;
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_GT(decoded, 0);
}

// A 50000x50000 image is refused from its header, before anything is decoded or allocated.
TEST(ImageBad, HugeImagesRefusedFromTheHeader) {
  const std::string want = "image of 50000x50000 is too large";
  // PNG: a valid IHDR and one tiny IDAT; decoding it would need 7.5 GB.
  Bytes ihdr = {0, 0, 0xC3, 0x50, 0, 0, 0xC3, 0x50, 8, 2, 0, 0, 0};
  Bytes png = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  for (const Bytes& c : {test::PngChunk("IHDR", ihdr), test::PngChunk("IDAT", {0x78, 0x01, 0x01, 0, 0, 0xFF, 0xFF}),
                         test::PngChunk("IEND", {})}) {
    png.insert(png.end(), c.begin(), c.end());
  }
  ExpectError([&] { Decode(png); }, want);
  ExpectError([&] { ReadImageHeader(png, "x"); }, want);
  // JPEG: patch the frame header of a small JPEG.
  Bytes jpg = test::EncodeJpeg(test::Pattern(16, 16, 1), 90);
  for (size_t i = 2; i + 8 < jpg.size(); ++i) {
    if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) {
      jpg[i + 5] = 0xC3, jpg[i + 6] = 0x50, jpg[i + 7] = 0xC3, jpg[i + 8] = 0x50;
      break;
    }
  }
  ExpectError([&] { Decode(jpg); }, want);
  // GIF: the logical screen.
  std::vector<uint8_t> palette(768, 1);
  Bytes gif = test::EncodeGif(4, 4, palette, {std::vector<uint8_t>(16, 0)});
  gif[6] = 0x50, gif[7] = 0xC3, gif[8] = 0x50, gif[9] = 0xC3;
  ExpectError([&] { Decode(gif); }, want);
  // Limits are configurable.
  ImageLimits small;
  small.max_side = 8;
  ExpectError([&] { Decode(test::EncodeBmp(test::Pattern(9, 4, 1)), small); }, "image of 9x4 is too large");
}

// ---- resizing ----

TEST(Resize, TransformersTargetSizes) {
  // Examples from the golden README (transformers column) plus edge cases of the reference function.
  struct C {
    int w, h, tw, th;
  } cases[] = {{96, 96, 768, 768},    {640, 480, 912, 672}, {200, 120, 1008, 576}, {50, 300, 288, 1920},
               {1, 1, 768, 768},      {160, 100, 1008, 624}, {120, 90, 912, 672},  {1024, 768, 912, 672},
               {10000, 1, 13440, 48}, {3, 5000, 48, 13440}};
  for (const C& c : cases) {
    const Size2 s = TransformersTargetSize(c.w, c.h, 280);
    EXPECT_EQ(s.width, c.tw) << c.w << "x" << c.h;
    EXPECT_EQ(s.height, c.th) << c.w << "x" << c.h;
    EXPECT_LE(int64_t{s.width} / 48 * (s.height / 48), 280);
  }
  const Size2 s70 = TransformersTargetSize(640, 480, 70);
  EXPECT_EQ(s70.width, 432);
  EXPECT_EQ(s70.height, 336);
}

TEST(Resize, PillowBicubicBasics) {
  const RgbImage src = test::Pattern(31, 17, 3);
  EXPECT_EQ(ResizeBicubicPillow(src, 31, 17).pixels, src.pixels);  // same size: unchanged
  RgbImage flat;
  flat.width = 13, flat.height = 7;
  flat.pixels.assign(13 * 7 * 3, 77);
  for (auto [w, h] : {std::pair{48, 96}, std::pair{5, 3}, std::pair{13, 30}, std::pair{2, 7}}) {
    const RgbImage r = ResizeBicubicPillow(flat, w, h);
    ASSERT_EQ(r.width, w);
    ASSERT_EQ(r.height, h);
    for (uint8_t v : r.pixels) ASSERT_EQ(v, 77) << w << "x" << h;  // normalised weights keep a flat image flat
  }
  // Downscaling by 2 is antialiased: a one-pixel checkerboard becomes flat gray, not aliased stripes.
  RgbImage cb;
  cb.width = 64, cb.height = 64;
  for (int y = 0; y < 64; ++y) {
    for (int x = 0; x < 64; ++x) {
      const uint8_t v = ((x + y) & 1) ? 255 : 0;
      cb.pixels.insert(cb.pixels.end(), {v, v, v});
    }
  }
  const RgbImage half = ResizeBicubicPillow(cb, 32, 32);
  for (int y = 4; y < 28; ++y) {
    for (int x = 4; x < 28; ++x) EXPECT_NEAR(half.at(x, y, 0), 128, 2) << x << "," << y;
  }
}

// The golden images: llama.cpp's resize reproduced bit for bit on the shipped pixels, its grid, and
// the transformers grid.
class GoldenImage : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenImage, ResizeAndGrid) {
  G4_REQUIRE_SHARED();
  const std::string dir = g4::testing::SharedPath("golden/multimodal/");
  const json c = json::parse(g4::testing::ReadText(dir + "cases/" + GetParam() + ".json"));
  const RgbImage img = DecodeImage(test::ReadBytes(dir + c["media"].get<std::string>()), GetParam());
  EXPECT_EQ(img.width, c["source"]["width"].get<int>());
  EXPECT_EQ(img.height, c["source"]["height"].get<int>());
  if (c.contains("decoded_pixels_max_abs_diff_stb_vs_pillow") && GetParam().ends_with(".jpg")) {
    // stb (Debian's v2.27) decodes the JPEG exactly as llama.cpp's stb did.
    const RgbImage stb_ref = DecodeImage(test::ReadBytes(dir + "cases/" + GetParam() + ".stb_decoded.png"), "stb_decoded");
    EXPECT_EQ(img.pixels, stb_ref.pixels);
  }
  const json& l = c["llama_cpp"];
  const Size2 t = LlamaCppTargetSize(img.width, img.height, 40, 280);
  EXPECT_EQ(t.width, l["resized_w"].get<int>());
  EXPECT_EQ(t.height, l["resized_h"].get<int>());
  EXPECT_EQ(t.width / 48, l["grid_cols"].get<int>());
  EXPECT_EQ(t.height / 48, l["grid_rows"].get<int>());
  Letterbox box;
  const RgbImage resized = ResizeLlamaCpp(img, t.width, t.height, &box);
  EXPECT_EQ(box.content_width, l["content_w"].get<int>());
  EXPECT_EQ(box.content_height, l["content_h"].get<int>());
  EXPECT_EQ(box.pad_x, l["pad_x"].get<int>());
  EXPECT_EQ(box.pad_y, l["pad_y"].get<int>());
  const RgbImage ref = DecodeImage(test::ReadBytes(dir + l["resized_pixels"].get<std::string>()), "llamacpp_resized");
  ASSERT_EQ(resized.width, ref.width);
  ASSERT_EQ(resized.height, ref.height);
  size_t mismatches = 0;
  for (size_t i = 0; i < ref.pixels.size(); ++i) mismatches += resized.pixels[i] != ref.pixels[i];
  EXPECT_EQ(mismatches, 0u) << "pixels differing from llama.cpp's resize";
  const json& hf = c["transformers_preprocessing"];
  const Size2 s = TransformersTargetSize(img.width, img.height, 280);
  EXPECT_EQ(s.width, hf["resized_w"].get<int>());
  EXPECT_EQ(s.height, hf["resized_h"].get<int>());
  EXPECT_EQ(s.width / 48, hf["grid_cols"].get<int>());
  EXPECT_EQ(s.height / 48, hf["grid_rows"].get<int>());
  EXPECT_EQ((s.width / 48) * (s.height / 48), hf["n_tokens"].get<int>());
}

INSTANTIATE_TEST_SUITE_P(All, GoldenImage,
                         ::testing::Values("img_1x1.png", "img_200x120.png", "img_50x300.png", "img_640x480.jpg",
                                           "img_640x480.png", "img_96x96.png", "img_gray_120x90.png",
                                           "img_rgba_160x100.png"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& ch : s) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                           return s;
                         });

}  // namespace
}  // namespace g4::mm
