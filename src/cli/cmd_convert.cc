// gemma4 convert: a Hugging Face checkpoint folder to GGUF (convert/convert.h).
#include <cstdio>

#include "cli/common.h"
#include "convert/convert.h"
#include "util/error.h"

namespace g4::cli {

namespace {
struct ConvertCliOptions {
  std::string dir, out, type = "auto", mmproj;
  int threads = 0;
  bool quiet = false;
};
}  // namespace

void AddConvert(CLI::App& app) {
  auto o = std::make_shared<ConvertCliOptions>();
  CLI::App* sub = app.add_subcommand("convert", "Convert a Hugging Face checkpoint (safetensors) to GGUF");
  sub->add_option("hf_dir", o->dir, "Checkpoint folder: config.json, *.safetensors, tokenizer.json")->required();
  sub->add_option("-o,--output", o->out, "Output GGUF file")->required();
  sub->add_option("--type", o->type, "Output type: auto (the checkpoint's precision), " + SupportedFileTypes());
  sub->add_option("--mmproj", o->mmproj, "Also write the multimodal embedder (unified 12B) as an mmproj GGUF here");
  sub->add_option("-t,--threads", o->threads, "Threads (default: one per core)");
  sub->add_flag("-q,--quiet", o->quiet, "No progress bar");
  sub->callback([o] {
    convert::ConvertOptions c;
    if (o->type != "auto") {
      c.type = ParseFileType(o->type);
      if (!c.type) Fail("--type: unknown type '%s' (auto, %s)", o->type.c_str(), SupportedFileTypes().c_str());
    }
    c.mmproj_out = o->mmproj;
    c.n_threads = o->threads;
    c.quiet = o->quiet;
    const std::string summary = convert::ConvertCheckpointToGguf(o->dir, o->out, c);
    std::printf("wrote %s (%s)\n", o->out.c_str(), summary.c_str());
  });
}

}  // namespace g4::cli
