// gemma4 logits: evaluate tokens as one sequence in one batch and write every position's logits.
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "cli/common.h"
#include "util/error.h"

namespace g4::cli {

namespace {
struct LogitsOptions {
  ModelOptions m;
  std::string tokens;
  std::string out;
};

void RunLogits(const LogitsOptions& o) {
  ModelOptions mo = o.m;
  std::vector<int32_t> toks = ParseTokenList(o.tokens);
  if (toks.empty()) Fail("--tokens: no tokens");
  // One batch: the whole sequence in one forward pass.
  mo.batch = std::max<int64_t>(mo.batch, static_cast<int64_t>(toks.size()));
  mo.ctx = std::max<int64_t>(mo.ctx, static_cast<int64_t>(toks.size()));
  Loaded l = LoadModel(mo);
  const int64_t V = l.model->config().n_vocab;
  Batch b;
  for (size_t i = 0; i < toks.size(); ++i) {
    if (toks[i] >= V) Fail("--tokens: element %zu (%d) is out of range (vocabulary of %lld)", i, toks[i], (long long)V);
    b.Add(toks[i], 0, static_cast<int64_t>(i), true);
  }
  l.ctx->Decode(b);
  FILE* f = std::fopen(o.out.c_str(), "wb");
  if (!f) Fail("%s: cannot create: %s", o.out.c_str(), std::strerror(errno));
  for (size_t i = 0; i < toks.size(); ++i) {
    if (std::fwrite(l.ctx->Logits(static_cast<int>(i)), sizeof(float), static_cast<size_t>(V), f) != static_cast<size_t>(V)) {
      std::fclose(f);
      Fail("%s: write failed", o.out.c_str());
    }
  }
  if (std::fclose(f) != 0) Fail("%s: write failed", o.out.c_str());
  std::fprintf(stderr, "wrote %zu x %lld logits to %s\n", toks.size(), (long long)V, o.out.c_str());
}
}  // namespace

void AddLogits(CLI::App& app) {
  auto o = std::make_shared<LogitsOptions>();
  CLI::App* sub = app.add_subcommand("logits", "Write the logits of every position as raw float32 [n_tokens][n_vocab]");
  o->m.Add(sub);
  sub->add_option("--tokens", o->tokens, "Comma-separated token ids, evaluated as one sequence")->required();
  sub->add_option("-o,--output", o->out, "Output file")->required();
  sub->callback([o] { RunLogits(*o); });
}

}  // namespace g4::cli
