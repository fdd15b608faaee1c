// RIFF/WAVE parsing: every chunk header, the format fields and the data size are validated before a
// sample is read, so a truncated or inconsistent file is an error naming the chunk and offset.
#include <cstring>

#include "multimodal/audio.h"
#include "util/error.h"

namespace g4::mm {

namespace {

uint32_t Le16(const uint8_t* p) { return uint32_t{p[0]} | uint32_t{p[1]} << 8; }
uint32_t Le32(const uint8_t* p) { return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24; }

constexpr uint32_t kPcm = 1, kFloat = 3, kExtensible = 0xFFFE;

std::string Tag(const uint8_t* p) {
  std::string s;
  for (int i = 0; i < 4; ++i) s += (p[i] >= 0x20 && p[i] < 0x7F) ? static_cast<char>(p[i]) : '?';
  return s;
}

float Sample(const uint8_t* p, uint32_t format, uint32_t bits) {
  if (format == kFloat) {
    if (bits == 32) {
      float f;
      std::memcpy(&f, p, 4);
      return f;
    }
    double d;
    std::memcpy(&d, p, 8);
    return static_cast<float>(d);
  }
  switch (bits) {
    case 8: return (static_cast<float>(p[0]) - 128.0f) / 128.0f;
    case 16: return static_cast<float>(static_cast<int16_t>(Le16(p))) / 32768.0f;
    case 24: {
      const int32_t v = static_cast<int32_t>(uint32_t{p[0]} << 8 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 24) >> 8;
      return static_cast<float>(v) / 8388608.0f;
    }
    default: return static_cast<float>(static_cast<double>(static_cast<int32_t>(Le32(p))) / 2147483648.0);
  }
}

}  // namespace

AudioClip DecodeWav(std::span<const uint8_t> b, const std::string& name, const AudioLimits& limits) {
  const char* n = name.c_str();
  if (b.size() < 12 || std::memcmp(b.data(), "RIFF", 4) != 0 || std::memcmp(b.data() + 8, "WAVE", 4) != 0) {
    Fail("%s: not a WAV file (no RIFF/WAVE header)", n);
  }
  const uint64_t riff_end = uint64_t{Le32(b.data() + 4)} + 8;
  if (riff_end > b.size()) {
    Fail("%s: truncated WAV: the RIFF header declares %llu bytes, the file has %zu", n, (unsigned long long)riff_end, b.size());
  }
  if (riff_end < 12) Fail("%s: corrupt WAV: RIFF size %llu", n, (unsigned long long)riff_end);
  const size_t end = static_cast<size_t>(riff_end);
  bool have_fmt = false;
  uint32_t format = 0, channels = 0, rate = 0, block = 0, bits = 0;
  const uint8_t* data = nullptr;
  size_t data_size = 0;
  size_t pos = 12;
  while (pos < end) {
    if (end - pos < 8) Fail("%s: truncated WAV: chunk header at offset %zu", n, pos);
    const std::string tag = Tag(b.data() + pos);
    const uint32_t size = Le32(b.data() + pos + 4);
    if (size > end - pos - 8) {
      Fail("%s: truncated WAV: chunk '%s' at offset %zu declares %u bytes, only %zu remain", n, tag.c_str(), pos, size,
           end - pos - 8);
    }
    const uint8_t* body = b.data() + pos + 8;
    if (tag == "fmt ") {
      if (have_fmt) Fail("%s: corrupt WAV: a second 'fmt ' chunk at offset %zu", n, pos);
      if (size < 16) Fail("%s: corrupt WAV: 'fmt ' chunk of %u bytes (at least 16)", n, size);
      format = Le16(body);
      channels = Le16(body + 2);
      rate = Le32(body + 4);
      block = Le16(body + 12);
      bits = Le16(body + 14);
      if (format == kExtensible) {
        if (size < 40 || Le16(body + 16) < 22) Fail("%s: corrupt WAV: WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk of %u bytes", n, size);
        const uint32_t valid_bits = Le16(body + 18);
        if (valid_bits > bits) Fail("%s: corrupt WAV: %u valid bits in %u-bit samples", n, valid_bits, bits);
        format = Le16(body + 24);  // the sub-format GUID starts with the format code
      }
      have_fmt = true;
    } else if (tag == "data") {
      if (!have_fmt) Fail("%s: corrupt WAV: 'data' chunk at offset %zu before the 'fmt ' chunk", n, pos);
      if (data) Fail("%s: corrupt WAV: a second 'data' chunk at offset %zu", n, pos);
      data = body;
      data_size = size;
    }
    pos += 8 + static_cast<size_t>(size) + (size & 1);  // chunks are padded to even sizes (a missing final pad is tolerated)
  }
  if (!have_fmt) Fail("%s: corrupt WAV: no 'fmt ' chunk", n);
  if (!data) Fail("%s: corrupt WAV: no 'data' chunk", n);
  if (format != kPcm && format != kFloat) {
    Fail("%s: unsupported WAV sample format %u (supported: 1 = PCM, 3 = IEEE float)", n, format);
  }
  if (format == kPcm && bits != 8 && bits != 16 && bits != 24 && bits != 32) Fail("%s: unsupported PCM sample size of %u bits", n, bits);
  if (format == kFloat && bits != 32 && bits != 64) Fail("%s: unsupported float sample size of %u bits", n, bits);
  if (channels == 0 || channels > 64) Fail("%s: unsupported channel count %u", n, channels);
  if (rate < 1000 || rate > 768000) Fail("%s: unsupported sample rate %u Hz", n, rate);
  if (block != channels * (bits / 8)) {
    Fail("%s: corrupt WAV: block align %u does not match %u channels of %u bits", n, block, channels, bits);
  }
  const uint64_t frames = data_size / block;
  if (frames == 0) Fail("%s: the audio has 0 samples", n);
  if (static_cast<double>(frames) > limits.max_seconds * rate) {
    Fail("%s: the audio is %.1f s long, more than the limit of %.0f s", n, static_cast<double>(frames) / rate, limits.max_seconds);
  }
  AudioClip clip;
  clip.sample_rate = static_cast<int>(rate);
  clip.channels = static_cast<int>(channels);
  clip.samples.resize(static_cast<size_t>(frames) * channels);
  const uint32_t bytes = bits / 8;
  for (size_t i = 0; i < clip.samples.size(); ++i) clip.samples[i] = Sample(data + i * bytes, format, bits);
  return clip;
}

}  // namespace g4::mm
