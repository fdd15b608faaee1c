// Prompts made of text and media. A prompt is a list of pieces: token ids, or rows of input
// embeddings (the soft tokens of an image or audio clip). PromptPlan lays the pieces out position by
// position, finds how much of it a sequence's cache already holds, and fills forward batches from
// it, never splitting an image's rows (they attend to each other and must be evaluated together).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/batch.h"

namespace g4 {

// One span of a prompt that mixes text and media.
struct PromptPiece {
  std::vector<int32_t> tokens;  // token ids; empty for an embedding span
  std::vector<float> embd;      // [n_rows][n_embd] input rows, used without the sqrt(n_embd) scale
  bool bidirectional = false;   // the rows see each other in both directions and are evaluated in one
                                // step (the soft tokens of one image); otherwise causal (text, audio)
  uint64_t key = 0;             // identifies the rows' content for prefix reuse (0: never reused)
};

class PromptPlan {
 public:
  // Validates the pieces (rows are whole, ids non-negative) and lays them out. Throws g4::Error.
  PromptPlan(std::span<const PromptPiece> pieces, int64_t n_embd);

  size_t size() const { return keys_.size(); }
  // One key per position: the token id, or a content key of an embedding row (never equal to an id).
  const std::vector<uint64_t>& keys() const { return keys_; }
  int32_t token_at(size_t pos) const;  // -1 for an embedding row
  // Token ids of the prompt, in order (for the sampler's penalties).
  std::vector<int32_t> TokenIds() const;

  // How many leading positions can be kept from a cache holding `cached` keys: the common prefix,
  // leaving at least the last position to run (its logits are needed) and never resuming an image in
  // its middle.
  size_t ReusablePrefix(const std::vector<uint64_t>& cached) const;

  // Adds positions [from, from + k) to `batch` for sequence `seq` with k <= budget, stopping before an
  // image that does not fit in what is left of the budget (unless nothing was added yet and the image
  // fits in max_batch). The last prompt position is flagged as an output. Image groups get ids from
  // *next_group. Returns k. Throws if an image is larger than max_batch.
  size_t AddToBatch(Batch& batch, int seq, size_t from, int64_t budget, int64_t max_batch, int32_t* next_group) const;

 private:
  std::span<const PromptPiece> pieces_;
  int64_t n_embd_;
  std::vector<uint64_t> keys_;
  std::vector<size_t> start_, rows_;  // per piece
  std::vector<uint32_t> piece_of_;    // per position
};

// An image or audio input as a prompt holds it: what replaces its placeholder token (the token a
// chat template writes for a media content part, <|image|> / <|audio|>). mm::ToPromptMedia makes it.
struct PromptMedia {
  int32_t placeholder = -1;         // the token it replaces
  std::vector<PromptPiece> pieces;  // per block: begin marker, the soft-token rows, end marker
  size_t positions = 0;             // positions the pieces take
};

// Appends `tokens` to `out`, replacing the i-th token that is one of `placeholders` by media[i]
// (whose placeholder must be that token); consecutive token ids share a piece. Fails, appending
// nothing, when the placeholders and the media do not pair up one to one. Returns the positions
// appended.
size_t AppendWithMedia(std::vector<PromptPiece>* out, std::span<const int32_t> tokens,
                       std::span<const int32_t> placeholders, std::span<const PromptMedia> media);

// The token ids of the pieces, in order (embedding rows left out).
std::vector<int32_t> TokenIds(std::span<const PromptPiece> pieces);

// Key of an embedding row (exposed for tests).
uint64_t EmbeddingRowKey(uint64_t piece_key, size_t row);

}  // namespace g4
