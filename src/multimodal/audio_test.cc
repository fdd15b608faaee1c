// Audio decoding (WAV parser, libsndfile formats), bad-audio errors, the resampler's quality and the
// framing into 640-sample frames.
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <cstdlib>

#include "multimodal/audio.h"
#include "multimodal/test_media.h"
#include "util/error.h"

namespace g4::mm {
namespace {

using test::Bytes;

template <typename F>
void ExpectError(F&& f, const std::string& what) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one containing '" << what << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << "message: " << e.what();
  }
}

AudioClip Decode(const Bytes& b) { return DecodeAudio(b, "test audio"); }

TEST(Wav, EverySampleFormat) {
  // Values exactly representable in every format.
  const std::vector<float> s = {0.0f, 0.5f, -0.5f, -1.0f, 0.25f, -0.75f};
  struct F {
    int format, bits;
    bool ext;
  } formats[] = {{1, 8, false},  {1, 16, false}, {1, 24, false}, {1, 32, false}, {3, 32, false},
                 {3, 64, false}, {1, 16, true},  {1, 24, true},  {3, 32, true}};
  for (const F& f : formats) {
    const AudioClip c = Decode(test::EncodeWav(s, 22050, 2, f.format, f.bits, f.ext));
    EXPECT_EQ(c.sample_rate, 22050);
    EXPECT_EQ(c.channels, 2);
    ASSERT_EQ(c.samples.size(), s.size()) << f.format << "/" << f.bits;
    for (size_t i = 0; i < s.size(); ++i) EXPECT_EQ(c.samples[i], s[i]) << f.format << "/" << f.bits << " sample " << i;
  }
  // PCM16 is x / 32768, as llama.cpp reads it.
  const AudioClip c = Decode(test::EncodeWav({1000.0f / 32768}, 16000, 1, 1, 16));
  EXPECT_EQ(c.samples[0], 1000.0f / 32768.0f);
}

TEST(Wav, ClearErrors) {
  const Bytes good = test::EncodeWav(test::Sine(440, 0.5, 16000, 1000), 16000, 1, 1, 16);
  ExpectError([] { Decode({}); }, "empty file");
  ExpectError([] { Decode({'R', 'I', 'F', 'X', 0, 0, 0, 0}); }, "not a supported audio file");
  ExpectError([&] { Decode(Bytes(good.begin(), good.end() - 1)); }, "truncated WAV");
  ExpectError([&] { Decode(test::EncodeWav({}, 16000, 1, 1, 16)); }, "the audio has 0 samples");
  Bytes adpcm = good;
  adpcm[20] = 2;  // MS ADPCM
  ExpectError([&] { Decode(adpcm); }, "unsupported WAV sample format 2");
  Bytes bad_align = good;
  bad_align[32] = 3;
  ExpectError([&] { Decode(bad_align); }, "block align 3");
  Bytes no_channels = good;
  no_channels[22] = 0;
  ExpectError([&] { Decode(no_channels); }, "unsupported channel count 0");
  Bytes huge_chunk = good;
  huge_chunk[40] = 0xFF, huge_chunk[41] = 0xFF, huge_chunk[42] = 0xFF, huge_chunk[43] = 0x7F;  // data size
  ExpectError([&] { Decode(huge_chunk); }, "chunk 'data' at offset 36 declares");
  Bytes nan = test::EncodeWav({0.1f, std::nanf("")}, 16000, 1, 3, 32);
  ExpectError([&] { Decode(nan); }, "sample 1 of channel 0 is not a finite number");
  // Every truncation is an error, never a crash or a silent partial decode.
  for (size_t n = 0; n < good.size(); n += (n < 64 ? 1 : 97)) {
    EXPECT_THROW(Decode(Bytes(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n))), Error) << n;
  }
  AudioLimits lim;
  lim.max_seconds = 0.01;
  ExpectError([&] { DecodeAudio(good, "x", lim); }, "more than the limit of 0 s");
}

// Frequency (by a fine DFT peak search) and amplitude of a sine.
std::pair<double, double> SineFit(const std::vector<float>& s, int rate, double f0) {
  double best = 0, best_f = 0;
  for (double f = f0 - 5; f <= f0 + 5; f += 0.05) {
    std::complex<double> acc = 0;
    for (size_t i = 0; i < s.size(); ++i) acc += static_cast<double>(s[i]) * std::polar(1.0, -2 * M_PI * f * i / rate);
    if (std::abs(acc) > best) best = std::abs(acc), best_f = f;
  }
  return {best_f, 2 * best / static_cast<double>(s.size())};
}

double Rms(const std::vector<float>& s, size_t from, size_t to) {
  double a = 0;
  for (size_t i = from; i < to; ++i) a += static_cast<double>(s[i]) * s[i];
  return std::sqrt(a / static_cast<double>(to - from));
}

TEST(Resampler, KeepsFrequencyAndAmplitudeAndSuppressesAliasing) {
  for (int rate : {44100, 48000, 8000, 22050}) {
    const int n = rate;  // 1 s
    const std::vector<float> out = Resample(test::Sine(1000, 0.5, rate, n), rate, 16000);
    EXPECT_EQ(out.size(), 16000u) << rate;
    // Skip the filter's edges.
    const std::vector<float> mid(out.begin() + 800, out.end() - 800);
    const auto [f, a] = SineFit(mid, 16000, 1000);
    EXPECT_NEAR(f, 1000, 0.1) << rate;
    EXPECT_NEAR(a, 0.5, 0.005) << rate;  // within 0.1 dB
  }
  // A 12 kHz tone is above the 8 kHz Nyquist limit of 16 kHz audio: it must vanish, not fold to 4 kHz.
  const std::vector<float> alias = Resample(test::Sine(12000, 0.5, 48000, 48000), 48000, 16000);
  EXPECT_LT(Rms(alias, 800, alias.size() - 800), 0.5 / std::sqrt(2.0) * 1e-3);  // below -60 dB
  // Lengths round up: 2400 samples at 8 kHz -> 4800; 110250 at 44.1 kHz -> 40000; 7 at 44.1 kHz -> 3.
  EXPECT_EQ(Resample(std::vector<float>(2400, 0.1f), 8000, 16000).size(), 4800u);
  EXPECT_EQ(Resample(std::vector<float>(110250, 0.1f), 44100, 16000).size(), 40000u);
  EXPECT_EQ(Resample(std::vector<float>(7, 0.1f), 44100, 16000).size(), 3u);
}

TEST(Audio, MonoAndRate) {
  // Stereo: channel mean; 16 kHz passes through untouched.
  AudioClip c;
  c.sample_rate = 16000;
  c.channels = 2;
  c.samples = {0.5f, 0.25f, -1.0f, 1.0f, 0.125f, 0.0f};
  EXPECT_EQ(ToMono16k(c, "x"), (std::vector<float>{0.375f, 0.0f, 0.0625f}));
}

TEST(Audio, CompressedFormatsThroughLibsndfile) {
  struct K {
    const char* kind;
    AudioFormat format;
    double tol;
    int rate;
  } kinds[] = {{"flac", AudioFormat::kFlac, 0, 44100},
               {"ogg", AudioFormat::kOgg, 0.02, 44100},
               {"opus", AudioFormat::kOgg, 0.02, 48000},
               {"mp3", AudioFormat::kMp3, 0.02, 44100}};
  for (const K& k : kinds) {
    const std::vector<float> sine = test::Sine(440, 0.5, k.rate, k.rate, 2);
    const Bytes file = test::EncodeSndfile(sine, k.rate, 2, k.kind);
    EXPECT_EQ(SniffAudio(file, k.kind), k.format) << k.kind;
    const AudioClip c = Decode(file);
    EXPECT_EQ(c.sample_rate, k.rate) << k.kind;
    EXPECT_EQ(c.channels, 2) << k.kind;
    EXPECT_EQ(c.n_frames(), k.rate) << k.kind;  // MP3: gapless, the encoder's delay and padding removed
    const std::vector<float> mono = ToMono16k(c, k.kind);
    const std::vector<float> mid(mono.begin() + 2000, mono.begin() + 14000);
    const auto [f, a] = SineFit(mid, 16000, 440);
    EXPECT_NEAR(f, 440, 0.2) << k.kind;
    EXPECT_NEAR(a, 0.5, 0.5 * 0.05 + k.tol) << k.kind;
    if (k.tol == 0) {  // FLAC is lossless: the 16-bit samples exactly
      for (size_t i = 0; i < 1000; ++i) ASSERT_EQ(c.samples[i], std::nearbyint(sine[i] * 32768.0f) / 32768.0f) << i;
    }
    // Truncated and corrupted streams: an error, never a crash.
    ExpectError([&] { Decode(Bytes(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(file.size() / 2))); }, "truncated");
    for (size_t cut : {size_t{3}, size_t{40}, file.size() / 3, file.size() - 1}) {
      const Bytes t(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(cut));
      try {
        const AudioClip partial = Decode(t);
        ADD_FAILURE() << k.kind << " cut to " << cut << " bytes decoded " << partial.n_frames() << " frames without an error";
      } catch (const Error&) {
      }
    }
  }
}

// Trials per format; G4_FUZZ_TRIALS raises it for a longer local run.
int FuzzTrials() {
  const char* e = std::getenv("G4_FUZZ_TRIALS");
  return e && std::atoi(e) > 0 ? std::atoi(e) : 100;
}

// Random byte corruption: a clip or a g4::Error, never a crash (ASan/UBSan in CI).
TEST(Audio, RandomCorruptionNeverCrashes) {
  const std::vector<float> sine = test::Sine(440, 0.5, 22050, 8000, 2);
  const std::vector<Bytes> files = {test::EncodeWav(sine, 22050, 2, 1, 16), test::EncodeWav(sine, 22050, 2, 3, 32, true),
                                    test::EncodeSndfile(sine, 22050, 2, "flac"), test::EncodeSndfile(sine, 22050, 2, "ogg"),
                                    test::EncodeSndfile(test::Sine(440, 0.5, 48000, 8000, 2), 48000, 2, "opus"),
                                    test::EncodeSndfile(sine, 22050, 2, "mp3")};
  uint32_t s = 777;
  auto next = [&] { return s = s * 1664525u + 1013904223u; };
  int decoded = 0, refused = 0;
  for (const Bytes& f : files) {
    for (int trial = 0; trial < FuzzTrials(); ++trial) {
      Bytes b = f;
      for (int k = 0, n = 1 + next() % 4; k < n; ++k) b[next() % b.size()] = static_cast<uint8_t>(next() >> 24);
      try {
        const AudioClip c = Decode(b);
        EXPECT_GT(c.n_frames(), 0);
        for (float v : c.samples) ASSERT_TRUE(std::isfinite(v));
        ++decoded;
      } catch (const Error&) {
        ++refused;
      }
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_GT(decoded, 0);
}

TEST(Framing, FramesAndTheThirtySecondCap) {
  ExpectError([] { FrameAudio({}, false, "x"); }, "the audio has 0 samples");
  std::vector<float> s(641, 0.5f);
  auto clips = FrameAudio(s, false, "x");
  ASSERT_EQ(clips.size(), 1u);
  ASSERT_EQ(clips[0].size(), 2u * 640);
  EXPECT_EQ(clips[0][640], 0.5f);
  EXPECT_EQ(clips[0][641], 0.0f);  // zero padding
  EXPECT_EQ(FrameAudio(std::vector<float>(16000, 0.1f), false, "x")[0].size(), 25u * 640);
  EXPECT_EQ(FrameAudio(std::vector<float>(750 * 640, 0.1f), false, "x").size(), 1u);
  std::vector<float> longer(750 * 640 + 1);
  for (size_t i = 0; i < longer.size(); ++i) longer[i] = static_cast<float>(i % 1000) / 1000.0f;
  ExpectError([&] { FrameAudio(longer, false, "long.wav"); }, "long.wav: the audio is 30.00 s long (751 frames of 40 ms); a clip holds at most 750 frames (30 s): pass --audio-chunk");
  clips = FrameAudio(longer, true, "x");
  ASSERT_EQ(clips.size(), 2u);
  EXPECT_EQ(clips[0].size(), 750u * 640);
  EXPECT_EQ(clips[1].size(), 640u);
  EXPECT_EQ(clips[1][0], longer[750 * 640]);
  EXPECT_EQ(clips[1][1], 0.0f);
}

}  // namespace
}  // namespace g4::mm
