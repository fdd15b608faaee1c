#include "engine/chat.h"

#include <algorithm>

namespace g4 {

ChatSetup ChatSetupFor(const Model& model, const Tokenizer& tok) {
  ChatSetup s;
  s.format = model.config().arch == Arch::kGemma3 ? chat::ChatFormat::kGemma3 : chat::ChatFormat::kGemma4;
  if (auto tmpl = model.file().GetStringOpt("tokenizer.chat_template")) {
    chat::ChatFormat detected;
    if (chat::DetectChatFormat(*tmpl, &detected)) s.format = detected;
  }
  s.bos_text = tok.bos() >= 0 ? std::string(tok.Piece(tok.bos())) : chat::MarkersFor(s.format).bos;
  for (const auto& stop : chat::StopStrings(s.format)) {
    const int32_t id = tok.Lookup(stop);
    if (id >= 0 && std::find(s.stop_ids.begin(), s.stop_ids.end(), id) == s.stop_ids.end()) s.stop_ids.push_back(id);
  }
  if (tok.eos() >= 0 && std::find(s.stop_ids.begin(), s.stop_ids.end(), tok.eos()) == s.stop_ids.end()) {
    s.stop_ids.push_back(tok.eos());
  }
  return s;
}

std::vector<int32_t> TokenizePrompt(const Tokenizer& tok, const std::string& text) {
  return tok.Encode(text, /*parse_special=*/true, /*add_bos=*/false);
}

}  // namespace g4
