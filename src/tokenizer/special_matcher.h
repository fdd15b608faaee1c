// Finds special tokens (CONTROL, UNKNOWN, USER_DEFINED pieces) in raw text: a byte trie walked from a
// text position, giving the longest eligible token starting there. The Gemma vocabulary has ~6,400 such
// tokens (most of them <unusedN> and HTML tags), so a per-position loop over the list would be far too
// slow; with the trie a position that cannot start a special token costs one table lookup.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/flat_map.h"

namespace g4::tok {

class SpecialMatcher {
 public:
  SpecialMatcher() { root_.fill(0); }

  // Adds a token; `needs_parse_special` marks CONTROL/UNKNOWN tokens. A text already added keeps its
  // first id. Empty texts are ignored.
  void Add(std::string_view text, int32_t id, bool needs_parse_special);

  // Whether any token starts with byte c (a quick filter before Match).
  bool MayStart(unsigned char c) const { return root_[c] != 0; }

  // The length of the longest eligible token starting at text[pos] (0 if none) and its id.
  size_t Match(std::string_view text, size_t pos, bool parse_special, int32_t* id) const;

  size_t size() const { return count_; }

 private:
  struct Node {
    int32_t id = -1;  // token ending here, or -1
    bool needs_parse_special = false;
  };
  static uint64_t EdgeKey(int32_t node, unsigned char c) { return (static_cast<uint64_t>(node) << 8) | c; }

  std::array<int32_t, 256> root_;  // first byte -> node (0: none; node 0 is the root itself)
  std::vector<Node> nodes_{Node{}};
  U64Map<int32_t> edges_;  // (node, byte) -> child node
  size_t count_ = 0;
};

}  // namespace g4::tok
