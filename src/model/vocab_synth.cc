#include "model/vocab_synth.h"

#include <cstdio>
#include <map>

#include "util/error.h"

namespace g4 {

namespace {
constexpr int32_t kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6;

struct Special {
  const char* text;
  int32_t real_id;  // id in the real 262,144-token vocabulary
  int32_t type;
};

// Gemma 4 (GEMMA4.md section 4). The visible tool/channel tokens are user-defined, as llama.cpp's
// converter types them.
const std::vector<Special>& Gemma4Specials() {
  static const std::vector<Special> s = {
      {"<|tool>", 46, kControl},          {"<tool|>", 47, kControl},
      {"<|tool_call>", 48, kUserDefined}, {"<tool_call|>", 49, kUserDefined},
      {"<|tool_response>", 50, kUserDefined}, {"<tool_response|>", 51, kUserDefined},
      {"<|\"|>", 52, kUserDefined},       {"<|think|>", 98, kControl},
      {"<|channel>", 100, kUserDefined},  {"<channel|>", 101, kUserDefined},
      {"<|turn>", 105, kControl},         {"<turn|>", 106, kControl},
      {"<|image>", 255999, kControl},     {"<|audio>", 256000, kControl},
      {"<|image|>", 258880, kControl},    {"<|audio|>", 258881, kControl},
      {"<image|>", 258882, kControl},     {"<audio|>", 258883, kControl},
      {"<|video|>", 258884, kControl},
  };
  return s;
}
const std::vector<Special>& Gemma3Specials() {
  static const std::vector<Special> s = {
      {"<start_of_turn>", 105, kControl},
      {"<end_of_turn>", 106, kControl},
      {"<start_of_image>", 255999, kControl},
      {"<end_of_image>", 256000, kControl},
  };
  return s;
}
}  // namespace

SyntheticVocab MakeSyntheticVocab(const std::string& arch, int64_t n_vocab) {
  const bool g4 = arch != "gemma3";
  const auto& specials = g4 ? Gemma4Specials() : Gemma3Specials();
  const int64_t n_min = 5 + static_cast<int64_t>(specials.size()) + 256 + 96;
  if (n_vocab < n_min) Fail("a synthetic vocabulary needs at least %lld tokens", (long long)n_min);
  SyntheticVocab v;
  v.model = g4 ? "gemma4" : "llama";
  v.tokens.assign(static_cast<size_t>(n_vocab), "");
  v.types.assign(static_cast<size_t>(n_vocab), 0);
  v.scores.assign(static_cast<size_t>(n_vocab), 0.0f);
  auto put = [&](int64_t id, const std::string& text, int32_t type) {
    v.tokens[static_cast<size_t>(id)] = text;
    v.types[static_cast<size_t>(id)] = type;
    v.scores[static_cast<size_t>(id)] = type == kNormal ? -static_cast<float>(id) : 0.0f;
  };
  put(0, "<pad>", kControl);
  put(1, "<eos>", kControl);
  put(2, "<bos>", kControl);
  put(3, "<unk>", kUnknown);
  put(4, "<mask>", kControl);
  const bool full = n_vocab >= 262144;
  int64_t next = 5;
  for (const auto& s : specials) put(full ? s.real_id : next++, s.text, s.type);
  // Byte tokens, then "▁" and printable ASCII as single-character pieces, in the first free ids.
  auto free_id = [&]() {
    while (!v.tokens[static_cast<size_t>(next)].empty()) ++next;
    return next;
  };
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    put(free_id(), buf, kByte);
  }
  put(free_id(), "\xe2\x96\x81", kNormal);  // ▁ (space)
  put(free_id(), "\n", kNormal);
  for (int c = 0x21; c < 0x7f; ++c) put(free_id(), std::string(1, static_cast<char>(c)), kNormal);
  int unused = 0;
  for (int64_t id = 0; id < n_vocab; ++id) {
    if (v.tokens[static_cast<size_t>(id)].empty()) put(id, "<unused" + std::to_string(unused++) + ">", kUnused);
  }
  return v;
}

void WriteVocab(gguf::Writer& w, const SyntheticVocab& v) {
  w.SetString("tokenizer.ggml.model", v.model);
  w.SetStringArray("tokenizer.ggml.tokens", v.tokens);
  w.SetFloat32Array("tokenizer.ggml.scores", v.scores);
  w.SetInt32Array("tokenizer.ggml.token_type", v.types);
  if (v.model == "gemma4") w.SetStringArray("tokenizer.ggml.merges", {});
  w.SetUInt32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(v.bos));
  w.SetUInt32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(v.eos));
  w.SetUInt32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(v.unk));
  w.SetUInt32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(v.pad));
  w.SetBool("tokenizer.ggml.add_bos_token", true);
  w.SetBool("tokenizer.ggml.add_space_prefix", false);
}

}  // namespace g4
