// gemma4 quantize: re-type a GGUF model's tensors with llama.cpp's per-tensor choices.
#include <cstdio>

#include "cli/common.h"
#include "convert/quantize.h"
#include "util/error.h"

namespace g4::cli {

namespace {
struct QuantizeCliOptions {
  std::string in, out, type;
  int threads = 0;
  bool quiet = false;
};
}  // namespace

void AddQuantize(CLI::App& app) {
  auto o = std::make_shared<QuantizeCliOptions>();
  CLI::App* sub = app.add_subcommand("quantize", "Write a GGUF model with other tensor types (Q8_0, Q4_K_M, ...)");
  sub->add_option("input", o->in, "Input GGUF model")->required();
  sub->add_option("output", o->out, "Output GGUF file")->required();
  sub->add_option("type", o->type, "File type: " + SupportedFileTypes())->required();
  sub->add_option("-t,--threads", o->threads, "Threads (default: one per core)");
  sub->add_flag("-q,--quiet", o->quiet, "No progress bar");
  sub->callback([o] {
    const auto t = ParseFileType(o->type);
    if (!t) Fail("unknown type '%s' (%s)", o->type.c_str(), SupportedFileTypes().c_str());
    if (o->in == o->out) Fail("the output must be another file than the input");
    const std::string summary = convert::QuantizeGguf(o->in, o->out, *t, o->threads, o->quiet);
    std::printf("wrote %s (%s)\n", o->out.c_str(), summary.c_str());
  });
}

}  // namespace g4::cli
