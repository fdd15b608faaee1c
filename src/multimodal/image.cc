#include "multimodal/image.h"

#include <webp/decode.h>
#include <webp/demux.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>

#include "multimodal/stb_decode.h"
#include "util/error.h"

namespace g4::mm {

const char* ImageFormatName(ImageFormat f) {
  switch (f) {
    case ImageFormat::kPng: return "PNG";
    case ImageFormat::kJpeg: return "JPEG";
    case ImageFormat::kBmp: return "BMP";
    case ImageFormat::kGif: return "GIF";
    case ImageFormat::kWebp: return "WebP";
  }
  return "?";
}

namespace {

uint32_t Be32(const uint8_t* p) { return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3]; }
uint32_t Be16(const uint8_t* p) { return uint32_t{p[0]} << 8 | p[1]; }
uint32_t Le16(const uint8_t* p) { return uint32_t{p[0]} | uint32_t{p[1]} << 8; }
uint32_t Le32(const uint8_t* p) { return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24; }

// CRC-32 (ISO-HDLC, as PNG uses it).
uint32_t Crc32(const uint8_t* p, size_t n) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::string ChunkName(const uint8_t* p) {
  std::string s;
  for (int i = 0; i < 4; ++i) s += (p[i] >= 0x20 && p[i] < 0x7F) ? static_cast<char>(p[i]) : '?';
  return s;
}

// PNG: every chunk complete with a correct CRC, IHDR first, at least one IDAT, and IEND.
void CheckPng(std::span<const uint8_t> b, const std::string& name, int* w, int* h) {
  size_t pos = 8;
  bool ihdr = false, idat = false;
  for (;;) {
    if (b.size() - pos < 12) {
      Fail("%s: truncated PNG: the file ends at offset %zu before the IEND chunk", name.c_str(), b.size());
    }
    const uint32_t len = Be32(b.data() + pos);
    const std::string type = ChunkName(b.data() + pos + 4);
    if (len > 0x7FFFFFFFu || len > b.size() - pos - 12) {
      Fail("%s: truncated PNG: chunk '%s' at offset %zu declares %u bytes but only %zu remain", name.c_str(),
           type.c_str(), pos, len, b.size() - pos - 12);
    }
    const uint32_t crc = Be32(b.data() + pos + 8 + len);
    if (Crc32(b.data() + pos + 4, len + 4) != crc) {
      Fail("%s: corrupt PNG: CRC mismatch in chunk '%s' at offset %zu", name.c_str(), type.c_str(), pos);
    }
    if (!ihdr) {
      if (type != "IHDR" || len != 13) Fail("%s: corrupt PNG: the first chunk is '%s', not IHDR", name.c_str(), type.c_str());
      ihdr = true;
      const uint32_t pw = Be32(b.data() + pos + 8), ph = Be32(b.data() + pos + 12);
      if (pw == 0 || ph == 0) Fail("%s: zero-size image (%ux%u)", name.c_str(), pw, ph);
      if (pw > 0x7FFFFFFFu || ph > 0x7FFFFFFFu) Fail("%s: corrupt PNG: size %ux%u", name.c_str(), pw, ph);
      *w = static_cast<int>(pw);
      *h = static_cast<int>(ph);
    }
    if (type == "IDAT") idat = true;
    pos += 12 + static_cast<size_t>(len);
    if (type == "IEND") break;
  }
  if (!idat) Fail("%s: corrupt PNG: no image data (IDAT chunk)", name.c_str());
}

bool IsSof(uint8_t m) { return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC; }

// Huffman table segment (DHT): each table's 16 code counts sum to at most 256 values, and the tables
// fill the segment exactly. stb_image 2.27 trusts the counts and overflows its 256-value table.
void CheckHuffmanTables(std::span<const uint8_t> seg, const std::string& name, size_t at) {
  size_t p = 0;
  while (p < seg.size()) {
    if (seg.size() - p < 17) Fail("%s: corrupt JPEG: Huffman table at offset %zu is cut short", name.c_str(), at);
    const uint8_t q = seg[p];
    if ((q >> 4) > 1 || (q & 15) > 3) Fail("%s: corrupt JPEG: bad Huffman table id 0x%02X at offset %zu", name.c_str(), q, at);
    size_t n = 0;
    for (int i = 1; i <= 16; ++i) n += seg[p + i];
    if (n > 256) Fail("%s: corrupt JPEG: a Huffman table at offset %zu declares %zu codes (at most 256)", name.c_str(), at, n);
    if (seg.size() - p - 17 < n) Fail("%s: corrupt JPEG: Huffman table at offset %zu is cut short", name.c_str(), at);
    p += 17 + n;
  }
}

// Quantisation table segment (DQT): 8- or 16-bit tables 0..3 that fill the segment exactly.
void CheckQuantTables(std::span<const uint8_t> seg, const std::string& name, size_t at) {
  size_t p = 0;
  while (p < seg.size()) {
    const uint8_t q = seg[p];
    if ((q >> 4) > 1 || (q & 15) > 3) Fail("%s: corrupt JPEG: bad quantisation table id 0x%02X at offset %zu", name.c_str(), q, at);
    const size_t size = (q >> 4) ? 129 : 65;
    if (seg.size() - p < size) Fail("%s: corrupt JPEG: quantisation table at offset %zu is cut short", name.c_str(), at);
    p += size;
  }
}

// JPEG: marker segments that fit, a frame header before the first scan, and the end-of-image marker
// after the entropy-coded data.
void CheckJpeg(std::span<const uint8_t> b, const std::string& name, int* w, int* h) {
  size_t pos = 2;
  bool sof = false;
  for (;;) {
    if (pos >= b.size() || b[pos] != 0xFF) {
      if (pos >= b.size()) Fail("%s: truncated JPEG: no end-of-image marker (the file ends at offset %zu)", name.c_str(), b.size());
      Fail("%s: corrupt JPEG: expected a marker at offset %zu, found 0x%02X", name.c_str(), pos, b[pos]);
    }
    while (pos < b.size() && b[pos] == 0xFF) ++pos;  // fill bytes
    if (pos >= b.size()) Fail("%s: truncated JPEG: no end-of-image marker", name.c_str());
    const uint8_t m = b[pos++];
    if (m == 0xD9) break;  // EOI
    if ((m >= 0xD0 && m <= 0xD7) || m == 0x01) continue;
    if (m == 0xD8 || m == 0x00) Fail("%s: corrupt JPEG: unexpected marker 0x%02X at offset %zu", name.c_str(), m, pos - 1);
    if (b.size() - pos < 2) Fail("%s: truncated JPEG: marker 0x%02X at offset %zu has no length", name.c_str(), m, pos - 1);
    const size_t len = Be16(b.data() + pos);
    if (len < 2 || len > b.size() - pos) {
      Fail("%s: truncated JPEG: segment 0x%02X at offset %zu declares %zu bytes but only %zu remain", name.c_str(), m,
           pos - 1, len, b.size() - pos);
    }
    if (m == 0xC4) CheckHuffmanTables(b.subspan(pos + 2, len - 2), name, pos - 1);
    if (m == 0xDB) CheckQuantTables(b.subspan(pos + 2, len - 2), name, pos - 1);
    if (IsSof(m)) {
      if (len < 8) Fail("%s: corrupt JPEG: frame header at offset %zu is too short", name.c_str(), pos - 1);
      const uint32_t fh = Be16(b.data() + pos + 3), fw = Be16(b.data() + pos + 5);
      if (fw == 0 || fh == 0) Fail("%s: zero-size image (%ux%u)", name.c_str(), fw, fh);
      if (!sof) *w = static_cast<int>(fw), *h = static_cast<int>(fh);
      sof = true;
    }
    pos += len;
    if (m == 0xDA) {  // SOS: entropy-coded data up to the next marker that is not a restart or a stuffed 0xFF00
      if (!sof) Fail("%s: corrupt JPEG: scan before the frame header", name.c_str());
      for (;;) {
        if (pos + 1 >= b.size()) Fail("%s: truncated JPEG: the scan data ends at offset %zu without an end-of-image marker", name.c_str(), b.size());
        if (b[pos] == 0xFF && b[pos + 1] != 0x00 && !(b[pos + 1] >= 0xD0 && b[pos + 1] <= 0xD7) && b[pos + 1] != 0xFF) break;
        ++pos;
      }
    }
  }
  if (!sof) Fail("%s: corrupt JPEG: no frame header", name.c_str());
}

void SkipSubBlocks(std::span<const uint8_t> b, size_t& pos, const std::string& name, const char* what) {
  for (;;) {
    if (pos >= b.size()) Fail("%s: truncated GIF: %s ends at offset %zu", name.c_str(), what, b.size());
    const size_t n = b[pos++];
    if (n == 0) return;
    if (n > b.size() - pos) Fail("%s: truncated GIF: %s block at offset %zu needs %zu bytes, %zu remain", name.c_str(), what, pos - 1, n, b.size() - pos);
    pos += n;
  }
}

// GIF: the blocks up to the end of the first image's data.
void CheckGif(std::span<const uint8_t> b, const std::string& name, int* w, int* h) {
  if (b.size() < 13) Fail("%s: truncated GIF: %zu bytes", name.c_str(), b.size());
  *w = static_cast<int>(Le16(b.data() + 6));
  *h = static_cast<int>(Le16(b.data() + 8));
  if (*w == 0 || *h == 0) Fail("%s: zero-size image (%dx%d)", name.c_str(), *w, *h);
  size_t pos = 13;
  if (b[10] & 0x80) pos += 3u << ((b[10] & 7) + 1);
  for (;;) {
    if (pos >= b.size()) Fail("%s: truncated GIF: no image before offset %zu", name.c_str(), b.size());
    const uint8_t t = b[pos++];
    if (t == 0x21) {
      if (pos >= b.size()) Fail("%s: truncated GIF: extension at offset %zu", name.c_str(), pos - 1);
      ++pos;  // label
      SkipSubBlocks(b, pos, name, "an extension");
    } else if (t == 0x2C) {
      if (b.size() - pos < 10) Fail("%s: truncated GIF: image descriptor at offset %zu", name.c_str(), pos - 1);
      const uint8_t flags = b[pos + 8];
      pos += 9;
      if (flags & 0x80) pos += 3u << ((flags & 7) + 1);
      if (pos >= b.size()) Fail("%s: truncated GIF: the first image has no data", name.c_str());
      ++pos;  // LZW minimum code size
      SkipSubBlocks(b, pos, name, "the first image's data");
      return;
    } else if (t == 0x3B) {
      Fail("%s: corrupt GIF: no image before the trailer", name.c_str());
    } else {
      Fail("%s: corrupt GIF: unexpected block 0x%02X at offset %zu", name.c_str(), t, pos - 1);
    }
  }
}

// BMP: a known header, no RLE, and the whole pixel array present.
void CheckBmp(std::span<const uint8_t> b, const std::string& name, int* w, int* h) {
  if (b.size() < 26) Fail("%s: truncated BMP: %zu bytes", name.c_str(), b.size());
  const uint32_t off = Le32(b.data() + 10), hsz = Le32(b.data() + 14);
  int64_t bw, bh;
  uint32_t bpp, comp = 0;
  if (hsz == 12) {
    bw = Le16(b.data() + 18), bh = Le16(b.data() + 20), bpp = Le16(b.data() + 24);
  } else if (hsz == 40 || hsz == 52 || hsz == 56 || hsz == 108 || hsz == 124) {
    if (b.size() < 34) Fail("%s: truncated BMP header", name.c_str());
    bw = static_cast<int32_t>(Le32(b.data() + 18));
    bh = static_cast<int32_t>(Le32(b.data() + 22));
    bpp = Le16(b.data() + 28);
    comp = Le32(b.data() + 30);
  } else {
    Fail("%s: unsupported BMP header of %u bytes", name.c_str(), hsz);
  }
  if (bh < 0) bh = -bh;
  if (bw <= 0 || bh == 0) Fail("%s: zero-size image (%lldx%lld)", name.c_str(), (long long)bw, (long long)bh);
  if (comp == 1 || comp == 2) Fail("%s: RLE-compressed BMP is not supported", name.c_str());
  if (comp != 0 && comp != 3 && comp != 6) Fail("%s: unsupported BMP compression %u", name.c_str(), comp);
  if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32) Fail("%s: unsupported BMP depth %u", name.c_str(), bpp);
  if (bw > (1 << 24) || bh > (1 << 24)) Fail("%s: image of %lldx%lld is too large", name.c_str(), (long long)bw, (long long)bh);
  const uint64_t row = (static_cast<uint64_t>(bw) * bpp + 31) / 32 * 4;
  if (off > b.size() || row * static_cast<uint64_t>(bh) > b.size() - off) {
    Fail("%s: truncated BMP: the pixel array at offset %u needs %llu bytes, the file has %zu", name.c_str(), off,
         (unsigned long long)(row * static_cast<uint64_t>(bh)), b.size());
  }
  *w = static_cast<int>(bw);
  *h = static_cast<int>(bh);
}

void CheckLimits(int w, int h, const ImageLimits& lim, const std::string& name) {
  if (w <= 0 || h <= 0) Fail("%s: zero-size image (%dx%d)", name.c_str(), w, h);
  if (w > lim.max_side || h > lim.max_side || static_cast<int64_t>(w) * h > lim.max_pixels) {
    Fail("%s: image of %dx%d is too large (at most %d pixels a side and %lld pixels in all)", name.c_str(), w, h,
         lim.max_side, (long long)lim.max_pixels);
  }
}

struct WebpInfo {
  int w = 0, h = 0;
  bool animated = false;
};

WebpInfo WebpHeader(std::span<const uint8_t> b, const std::string& name) {
  WebPBitstreamFeatures f;
  const VP8StatusCode st = WebPGetFeatures(b.data(), b.size(), &f);
  if (st == VP8_STATUS_NOT_ENOUGH_DATA) Fail("%s: truncated WebP header", name.c_str());
  if (st != VP8_STATUS_OK) Fail("%s: corrupt WebP (libwebp status %d)", name.c_str(), static_cast<int>(st));
  return {f.width, f.height, f.has_animation != 0};
}

RgbImage DecodeWebp(std::span<const uint8_t> b, const std::string& name, const WebpInfo& info) {
  RgbImage img;
  img.width = info.w;
  img.height = info.h;
  img.pixels.resize(static_cast<size_t>(info.w) * static_cast<size_t>(info.h) * 3);
  if (!info.animated) {
    const int stride = info.w * 3;
    if (!WebPDecodeRGBInto(b.data(), b.size(), img.pixels.data(), img.pixels.size(), stride)) {
      Fail("%s: corrupt or truncated WebP image data", name.c_str());
    }
    return img;
  }
  // Animated: the first frame, composed on the canvas as libwebp's animation decoder does it.
  WebPData data{b.data(), b.size()};
  WebPAnimDecoderOptions opt;
  if (!WebPAnimDecoderOptionsInit(&opt)) Fail("%s: libwebp version mismatch", name.c_str());
  opt.color_mode = MODE_RGBA;
  opt.use_threads = 0;
  std::unique_ptr<WebPAnimDecoder, void (*)(WebPAnimDecoder*)> dec(WebPAnimDecoderNew(&data, &opt), WebPAnimDecoderDelete);
  if (!dec) Fail("%s: corrupt or truncated animated WebP", name.c_str());
  WebPAnimInfo ai;
  if (!WebPAnimDecoderGetInfo(dec.get(), &ai) || static_cast<int>(ai.canvas_width) != info.w ||
      static_cast<int>(ai.canvas_height) != info.h) {
    Fail("%s: corrupt animated WebP (inconsistent canvas size)", name.c_str());
  }
  uint8_t* rgba = nullptr;
  int ts = 0;
  if (!WebPAnimDecoderGetNext(dec.get(), &rgba, &ts) || !rgba) Fail("%s: corrupt or truncated animated WebP frame", name.c_str());
  const size_t n = static_cast<size_t>(info.w) * static_cast<size_t>(info.h);
  for (size_t i = 0; i < n; ++i) std::memcpy(img.pixels.data() + 3 * i, rgba + 4 * i, 3);
  return img;
}

}  // namespace

ImageFormat SniffImage(std::span<const uint8_t> b, const std::string& name) {
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (b.empty()) Fail("%s: empty file (0 bytes)", name.c_str());
  if (b.size() >= 8 && std::memcmp(b.data(), kPng, 8) == 0) return ImageFormat::kPng;
  if (b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return ImageFormat::kJpeg;
  if (b.size() >= 6 && (std::memcmp(b.data(), "GIF87a", 6) == 0 || std::memcmp(b.data(), "GIF89a", 6) == 0)) return ImageFormat::kGif;
  if (b.size() >= 12 && std::memcmp(b.data(), "RIFF", 4) == 0 && std::memcmp(b.data() + 8, "WEBP", 4) == 0) return ImageFormat::kWebp;
  if (b.size() >= 2 && b[0] == 'B' && b[1] == 'M') return ImageFormat::kBmp;
  std::string head;
  for (size_t i = 0; i < std::min<size_t>(b.size(), 8); ++i) head += StrFormat("%s%02X", i ? " " : "", b[i]);
  Fail("%s: not a supported image (PNG, JPEG, BMP, GIF or WebP); it starts with bytes %s", name.c_str(), head.c_str());
}

ImageHeader ReadImageHeader(std::span<const uint8_t> b, const std::string& name, const ImageLimits& limits) {
  ImageHeader hd;
  hd.format = SniffImage(b, name);
  int w = 0, h = 0;
  switch (hd.format) {
    case ImageFormat::kPng: CheckPng(b, name, &w, &h); break;
    case ImageFormat::kJpeg: CheckJpeg(b, name, &w, &h); break;
    case ImageFormat::kGif: CheckGif(b, name, &w, &h); break;
    case ImageFormat::kBmp: CheckBmp(b, name, &w, &h); break;
    case ImageFormat::kWebp: {
      const WebpInfo wi = WebpHeader(b, name);
      w = wi.w, h = wi.h;
      break;
    }
  }
  CheckLimits(w, h, limits, name);
  hd.width = w;
  hd.height = h;
  return hd;
}

RgbImage DecodeImage(std::span<const uint8_t> b, const std::string& name, const ImageLimits& limits) {
  const ImageHeader hd = ReadImageHeader(b, name, limits);
  if (hd.format == ImageFormat::kWebp) return DecodeWebp(b, name, WebpHeader(b, name));
  int iw = 0, ih = 0, comp = 0;
  if (!stb::Info(b.data(), b.size(), &iw, &ih, &comp)) {
    Fail("%s: cannot read the %s header: %s", name.c_str(), ImageFormatName(hd.format), stb::FailureReason());
  }
  if (iw != hd.width || ih != hd.height) {
    Fail("%s: corrupt %s: inconsistent size (%dx%d vs %dx%d)", name.c_str(), ImageFormatName(hd.format), iw, ih, hd.width, hd.height);
  }
  int w = 0, h = 0;
  std::unique_ptr<uint8_t, void (*)(uint8_t*)> px(stb::LoadRgb(b.data(), b.size(), &w, &h), stb::Free);
  if (!px) Fail("%s: corrupt %s: %s", name.c_str(), ImageFormatName(hd.format), stb::FailureReason());
  if (w != hd.width || h != hd.height) {
    Fail("%s: corrupt %s: decoded %dx%d, header says %dx%d", name.c_str(), ImageFormatName(hd.format), w, h, hd.width, hd.height);
  }
  RgbImage img;
  img.width = w;
  img.height = h;
  img.pixels.assign(px.get(), px.get() + static_cast<size_t>(w) * static_cast<size_t>(h) * 3);
  return img;
}

}  // namespace g4::mm
