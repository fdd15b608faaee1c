#include "multimodal/test_media.h"

#include <sndfile.h>
#include <webp/encode.h>
#include <webp/mux.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace g4::mm::test {

std::vector<uint8_t> StbWriteJpeg(const uint8_t* rgb, int w, int h, int quality);  // test_stb_write.cc

Bytes ReadBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  return Bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

RgbImage Pattern(int w, int h, uint32_t seed) {
  RgbImage img;
  img.width = w;
  img.height = h;
  img.pixels.resize(static_cast<size_t>(w) * h * 3);
  uint32_t s = seed * 2654435761u + 1;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      s = s * 1664525u + 1013904223u;
      uint8_t* p = img.pixels.data() + (static_cast<size_t>(y) * w + x) * 3;
      p[0] = static_cast<uint8_t>(x * 255 / std::max(1, w - 1));
      p[1] = static_cast<uint8_t>(y * 255 / std::max(1, h - 1));
      p[2] = static_cast<uint8_t>(128 + 100 * std::sin(0.3 * x + 0.2 * y) + static_cast<int>(s >> 28) - 8);
    }
  }
  return img;
}

uint32_t Crc32(const uint8_t* p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xFFFFFFFFu;
}

namespace {
void PutBe32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}
void PutLe16(Bytes& b, uint32_t v) {
  b.push_back(static_cast<uint8_t>(v));
  b.push_back(static_cast<uint8_t>(v >> 8));
}
void PutLe32(Bytes& b, uint32_t v) {
  PutLe16(b, v & 0xFFFF);
  PutLe16(b, v >> 16);
}
}  // namespace

Bytes PngChunk(const char* type, const Bytes& data) {
  Bytes c;
  PutBe32(c, static_cast<uint32_t>(data.size()));
  Bytes body(type, type + 4);
  body.insert(body.end(), data.begin(), data.end());
  c.insert(c.end(), body.begin(), body.end());
  PutBe32(c, Crc32(body.data(), body.size()));
  return c;
}

Bytes EncodePng(int w, int h, int color_type, int bit_depth, const std::vector<uint16_t>& samples,
                const std::vector<uint8_t>& plte, const std::vector<uint8_t>& trns) {
  const int spp = color_type == 0 || color_type == 3 ? 1 : color_type == 2 ? 3 : color_type == 4 ? 2 : 4;
  Bytes raw;  // [h][1 + w * spp * bytes]
  size_t k = 0;
  for (int y = 0; y < h; ++y) {
    raw.push_back(0);  // filter: none
    for (int i = 0; i < w * spp; ++i) {
      const uint16_t v = samples.at(k++);
      if (bit_depth == 16) {
        raw.push_back(static_cast<uint8_t>(v));
        raw.push_back(static_cast<uint8_t>(v ^ 0x5A));
      } else {
        raw.push_back(static_cast<uint8_t>(v));
      }
    }
  }
  Bytes z = {0x78, 0x01};  // zlib, stored blocks
  for (size_t pos = 0; pos < raw.size() || pos == 0;) {
    const size_t n = std::min<size_t>(65535, raw.size() - pos);
    z.push_back(pos + n == raw.size() ? 1 : 0);
    PutLe16(z, static_cast<uint32_t>(n));
    PutLe16(z, static_cast<uint32_t>(~n & 0xFFFF));
    z.insert(z.end(), raw.begin() + static_cast<std::ptrdiff_t>(pos), raw.begin() + static_cast<std::ptrdiff_t>(pos + n));
    pos += n;
    if (n == 0) break;
  }
  uint32_t a = 1, b = 0;
  for (uint8_t c : raw) a = (a + c) % 65521, b = (b + a) % 65521;
  PutBe32(z, b << 16 | a);
  Bytes png = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  Bytes ihdr;
  PutBe32(ihdr, static_cast<uint32_t>(w));
  PutBe32(ihdr, static_cast<uint32_t>(h));
  ihdr.insert(ihdr.end(), {static_cast<uint8_t>(bit_depth), static_cast<uint8_t>(color_type), 0, 0, 0});
  auto add = [&](const Bytes& c) { png.insert(png.end(), c.begin(), c.end()); };
  add(PngChunk("IHDR", ihdr));
  if (!plte.empty()) add(PngChunk("PLTE", plte));
  if (!trns.empty()) add(PngChunk("tRNS", trns));
  add(PngChunk("IDAT", z));
  add(PngChunk("IEND", {}));
  return png;
}

Bytes EncodeGif(int w, int h, const std::vector<uint8_t>& palette_rgb, const std::vector<std::vector<uint8_t>>& frames) {
  Bytes g = {'G', 'I', 'F', '8', '9', 'a'};
  PutLe16(g, static_cast<uint32_t>(w));
  PutLe16(g, static_cast<uint32_t>(h));
  g.insert(g.end(), {0xF7, 0, 0});  // global palette of 256 colors
  for (int i = 0; i < 768; ++i) g.push_back(i < static_cast<int>(palette_rgb.size()) ? palette_rgb[i] : 0);
  for (const auto& f : frames) {
    g.insert(g.end(), {0x21, 0xF9, 4, 0, 10, 0, 0, 0});  // graphic control: 100 ms
    g.push_back(0x2C);
    PutLe16(g, 0);
    PutLe16(g, 0);
    PutLe16(g, static_cast<uint32_t>(w));
    PutLe16(g, static_cast<uint32_t>(h));
    g.push_back(0);
    g.push_back(8);  // LZW minimum code size
    // 9-bit codes, a clear code every 250 pixels so the code table never grows to 10 bits.
    Bytes data;
    uint32_t acc = 0;
    int nbits = 0;
    auto put = [&](uint32_t code) {
      acc |= code << nbits;
      nbits += 9;
      while (nbits >= 8) {
        data.push_back(static_cast<uint8_t>(acc));
        acc >>= 8;
        nbits -= 8;
      }
    };
    for (size_t i = 0; i < f.size(); ++i) {
      if (i % 250 == 0) put(256);
      put(f[i]);
    }
    put(257);
    if (nbits > 0) data.push_back(static_cast<uint8_t>(acc));
    for (size_t p = 0; p < data.size(); p += 255) {
      const size_t n = std::min<size_t>(255, data.size() - p);
      g.push_back(static_cast<uint8_t>(n));
      g.insert(g.end(), data.begin() + static_cast<std::ptrdiff_t>(p), data.begin() + static_cast<std::ptrdiff_t>(p + n));
    }
    g.push_back(0);
  }
  g.push_back(0x3B);
  return g;
}

Bytes EncodeBmp(const RgbImage& img) {
  const uint32_t row = (static_cast<uint32_t>(img.width) * 3 + 3) / 4 * 4;
  const uint32_t size = 54 + row * static_cast<uint32_t>(img.height);
  Bytes b = {'B', 'M'};
  PutLe32(b, size);
  PutLe32(b, 0);
  PutLe32(b, 54);
  PutLe32(b, 40);
  PutLe32(b, static_cast<uint32_t>(img.width));
  PutLe32(b, static_cast<uint32_t>(img.height));
  PutLe16(b, 1);
  PutLe16(b, 24);
  PutLe32(b, 0);
  PutLe32(b, row * static_cast<uint32_t>(img.height));
  PutLe32(b, 2835);
  PutLe32(b, 2835);
  PutLe32(b, 0);
  PutLe32(b, 0);
  for (int y = img.height - 1; y >= 0; --y) {
    for (int x = 0; x < img.width; ++x) {
      for (int c = 2; c >= 0; --c) b.push_back(img.at(x, y, c));
    }
    for (uint32_t p = static_cast<uint32_t>(img.width) * 3; p < row; ++p) b.push_back(0);
  }
  return b;
}

Bytes EncodeJpeg(const RgbImage& img, int quality) { return StbWriteJpeg(img.pixels.data(), img.width, img.height, quality); }

Bytes EncodeWebpLossless(const RgbImage& img) {
  uint8_t* out = nullptr;
  const size_t n = WebPEncodeLosslessRGB(img.pixels.data(), img.width, img.height, img.width * 3, &out);
  Bytes b(out, out + n);
  WebPFree(out);
  return b;
}

Bytes EncodeWebpLosslessRgba(int w, int h, const std::vector<uint8_t>& rgba) {
  uint8_t* out = nullptr;
  const size_t n = WebPEncodeLosslessRGBA(rgba.data(), w, h, w * 4, &out);
  Bytes b(out, out + n);
  WebPFree(out);
  return b;
}

Bytes EncodeWebpAnimated(const std::vector<RgbImage>& frames) {
  const int w = frames.at(0).width, h = frames.at(0).height;
  WebPAnimEncoderOptions eo;
  if (!WebPAnimEncoderOptionsInit(&eo)) throw std::runtime_error("WebPAnimEncoderOptionsInit");
  WebPAnimEncoder* enc = WebPAnimEncoderNew(w, h, &eo);
  WebPConfig cfg;
  WebPConfigInit(&cfg);
  cfg.lossless = 1;
  int ts = 0;
  for (const auto& f : frames) {
    WebPPicture pic;
    WebPPictureInit(&pic);
    pic.width = w;
    pic.height = h;
    pic.use_argb = 1;
    WebPPictureImportRGB(&pic, f.pixels.data(), w * 3);
    WebPAnimEncoderAdd(enc, &pic, ts, &cfg);
    WebPPictureFree(&pic);
    ts += 100;
  }
  WebPAnimEncoderAdd(enc, nullptr, ts, nullptr);
  WebPData data;
  WebPDataInit(&data);
  WebPAnimEncoderAssemble(enc, &data);
  Bytes b(data.bytes, data.bytes + data.size);
  WebPDataClear(&data);
  WebPAnimEncoderDelete(enc);
  return b;
}

Bytes EncodeWav(const std::vector<float>& samples, int rate, int channels, int format, int bits, bool extensible) {
  const uint32_t bytes = static_cast<uint32_t>(bits / 8);
  const uint32_t data_size = static_cast<uint32_t>(samples.size()) * bytes;
  const uint32_t fmt_size = extensible ? 40 : 16;
  Bytes b = {'R', 'I', 'F', 'F'};
  PutLe32(b, 4 + 8 + fmt_size + 8 + data_size + (data_size & 1));
  b.insert(b.end(), {'W', 'A', 'V', 'E', 'f', 'm', 't', ' '});
  PutLe32(b, fmt_size);
  PutLe16(b, extensible ? 0xFFFE : static_cast<uint32_t>(format));
  PutLe16(b, static_cast<uint32_t>(channels));
  PutLe32(b, static_cast<uint32_t>(rate));
  PutLe32(b, static_cast<uint32_t>(rate) * channels * bytes);
  PutLe16(b, static_cast<uint32_t>(channels) * bytes);
  PutLe16(b, static_cast<uint32_t>(bits));
  if (extensible) {
    PutLe16(b, 22);
    PutLe16(b, static_cast<uint32_t>(bits));
    PutLe32(b, channels == 2 ? 3 : 4);
    PutLe16(b, static_cast<uint32_t>(format));
    b.insert(b.end(), {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71});
  }
  b.insert(b.end(), {'d', 'a', 't', 'a'});
  PutLe32(b, data_size);
  for (float s : samples) {
    if (format == 3) {
      if (bits == 32) {
        uint8_t p[4];
        std::memcpy(p, &s, 4);
        b.insert(b.end(), p, p + 4);
      } else {
        const double d = s;
        uint8_t p[8];
        std::memcpy(p, &d, 8);
        b.insert(b.end(), p, p + 8);
      }
      continue;
    }
    const double scale = std::ldexp(1.0, bits - 1);
    const double lim = scale - 1;
    const int64_t v = static_cast<int64_t>(std::llround(std::max(-scale, std::min(lim, static_cast<double>(s) * scale))));
    if (bits == 8) {
      b.push_back(static_cast<uint8_t>(v + 128));
    } else {
      for (int i = 0; i < bits / 8; ++i) b.push_back(static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i)));
    }
  }
  if (data_size & 1) b.push_back(0);
  return b;
}

namespace {
struct MemoryFile {
  Bytes data;
  sf_count_t pos = 0;
};
sf_count_t VLen(void* u) { return static_cast<sf_count_t>(static_cast<MemoryFile*>(u)->data.size()); }
sf_count_t VSeek(sf_count_t off, int whence, void* u) {
  auto* m = static_cast<MemoryFile*>(u);
  const sf_count_t p = whence == SEEK_SET ? off : whence == SEEK_CUR ? m->pos + off : static_cast<sf_count_t>(m->data.size()) + off;
  if (p < 0) return -1;
  m->pos = p;
  return p;
}
sf_count_t VRead(void* dst, sf_count_t n, void* u) {
  auto* m = static_cast<MemoryFile*>(u);
  const sf_count_t k = std::max<sf_count_t>(0, std::min<sf_count_t>(n, static_cast<sf_count_t>(m->data.size()) - m->pos));
  if (k > 0) std::memcpy(dst, m->data.data() + m->pos, static_cast<size_t>(k));
  m->pos += k;
  return k;
}
sf_count_t VWrite(const void* src, sf_count_t n, void* u) {
  auto* m = static_cast<MemoryFile*>(u);
  if (static_cast<size_t>(m->pos + n) > m->data.size()) m->data.resize(static_cast<size_t>(m->pos + n));
  std::memcpy(m->data.data() + m->pos, src, static_cast<size_t>(n));
  m->pos += n;
  return n;
}
sf_count_t VTell(void* u) { return static_cast<MemoryFile*>(u)->pos; }
}  // namespace

Bytes EncodeSndfile(const std::vector<float>& samples, int rate, int channels, const std::string& kind) {
  SF_INFO info;
  std::memset(&info, 0, sizeof(info));
  info.samplerate = rate;
  info.channels = channels;
  if (kind == "flac") {
    info.format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
  } else if (kind == "ogg") {
    info.format = SF_FORMAT_OGG | SF_FORMAT_VORBIS;
  } else if (kind == "opus") {
    info.format = SF_FORMAT_OGG | SF_FORMAT_OPUS;
  } else if (kind == "mp3") {
    info.format = SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III;
  } else {
    throw std::runtime_error("unknown kind " + kind);
  }
  MemoryFile m;
  SF_VIRTUAL_IO io{VLen, VSeek, VRead, VWrite, VTell};
  SNDFILE* sf = sf_open_virtual(&io, SFM_WRITE, &info, &m);
  if (!sf) throw std::runtime_error(std::string("sf_open_virtual: ") + sf_strerror(nullptr));
  if (kind == "flac") {  // integers, so that the lossless round trip is exact: x = round(s * 32768)
    std::vector<short> pcm(samples.size());
    for (size_t i = 0; i < samples.size(); ++i) {
      pcm[i] = static_cast<short>(std::max(-32768.0f, std::min(32767.0f, std::nearbyint(samples[i] * 32768.0f))));
    }
    sf_writef_short(sf, pcm.data(), static_cast<sf_count_t>(samples.size() / channels));
  } else {
    sf_writef_float(sf, samples.data(), static_cast<sf_count_t>(samples.size() / channels));
  }
  sf_close(sf);
  return m.data;
}

std::vector<float> Sine(double freq, double amp, int rate, int n, int channels) {
  std::vector<float> s(static_cast<size_t>(n) * channels);
  for (int i = 0; i < n; ++i) {
    for (int c = 0; c < channels; ++c) {
      s[static_cast<size_t>(i) * channels + c] = static_cast<float>(amp * std::sin(2 * M_PI * freq * i / rate));
    }
  }
  return s;
}

}  // namespace g4::mm::test
