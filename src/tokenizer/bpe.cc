#include "tokenizer/bpe.h"

#include <algorithm>
#include <limits>

#include "tokenizer/utf8.h"
#include "util/error.h"

namespace g4::tok {
namespace {
// Makes std::push_heap/pop_heap keep the smallest key on top (a function object, so it is inlined).
struct HeapAfter {
  bool operator()(const auto& a, const auto& b) const { return a.key > b.key; }
};
}  // namespace

void FragmentEncoder::AddSymbol(int32_t id, uint32_t start, uint32_t len) {
  const auto index = static_cast<int32_t>(syms_.size());
  if (index > 0) syms_.back().next = index;
  syms_.push_back(Symbol{id, start, len, index - 1, -1});
}

// As the HF BPE with byte_fallback: a character missing from the vocabulary becomes one symbol per
// UTF-8 byte (<0xXX> tokens) if all of them exist, else <unk>, consecutive <unk>s fused into one.
void FragmentEncoder::AddUnknown(uint32_t start, uint32_t len) {
  bool have_bytes = true;
  for (uint32_t k = 0; k < len; ++k) have_bytes = have_bytes && v_.byte_token[static_cast<uint8_t>(norm_[start + k])] >= 0;
  if (have_bytes) {
    for (uint32_t k = 0; k < len; ++k) AddSymbol(v_.byte_token[static_cast<uint8_t>(norm_[start + k])], start + k, 1);
  } else if (v_.unk >= 0) {
    if (!syms_.empty() && syms_.back().id == v_.unk) {
      syms_.back().len += len;  // the previous character was unknown too (<unk> is never a text piece)
    } else {
      AddSymbol(v_.unk, start, len);
    }
  }
  // Without byte tokens and without <unk> the character cannot be represented and is dropped.
}

void FragmentEncoder::EmitBytes(uint32_t start, uint32_t len, bool* last_unk, std::vector<int32_t>* out) const {
  for (uint32_t k = 0; k < len; ++k) {
    const int32_t b = v_.byte_token[static_cast<uint8_t>(norm_[start + k])];
    if (b >= 0) {
      out->push_back(b);
      *last_unk = false;
    } else if (v_.unk >= 0 && !*last_unk) {
      out->push_back(v_.unk);
      *last_unk = true;
    }
  }
}

void FragmentEncoder::TryQueue(int32_t left, int32_t right) {
  if (left < 0 || right < 0) return;
  const Symbol& l = syms_[static_cast<size_t>(left)];
  const Symbol& r = syms_[static_cast<size_t>(right)];
  uint32_t priority;
  int32_t result;
  if (v_.algorithm == Tokenizer::Algorithm::kBpeMerges) {
    if (l.id < 0 || r.id < 0) return;
    const Merge* m = v_.merges.Find(PairKey(l.id, r.id));
    if (!m) return;
    priority = m->rank;
    result = m->result;
  } else {
    // SentencePiece: any adjacent pair whose text is a piece, merged by score. Symbols are contiguous in
    // norm_ here (no character is ever dropped in this mode).
    result = v_.TextId(std::string_view(norm_.data() + l.start, l.len + r.len));
    if (result < 0) return;
    priority = v_.score_rank[static_cast<size_t>(result)];
  }
  heap_.push_back(Candidate{(static_cast<uint64_t>(priority) << 32) | static_cast<uint32_t>(left), l.len + r.len, result});
  std::push_heap(heap_.begin(), heap_.end(), HeapAfter());
}

void FragmentEncoder::Encode(std::string_view raw, bool prefix_space, std::vector<int32_t>* out) {
  // Normalise: " " -> "▁" (and the SentencePiece prefix).
  norm_.clear();
  norm_.reserve(raw.size() + raw.size() / 2 + kSpaceMark.size());
  if (prefix_space) norm_ += kSpaceMark;
  for (size_t i = 0; i < raw.size();) {
    const size_t sp = std::min(raw.find(' ', i), raw.size());
    norm_.append(raw.data() + i, sp - i);
    if (sp < raw.size()) norm_ += kSpaceMark;
    i = sp + 1;
  }
  if (norm_.size() >= std::numeric_limits<uint32_t>::max() / 2) Fail("text of %zu bytes is too long to tokenize", raw.size());

  // One symbol per character.
  const bool bpe = v_.algorithm == Tokenizer::Algorithm::kBpeMerges;
  syms_.clear();
  heap_.clear();
  for (size_t pos = 0; pos < norm_.size();) {
    const size_t len = utf8::CharLen(norm_.data() + pos, norm_.size() - pos);
    const int32_t id = v_.TextId(std::string_view(norm_.data() + pos, len));
    if (id >= 0) {
      AddSymbol(id, static_cast<uint32_t>(pos), static_cast<uint32_t>(len));
    } else if (bpe) {
      AddUnknown(static_cast<uint32_t>(pos), static_cast<uint32_t>(len));
    } else {
      AddSymbol(-1, static_cast<uint32_t>(pos), static_cast<uint32_t>(len));  // bytes at the end if still unknown
    }
    pos += len;
  }
  if (syms_.empty()) return;

  // Merge until no candidate is left.
  for (int32_t i = 1; i < static_cast<int32_t>(syms_.size()); ++i) TryQueue(i - 1, i);
  while (!heap_.empty()) {
    std::pop_heap(heap_.begin(), heap_.end(), HeapAfter());
    const Candidate c = heap_.back();
    heap_.pop_back();
    const auto left = static_cast<int32_t>(c.key & 0xFFFFFFFFu);
    Symbol& l = syms_[static_cast<size_t>(left)];
    // Stale if either side changed since it was queued. Merging only ever grows a symbol, so lengths
    // tell: if the left one absorbed its neighbour, its length alone is now the queued sum; if the right
    // one absorbed its own neighbour, the sum grew. Equal sums mean the very same pair.
    if (l.len == 0 || l.next < 0) continue;
    Symbol& r = syms_[static_cast<size_t>(l.next)];
    if (l.len + r.len != c.size) continue;
    l.id = c.result;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) syms_[static_cast<size_t>(r.next)].prev = left;
    TryQueue(l.prev, left);
    TryQueue(left, l.next);
  }

  bool last_unk = false;
  for (int32_t i = 0; i >= 0; i = syms_[static_cast<size_t>(i)].next) {
    const Symbol& s = syms_[static_cast<size_t>(i)];
    if (s.id >= 0) {
      out->push_back(s.id);
      last_unk = false;
    } else {
      EmitBytes(s.start, s.len, &last_unk, out);
    }
  }
}

}  // namespace g4::tok
