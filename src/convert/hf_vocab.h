// The GGUF vocabulary of a Hugging Face tokenizer.json, exactly as llama.cpp's converter writes it for
// Gemma 4 (conversion/gemma.py Gemma4Model.set_vocab over gguf-py's LlamaHfVocab):
//  * tokens in id order (the BPE vocab plus the added tokens);
//  * types: <unk> UNKNOWN; <0xXX> BYTE; added tokens marked special CONTROL; other added tokens CONTROL
//    when they look like a control token ("<...>", e.g. <mask>, <unusedN>), else USER_DEFINED (the
//    whitespace runs, [multimodal]); everything else NORMAL. The seven tokens the chat parser must
//    see as text (<|channel> <channel|> <|tool_call> <tool_call|> <|tool_response> <tool_response|>
//    <|"|>) are USER_DEFINED whatever their flags;
//  * scores: -id for NORMAL tokens, 0 for the rest;
//  * merges: "left right" strings in the file's order.
// Checked against ../shared/tokenizer/gemma4-vocab.gguf, made from the real Gemma tokenizer.json.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "formats/gguf.h"

namespace g4::convert {

struct GgufVocab {
  std::string model = "gemma4";  // tokenizer.ggml.model
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  std::vector<std::string> merges;
  int32_t bos = -1, eos = -1, unk = -1, pad = -1;
  int add_eos = -1;  // tokenizer_config's add_eos_token: -1 absent, else 0/1
  std::string chat_template;
};

// `where` names the file in messages. tokenizer_config may be null.
GgufVocab VocabFromTokenizerJson(const nlohmann::json& tokenizer, const nlohmann::json& tokenizer_config,
                                 const std::string& where);

// Writes the tokenizer.ggml.* keys (and tokenizer.chat_template when set).
void WriteVocab(gguf::Writer& w, const GgufVocab& v);

}  // namespace g4::convert
