// What the chat front ends (gemma4 run, the server) need to talk to a model in its own format:
// which chat format it uses, the BOS text the template writes, the ids of the tokens that end a
// turn, and prompt tokenization (templates write control tokens as text, so they are parsed).
#pragma once

#include <string>
#include <vector>

#include "chat/format.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace g4 {

struct ChatSetup {
  chat::ChatFormat format = chat::ChatFormat::kGemma4;
  std::string bos_text;           // what the template writes as {{ bos_token }}
  std::vector<int32_t> stop_ids;  // tokens that end the model's turn (looked up by name)
};

// Gemma 3 models use the Gemma 3 format; Gemma 4 models the 12B/31B template, or the interleaved
// variant when the GGUF's tokenizer.chat_template is that one.
ChatSetup ChatSetupFor(const Model& model, const Tokenizer& tok);

// Tokenizes rendered prompt text: control tokens written by the template are recognised, and no
// BOS is added (the template writes it).
std::vector<int32_t> TokenizePrompt(const Tokenizer& tok, const std::string& text);

}  // namespace g4
