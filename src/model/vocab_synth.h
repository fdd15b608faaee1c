// A vocabulary for synthetic models when no real one is given: the Gemma special tokens (at their
// real ids when the vocabulary is full size), the 256 byte tokens, single-character pieces and
// unused fillers. Text tokenizes to characters and bytes, which is all a random model needs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/gguf.h"

namespace g4 {

struct SyntheticVocab {
  std::string model;  // tokenizer.ggml.model: "gemma4" (BPE) or "llama" (SentencePiece)
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;  // llama.cpp token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
  int32_t bos = 2, eos = 1, unk = 3, pad = 0;
};

SyntheticVocab MakeSyntheticVocab(const std::string& arch, int64_t n_vocab);
void WriteVocab(gguf::Writer& w, const SyntheticVocab& v);

}  // namespace g4
