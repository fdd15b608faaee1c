// Images and audio in, for the Gemma 4 12B (encoder-free): from the bytes of a file to soft-token
// embeddings, and from a tokenized prompt with media placeholders to the prompt pieces the
// generator evaluates. This is the API the CLI (`gemma4 embed`, `generate`, and `run` with /image
// and /audio) and the server (OpenAI `image_url` data: URIs and `input_audio`, Ollama `images`) call.
// It takes bytes, never paths, so a server never touches the disk for a request; errors are
// g4::Error naming the input (`name`) and what is wrong, and never leave state behind.
//
//   auto enc = mm::MediaEncoder::Create(model, mmproj_path);   // "" = the model file's own tensors
//   std::vector<mm::MediaEmbedding> media;
//   media.push_back(enc->EmbedImage(jpeg_bytes, "photo.jpg", {}, ctx.pool()));
//   media.push_back(enc->EmbedAudio(wav_bytes, "question.wav", {}, ctx.pool()));
//   std::vector<int32_t> ids = tok.Encode(rendered_chat, /*parse_special=*/true, /*add_bos=*/true);
//   std::vector<PromptPiece> prompt = mm::ExpandPrompt(tok, ids, std::move(media));
//   generator.Generate(prompt, sampling, stop, on_token);
//
// The chat template writes `<|image|>` / `<|audio|>` where a content part is an image / audio;
// ExpandPrompt replaces each by `<|image>` + N soft tokens + `<image|>` (or the audio markers).
// The soft tokens of one image attend to each other in both directions and are prefilled in one
// step (PromptPiece::bidirectional); audio is causal. An encoder is immutable and its methods are
// const, so one encoder serves every request; each concurrent call needs its own ThreadPool (a pool
// runs one job at a time; a server slot can pass its context's pool).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/generator.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "multimodal/audio.h"
#include "multimodal/image.h"
#include "multimodal/projector.h"
#include "tokenizer/tokenizer.h"
#include "util/thread_pool.h"

namespace g4::mm {

enum class MediaKind { kImage, kAudio };

enum class ResizeMode {
  kTransformers,  // the reference processor: stretch to a 48-multiple grid of <= max_tokens, Pillow bicubic
  kLlamaCpp,      // llama.cpp: nearest 48-multiple in [min_tokens, max_tokens], bilinear, black letterbox
  kNone,          // no resize: both sides must already be multiples of 48
};
// "transformers", "llamacpp" (or "llama.cpp"), "none"; anything else fails naming the choices.
ResizeMode ParseResizeMode(const std::string& s);
const char* ResizeModeName(ResizeMode m);

struct ImageOptions {
  ResizeMode resize = ResizeMode::kTransformers;
  int max_tokens = 280;  // soft tokens per image (the reference allows 70, 140, 280, 560, 1120)
  int min_tokens = 40;   // llama.cpp mode only
  ImageLimits limits;    // refused before decoding when larger
};

struct AudioOptions {
  bool chunk = false;                    // split audio longer than max_frames into consecutive clips
  int64_t max_frames = kMaxAudioFrames;  // 750 frames of 40 ms = 30 s per clip
  AudioLimits limits;
};

// The soft tokens of one image or one audio input.
struct MediaEmbedding {
  MediaKind kind = MediaKind::kImage;
  int64_t n_embd = 0;
  std::vector<float> embd;      // [n_tokens()][n_embd], every block in order
  std::vector<int64_t> blocks;  // soft tokens per block; each block gets its own begin/end markers
                                // (an image: one block; audio: one per 30 s clip with chunking)
  uint64_t key = 0;             // content hash of embd (prefix reuse across requests)
  // Images.
  int source_width = 0, source_height = 0;  // decoded size
  int width = 0, height = 0;                // resized size (multiples of 48)
  int grid_rows = 0, grid_cols = 0;         // patches: height / 48, width / 48
  // Audio.
  int source_rate = 0, source_channels = 0;
  int64_t n_samples = 0;                    // 16 kHz mono samples before padding
  // Seconds spent: decoding the file; resizing/patchifying or downmixing/resampling/framing; the embedder.
  struct Seconds {
    double decode = 0, preprocess = 0, embed = 0;
  } seconds;

  int64_t n_tokens() const { return n_embd > 0 ? static_cast<int64_t>(embd.size()) / n_embd : 0; }
  // One line for logs and `gemma4 embed`, e.g. "image 640x480 -> 912x672, grid 14x19 = 266 tokens".
  // Timing() adds "(decode 0.004 s, preprocess 0.031 s, embed 0.92 s)".
  std::string Describe() const;
  std::string Timing() const;
};

class MediaEncoder {
 public:
  // The projector for `model`: read from `mmproj_path` when it is not empty, else from the model
  // file's own tensors. Fails when there is none, or when its width differs from the model's.
  static std::unique_ptr<MediaEncoder> Create(const Model& model, const std::string& mmproj_path,
                                              kernels::Math math = kernels::Math::kFast);
  explicit MediaEncoder(std::unique_ptr<Projector> projector, kernels::Math math = kernels::Math::kFast);

  const Projector& projector() const { return *projector_; }
  int64_t n_embd() const { return projector_->n_embd(); }

  // A whole image file (PNG, JPEG, BMP, GIF, WebP).
  MediaEmbedding EmbedImage(std::span<const uint8_t> bytes, const std::string& name, const ImageOptions& opt,
                            ThreadPool& pool) const;
  // Decoded pixels, resized as opt says.
  MediaEmbedding EmbedPixels(const RgbImage& img, const std::string& name, const ImageOptions& opt, ThreadPool& pool) const;
  // A whole audio file (WAV, FLAC, Ogg Vorbis/Opus, MP3).
  MediaEmbedding EmbedAudio(std::span<const uint8_t> bytes, const std::string& name, const AudioOptions& opt,
                            ThreadPool& pool) const;
  // 16 kHz mono samples.
  MediaEmbedding EmbedSamples(std::span<const float> samples16k, const std::string& name, const AudioOptions& opt,
                              ThreadPool& pool) const;

 private:
  std::unique_ptr<Projector> projector_;
  kernels::Math math_;
};

// The media marker tokens, found by name in the vocabulary (-1 where absent).
struct MediaMarkers {
  int32_t image_begin = -1, image_end = -1, image_placeholder = -1;  // <|image>, <image|>, <|image|>
  int32_t audio_begin = -1, audio_end = -1, audio_placeholder = -1;  // <|audio>, <audio|>, <|audio|>
  static MediaMarkers Find(const Tokenizer& tok);
};

// The pieces that replace the placeholder of one embedded input in a prompt (the rows move into
// them). Fails when the vocabulary lacks the input's markers.
PromptMedia ToPromptMedia(const Tokenizer& tok, MediaEmbedding m);

// Replaces the i-th placeholder token of each kind by the i-th media item of that kind, each block
// wrapped in the begin/end markers. A prompt without any placeholder gets all media, in the given
// order, before its text (after a leading BOS). Otherwise the placeholder counts must equal the
// media counts. Fails when the vocabulary lacks the markers.
std::vector<PromptPiece> ExpandPrompt(const Tokenizer& tok, std::span<const int32_t> tokens,
                                      std::vector<MediaEmbedding> media);

}  // namespace g4::mm
