// Ogg Vorbis through libvorbisfile, reading from memory. (libsndfile 1.2.0 leaks the stream's
// vorbis_info when a corrupt Ogg Vorbis file fails to open; libvorbisfile releases everything in
// ov_clear, which matters for a server that receives untrusted audio.)
#include <vorbis/vorbisfile.h>

#include <algorithm>
#include <cstring>

#include "multimodal/audio.h"
#include "util/error.h"

namespace g4::mm {

namespace {

struct Reader {
  std::span<const uint8_t> bytes;
  size_t pos = 0;
  static size_t Read(void* dst, size_t size, size_t nmemb, void* h) {
    auto* r = static_cast<Reader*>(h);
    if (size == 0) return 0;
    const size_t k = std::min(nmemb, (r->bytes.size() - r->pos) / size);
    std::memcpy(dst, r->bytes.data() + r->pos, k * size);
    r->pos += k * size;
    return k;
  }
  static int Seek(void* h, ogg_int64_t off, int whence) {
    auto* r = static_cast<Reader*>(h);
    const ogg_int64_t size = static_cast<ogg_int64_t>(r->bytes.size());
    const ogg_int64_t p = whence == SEEK_SET ? off : whence == SEEK_CUR ? static_cast<ogg_int64_t>(r->pos) + off : size + off;
    if (p < 0 || p > size) return -1;
    r->pos = static_cast<size_t>(p);
    return 0;
  }
  static long Tell(void* h) { return static_cast<long>(static_cast<Reader*>(h)->pos); }
};

const char* OvError(long e) {
  switch (e) {
    case OV_HOLE: return "missing or corrupt data";
    case OV_EREAD: return "read error";
    case OV_EFAULT: return "internal decoder error";
    case OV_ENOTVORBIS: return "not Vorbis data";
    case OV_EBADHEADER: return "invalid Vorbis header";
    case OV_EVERSION: return "unsupported Vorbis version";
    case OV_EBADLINK: return "invalid stream section";
    case OV_EINVAL: return "invalid stream";
    default: return "corrupt stream";
  }
}

}  // namespace

AudioClip DecodeOggVorbis(std::span<const uint8_t> b, const std::string& name, const AudioLimits& limits) {
  const char* n = name.c_str();
  Reader reader{b, 0};
  ov_callbacks cb{&Reader::Read, &Reader::Seek, nullptr, &Reader::Tell};
  OggVorbis_File vf;
  const int r = ov_open_callbacks(&reader, &vf, nullptr, 0, cb);
  if (r < 0) Fail("%s: cannot decode the Ogg Vorbis stream: %s", n, OvError(r));
  struct Closer {
    OggVorbis_File* f;
    ~Closer() { ov_clear(f); }
  } closer{&vf};
  const vorbis_info* vi = ov_info(&vf, -1);
  if (!vi || vi->channels <= 0 || vi->channels > 64) Fail("%s: unsupported Ogg Vorbis channel count", n);
  if (vi->rate < 1000 || vi->rate > 768000) Fail("%s: unsupported sample rate %ld Hz", n, vi->rate);
  const ogg_int64_t total = ov_pcm_total(&vf, -1);  // samples per channel from the last granule position
  const double max_frames = limits.max_seconds * static_cast<double>(vi->rate);
  if (total > 0 && static_cast<double>(total) > max_frames) {
    Fail("%s: the audio is %.1f s long, more than the limit of %.0f s", n, static_cast<double>(total) / vi->rate, limits.max_seconds);
  }
  AudioClip clip;
  clip.sample_rate = static_cast<int>(vi->rate);
  clip.channels = vi->channels;
  for (;;) {
    float** pcm = nullptr;
    int section = 0;
    const long got = ov_read_float(&vf, &pcm, 4096, &section);
    if (got == 0) break;
    if (got < 0) Fail("%s: corrupt Ogg Vorbis stream: %s", n, OvError(got));
    const vorbis_info* si = ov_info(&vf, section);
    if (!si || si->channels != clip.channels || si->rate != clip.sample_rate) {
      Fail("%s: the Ogg stream changes its format between sections", n);
    }
    for (long i = 0; i < got; ++i) {
      for (int c = 0; c < clip.channels; ++c) clip.samples.push_back(pcm[c][i]);
    }
    if (static_cast<double>(clip.n_frames()) > max_frames) Fail("%s: the audio is longer than the limit of %.0f s", n, limits.max_seconds);
  }
  if (clip.samples.empty()) Fail("%s: the audio has 0 samples", n);
  if (total >= 0 && clip.n_frames() != total) {
    Fail("%s: truncated or corrupt Ogg Vorbis stream: %lld samples declared, %lld decoded", n, (long long)total,
         (long long)clip.n_frames());
  }
  return clip;
}

}  // namespace g4::mm
