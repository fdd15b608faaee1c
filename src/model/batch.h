// A batch of tokens for one forward pass. Tokens of several sequences may be mixed (the server
// decodes all active requests together); each token carries its sequence, its position and whether
// its logits are wanted. Positions of one sequence must continue that sequence's cache contiguously.
#pragma once

#include <cstdint>
#include <vector>

namespace g4 {

struct Batch {
  std::vector<int32_t> token;   // [n] token id, or -1 when the input is a row of `embd`
  std::vector<int32_t> seq;     // [n] sequence (cache slot)
  std::vector<int64_t> pos;     // [n] position in its sequence
  std::vector<uint8_t> output;  // [n] 1: compute logits (and hidden state) for this token
  std::vector<int32_t> group;   // [n] > 0: attends bidirectionally to the tokens of the same group
                                //     (the soft tokens of one image); 0: causal
  std::vector<float> embd;      // [n_embd_inputs][n_embd] rows for the tokens whose id is -1, in order

  int size() const { return static_cast<int>(token.size()); }
  bool empty() const { return token.empty(); }
  void Clear() {
    token.clear();
    seq.clear();
    pos.clear();
    output.clear();
    group.clear();
    embd.clear();
  }
  void Add(int32_t tok, int32_t s, int64_t p, bool out, int32_t grp = 0) {
    token.push_back(tok);
    seq.push_back(s);
    pos.push_back(p);
    output.push_back(out ? 1 : 0);
    group.push_back(grp);
  }
  // Adds an embedding input (a multimodal soft token); it is used as is, without the sqrt(n_embd) scale.
  void AddEmbedding(const float* row, int64_t n_embd, int32_t s, int64_t p, bool out, int32_t grp = 0) {
    token.push_back(-1);
    seq.push_back(s);
    pos.push_back(p);
    output.push_back(out ? 1 : 0);
    group.push_back(grp);
    embd.insert(embd.end(), row, row + n_embd);
  }
  int n_outputs() const {
    int n = 0;
    for (uint8_t o : output) n += o;
    return n;
  }
};

}  // namespace g4
