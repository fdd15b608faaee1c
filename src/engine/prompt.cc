#include "engine/prompt.h"

#include <algorithm>

#include "util/error.h"

namespace g4 {

namespace {
constexpr uint64_t kEmbdKey = 1ull << 63;  // set in the keys of embedding rows, never in token ids
constexpr uint64_t kNoReuse = ~0ull;       // a row that never matches the cache
}  // namespace

uint64_t EmbeddingRowKey(uint64_t key, size_t row) {
  if (key == 0) return kNoReuse;
  uint64_t z = key + 0x9e3779b97f4a7c15ull * (row + 1);  // splitmix64 finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z = kEmbdKey | (z ^ (z >> 31));
  return z == kNoReuse ? kEmbdKey : z;
}

PromptPlan::PromptPlan(std::span<const PromptPiece> pieces, int64_t n_embd) : pieces_(pieces), n_embd_(n_embd) {
  start_.resize(pieces.size());
  rows_.resize(pieces.size());
  for (size_t i = 0; i < pieces.size(); ++i) {
    const PromptPiece& p = pieces[i];
    start_[i] = keys_.size();
    if (!p.embd.empty()) {
      if (!p.tokens.empty()) Fail("prompt piece %zu has both token ids and embedding rows", i);
      if (p.embd.size() % static_cast<size_t>(n_embd) != 0) {
        Fail("prompt piece %zu: %zu values are not whole rows of the hidden size %lld", i, p.embd.size(),
             (long long)n_embd);
      }
      rows_[i] = p.embd.size() / static_cast<size_t>(n_embd);
      for (size_t r = 0; r < rows_[i]; ++r) keys_.push_back(EmbeddingRowKey(p.key, r));
    } else {
      rows_[i] = p.tokens.size();
      for (int32_t t : p.tokens) {
        if (t < 0) Fail("prompt piece %zu: negative token id %d", i, t);
        keys_.push_back(static_cast<uint64_t>(t));
      }
    }
    piece_of_.resize(keys_.size(), static_cast<uint32_t>(i));
  }
  if (keys_.empty()) Fail("the prompt is empty");
}

int32_t PromptPlan::token_at(size_t pos) const {
  const PromptPiece& p = pieces_[piece_of_[pos]];
  return p.embd.empty() ? p.tokens[pos - start_[piece_of_[pos]]] : -1;
}

std::vector<int32_t> PromptPlan::TokenIds() const { return g4::TokenIds(pieces_); }

std::vector<int32_t> TokenIds(std::span<const PromptPiece> pieces) {
  std::vector<int32_t> ids;
  for (const auto& p : pieces) ids.insert(ids.end(), p.tokens.begin(), p.tokens.end());
  return ids;
}

size_t AppendWithMedia(std::vector<PromptPiece>* out, std::span<const int32_t> tokens,
                       std::span<const int32_t> placeholders, std::span<const PromptMedia> media) {
  auto is_placeholder = [&](int32_t t) {
    return std::find(placeholders.begin(), placeholders.end(), t) != placeholders.end();
  };
  size_t n = 0;
  for (int32_t t : tokens) {
    if (!is_placeholder(t)) continue;
    if (n >= media.size()) Fail("the prompt has more media placeholders than the %zu media inputs given", media.size());
    if (media[n].placeholder != t) Fail("media placeholder %zu is token %d, but media input %zu is for token %d", n, t, n, media[n].placeholder);
    ++n;
  }
  if (n != media.size()) Fail("the prompt has %zu media placeholders but %zu media inputs were given", n, media.size());
  // Token ids join the piece before them when it holds token ids too.
  auto add = [&](const PromptPiece& p) {
    if (!p.embd.empty() || out->empty() || !out->back().embd.empty()) {
      out->push_back(p);
    } else {
      out->back().tokens.insert(out->back().tokens.end(), p.tokens.begin(), p.tokens.end());
    }
  };
  size_t positions = 0, next = 0;
  PromptPiece one;
  one.tokens.resize(1);
  for (int32_t t : tokens) {
    if (is_placeholder(t)) {
      const PromptMedia& m = media[next++];
      for (const PromptPiece& p : m.pieces) add(p);
      positions += m.positions;
      continue;
    }
    one.tokens[0] = t;
    add(one);
    ++positions;
  }
  return positions;
}

size_t PromptPlan::ReusablePrefix(const std::vector<uint64_t>& cached) const {
  size_t common = 0;
  while (common < cached.size() && common < keys_.size() && cached[common] == keys_[common] &&
         keys_[common] != kNoReuse) {
    ++common;
  }
  if (common == keys_.size()) --common;
  if (common < keys_.size()) {
    const size_t i = piece_of_[common];
    if (pieces_[i].bidirectional && start_[i] < common) common = start_[i];
  }
  return common;
}

size_t PromptPlan::AddToBatch(Batch& b, int seq, size_t from, int64_t budget, int64_t max_batch,
                              int32_t* next_group) const {
  size_t pos = from;
  const size_t last = keys_.size() - 1;
  int64_t left = budget;
  while (pos < keys_.size() && left > 0) {
    const size_t i = piece_of_[pos];
    const PromptPiece& p = pieces_[i];
    const size_t end = start_[i] + rows_[i];
    if (p.embd.empty()) {
      const size_t n = std::min<size_t>(end - pos, static_cast<size_t>(left));
      for (size_t k = 0; k < n; ++k, ++pos) b.Add(p.tokens[pos - start_[i]], seq, static_cast<int64_t>(pos), pos == last);
      left -= static_cast<int64_t>(n);
    } else if (p.bidirectional) {
      const int64_t n = static_cast<int64_t>(rows_[i]);
      if (n > max_batch) {
        Fail("an image of %lld soft tokens must be evaluated in one batch, but the batch size is %lld: raise it",
             (long long)n, (long long)max_batch);
      }
      if (n > left && !(pos == from && n <= max_batch && left == budget)) break;
      const int32_t group = (*next_group)++;
      for (size_t r = 0; r < rows_[i]; ++r, ++pos) {
        b.AddEmbedding(p.embd.data() + r * static_cast<size_t>(n_embd_), n_embd_, seq, static_cast<int64_t>(pos),
                       pos == last, group);
      }
      left -= n;
    } else {
      const size_t n = std::min<size_t>(end - pos, static_cast<size_t>(left));
      for (size_t k = 0; k < n; ++k, ++pos) {
        const size_t r = pos - start_[i];
        b.AddEmbedding(p.embd.data() + r * static_cast<size_t>(n_embd_), n_embd_, seq, static_cast<int64_t>(pos),
                       pos == last, 0);
      }
      left -= static_cast<int64_t>(n);
    }
  }
  return pos - from;
}

}  // namespace g4
