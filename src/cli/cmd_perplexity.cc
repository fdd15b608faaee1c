// gemma4 perplexity: the model's perplexity on a text file (eval/perplexity.h).
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "cli/common.h"
#include "eval/perplexity.h"
#include "util/error.h"

namespace g4::cli {

namespace {
struct PerplexityOptions {
  ModelOptions m;
  std::string file;
  int64_t n_ctx = 256;
  bool json = false;
};

void RunPerplexity(const PerplexityOptions& o) {
  std::ifstream in(o.file, std::ios::binary);
  if (!in) Fail("%s: cannot open: %s", o.file.c_str(), std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  ModelOptions mo = o.m;
  mo.ctx = std::max(mo.ctx, o.n_ctx);
  mo.batch = std::max(mo.batch, o.n_ctx);
  Loaded l = LoadModel(mo);
  const PerplexityResult r = ComputePerplexity(*l.ctx, *l.tok, ss.str(), o.n_ctx, [](int64_t done, int64_t total) {
    std::fprintf(stderr, "\rchunk %lld/%lld", (long long)done, (long long)total);
    if (done == total) std::fprintf(stderr, "\n");
  });
  if (o.json) {
    std::printf("{\"perplexity\": %.6f, \"mean_nll\": %.6f, \"tokens\": %lld, \"chunks\": %lld, \"n_ctx\": %lld}\n",
                r.Perplexity(), r.MeanNll(), (long long)r.n_scored, (long long)r.n_chunks, (long long)o.n_ctx);
  } else {
    std::printf("perplexity %.4f (mean NLL %.4f nats) over %lld tokens in %lld chunks of %lld\n", r.Perplexity(),
                r.MeanNll(), (long long)r.n_scored, (long long)r.n_chunks, (long long)o.n_ctx);
  }
}
}  // namespace

void AddPerplexity(CLI::App& app) {
  auto o = std::make_shared<PerplexityOptions>();
  CLI::App* sub = app.add_subcommand("perplexity", "Perplexity of a model on a text file");
  o->m.Add(sub);
  sub->add_option("-f,--file", o->file, "Text file")->required();
  sub->add_option("--chunk", o->n_ctx, "Tokens per evaluated chunk, BOS included (default 256)")
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 20));
  sub->add_flag("--json", o->json, "Print the result as JSON");
  sub->callback([o] { RunPerplexity(*o); });
}

}  // namespace g4::cli
