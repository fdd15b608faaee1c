// Tokenizer speed on the real Gemma 4 vocabulary (262,144 pieces, 514,906 merges): loading it, encoding
// about 1 MB of text (as lines, and as one newline-free BPE word, the worst case for the merge queue),
// decoding, and streaming decoding. Needs ../shared (or $GEMMA4_SHARED_DIR) for the vocabulary.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "tokenizer/tokenizer.h"

namespace {

std::string SharedFile(const std::string& rel) {
  namespace fs = std::filesystem;
  const char* env = std::getenv("GEMMA4_SHARED_DIR");
  const fs::path dir = env && *env ? fs::path(env) : fs::path(GEMMA4_SOURCE_DIR).parent_path() / "shared";
  return (dir / rel).string();
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

const std::string& VocabPath() {
  static const std::string path = SharedFile("tokenizer/gemma4-vocab.gguf");
  return path;
}

const g4::Tokenizer* Tok() {
  static const std::unique_ptr<g4::Tokenizer> tok = [] {
    if (!std::filesystem::exists(VocabPath())) return std::unique_ptr<g4::Tokenizer>();
    return std::make_unique<g4::Tokenizer>(g4::Tokenizer::Load(VocabPath()));
  }();
  return tok.get();
}

// ~1 MB of mixed text (English, code, CJK, emoji, whitespace runs): llama.cpp's Gemma 4 test inputs and
// the HF vector file repeated.
std::string MixedText(bool newlines) {
  std::string base = ReadFile(SharedFile("tokenizer/ggml-vocab-gemma-4.gguf.inp")) +
                     ReadFile(SharedFile("tokenizer/gemma-hf-tokenizers-vectors.jsonl"));
  if (!newlines) {
    for (char& c : base) {
      if (c == '\n' || c == '\t') c = ' ';
    }
  }
  std::string text;
  while (text.size() < (1u << 20)) text += base;
  text.resize(1u << 20);
  return text;
}

bool Skip(benchmark::State& state) {
  if (Tok()) return false;
  state.SkipWithError(("vocabulary not found: " + VocabPath()).c_str());
  return true;
}

void BM_LoadGemma4Vocab(benchmark::State& state) {
  if (Skip(state)) return;
  for (auto _ : state) {
    g4::Tokenizer tok = g4::Tokenizer::Load(VocabPath());
    benchmark::DoNotOptimize(tok.n_vocab());
  }
}
BENCHMARK(BM_LoadGemma4Vocab)->Unit(benchmark::kMillisecond);

void Encode(benchmark::State& state, bool newlines) {
  if (Skip(state)) return;
  const std::string text = MixedText(newlines);
  size_t n_tokens = 0;
  for (auto _ : state) {
    const std::vector<int32_t> ids = Tok()->Encode(text);
    n_tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(n_tokens);
}
void BM_Encode1MB(benchmark::State& state) { Encode(state, true); }
void BM_Encode1MBOneWord(benchmark::State& state) { Encode(state, false); }
BENCHMARK(BM_Encode1MB)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Encode1MBOneWord)->Unit(benchmark::kMillisecond);

void BM_EncodeShortPrompt(benchmark::State& state) {
  if (Skip(state)) return;
  const std::string prompt = "<|turn>user\nWhy is the sky blue? Answer in one sentence.<turn|>\n<|turn>model\n";
  for (auto _ : state) benchmark::DoNotOptimize(Tok()->Encode(prompt, true, true));
}
BENCHMARK(BM_EncodeShortPrompt);

void BM_Decode1MB(benchmark::State& state) {
  if (Skip(state)) return;
  const std::string text = MixedText(true);
  const std::vector<int32_t> ids = Tok()->Encode(text);
  for (auto _ : state) benchmark::DoNotOptimize(Tok()->Decode(ids));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_Decode1MB)->Unit(benchmark::kMillisecond);

void BM_StreamingDecode1MB(benchmark::State& state) {
  if (Skip(state)) return;
  const std::string text = MixedText(true);
  const std::vector<int32_t> ids = Tok()->Encode(text);
  for (auto _ : state) {
    g4::StreamingDecoder dec(*Tok());
    size_t n = 0;
    for (int32_t id : ids) n += dec.Push(id).size();
    benchmark::DoNotOptimize(n);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_StreamingDecode1MB)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
