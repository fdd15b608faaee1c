// The merge engine: encodes one text fragment (the text between two special tokens) with the vocabulary's
// algorithm. Symbols form a linked list over the normalised text and candidate merges sit in a binary
// heap keyed by (priority, position), so a fragment of n characters costs O(n log n) whatever its
// length; a 1 MB text without a newline is one fragment.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace g4::tok {

class FragmentEncoder {
 public:
  explicit FragmentEncoder(const Tokenizer::Impl& vocab) : v_(vocab) {}

  // Appends the tokens of `raw` (never empty) to `out`. `prefix_space` adds the SentencePiece "▁" prefix.
  void Encode(std::string_view raw, bool prefix_space, std::vector<int32_t>* out);

 private:
  struct Symbol {
    int32_t id;      // token, or -1 for a character that is not in the vocabulary (yet)
    uint32_t start;  // bytes of norm_
    uint32_t len;    // 0 once merged into the symbol on its left
    int32_t prev;
    int32_t next;
  };
  // 16 bytes, as the heap is the hot data structure for long fragments.
  struct Candidate {
    uint64_t key;    // priority << 32 | left symbol: the heap pops the smallest
    uint32_t size;   // left.len + right.len when queued: a different sum means the entry is stale
    int32_t result;  // the merged token
  };

  void AddSymbol(int32_t id, uint32_t start, uint32_t len);
  void AddUnknown(uint32_t start, uint32_t len);  // byte tokens, or <unk> when they are missing
  void TryQueue(int32_t left, int32_t right);
  // Byte tokens for an unknown character; `last_unk` fuses consecutive <unk>s.
  void EmitBytes(uint32_t start, uint32_t len, bool* last_unk, std::vector<int32_t>* out) const;

  const Tokenizer::Impl& v_;
  std::string norm_;
  std::vector<Symbol> syms_;
  std::vector<Candidate> heap_;
};

}  // namespace g4::tok
