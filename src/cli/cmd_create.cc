// gemma4 create: write a synthetic model of a real architecture with seeded random weights.
#include <unistd.h>

#include <cstdio>

#include "cli/common.h"
#include "formats/quant_mix.h"
#include "model/synthetic.h"
#include "multimodal/synthetic_mmproj.h"
#include "util/error.h"
#include "util/timer.h"

namespace g4::cli {

namespace {
struct CreateCliOptions {
  std::string preset;
  std::string type = "F32";
  uint64_t seed = 1;
  std::string out;
  std::string vocab;
  int threads = 0;
  bool list = false;
  std::string mmproj;  // also write a matching synthetic multimodal projector here
  bool mmproj_only = false;  // write only that projector (e.g. for a large model already written)
};
}  // namespace

void AddCreate(CLI::App& app) {
  auto o = std::make_shared<CreateCliOptions>();
  CLI::App* sub = app.add_subcommand("create", "Write a model with a real architecture and seeded random weights");
  sub->add_option("--preset", o->preset, "Architecture preset (--list shows them)");
  sub->add_option("--type", o->type, "File type: " + SupportedFileTypes());
  sub->add_option("--seed", o->seed, "Random seed");
  sub->add_option("-o,--output", o->out, "Output GGUF file");
  sub->add_option("--vocab", o->vocab, "Take the vocabulary from this GGUF (e.g. a vocabulary-only file)");
  sub->add_option("-t,--threads", o->threads, "Threads");
  sub->add_flag("--list", o->list, "List the presets");
  sub->add_option("--mmproj", o->mmproj, "Also write a matching multimodal projector (vision + audio) to this GGUF");
  sub->add_flag("--mmproj-only", o->mmproj_only,
                "Write only the projector (--mmproj), not the model: the same file as with the model, same seed");
  sub->callback([o] {
    if (o->list) {
      for (const auto& p : Presets()) std::printf("%-16s %s\n", p.name.c_str(), p.description.c_str());
      return;
    }
    if (o->preset.empty()) Fail("--preset is required (see --list)");
    if (o->mmproj_only && o->mmproj.empty()) Fail("--mmproj-only needs --mmproj FILE");
    if (o->mmproj_only && !o->out.empty()) Fail("--mmproj-only writes no model: leave out -o/--output");
    if (o->out.empty() && !o->mmproj_only) Fail("-o/--output is required");
    const auto ft = ParseFileType(o->type);
    if (!ft) Fail("--type: unknown file type '%s' (supported: %s)", o->type.c_str(), SupportedFileTypes().c_str());
    if (o->mmproj_only && !FindPreset(o->preset)) Fail("--preset: unknown preset '%s' (see --list)", o->preset.c_str());
    if (!o->mmproj.empty() && FindPreset(o->preset) && FindPreset(o->preset)->arch != "gemma4") {
      Fail("--mmproj: the encoder-free projector belongs to Gemma 4 models, not to %s", o->preset.c_str());
    }
    CreateOptions c;
    c.preset = o->preset;
    c.type = *ft;
    c.seed = o->seed;
    c.vocab_file = o->vocab;
    c.n_threads = o->threads;
    if (!o->mmproj_only) {
      const double t0 = NowSeconds();
      const bool tty = isatty(fileno(stderr));
      CreateSyntheticModel(c, o->out, [&](size_t done, size_t total) {
        if (tty) std::fprintf(stderr, "\rwriting tensors: %zu/%zu", done, total);
      });
      if (tty) std::fprintf(stderr, "\n");
      std::fprintf(stderr, "wrote %s (%s, %s) in %.1f s\n", o->out.c_str(), o->preset.c_str(), FileTypeName(*ft),
                   NowSeconds() - t0);
    }
    if (!o->mmproj.empty()) {
      const Preset* p = FindPreset(o->preset);
      mm::SyntheticMmprojOptions mo;
      mo.n_embd = p->n_embd;
      mo.matrix_type = *ft == FileType::F32 ? GgmlType::F32 : GgmlType::F16;  // llama.cpp ships mmproj files as F16
      mo.seed = o->seed;
      mo.name = "synthetic mmproj for ";
      mo.name += p->name;
      const double t1 = NowSeconds();
      mm::WriteSyntheticMmproj(mo, o->mmproj);
      std::fprintf(stderr, "wrote %s (projector for %s, %s) in %.1f s\n", o->mmproj.c_str(), p->name.c_str(),
                   TypeName(mo.matrix_type), NowSeconds() - t1);
    }
  });
}

}  // namespace g4::cli
