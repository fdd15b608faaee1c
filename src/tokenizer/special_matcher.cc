#include "tokenizer/special_matcher.h"

namespace g4::tok {

void SpecialMatcher::Add(std::string_view text, int32_t id, bool needs_parse_special) {
  if (text.empty()) return;
  const auto first = static_cast<unsigned char>(text[0]);
  if (root_[first] == 0) {
    root_[first] = static_cast<int32_t>(nodes_.size());
    nodes_.push_back(Node{});
  }
  int32_t node = root_[first];
  for (size_t i = 1; i < text.size(); ++i) {
    const uint64_t key = EdgeKey(node, static_cast<unsigned char>(text[i]));
    if (const int32_t* child = edges_.Find(key)) {
      node = *child;
    } else {
      const auto next = static_cast<int32_t>(nodes_.size());
      nodes_.push_back(Node{});
      edges_.Insert(key, next);
      node = next;
    }
  }
  if (nodes_[node].id < 0) {
    nodes_[node] = Node{id, needs_parse_special};
    ++count_;
  }
}

size_t SpecialMatcher::Match(std::string_view text, size_t pos, bool parse_special, int32_t* id) const {
  int32_t node = root_[static_cast<unsigned char>(text[pos])];
  size_t best = 0;
  for (size_t i = pos; node != 0;) {
    const Node& n = nodes_[node];
    if (n.id >= 0 && (parse_special || !n.needs_parse_special)) {
      best = i + 1 - pos;
      *id = n.id;
    }
    if (++i >= text.size()) break;
    const int32_t* child = edges_.Find(EdgeKey(node, static_cast<unsigned char>(text[i])));
    node = child ? *child : 0;
  }
  return best;
}

}  // namespace g4::tok
