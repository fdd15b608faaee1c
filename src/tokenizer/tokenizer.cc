#include "tokenizer/tokenizer.h"

#include "formats/gguf.h"
#include "tokenizer/bpe.h"
#include "tokenizer/utf8.h"
#include "tokenizer/vocab.h"
#include "util/error.h"

namespace g4 {
namespace {

// Pieces have their "▁" turned into spaces in the decode table already; this catches a "▁" spelled by
// byte tokens (a vocabulary without the "▁" piece encodes spaces that way, e.g. the tiny test models),
// so that decoding still inverts encoding.
void MarksToSpaces(std::string* s) {
  size_t w = s->find(tok::kSpaceMark);
  if (w == std::string::npos) return;
  for (size_t r = w; r < s->size();) {
    if (s->compare(r, tok::kSpaceMark.size(), tok::kSpaceMark) == 0) {
      (*s)[w++] = ' ';
      r += tok::kSpaceMark.size();
    } else {
      (*s)[w++] = (*s)[r++];
    }
  }
  s->resize(w);
}

bool Hidden(TokenType t) { return t == TokenType::kControl || t == TokenType::kUnknown || t == TokenType::kUnused; }

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::FromGguf(const gguf::File& file) { return Tokenizer(tok::LoadVocab(file)); }

Tokenizer Tokenizer::Load(const std::string& path) {
  const std::unique_ptr<gguf::File> file = gguf::File::Open(path);
  return FromGguf(*file);
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool parse_special, bool add_bos) const {
  const Impl& v = impl();
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_bos && v.bos >= 0) out.push_back(v.bos);

  // Split the text at special tokens; everything between them goes through the merge engine. As in
  // llama.cpp, SentencePiece's prefix space goes before every fragment that starts the text or follows
  // a special token.
  tok::FragmentEncoder fragments(v);
  size_t start = 0;  // of the current plain-text fragment
  bool after_special = true;
  for (size_t pos = 0; pos < text.size();) {
    int32_t id = -1;
    const size_t len = v.specials.MayStart(static_cast<unsigned char>(text[pos]))
                           ? v.specials.Match(text, pos, parse_special, &id)
                           : 0;
    if (len == 0) {
      ++pos;
      continue;
    }
    if (pos > start) fragments.Encode(text.substr(start, pos - start), v.add_space_prefix && after_special, &out);
    // BOS exactly once: a prompt that spells <bos> itself (chat templates do) gets no second one.
    const bool duplicate_bos = add_bos && id == v.bos && out.size() == 1 && out[0] == v.bos;
    if (!duplicate_bos) out.push_back(id);
    after_special = true;
    pos += len;
    start = pos;
  }
  if (start < text.size()) fragments.Encode(text.substr(start), v.add_space_prefix && after_special, &out);
  return out;
}

std::string_view Tokenizer::TokenBytes(int32_t id, bool render_special) const {
  const Impl& v = impl();
  v.CheckId(id);
  if (!render_special && v.IsHidden(id)) return {};
  return v.text[static_cast<size_t>(id)];
}

std::string Tokenizer::Decode(std::span<const int32_t> ids, bool render_special) const {
  std::string out;
  // SentencePiece decoding drops the space the encoder put in front of the text: the first character
  // of the first text token (special tokens before it, rendered or not, do not count).
  bool strip = impl().add_space_prefix;
  for (const int32_t id : ids) {
    std::string_view b = TokenBytes(id, render_special);
    if (strip && !impl().IsHidden(id)) {
      if (!b.empty() && b[0] == ' ') b.remove_prefix(1);
      strip = false;
    }
    out.append(b);
  }
  MarksToSpaces(&out);
  return out;
}

int32_t Tokenizer::n_vocab() const { return impl().n_vocab; }
int32_t Tokenizer::bos() const { return impl().bos; }
int32_t Tokenizer::eos() const { return impl().eos; }
int32_t Tokenizer::pad() const { return impl().pad; }
int32_t Tokenizer::unk() const { return impl().unk; }
bool Tokenizer::add_bos_token() const { return impl().add_bos_token; }
bool Tokenizer::add_space_prefix() const { return impl().add_space_prefix; }
const std::string& Tokenizer::model() const { return impl().model; }
Tokenizer::Algorithm Tokenizer::algorithm() const { return impl().algorithm; }
size_t Tokenizer::n_merges() const { return impl().merges.size(); }

int32_t Tokenizer::Lookup(std::string_view piece) const { return impl().piece_to_id.Find(piece); }

std::string_view Tokenizer::Piece(int32_t id) const {
  impl().CheckId(id);
  return impl().pieces[static_cast<size_t>(id)];
}

TokenType Tokenizer::Type(int32_t id) const {
  impl().CheckId(id);
  return impl().types[static_cast<size_t>(id)];
}

float Tokenizer::Score(int32_t id) const {
  impl().CheckId(id);
  return impl().scores[static_cast<size_t>(id)];
}

// ---------------------------------------------------------------------------------------------------

StreamingDecoder::StreamingDecoder(const Tokenizer& tokenizer, bool render_special)
    : tok_(&tokenizer), render_special_(render_special) {}

std::string StreamingDecoder::Push(int32_t id) {
  std::string_view b = tok_->TokenBytes(id, render_special_);
  if (at_start_ && !Hidden(tok_->Type(id))) {  // as in Tokenizer::Decode
    if (tok_->add_space_prefix() && !b.empty() && b[0] == ' ') b.remove_prefix(1);
    at_start_ = false;
  }
  if (b.empty()) return {};
  pending_.append(b);
  std::string out;
  size_t tail = 0;
  utf8::AppendValid(pending_, &out, &tail);
  pending_.erase(0, pending_.size() - tail);
  MarksToSpaces(&out);  // complete characters only, so a "▁" is never split here
  return out;
}

std::string StreamingDecoder::Flush() {
  std::string out = utf8::MakeValid(pending_);  // no "▁" can be in an incomplete tail
  pending_.clear();
  return out;
}

void StreamingDecoder::Reset() {
  pending_.clear();
  at_start_ = true;
}

}  // namespace g4
