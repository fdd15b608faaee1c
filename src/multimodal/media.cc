#include "multimodal/media.h"

#include <cstring>

#include "multimodal/resize.h"
#include "util/error.h"
#include "util/timer.h"

namespace g4::mm {

ResizeMode ParseResizeMode(const std::string& s) {
  if (s == "transformers") return ResizeMode::kTransformers;
  if (s == "llamacpp" || s == "llama.cpp") return ResizeMode::kLlamaCpp;
  if (s == "none") return ResizeMode::kNone;
  Fail("unknown resize mode '%s' (transformers, llamacpp, none)", s.c_str());
}

const char* ResizeModeName(ResizeMode m) {
  switch (m) {
    case ResizeMode::kTransformers: return "transformers";
    case ResizeMode::kLlamaCpp: return "llamacpp";
    case ResizeMode::kNone: return "none";
  }
  return "?";
}

std::string MediaEmbedding::Describe() const {
  if (kind == MediaKind::kImage) {
    return StrFormat("image %dx%d -> %dx%d, grid %dx%d = %lld tokens", source_width, source_height, width, height,
                     grid_rows, grid_cols, (long long)n_tokens());
  }
  std::string s = StrFormat("audio %d Hz x %d ch -> %lld samples at 16 kHz (%.2f s) = %lld tokens", source_rate,
                            source_channels, (long long)n_samples, static_cast<double>(n_samples) / kAudioRate,
                            (long long)n_tokens());
  if (blocks.size() > 1) s += StrFormat(" in %zu clips", blocks.size());
  return s;
}

std::string MediaEmbedding::Timing() const {
  return StrFormat("decode %.3f s, %s %.3f s, embed %.3f s", seconds.decode,
                   kind == MediaKind::kImage ? "resize and patchify" : "mono, 16 kHz and framing", seconds.preprocess,
                   seconds.embed);
}

namespace {

uint64_t HashFloats(const std::vector<float>& v, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ull ^ seed;  // FNV-1a over the bytes
  const auto* p = reinterpret_cast<const uint8_t*>(v.data());
  for (size_t i = 0; i < v.size() * sizeof(float); ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h == 0 ? 1 : h;
}

}  // namespace

std::unique_ptr<MediaEncoder> MediaEncoder::Create(const Model& model, const std::string& mmproj_path, kernels::Math math) {
  std::unique_ptr<Projector> p = mmproj_path.empty() ? Projector::FromModelFile(model.file()) : Projector::Open(mmproj_path);
  if (!p) {
    Fail("%s has no image or audio embedder: pass the multimodal projector with --mmproj FILE", model.path().c_str());
  }
  if (p->n_embd() != model.config().n_embd) {
    Fail("%s: the projector makes embeddings of %lld values but the model's hidden size is %lld (a projector for "
         "another model?)",
         p->source().c_str(), (long long)p->n_embd(), (long long)model.config().n_embd);
  }
  return std::make_unique<MediaEncoder>(std::move(p), math);
}

MediaEncoder::MediaEncoder(std::unique_ptr<Projector> projector, kernels::Math math)
    : projector_(std::move(projector)), math_(math) {
  G4_CHECK(projector_ != nullptr);
}

MediaEmbedding MediaEncoder::EmbedImage(std::span<const uint8_t> bytes, const std::string& name, const ImageOptions& opt,
                                        ThreadPool& pool) const {
  if (!projector_->has_vision()) Fail("%s: the projector %s has no vision embedder", name.c_str(), projector_->source().c_str());
  const double t0 = NowSeconds();
  const RgbImage img = DecodeImage(bytes, name, opt.limits);
  const double t1 = NowSeconds();
  MediaEmbedding m = EmbedPixels(img, name, opt, pool);
  m.seconds.decode = t1 - t0;
  return m;
}

MediaEmbedding MediaEncoder::EmbedPixels(const RgbImage& img, const std::string& name, const ImageOptions& opt,
                                         ThreadPool& pool) const {
  if (!projector_->has_vision()) Fail("%s: the projector %s has no vision embedder", name.c_str(), projector_->source().c_str());
  if (opt.max_tokens <= 0 || opt.max_tokens > kPositionTable) {
    Fail("the image token budget must be in [1, %d] (got %d)", kPositionTable, opt.max_tokens);
  }
  const double t0 = NowSeconds();
  RgbImage sized;
  switch (opt.resize) {
    case ResizeMode::kTransformers: {
      const Size2 t = TransformersTargetSize(img.width, img.height, opt.max_tokens);
      sized = ResizeBicubicPillow(img, t.width, t.height);
      break;
    }
    case ResizeMode::kLlamaCpp: {
      const Size2 t = LlamaCppTargetSize(img.width, img.height, opt.min_tokens, opt.max_tokens);
      sized = ResizeLlamaCpp(img, t.width, t.height);
      break;
    }
    case ResizeMode::kNone:
      if (img.width % kPatch != 0 || img.height % kPatch != 0) {
        Fail("%s: without resizing, the sides must be multiples of %d, but the image is %dx%d", name.c_str(), kPatch,
             img.width, img.height);
      }
      if (static_cast<int64_t>(img.width / kPatch) * (img.height / kPatch) > kPositionTable) {
        Fail("%s: %dx%d patches are more than the %d an image may have", name.c_str(), img.height / kPatch,
             img.width / kPatch, kPositionTable);
      }
      sized = img;
      break;
  }
  const Patches patches = PatchifyChw(sized, projector_->image_mean(), projector_->image_std());
  MediaEmbedding m;
  const double t1 = NowSeconds();
  m.kind = MediaKind::kImage;
  m.n_embd = projector_->n_embd();
  m.embd = projector_->EmbedPatches(patches, pool, math_);
  m.seconds.preprocess = t1 - t0;
  m.seconds.embed = NowSeconds() - t1;
  m.blocks = {patches.count()};
  m.source_width = img.width;
  m.source_height = img.height;
  m.width = sized.width;
  m.height = sized.height;
  m.grid_rows = patches.rows;
  m.grid_cols = patches.cols;
  m.key = HashFloats(m.embd, 1);
  return m;
}

MediaEmbedding MediaEncoder::EmbedAudio(std::span<const uint8_t> bytes, const std::string& name, const AudioOptions& opt,
                                        ThreadPool& pool) const {
  if (!projector_->has_audio()) Fail("%s: the projector %s has no audio projection", name.c_str(), projector_->source().c_str());
  const double t0 = NowSeconds();
  const AudioClip clip = DecodeAudio(bytes, name, opt.limits);
  const double t1 = NowSeconds();
  const std::vector<float> mono = ToMono16k(clip, name);
  const double t2 = NowSeconds();
  MediaEmbedding m = EmbedSamples(mono, name, opt, pool);
  m.source_rate = clip.sample_rate;
  m.source_channels = clip.channels;
  m.seconds.decode = t1 - t0;
  m.seconds.preprocess += t2 - t1;
  return m;
}

MediaEmbedding MediaEncoder::EmbedSamples(std::span<const float> samples, const std::string& name, const AudioOptions& opt,
                                          ThreadPool& pool) const {
  if (!projector_->has_audio()) Fail("%s: the projector %s has no audio projection", name.c_str(), projector_->source().c_str());
  const double t0 = NowSeconds();
  const std::vector<std::vector<float>> clips = FrameAudio(samples, opt.chunk, name, opt.max_frames);
  MediaEmbedding m;
  const double t1 = NowSeconds();
  m.seconds.preprocess = t1 - t0;
  m.kind = MediaKind::kAudio;
  m.n_embd = projector_->n_embd();
  m.source_rate = kAudioRate;
  m.source_channels = 1;
  m.n_samples = static_cast<int64_t>(samples.size());
  for (const auto& c : clips) {
    const int64_t n = static_cast<int64_t>(c.size()) / kAudioFrame;
    const std::vector<float> e = projector_->EmbedFrames(c.data(), n, pool, math_);
    m.embd.insert(m.embd.end(), e.begin(), e.end());
    m.blocks.push_back(n);
  }
  m.seconds.embed = NowSeconds() - t1;
  m.key = HashFloats(m.embd, 2);
  return m;
}

MediaMarkers MediaMarkers::Find(const Tokenizer& tok) {
  MediaMarkers k;
  k.image_begin = tok.Lookup("<|image>");
  k.image_end = tok.Lookup("<image|>");
  k.image_placeholder = tok.Lookup("<|image|>");
  k.audio_begin = tok.Lookup("<|audio>");
  k.audio_end = tok.Lookup("<audio|>");
  k.audio_placeholder = tok.Lookup("<|audio|>");
  return k;
}

namespace {

int32_t Placeholder(const MediaMarkers& k, MediaKind kind) {
  return kind == MediaKind::kImage ? k.image_placeholder : k.audio_placeholder;
}

PromptMedia ToPromptMedia(const MediaMarkers& k, MediaEmbedding m) {
  const bool image = m.kind == MediaKind::kImage;
  if (image && (k.image_begin < 0 || k.image_end < 0 || k.image_placeholder < 0)) {
    Fail("the vocabulary has no <|image> / <|image|> / <image|> tokens: this model does not take images");
  }
  if (!image && (k.audio_begin < 0 || k.audio_end < 0 || k.audio_placeholder < 0)) {
    Fail("the vocabulary has no <|audio> / <|audio|> / <audio|> tokens: this model does not take audio");
  }
  if (m.n_embd <= 0 || m.embd.empty() || m.embd.size() != static_cast<size_t>(m.n_tokens() * m.n_embd)) {
    Fail("media embedding without rows");
  }
  PromptMedia out;
  out.placeholder = Placeholder(k, m.kind);
  size_t row = 0;
  for (size_t b = 0; b < m.blocks.size(); ++b) {
    out.pieces.push_back(PromptPiece{{image ? k.image_begin : k.audio_begin}, {}, false, 0});
    PromptPiece p;
    const size_t n = static_cast<size_t>(m.blocks[b]) * static_cast<size_t>(m.n_embd);  // [blocks[b]][n_embd]
    p.embd.assign(m.embd.begin() + static_cast<std::ptrdiff_t>(row), m.embd.begin() + static_cast<std::ptrdiff_t>(row + n));
    p.bidirectional = image;
    p.key = m.key + b;
    row += n;
    out.pieces.push_back(std::move(p));
    out.pieces.push_back(PromptPiece{{image ? k.image_end : k.audio_end}, {}, false, 0});
    out.positions += static_cast<size_t>(m.blocks[b]) + 2;
  }
  return out;
}

}  // namespace

PromptMedia ToPromptMedia(const Tokenizer& tok, MediaEmbedding m) { return ToPromptMedia(MediaMarkers::Find(tok), std::move(m)); }

std::vector<PromptPiece> ExpandPrompt(const Tokenizer& tok, std::span<const int32_t> tokens,
                                      std::vector<MediaEmbedding> media) {
  const MediaMarkers k = MediaMarkers::Find(tok);
  size_t n_images = 0, n_audio = 0;
  for (const auto& m : media) (m.kind == MediaKind::kImage ? n_images : n_audio)++;
  size_t ph_images = 0, ph_audio = 0;
  for (int32_t t : tokens) {
    ph_images += t >= 0 && t == k.image_placeholder;
    ph_audio += t >= 0 && t == k.audio_placeholder;
  }
  const bool inline_media = ph_images + ph_audio > 0;
  if (inline_media && (ph_images != n_images || ph_audio != n_audio)) {
    Fail("the prompt has %zu image and %zu audio placeholders (<|image|>, <|audio|>) but %zu images and %zu audio inputs "
         "were given",
         ph_images, ph_audio, n_images, n_audio);
  }
  std::vector<PromptMedia> items;
  for (auto& m : media) items.push_back(ToPromptMedia(k, std::move(m)));
  std::vector<int32_t> ids(tokens.begin(), tokens.end());
  if (!inline_media) {
    // All media, in the given order, before the text (after a leading BOS).
    const size_t at = !ids.empty() && tok.bos() >= 0 && ids[0] == tok.bos() ? 1 : 0;
    std::vector<int32_t> marks;
    for (const auto& m : items) marks.push_back(m.placeholder);
    ids.insert(ids.begin() + static_cast<std::ptrdiff_t>(at), marks.begin(), marks.end());
  }
  // The i-th placeholder of each kind takes the i-th item of that kind.
  std::vector<PromptMedia> ordered;
  size_t next_image = 0, next_audio = 0;
  auto next = [&](int32_t ph, size_t& from) -> PromptMedia& {
    while (items[from].placeholder != ph) ++from;
    return items[from++];
  };
  for (int32_t t : ids) {
    if (t >= 0 && t == k.image_placeholder) ordered.push_back(std::move(next(t, next_image)));
    if (t >= 0 && t == k.audio_placeholder) ordered.push_back(std::move(next(t, next_audio)));
  }
  std::vector<PromptPiece> out;
  const int32_t placeholders[] = {k.image_placeholder, k.audio_placeholder};
  AppendWithMedia(&out, ids, placeholders, ordered);
  return out;
}

}  // namespace g4::mm
