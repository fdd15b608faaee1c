// gemma4 render: print the exact prompt text a conversation renders to for a model.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "chat/render.h"
#include "cli/common.h"
#include "engine/chat.h"
#include "util/error.h"

namespace g4::cli {

namespace {
struct RenderCliOptions {
  std::string model;
  std::string messages;
  std::string tools;
  std::string format;
  bool think = false;
  bool no_generation_prompt = false;
  bool tokens = false;
};

std::string ReadFile(const std::string& path, const char* what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) Fail("%s: cannot read %s", path.c_str(), what);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
}  // namespace

void AddRender(CLI::App& app) {
  auto o = std::make_shared<RenderCliOptions>();
  CLI::App* sub = app.add_subcommand("render", "Print the exact prompt a conversation renders to");
  sub->add_option("-m,--model", o->model, "Model (its architecture and vocabulary choose the format)")->required();
  sub->add_option("--messages", o->messages, "Messages file: an OpenAI-style JSON array")->required();
  sub->add_option("--tools", o->tools, "Tools file: a JSON array of OpenAI function tools");
  sub->add_option("--format", o->format, "Override the chat format: gemma4, gemma4-interleaved, gemma3");
  sub->add_flag("--think", o->think, "Enable thinking");
  sub->add_flag("--no-generation-prompt", o->no_generation_prompt, "Do not open a model turn at the end");
  sub->add_flag("--tokens", o->tokens, "Print the token ids (JSON) instead of the text");
  sub->callback([o] {
    // Only the metadata is needed: a vocabulary-only GGUF works too.
    auto file = gguf::File::Open(o->model);
    const Tokenizer tok = Tokenizer::FromGguf(*file);
    chat::ChatFormat format = file->GetString("general.architecture") == "gemma3" ? chat::ChatFormat::kGemma3
                                                                                  : chat::ChatFormat::kGemma4;
    if (auto tmpl = file->GetStringOpt("tokenizer.chat_template")) chat::DetectChatFormat(*tmpl, &format);
    if (!o->format.empty()) format = chat::ParseChatFormat(o->format);
    chat::RenderOptions ro;
    ro.add_generation_prompt = !o->no_generation_prompt;
    ro.enable_thinking = o->think;
    if (tok.bos() >= 0) ro.bos_token = std::string(tok.Piece(tok.bos()));
    const std::string messages = ReadFile(o->messages, "the messages");
    const std::string tools = o->tools.empty() ? std::string() : ReadFile(o->tools, "the tools");
    const std::string text = chat::RenderFromJsonText(format, messages, tools, ro);
    if (o->tokens) {
      const auto ids = TokenizePrompt(tok, text);
      std::string out = "[";
      for (size_t i = 0; i < ids.size(); ++i) {
        if (i) out += ", ";
        out += std::to_string(ids[i]);
      }
      out += "]\n";
      std::fwrite(out.data(), 1, out.size(), stdout);
    } else {
      std::fwrite(text.data(), 1, text.size(), stdout);
    }
  });
}

}  // namespace g4::cli
