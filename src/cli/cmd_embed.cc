// gemma4 embed: the soft-token embeddings of one image or audio file, as raw float32
// [n_tokens][hidden], and the patch grid. Tests and debugging compare these with references.
#include <cstdio>
#include <fstream>

#include "cli/common.h"
#include "cli/media.h"
#include "util/error.h"
#include "util/timer.h"

namespace g4::cli {

namespace {
struct EmbedOptions {
  MediaOptions media;
  std::string image, audio, out;
  bool no_resize = false;
  bool exact = false;
  int threads = 0;
};

void RunEmbed(const EmbedOptions& o) {
  if (o.media.mmproj.empty()) Fail("--mmproj FILE is required");
  if (o.image.empty() == o.audio.empty()) Fail("give exactly one of --image FILE and --audio FILE");
  const double t0 = NowSeconds();
  mm::MediaEncoder enc(mm::Projector::Open(o.media.mmproj), o.exact ? kernels::Math::kExact : kernels::Math::kFast);
  ThreadPool pool(o.threads);
  const double t1 = NowSeconds();
  mm::MediaEmbedding m;
  if (!o.image.empty()) {
    mm::ImageOptions io = o.media.Image();
    if (o.no_resize) io.resize = mm::ResizeMode::kNone;
    m = enc.EmbedImage(ReadFileBytes(o.image), o.image, io, pool);
  } else {
    m = enc.EmbedAudio(ReadFileBytes(o.audio), o.audio, o.media.Audio(), pool);
  }
  const double t2 = NowSeconds();
  std::printf("%s\n", m.Describe().c_str());
  if (m.kind == mm::MediaKind::kImage) std::printf("grid: %d x %d\n", m.grid_rows, m.grid_cols);
  std::printf("embeddings: %lld x %lld float32\n", (long long)m.n_tokens(), (long long)m.n_embd);
  if (!o.out.empty()) {
    std::ofstream f(o.out, std::ios::binary);
    if (!f) Fail("%s: cannot create the file", o.out.c_str());
    f.write(reinterpret_cast<const char*>(m.embd.data()), static_cast<std::streamsize>(m.embd.size() * sizeof(float)));
    if (!f) Fail("%s: write error", o.out.c_str());
    std::printf("wrote %s\n", o.out.c_str());
  }
  std::fprintf(stderr, "projector loaded in %.3f s; %s; total %.3f s (%d threads)\n", t1 - t0, m.Timing().c_str(),
               t2 - t1, pool.size());
}
}  // namespace

void AddEmbed(CLI::App& app) {
  auto o = std::make_shared<EmbedOptions>();
  CLI::App* sub = app.add_subcommand("embed", "Write the soft-token embeddings of an image or audio file");
  o->media.Add(sub, /*with_media=*/false);
  sub->add_option("--image", o->image, "Image file: PNG, JPEG, BMP, GIF, WebP");
  sub->add_option("--audio", o->audio, "Audio file: WAV, FLAC, Ogg, MP3");
  sub->add_flag("--no-resize", o->no_resize, "Take the image as it is (both sides must be multiples of 48)");
  sub->add_option("-o,--output", o->out, "Write the embeddings here as raw float32 [n_tokens][hidden]");
  sub->add_flag("--exact", o->exact, "Reference numerics (matters only for quantized projectors)");
  sub->add_option("-t,--threads", o->threads, "Threads (default: one per core)");
  sub->callback([o] { RunEmbed(*o); });
}

}  // namespace g4::cli
