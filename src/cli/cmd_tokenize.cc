// gemma4 tokenize: print the token ids of a text as a JSON array.
#include <cstdio>
#include <iostream>
#include <iterator>

#include "cli/common.h"
#include "tokenizer/tokenizer.h"

namespace g4::cli {

namespace {
struct TokenizeOptions {
  std::string model;
  std::string text;
  bool has_text = false;
  bool special = false;
  bool bos = false;
};
}  // namespace

void AddTokenize(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  CLI::App* sub = app.add_subcommand("tokenize", "Print the token ids of a text (from --text or stdin) as JSON");
  sub->add_option("-m,--model", o->model, "Model or vocabulary-only GGUF")->required();
  CLI::Option* t = sub->add_option("--text", o->text, "Text to tokenize (default: read stdin)");
  sub->add_flag("--special", o->special, "Recognise control tokens such as <bos> written in the text");
  sub->add_flag("--bos", o->bos, "Start with the BOS token");
  sub->callback([o, t] {
    std::string text = o->text;
    if (t->count() == 0) text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    const Tokenizer tok = Tokenizer::Load(o->model);
    const auto ids = tok.Encode(text, o->special, o->bos);
    std::string out = "[";
    for (size_t i = 0; i < ids.size(); ++i) out += (i ? ", " : "") + std::to_string(ids[i]);
    out += "]\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
  });
}

}  // namespace g4::cli
