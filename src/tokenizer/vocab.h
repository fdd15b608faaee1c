// The tokenizer's tables (Tokenizer::Impl): everything Encode and Decode read, built once by LoadVocab.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/flat_map.h"
#include "tokenizer/special_matcher.h"
#include "tokenizer/tokenizer.h"

namespace g4 {

namespace tok {

// Strings of all tokens packed into one buffer: string i is data[off[i], off[i+1]).
struct StringTable {
  std::vector<char> data;
  std::vector<uint32_t> off{0};
  std::string_view operator[](size_t i) const { return {data.data() + off[i], off[i + 1] - off[i]}; }
  void Append(std::string_view s) {
    data.insert(data.end(), s.begin(), s.end());
    off.push_back(static_cast<uint32_t>(data.size()));
  }
};

struct Merge {
  uint32_t rank;   // position in tokenizer.ggml.merges: lower merges first
  int32_t result;  // id of the concatenated piece
};

inline uint64_t PairKey(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

inline constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // "▁", U+2581

}  // namespace tok

struct Tokenizer::Impl {
  std::string path;   // for messages
  std::string model;  // tokenizer.ggml.model
  Tokenizer::Algorithm algorithm = Tokenizer::Algorithm::kBpeMerges;
  int32_t n_vocab = 0;

  tok::StringTable pieces;  // raw vocabulary strings
  tok::StringTable text;    // what each token decodes to when rendered ("▁" -> " ", <0xXX> -> byte)
  std::vector<TokenType> types;
  std::vector<float> scores;
  tok::StringIdMap piece_to_id;  // every piece (into pieces.data); the lowest id wins for duplicates

  // Encoding tables.
  std::array<int32_t, 256> byte_token{};   // byte -> <0xXX> token, -1 if absent
  std::array<int32_t, 128> ascii_token{};  // one-byte character -> text token, -1 if absent
  tok::U64Map<tok::Merge> merges;          // (left id, right id) -> merge (kBpeMerges)
  std::vector<uint32_t> score_rank;        // per token: 0 for the highest score (kSentencePieceScore)
  tok::SpecialMatcher specials;

  int32_t bos = -1, eos = -1, pad = -1, unk = -1;
  bool add_bos_token = true;
  bool add_space_prefix = false;

  // Tokens the encoder may produce from text.
  bool IsText(int32_t id) const {
    const TokenType t = types[static_cast<size_t>(id)];
    return t == TokenType::kNormal || t == TokenType::kUserDefined || t == TokenType::kUndefined;
  }
  // Tokens that decode to nothing unless special tokens are rendered.
  bool IsHidden(int32_t id) const {
    const TokenType t = types[static_cast<size_t>(id)];
    return t == TokenType::kControl || t == TokenType::kUnknown || t == TokenType::kUnused;
  }
  // The text token spelled `s`, or -1.
  int32_t TextId(std::string_view s) const {
    if (s.size() == 1 && static_cast<unsigned char>(s[0]) < 128) return ascii_token[static_cast<unsigned char>(s[0])];
    const int32_t id = piece_to_id.Find(s);
    return id >= 0 && IsText(id) ? id : -1;
  }
  void CheckId(int32_t id) const;  // throws g4::Error for an id outside the vocabulary
};

namespace tok {
// Builds the tables from a GGUF (see tokenizer.h for the rules). Throws g4::Error on bad metadata.
std::unique_ptr<Tokenizer::Impl> LoadVocab(const gguf::File& file);
}  // namespace tok

}  // namespace g4
