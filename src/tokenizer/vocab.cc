// Loading the tokenizer tables from GGUF metadata. Loading the 262K-piece Gemma vocabulary with its 515K
// merges is a few hash-table passes over strings that are already mapped in memory.
#include "tokenizer/vocab.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <limits>
#include <numeric>

#include "formats/gguf.h"
#include "util/error.h"

namespace g4 {

void Tokenizer::Impl::CheckId(int32_t id) const {
  if (id < 0 || id >= n_vocab) Fail("token id %d is outside the vocabulary (%d tokens) of %s", id, n_vocab, path.c_str());
}

namespace tok {
namespace {

constexpr const char* kModelKey = "tokenizer.ggml.model";
constexpr const char* kTokensKey = "tokenizer.ggml.tokens";
constexpr const char* kTypesKey = "tokenizer.ggml.token_type";
constexpr const char* kScoresKey = "tokenizer.ggml.scores";
constexpr const char* kMergesKey = "tokenizer.ggml.merges";

std::string Printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s.substr(0, 64)) {
    if (c < 0x20 || c == 0x7f) {
      out += StrFormat("\\x%02X", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > 64) out += "...";
  return out;
}

// The byte a piece of the form <0xXX> stands for, or -1.
int ParseBytePiece(std::string_view p) {
  if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return -1;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(p[3]), lo = hex(p[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

void LoadPieces(const gguf::File& f, Tokenizer::Impl& v) {
  if (!f.Has(kTokensKey)) Fail("%sno tokenizer vocabulary: metadata key '%s' is missing", f.Where().c_str(), kTokensKey);
  const std::vector<std::string_view>& tokens = f.GetStringArray(kTokensKey);
  if (tokens.empty()) Fail("%sthe vocabulary '%s' is empty", f.Where().c_str(), kTokensKey);
  if (tokens.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max() / 2)) {
    Fail("%s'%s' has %zu tokens, too many", f.Where().c_str(), kTokensKey, tokens.size());
  }
  v.n_vocab = static_cast<int32_t>(tokens.size());

  size_t total = 0;
  for (std::string_view t : tokens) total += t.size();
  if (total > std::numeric_limits<uint32_t>::max() / 2) Fail("%s'%s' holds too much text", f.Where().c_str(), kTokensKey);
  v.pieces.data.reserve(total);
  v.pieces.off.reserve(tokens.size() + 1);
  for (std::string_view t : tokens) v.pieces.Append(t);

  v.types.assign(tokens.size(), TokenType::kNormal);
  if (f.Has(kTypesKey)) {
    const std::vector<int64_t> types = f.GetIntArray(kTypesKey);
    if (types.size() != tokens.size()) {
      Fail("%s'%s' has %zu entries but '%s' has %zu tokens", f.Where().c_str(), kTypesKey, types.size(), kTokensKey,
           tokens.size());
    }
    for (size_t i = 0; i < types.size(); ++i) {
      if (types[i] < 0 || types[i] > static_cast<int64_t>(TokenType::kByte)) {
        Fail("%s'%s'[%zu] = %" PRId64 " is not a token type (0..6)", f.Where().c_str(), kTypesKey, i, types[i]);
      }
      v.types[i] = static_cast<TokenType>(types[i]);
    }
  }

  v.scores.assign(tokens.size(), 0.0f);
  if (f.Has(kScoresKey)) {
    v.scores = f.GetFloatArray(kScoresKey);
    if (v.scores.size() != tokens.size()) {
      Fail("%s'%s' has %zu entries but '%s' has %zu tokens", f.Where().c_str(), kScoresKey, v.scores.size(),
           kTokensKey, tokens.size());
    }
  }

  // Inserted in batches whose slots are prefetched first: the table is far larger than the caches, and
  // overlapping the misses is most of the loading time.
  v.piece_to_id = StringIdMap(v.pieces.data.data());
  v.piece_to_id.Reserve(tokens.size());
  constexpr size_t kBatch = 32;
  uint64_t hash[kBatch];
  for (size_t first = 0; first < tokens.size(); first += kBatch) {
    const size_t count = std::min(kBatch, tokens.size() - first);
    for (size_t k = 0; k < count; ++k) {
      hash[k] = HashBytes(v.pieces[first + k]);
      v.piece_to_id.Prefetch(hash[k]);
    }
    for (size_t k = 0; k < count; ++k) {
      const size_t i = first + k;
      v.piece_to_id.Insert(v.pieces.off[i], v.pieces.off[i + 1] - v.pieces.off[i], static_cast<int32_t>(i), hash[k]);
    }
  }
}

// Byte tokens and the decoded text of every token.
void BuildDecodeTables(const gguf::File& f, Tokenizer::Impl& v) {
  v.byte_token.fill(-1);
  char buf[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    v.byte_token[b] = v.piece_to_id.Find(buf);
  }
  v.text.data.reserve(v.pieces.data.size());
  v.text.off.reserve(v.pieces.off.size());
  std::string s;
  for (int32_t id = 0; id < v.n_vocab; ++id) {
    const std::string_view p = v.pieces[static_cast<size_t>(id)];
    if (v.types[static_cast<size_t>(id)] == TokenType::kByte) {
      const int b = ParseBytePiece(p);
      if (b < 0) Fail("%stoken %d '%s' has type BYTE but is not of the form <0xXX>", f.Where().c_str(), id, Printable(p).c_str());
      const char c = static_cast<char>(b);
      v.text.Append(std::string_view(&c, 1));
      continue;
    }
    s.clear();
    for (size_t i = 0; i < p.size();) {
      if (p.compare(i, kSpaceMark.size(), kSpaceMark) == 0) {
        s += ' ';
        i += kSpaceMark.size();
      } else {
        s += p[i++];
      }
    }
    v.text.Append(s);
  }
}

int32_t SpecialId(const gguf::File& f, const Tokenizer::Impl& v, const char* key, std::string_view fallback) {
  if (const auto id = f.GetUIntOpt(key)) {
    if (*id >= static_cast<uint64_t>(v.n_vocab)) {
      Fail("%s'%s' = %" PRIu64 " is outside the vocabulary (%d tokens)", f.Where().c_str(), key, *id, v.n_vocab);
    }
    return static_cast<int32_t>(*id);
  }
  return v.piece_to_id.Find(fallback);
}

[[noreturn]] void BadMerge(const gguf::File& f, size_t rank, std::string_view m, const char* what) {
  Fail("%s'%s'[%zu] = '%s' %s", f.Where().c_str(), kMergesKey, rank, Printable(m).c_str(), what);
}

void LoadMerges(const gguf::File& f, Tokenizer::Impl& v) {
  const std::vector<std::string_view>& merges = f.GetStringArray(kMergesKey);
  if (merges.size() > std::numeric_limits<uint32_t>::max() / 2) Fail("%s'%s' is too long", f.Where().c_str(), kMergesKey);
  v.merges.Reserve(merges.size());
  // Three lookups per merge (A, B and AB) and one insertion, batched with prefetches as in LoadPieces.
  constexpr size_t kBatch = 32;
  struct Lookup {
    std::string_view part[3];  // A, B, AB
    uint64_t hash[3];
  };
  Lookup batch[kBatch];
  std::string joined[kBatch];
  for (size_t first = 0; first < merges.size(); first += kBatch) {
    const size_t count = std::min(kBatch, merges.size() - first);
    for (size_t k = 0; k < count; ++k) {
      const std::string_view m = merges[first + k];
      // "A B": the parts are separated by the first space after the first byte (a part never contains a
      // space, since spaces are spelled "▁", but the first part could in principle be " " itself).
      const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string_view::npos;
      if (sp == std::string_view::npos || sp + 1 >= m.size()) {
        BadMerge(f, first + k, m, "is not two pieces separated by a space");
      }
      joined[k].assign(m.substr(0, sp));
      joined[k].append(m.substr(sp + 1));
      batch[k].part[0] = m.substr(0, sp);
      batch[k].part[1] = m.substr(sp + 1);
      batch[k].part[2] = joined[k];
      for (int j = 0; j < 3; ++j) {
        batch[k].hash[j] = HashBytes(batch[k].part[j]);
        v.piece_to_id.Prefetch(batch[k].hash[j]);
      }
    }
    int32_t ids[kBatch][3];
    for (size_t k = 0; k < count; ++k) {
      for (int j = 0; j < 3; ++j) {
        ids[k][j] = v.piece_to_id.Find(batch[k].part[j], batch[k].hash[j]);
        if (ids[k][j] < 0) {
          BadMerge(f, first + k, merges[first + k],
                   StrFormat("names a piece that is not in the vocabulary ('%s')", Printable(batch[k].part[j]).c_str())
                       .c_str());
        }
      }
      v.merges.Prefetch(PairKey(ids[k][0], ids[k][1]));
    }
    for (size_t k = 0; k < count; ++k) {
      const int32_t* id = ids[k];
      // A merge involving a control/unused token can never apply to text; the first of duplicate merges
      // decides the rank, as in the HF tokenizer.
      if (!v.IsText(id[0]) || !v.IsText(id[1]) || !v.IsText(id[2])) continue;
      v.merges.Insert(PairKey(id[0], id[1]), Merge{static_cast<uint32_t>(first + k), id[2]});
    }
  }
}

// SentencePiece-BPE merges the pair whose piece has the highest score; ranking the scores once turns
// that into the same "lowest rank first" rule the merge engine uses for BPE ranks. Equal scores get
// equal ranks, so the leftmost pair wins among them, as in llama.cpp.
void RankScores(Tokenizer::Impl& v) {
  std::vector<int32_t> order(static_cast<size_t>(v.n_vocab));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return v.scores[a] > v.scores[b]; });
  v.score_rank.assign(order.size(), 0);
  uint32_t rank = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    if (i > 0 && v.scores[order[i]] != v.scores[order[i - 1]]) rank = static_cast<uint32_t>(i);
    v.score_rank[order[i]] = rank;
  }
}

}  // namespace

std::unique_ptr<Tokenizer::Impl> LoadVocab(const gguf::File& f) {
  auto v = std::make_unique<Tokenizer::Impl>();
  v->path = f.path();
  if (!f.Has(kModelKey)) Fail("%sno tokenizer: metadata key '%s' is missing", f.Where().c_str(), kModelKey);
  v->model = f.GetString(kModelKey);
  const bool gemma4 = v->model == "gemma4";
  if (!gemma4 && v->model != "llama") {
    Fail("%s'%s' = '%s' is not supported (expected 'gemma4' or 'llama')", f.Where().c_str(), kModelKey,
         Printable(v->model).c_str());
  }
  LoadPieces(f, *v);
  BuildDecodeTables(f, *v);

  v->bos = SpecialId(f, *v, "tokenizer.ggml.bos_token_id", "<bos>");
  v->eos = SpecialId(f, *v, "tokenizer.ggml.eos_token_id", "<eos>");
  v->pad = SpecialId(f, *v, "tokenizer.ggml.padding_token_id", "<pad>");
  v->unk = SpecialId(f, *v, "tokenizer.ggml.unknown_token_id", "<unk>");
  v->add_bos_token = f.GetBoolOpt("tokenizer.ggml.add_bos_token").value_or(true);
  // llama.cpp ignores the key for BPE vocabularies (gemma4 never adds a prefix space); SentencePiece
  // defaults to adding one.
  v->add_space_prefix = gemma4 ? false : f.GetBoolOpt("tokenizer.ggml.add_space_prefix").value_or(true);

  for (int c = 0; c < 128; ++c) {
    const char ch = static_cast<char>(c);
    const int32_t id = v->piece_to_id.Find(std::string_view(&ch, 1));
    v->ascii_token[c] = id >= 0 && v->IsText(id) ? id : -1;
  }

  if (f.Has(kMergesKey)) {
    LoadMerges(f, *v);
    v->algorithm = Tokenizer::Algorithm::kBpeMerges;
  } else if (gemma4) {
    Fail("%sa 'gemma4' tokenizer needs merges, but metadata key '%s' is missing", f.Where().c_str(), kMergesKey);
  } else {
    if (!f.Has(kScoresKey)) {
      Fail("%sa 'llama' tokenizer without '%s' needs '%s'", f.Where().c_str(), kMergesKey, kScoresKey);
    }
    RankScores(*v);
    v->algorithm = Tokenizer::Algorithm::kSentencePieceScore;
  }

  for (int32_t id = 0; id < v->n_vocab; ++id) {
    const TokenType t = v->types[static_cast<size_t>(id)];
    if (t == TokenType::kControl || t == TokenType::kUnknown || t == TokenType::kUserDefined) {
      v->specials.Add(v->pieces[static_cast<size_t>(id)], id, t != TokenType::kUserDefined);
    }
  }
  return v;
}

}  // namespace tok
}  // namespace g4
