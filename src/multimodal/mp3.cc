// MP3 through libmpg123, reading from memory, quiet (the library prints nothing), gapless (encoder
// delay and padding removed, as libsndfile and librosa decode it), float output.
//
// An MP3 is a sequence of self-contained frames, so a file cut at a frame boundary is still a valid
// stream. Truncation is detected when the stream declares its length in a Xing/Info header (LAME and
// most encoders write one): fewer decoded samples than declared is an error.
#include <mpg123.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "multimodal/audio.h"
#include "util/error.h"

namespace g4::mm {

namespace {

struct Reader {
  std::span<const uint8_t> bytes;
  off_t pos = 0;
  static ssize_t Read(void* h, void* dst, size_t n) {
    auto* r = static_cast<Reader*>(h);
    const size_t left = r->bytes.size() - static_cast<size_t>(r->pos);
    const size_t k = std::min(n, left);
    std::memcpy(dst, r->bytes.data() + r->pos, k);
    r->pos += static_cast<off_t>(k);
    return static_cast<ssize_t>(k);
  }
  static off_t Seek(void* h, off_t off, int whence) {
    auto* r = static_cast<Reader*>(h);
    const off_t size = static_cast<off_t>(r->bytes.size());
    const off_t p = whence == SEEK_SET ? off : whence == SEEK_CUR ? r->pos + off : size + off;
    if (p < 0 || p > size) return -1;
    r->pos = p;
    return p;
  }
};

// True when the first frame (after an ID3v2 tag) carries a Xing/Info header with a frame count.
bool HasXingFrameCount(std::span<const uint8_t> b) {
  size_t pos = 0;
  if (b.size() >= 10 && std::memcmp(b.data(), "ID3", 3) == 0) {
    const size_t size = size_t{b[6] & 0x7Fu} << 21 | size_t{b[7] & 0x7Fu} << 14 | size_t{b[8] & 0x7Fu} << 7 | (b[9] & 0x7Fu);
    pos = 10 + size + ((b[5] & 0x10) ? 10 : 0);
  }
  if (pos + 4 > b.size() || b[pos] != 0xFF || (b[pos + 1] & 0xE0) != 0xE0) return false;
  const bool mpeg1 = ((b[pos + 1] >> 3) & 3) == 3;
  const bool mono = ((b[pos + 3] >> 6) & 3) == 3;
  const size_t side = mpeg1 ? (mono ? 17 : 32) : (mono ? 9 : 17);
  const size_t tag = pos + 4 + side;
  if (tag + 12 > b.size()) return false;
  if (std::memcmp(b.data() + tag, "Xing", 4) != 0 && std::memcmp(b.data() + tag, "Info", 4) != 0) return false;
  return (b[tag + 7] & 1) != 0;
}

}  // namespace

AudioClip DecodeMp3(std::span<const uint8_t> b, const std::string& name, const AudioLimits& limits) {
  const char* n = name.c_str();
  int err = MPG123_OK;
  std::unique_ptr<mpg123_handle, void (*)(mpg123_handle*)> mh(mpg123_new(nullptr, &err), mpg123_delete);
  if (!mh) Fail("%s: cannot start the MP3 decoder: %s", n, mpg123_plain_strerror(err));
  mpg123_param(mh.get(), MPG123_ADD_FLAGS, MPG123_QUIET | MPG123_GAPLESS, 0);
  mpg123_param(mh.get(), MPG123_RESYNC_LIMIT, 16384, 0);
  mpg123_format_none(mh.get());
  const long* rates = nullptr;
  size_t n_rates = 0;
  mpg123_rates(&rates, &n_rates);
  for (size_t i = 0; i < n_rates; ++i) mpg123_format(mh.get(), rates[i], MPG123_MONO | MPG123_STEREO, MPG123_ENC_FLOAT_32);
  Reader reader{b, 0};
  if (mpg123_replace_reader_handle(mh.get(), &Reader::Read, &Reader::Seek, nullptr) != MPG123_OK ||
      mpg123_open_handle(mh.get(), &reader) != MPG123_OK) {
    Fail("%s: cannot open the MP3 stream: %s", n, mpg123_strerror(mh.get()));
  }
  long rate = 0;
  int channels = 0, enc = 0;
  if (mpg123_getformat(mh.get(), &rate, &channels, &enc) != MPG123_OK) {
    Fail("%s: corrupt MP3: no audio frame found (%s)", n, mpg123_strerror(mh.get()));
  }
  if (enc != MPG123_ENC_FLOAT_32 || channels < 1 || channels > 2) Fail("%s: unexpected MP3 output format", n);
  const bool declared = HasXingFrameCount(b);
  const off_t expected = declared ? mpg123_length(mh.get()) : -1;  // samples per channel from the header
  const double max_frames = limits.max_seconds * static_cast<double>(rate);
  if (expected > 0 && static_cast<double>(expected) > max_frames) {
    Fail("%s: the audio is %.1f s long, more than the limit of %.0f s", n, static_cast<double>(expected) / rate, limits.max_seconds);
  }
  AudioClip clip;
  clip.sample_rate = static_cast<int>(rate);
  clip.channels = channels;
  std::vector<float> buf(16384);
  for (;;) {
    size_t done = 0;
    const int r = mpg123_read(mh.get(), buf.data(), buf.size() * sizeof(float), &done);
    clip.samples.insert(clip.samples.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(done / sizeof(float)));
    if (static_cast<double>(clip.n_frames()) > max_frames) Fail("%s: the audio is longer than the limit of %.0f s", n, limits.max_seconds);
    if (r == MPG123_DONE) break;
    if (r == MPG123_NEW_FORMAT) {
      long r2 = 0;
      int c2 = 0, e2 = 0;
      mpg123_getformat(mh.get(), &r2, &c2, &e2);
      if (r2 != rate || c2 != channels) Fail("%s: the MP3 stream changes its format midway (%ld Hz x %d)", n, r2, c2);
      continue;
    }
    if (r != MPG123_OK) Fail("%s: corrupt MP3 stream: %s", n, mpg123_strerror(mh.get()));
  }
  if (clip.samples.empty()) Fail("%s: the audio has 0 samples", n);
  if (expected > 0 && clip.n_frames() < static_cast<int64_t>(expected)) {
    Fail("%s: truncated MP3: its header declares %lld samples, the stream holds %lld", n, (long long)expected,
         (long long)clip.n_frames());
  }
  return clip;
}

}  // namespace g4::mm
