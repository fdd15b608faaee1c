// The Gemma tokenizer, built from the tokenizer.ggml.* metadata llama.cpp writes into GGUF files.
//
// Two algorithms, chosen by tokenizer.ggml.model:
//  * "gemma4": BPE with a merges list (rank = position in tokenizer.ggml.merges), exactly like the
//    Hugging Face `tokenizers` BPE of tokenizer.json: spaces become "▁" (U+2581), no prefix space, no
//    pre-split (a text fragment is one BPE word), characters missing from the vocabulary fall back to
//    <0xXX> byte tokens, whitespace is kept verbatim. Merging repeatedly applies the lowest-ranked
//    adjacent pair, the leftmost one among equals.
//  * "llama" (SentencePiece, Gemma 3): the same normalisation plus a "▁" prefix when
//    tokenizer.ggml.add_space_prefix is true (false for Gemma). With merges it runs the BPE above;
//    without, SentencePiece-BPE: repeatedly merge the adjacent pair whose concatenation is a
//    vocabulary piece with the highest score (leftmost among equals), as llama.cpp's SPM tokenizer does.
//    Pieces left that are not in the vocabulary become byte tokens.
//  In both, only NORMAL and USER_DEFINED pieces (and byte tokens) are produced from text: a merge or a
//  piece that would yield a CONTROL, UNKNOWN or UNUSED token is not used.
//
// Special tokens (token types from tokenizer.ggml.token_type):
//  * CONTROL (e.g. <bos>, <|turn>, <turn|>, <start_of_turn>, <mask>, <unusedN>) and UNKNOWN (<unk>):
//    never produced from plain text; with parse_special they are recognised where their text occurs.
//  * USER_DEFINED (e.g. <|"|>, <|tool_call>, <|channel>, [multimodal], and in Gemma 4 the runs of
//    "\n", "\t" and "▁"): always recognised in the text, whatever parse_special says. This is
//    llama.cpp's rule (llama_vocab::tokenizer_st_partition) and the Hugging Face one for non-special
//    added tokens; the reference vectors rely on it (e.g. "\n\n" is one token, 108).
//  The types are taken as the GGUF gives them. (llama.cpp also demotes </s> to a normal token in Gemma 4
//  vocabularies, an end-of-generation workaround, so it never matches it; HF does, and so does this
//  tokenizer with parse_special, as </s> is CONTROL in the GGUF.)
//  Matching happens on the raw text before normalisation, scanning left to right and taking the longest
//  eligible token at the first position where one starts (HF's leftmost-longest; llama.cpp instead
//  applies tokens longest-first over the whole text, which only differs when two special tokens
//  overlap, which never happens with Gemma's). The text between matches is encoded by the algorithm
//  above, fragment by fragment (so BPE never merges across a special token).
//
// Decoding follows the HF decoder (Replace "▁" -> " ", ByteFallback, Fuse): a piece contributes its
// text with "▁" turned into spaces, a byte token its byte. CONTROL, UNKNOWN and UNUSED tokens contribute
// nothing unless render_special is set (the chat parser uses it to see <|turn> etc.); USER_DEFINED
// tokens such as <|channel> are always rendered. One deliberate difference: a "▁" spelled by byte tokens
// also becomes a space (HF replaces "▁" before fusing bytes and would keep it), so that decoding inverts
// encoding even for a vocabulary without the "▁" piece; the Gemma vocabulary never spells it in bytes.
// Decode returns the raw bytes (byte tokens can spell ill-formed UTF-8; utf8::MakeValid cleans that);
// StreamingDecoder only ever returns valid UTF-8.
//
// Every Tokenizer method is const and thread-safe after construction (a StreamingDecoder belongs to one
// stream). Loading copies the strings it keeps out of the GGUF mapping, so the gguf::File may be closed
// afterwards.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace g4 {

namespace gguf {
class File;
}

// llama.cpp's llama_token_type values, as stored in tokenizer.ggml.token_type.
enum class TokenType : uint8_t {
  kUndefined = 0,  // treated like kNormal
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

class Tokenizer {
 public:
  enum class Algorithm {
    kBpeMerges,           // rank-ordered merges (gemma4; llama with merges)
    kSentencePieceScore,  // score-ordered pieces (llama without merges)
  };

  // Builds the tokenizer from a GGUF's metadata. Throws g4::Error naming the file and the key on
  // missing or malformed metadata.
  static Tokenizer FromGguf(const gguf::File& file);
  // Opens `path` (any GGUF, tensors are not read) and builds the tokenizer from it.
  static Tokenizer Load(const std::string& path);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Tokenizes UTF-8 text (ill-formed bytes are tolerated and become byte tokens). parse_special:
  // recognise CONTROL/UNKNOWN tokens written in the text. add_bos: start with BOS, exactly once (not
  // added again when the text itself starts with a parsed <bos>).
  std::vector<int32_t> Encode(std::string_view text, bool parse_special = false, bool add_bos = false) const;

  // The bytes token `id` contributes to decoded text (see the header comment). Throws on a bad id.
  std::string_view TokenBytes(int32_t id, bool render_special = false) const;
  // Concatenated TokenBytes; with add_space_prefix the space the encoder added is removed again.
  std::string Decode(std::span<const int32_t> ids, bool render_special = false) const;

  int32_t n_vocab() const;
  // Special ids from tokenizer.ggml.{bos,eos,padding,unknown}_token_id, else the id of <bos>, <eos>,
  // <pad>, <unk>; -1 when there is none.
  int32_t bos() const;
  int32_t eos() const;
  int32_t pad() const;
  int32_t unk() const;
  // tokenizer.ggml.add_bos_token (default true): whether prompts of this model start with BOS.
  bool add_bos_token() const;
  bool add_space_prefix() const;
  const std::string& model() const;  // tokenizer.ggml.model
  Algorithm algorithm() const;
  size_t n_merges() const;  // usable merges loaded

  // The id of the vocabulary piece spelled exactly `piece` (any type), or -1. The engine finds the chat
  // tokens (<|turn>, <turn|>, ...) this way, never by hard-coded id.
  int32_t Lookup(std::string_view piece) const;
  // The raw vocabulary string ("▁Hello", "<0x0A>", "<|turn>"). Throws on a bad id.
  std::string_view Piece(int32_t id) const;
  TokenType Type(int32_t id) const;
  float Score(int32_t id) const;
  bool IsControl(int32_t id) const { return Type(id) == TokenType::kControl; }

  struct Impl;  // defined in vocab.h

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  const Impl& impl() const { return *impl_; }
  std::unique_ptr<Impl> impl_;
};

// Turns a stream of token ids into text one token at a time. It returns only complete, valid UTF-8: the
// first bytes of a character spelled by several byte tokens are held back until the character is
// complete; bytes that cannot become valid UTF-8 are replaced by U+FFFD at once (so nothing is held
// for more than three bytes).
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer, bool render_special = false);

  // The text that token `id` completes (possibly empty).
  std::string Push(int32_t id);
  // Whatever is still held back, with an incomplete character replaced by U+FFFD (at the end of a
  // stream, or before text that does not come from tokens).
  std::string Flush();
  // Forgets held bytes and starts a new text.
  void Reset();
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer* tok_;
  bool render_special_;
  bool at_start_ = true;
  std::string pending_;
};

}  // namespace g4
