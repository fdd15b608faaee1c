#include "cli/media.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>

#include "cli/common.h"
#include "util/error.h"

namespace g4::cli {

void MediaOptions::Add(CLI::App* app, bool with_media) {
  app->add_option("--mmproj", mmproj, "Multimodal projector GGUF (llama.cpp mmproj; default: the model file's own)");
  if (with_media) {
    // One file per flag, so that a positional argument after it (run's prompt) stays itself.
    app->add_option("--image", images, "Image file: PNG, JPEG, BMP, GIF, WebP (repeatable)")->allow_extra_args(false);
    app->add_option("--audio", audio, "Audio file: WAV, FLAC, Ogg, MP3 (repeatable)")->allow_extra_args(false);
  }
  app->add_option("--resize", resize, "Image resizing: transformers (the reference), llamacpp, none");
  app->add_option("--image-tokens", image_tokens, "Most soft tokens per image (the reference uses 70 to 1120)")
      ->check(CLI::Range(1, mm::kPositionTable));
  app->add_flag("--audio-chunk", audio_chunk, "Split audio longer than 30 s into consecutive clips instead of failing");
}

mm::ImageOptions MediaOptions::Image() const {
  mm::ImageOptions o;
  o.resize = mm::ParseResizeMode(resize);
  o.max_tokens = image_tokens;
  o.min_tokens = std::min(o.min_tokens, image_tokens);
  return o;
}

mm::AudioOptions MediaOptions::Audio() const {
  mm::AudioOptions o;
  o.chunk = audio_chunk;
  return o;
}

std::vector<mm::MediaEmbedding> MediaOptions::EmbedAll(const mm::MediaEncoder& enc, ThreadPool& pool) const {
  std::vector<mm::MediaEmbedding> out;
  for (const auto& path : images) out.push_back(EmbedFile(enc, mm::MediaKind::kImage, path, pool));
  for (const auto& path : audio) out.push_back(EmbedFile(enc, mm::MediaKind::kAudio, path, pool));
  return out;
}

mm::MediaEmbedding MediaOptions::EmbedFile(const mm::MediaEncoder& enc, mm::MediaKind kind, const std::string& path,
                                           ThreadPool& pool) const {
  const std::vector<uint8_t> bytes = ReadFileBytes(path);
  return kind == mm::MediaKind::kImage ? enc.EmbedImage(bytes, path, Image(), pool) : enc.EmbedAudio(bytes, path, Audio(), pool);
}

std::vector<uint8_t> ReadFileBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) Fail("%s: cannot open the file", path.c_str());
  std::vector<uint8_t> b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) Fail("%s: read error", path.c_str());
  return b;
}

bool IsProjectorFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char magic[4] = {};
  if (!f.read(magic, 4) || std::string(magic, 4) != "GGUF") return false;
  auto file = gguf::File::Open(path);
  return file->GetStringOpt("general.architecture").value_or("") == "clip";
}

void PrintProjector(const mm::Projector& p) {
  std::printf("multimodal:      %s%s%s, embeddings of %lld (from %s)\n", p.has_vision() ? "vision embedder (gemma4uv)" : "",
              p.has_vision() && p.has_audio() ? " + " : "", p.has_audio() ? "audio projection (gemma4ua)" : "",
              (long long)p.n_embd(), p.source().c_str());
  if (p.has_vision()) std::printf("  images:        48x48-pixel patches, up to %d per side; no encoder\n", mm::kPositionTable);
  if (p.has_audio()) std::printf("  audio:         640-sample frames of 16 kHz mono (40 ms each)\n");
  uint64_t bytes = 0;
  for (const auto* t : p.tensors()) {
    std::printf("  %-30s %-6s %s\n", t->name.c_str(), TypeName(t->type), t->ShapeString().c_str());
    bytes += t->nbytes;
  }
  std::printf("  total:         %s\n", HumanBytes(static_cast<double>(bytes)).c_str());
}

nlohmann::json ProjectorJson(const mm::Projector& p) {
  nlohmann::json j;
  j["source"] = p.source();
  j["vision"] = p.has_vision();
  j["audio"] = p.has_audio();
  j["n_embd"] = p.n_embd();
  nlohmann::json t = nlohmann::json::array();
  uint64_t bytes = 0;
  for (const auto* ti : p.tensors()) {
    t.push_back({{"name", ti->name}, {"type", TypeName(ti->type)}, {"shape", ti->ShapeString()}, {"bytes", ti->nbytes}});
    bytes += ti->nbytes;
  }
  j["tensors"] = t;
  j["bytes"] = bytes;
  return j;
}

}  // namespace g4::cli
