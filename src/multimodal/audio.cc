#include "multimodal/audio.h"

#include <sndfile.h>
#include <soxr.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "util/error.h"

namespace g4::mm {

const char* AudioFormatName(AudioFormat f) {
  switch (f) {
    case AudioFormat::kWav: return "WAV";
    case AudioFormat::kFlac: return "FLAC";
    case AudioFormat::kOgg: return "Ogg";
    case AudioFormat::kMp3: return "MP3";
  }
  return "?";
}

AudioFormat SniffAudio(std::span<const uint8_t> b, const std::string& name) {
  if (b.empty()) Fail("%s: empty file (0 bytes)", name.c_str());
  if (b.size() >= 12 && std::memcmp(b.data(), "RIFF", 4) == 0 && std::memcmp(b.data() + 8, "WAVE", 4) == 0) return AudioFormat::kWav;
  if (b.size() >= 4 && std::memcmp(b.data(), "fLaC", 4) == 0) return AudioFormat::kFlac;
  if (b.size() >= 4 && std::memcmp(b.data(), "OggS", 4) == 0) return AudioFormat::kOgg;
  if (b.size() >= 3 && std::memcmp(b.data(), "ID3", 3) == 0) return AudioFormat::kMp3;
  // An MPEG audio frame header: 11 sync bits, a valid version, layer III, bitrate and rate indices.
  if (b.size() >= 4 && b[0] == 0xFF && (b[1] & 0xE0) == 0xE0 && ((b[1] >> 3) & 3) != 1 && ((b[1] >> 1) & 3) == 1 &&
      (b[2] >> 4) != 15 && ((b[2] >> 2) & 3) != 3) {
    return AudioFormat::kMp3;
  }
  std::string head;
  for (size_t i = 0; i < std::min<size_t>(b.size(), 8); ++i) head += StrFormat("%s%02X", i ? " " : "", b[i]);
  Fail("%s: not a supported audio file (WAV, FLAC, Ogg Vorbis/Opus or MP3); it starts with bytes %s", name.c_str(), head.c_str());
}

namespace {

// libsndfile reading from memory.
struct MemoryReader {
  std::span<const uint8_t> bytes;
  sf_count_t pos = 0;

  static sf_count_t Length(void* u) { return static_cast<sf_count_t>(static_cast<MemoryReader*>(u)->bytes.size()); }
  static sf_count_t Seek(sf_count_t off, int whence, void* u) {
    auto* r = static_cast<MemoryReader*>(u);
    const sf_count_t size = static_cast<sf_count_t>(r->bytes.size());
    sf_count_t p = whence == SEEK_SET ? off : whence == SEEK_CUR ? r->pos + off : size + off;
    if (p < 0 || p > size) return -1;
    r->pos = p;
    return p;
  }
  static sf_count_t Read(void* dst, sf_count_t n, void* u) {
    auto* r = static_cast<MemoryReader*>(u);
    const sf_count_t size = static_cast<sf_count_t>(r->bytes.size());
    const sf_count_t k = std::max<sf_count_t>(0, std::min(n, size - r->pos));
    if (k > 0) std::memcpy(dst, r->bytes.data() + r->pos, static_cast<size_t>(k));
    r->pos += k;
    return k;
  }
  static sf_count_t Write(const void*, sf_count_t, void*) { return 0; }
  static sf_count_t Tell(void* u) { return static_cast<MemoryReader*>(u)->pos; }
};

// Ogg: pages that tile the file, the last one flagged end-of-stream.
void CheckOggPages(std::span<const uint8_t> b, const std::string& name) {
  size_t pos = 0;
  bool eos = false;
  while (pos < b.size()) {
    if (b.size() - pos < 27 || std::memcmp(b.data() + pos, "OggS", 4) != 0) {
      Fail("%s: truncated or corrupt Ogg stream: no complete page header at offset %zu", name.c_str(), pos);
    }
    const uint8_t flags = b[pos + 5];
    const size_t nseg = b[pos + 26];
    if (b.size() - pos - 27 < nseg) Fail("%s: truncated Ogg stream: page at offset %zu", name.c_str(), pos);
    size_t body = 0;
    for (size_t i = 0; i < nseg; ++i) body += b[pos + 27 + i];
    if (b.size() - pos - 27 - nseg < body) {
      Fail("%s: truncated Ogg stream: the page at offset %zu needs %zu bytes, %zu remain", name.c_str(), pos, body,
           b.size() - pos - 27 - nseg);
    }
    eos = (flags & 4) != 0;
    pos += 27 + nseg + body;
  }
  if (!eos) Fail("%s: truncated Ogg stream: the last page is not marked end-of-stream", name.c_str());
}

// The codec of an Ogg file from its first packet (the pages are already checked).
bool IsOggVorbis(std::span<const uint8_t> b) {
  const size_t body = 27 + static_cast<size_t>(b[26]);
  return b.size() >= body + 7 && std::memcmp(b.data() + body, "\x01vorbis", 7) == 0;
}
bool IsOggOpus(std::span<const uint8_t> b) {
  const size_t body = 27 + static_cast<size_t>(b[26]);
  return b.size() >= body + 8 && std::memcmp(b.data() + body, "OpusHead", 8) == 0;
}

AudioClip DecodeSndfile(std::span<const uint8_t> b, AudioFormat fmt, const std::string& name, const AudioLimits& limits) {
  const char* n = name.c_str();
  MemoryReader reader{b, 0};
  SF_VIRTUAL_IO io{&MemoryReader::Length, &MemoryReader::Seek, &MemoryReader::Read, &MemoryReader::Write, &MemoryReader::Tell};
  SF_INFO info;
  std::memset(&info, 0, sizeof(info));
  std::unique_ptr<SNDFILE, int (*)(SNDFILE*)> sf(sf_open_virtual(&io, SFM_READ, &info, &reader), sf_close);
  if (!sf) Fail("%s: cannot decode the %s file: %s", n, AudioFormatName(fmt), sf_strerror(nullptr));
  if (info.channels <= 0 || info.channels > 64) Fail("%s: unsupported channel count %d", n, info.channels);
  if (info.samplerate < 1000 || info.samplerate > 768000) Fail("%s: unsupported sample rate %d Hz", n, info.samplerate);
  const double max_frames = limits.max_seconds * info.samplerate;
  if (static_cast<double>(info.frames) > max_frames) {
    Fail("%s: the audio is %.1f s long, more than the limit of %.0f s", n, static_cast<double>(info.frames) / info.samplerate,
         limits.max_seconds);
  }
  AudioClip clip;
  clip.sample_rate = info.samplerate;
  clip.channels = info.channels;
  // Read in blocks: the frame count of compressed formats is an estimate (MP3) or may be absent.
  constexpr sf_count_t kBlock = 16384;
  std::vector<float> buf(static_cast<size_t>(kBlock) * info.channels);  // [kBlock][channels]
  for (;;) {
    const sf_count_t got = sf_readf_float(sf.get(), buf.data(), kBlock);
    if (got < 0) Fail("%s: error decoding the %s stream: %s", n, AudioFormatName(fmt), sf_strerror(sf.get()));
    if (got == 0) break;
    clip.samples.insert(clip.samples.end(), buf.begin(), buf.begin() + got * info.channels);
    if (static_cast<double>(clip.n_frames()) > max_frames) {
      Fail("%s: the audio is longer than the limit of %.0f s", n, limits.max_seconds);
    }
  }
  if (sf_error(sf.get()) != SF_ERR_NO_ERROR) {
    Fail("%s: corrupt or truncated %s stream: %s", n, AudioFormatName(fmt), sf_strerror(sf.get()));
  }
  if (clip.samples.empty()) Fail("%s: the audio has 0 samples", n);
  if (fmt == AudioFormat::kFlac && info.frames > 0 && clip.n_frames() != info.frames) {
    Fail("%s: truncated or corrupt FLAC: its header declares %lld samples, %lld were decoded", n, (long long)info.frames,
         (long long)clip.n_frames());
  }
  return clip;
}

}  // namespace

AudioClip DecodeAudio(std::span<const uint8_t> b, const std::string& name, const AudioLimits& limits) {
  const AudioFormat fmt = SniffAudio(b, name);
  AudioClip clip;
  if (fmt == AudioFormat::kWav) {
    clip = DecodeWav(b, name, limits);
  } else if (fmt == AudioFormat::kMp3) {
    clip = DecodeMp3(b, name, limits);
  } else if (fmt == AudioFormat::kOgg) {
    CheckOggPages(b, name);
    if (IsOggVorbis(b)) {
      clip = DecodeOggVorbis(b, name, limits);
    } else if (IsOggOpus(b)) {
      clip = DecodeSndfile(b, fmt, name, limits);
    } else {
      Fail("%s: unsupported Ogg codec (Vorbis and Opus are supported)", name.c_str());
    }
  } else {
    clip = DecodeSndfile(b, fmt, name, limits);
  }
  for (size_t i = 0; i < clip.samples.size(); ++i) {
    if (!std::isfinite(clip.samples[i])) {
      Fail("%s: sample %zu of channel %zu is not a finite number", name.c_str(), i / clip.channels, i % clip.channels);
    }
  }
  return clip;
}

std::vector<float> Resample(std::span<const float> mono, int in_rate, int out_rate) {
  if (in_rate <= 0 || out_rate <= 0) Fail("resample: bad rates %d -> %d", in_rate, out_rate);
  if (in_rate == out_rate) return std::vector<float>(mono.begin(), mono.end());
  const size_t out_len = static_cast<size_t>(
      (static_cast<uint64_t>(mono.size()) * static_cast<uint64_t>(out_rate) + static_cast<uint64_t>(in_rate) - 1) /
      static_cast<uint64_t>(in_rate));
  std::vector<float> out(out_len);  // [ceil(n * out / in)]
  if (mono.empty()) return out;
  const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  const soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
  size_t done = 0;
  const soxr_error_t err = soxr_oneshot(in_rate, out_rate, 1, mono.data(), mono.size(), nullptr, out.data(), out.size(),
                                        &done, &io, &q, nullptr);
  if (err) Fail("resampling %d Hz to %d Hz failed: %s", in_rate, out_rate, err);
  // soxr may stop a sample short of the rounded-up length; that sample is silence.
  if (out_len - done > 1) Fail("resampling %d Hz to %d Hz produced %zu of %zu samples", in_rate, out_rate, done, out_len);
  return out;
}

std::vector<float> ToMono16k(const AudioClip& clip, const std::string& name) {
  const int64_t n = clip.n_frames();
  if (n == 0) Fail("%s: the audio has 0 samples", name.c_str());
  std::vector<float> mono(static_cast<size_t>(n));  // [n]
  const int ch = clip.channels;
  for (int64_t i = 0; i < n; ++i) {
    if (ch == 1) {
      mono[i] = clip.samples[i];
    } else {
      double s = 0;
      for (int c = 0; c < ch; ++c) s += clip.samples[static_cast<size_t>(i) * ch + c];
      mono[i] = static_cast<float>(s / ch);
    }
  }
  return Resample(mono, clip.sample_rate, kAudioRate);
}

std::vector<std::vector<float>> FrameAudio(std::span<const float> s, bool chunk, const std::string& name, int64_t max_frames) {
  if (s.empty()) Fail("%s: the audio has 0 samples", name.c_str());
  if (max_frames <= 0) Fail("the audio frame limit must be positive (got %lld)", (long long)max_frames);
  const int64_t n_frames = (static_cast<int64_t>(s.size()) + 639) / 640;
  if (n_frames > max_frames && !chunk) {
    Fail("%s: the audio is %.2f s long (%lld frames of 40 ms); a clip holds at most %lld frames (%.0f s): pass "
         "--audio-chunk to split it into consecutive clips",
         name.c_str(), static_cast<double>(s.size()) / kAudioRate, (long long)n_frames, (long long)max_frames,
         static_cast<double>(max_frames) * 0.04);
  }
  std::vector<std::vector<float>> clips;
  for (int64_t f0 = 0; f0 < n_frames; f0 += max_frames) {
    const int64_t nf = std::min(max_frames, n_frames - f0);
    std::vector<float> c(static_cast<size_t>(nf) * 640, 0.0f);  // [nf][640], zero-padded
    const size_t begin = static_cast<size_t>(f0) * 640;
    const size_t count = std::min(c.size(), s.size() - begin);
    std::memcpy(c.data(), s.data() + begin, count * sizeof(float));
    clips.push_back(std::move(c));
  }
  return clips;
}

}  // namespace g4::mm
