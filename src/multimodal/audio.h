// Audio input: decoding, conversion to 16 kHz mono and framing into 640-sample (40 ms) frames.
//
//  * WAV is parsed here (RIFF/WAVE; PCM 8/16/24/32-bit, IEEE float 32/64-bit, WAVE_FORMAT_EXTENSIBLE
//    of those), validating every chunk. Integer samples become x / 2^(bits-1) (8-bit: (x-128)/128).
//  * FLAC and Ogg Opus are decoded with libsndfile (Debian's libsndfile1, over libFLAC and libopus),
//    Ogg Vorbis with libvorbisfile and MP3 with libmpg123 directly (quiet, gapless), all from memory.
//    Truncation is detected where the format makes it knowable: FLAC against the sample count in its
//    STREAMINFO, Ogg by walking its pages up to the end-of-stream page, MP3 against a Xing/Info
//    header's frame count (an MP3 without one is a plain frame sequence, valid wherever it ends).
//  * Channels are averaged to mono (as llama.cpp and librosa do), then the signal is resampled to
//    16 kHz with libsoxr at its "high quality" setting (librosa's default resampler, soxr_hq); a
//    16 kHz input is passed through unchanged.
//  * Framing follows the reference feature extractor: zero-pad to a multiple of 640 samples, one soft
//    token per frame, at most 750 frames (30 s) per clip.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace g4::mm {

constexpr int kAudioRate = 16000;
constexpr int64_t kMaxAudioFrames = 750;  // 30 s per clip

enum class AudioFormat { kWav, kFlac, kOgg, kMp3 };
const char* AudioFormatName(AudioFormat f);

struct AudioClip {
  int sample_rate = 0;
  int channels = 0;
  std::vector<float> samples;  // [n_frames][channels], interleaved, nominally in [-1, 1]
  int64_t n_frames() const { return channels > 0 ? static_cast<int64_t>(samples.size()) / channels : 0; }
};

struct AudioLimits {
  double max_seconds = 3600;  // refuse longer input before decoding it
};

// The container from the first bytes, or an error naming what was found.
AudioFormat SniffAudio(std::span<const uint8_t> bytes, const std::string& name);

// Decodes a whole file held in memory. `name` is used in messages. A file with no samples is an error.
AudioClip DecodeAudio(std::span<const uint8_t> bytes, const std::string& name, const AudioLimits& limits = {});
AudioClip DecodeWav(std::span<const uint8_t> bytes, const std::string& name, const AudioLimits& limits = {});
AudioClip DecodeMp3(std::span<const uint8_t> bytes, const std::string& name, const AudioLimits& limits = {});
AudioClip DecodeOggVorbis(std::span<const uint8_t> bytes, const std::string& name, const AudioLimits& limits = {});

// Mono 16 kHz samples: channel mean, then soxr HQ resampling to ceil(n * 16000 / rate) samples.
std::vector<float> ToMono16k(const AudioClip& clip, const std::string& name);

// Resamples mono audio with libsoxr (HQ); the output has ceil(n * out_rate / in_rate) samples.
std::vector<float> Resample(std::span<const float> mono, int in_rate, int out_rate);

// Splits 16 kHz samples into clips of at most max_frames 640-sample frames: one clip when it fits,
// else consecutive clips when `chunk` is set, else an error naming the length and the --audio-chunk
// option. Each clip is [n][640], the last frame zero-padded.
std::vector<std::vector<float>> FrameAudio(std::span<const float> samples16k, bool chunk, const std::string& name,
                                           int64_t max_frames = kMaxAudioFrames);

}  // namespace g4::mm
