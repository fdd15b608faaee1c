// Command-line options for images and audio (multimodal/media.h), shared by `gemma4 embed`,
// `gemma4 generate` and any command that takes media.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "multimodal/media.h"

namespace g4::cli {

struct MediaOptions {
  std::string mmproj;               // the projector GGUF ("" = the model file's own tensors)
  std::vector<std::string> images;  // image files, in order
  std::vector<std::string> audio;   // audio files, in order
  std::string resize = "transformers";
  int image_tokens = 280;
  bool audio_chunk = false;
  // with_media: also --image / --audio (repeatable).
  void Add(CLI::App* app, bool with_media = true);
  bool any() const { return !images.empty() || !audio.empty(); }
  mm::ImageOptions Image() const;
  mm::AudioOptions Audio() const;
  // Reads and embeds every --image, then every --audio (names in errors are the paths).
  std::vector<mm::MediaEmbedding> EmbedAll(const mm::MediaEncoder& enc, ThreadPool& pool) const;
  // One file, with these options.
  mm::MediaEmbedding EmbedFile(const mm::MediaEncoder& enc, mm::MediaKind kind, const std::string& path,
                               ThreadPool& pool) const;
};

// The whole file; errors name the path.
std::vector<uint8_t> ReadFileBytes(const std::string& path);

// True when `path` is a GGUF whose general.architecture is "clip" (a multimodal projector).
bool IsProjectorFile(const std::string& path);
// `gemma4 info` for a projector: its kind, width and tensors.
void PrintProjector(const mm::Projector& p);
nlohmann::json ProjectorJson(const mm::Projector& p);

}  // namespace g4::cli
