#include "model/memory_plan.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "model/kv_cache.h"
#include "util/error.h"

namespace g4 {

namespace {

// The process before any model memory: the binary's code and data, libstdc++/libc, the heap's
// own overhead. Measured as the peak resident memory of `gemma4 --version` (11.2 MiB on Debian 12,
// x86-64).
constexpr uint64_t kRuntimeBase = uint64_t{11} << 20;
constexpr uint64_t kPerThread = uint64_t{64} << 10;   // stack pages and thread-local state per thread
// The tokenizer reads its vocabulary, scores and merges from the metadata (whose pages the mapping
// keeps resident) and builds strings and hash maps from them: about three times the metadata in all.
constexpr uint64_t kMetadataFactor = 3;
// MatMul's scratch per pool slot (kernels/scratch.h): decoded weight chunks of up to 1024 columns
// for a group of panels, f32 panels of the float path and packed tiles; the larger of the paths.
constexpr uint64_t kKernelScratchPerThread = uint64_t{192} << 10;

constexpr int kPanelRowsForPlan = kernels::kPanelRows;

uint64_t PageSize() { return static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)); }

uint64_t WeightsBytes(const Model& model, const MemoryPlanOptions& opt) {
  const ModelWeights& w = model.weights();
  std::set<const uint8_t*> matrices;
  uint64_t bytes = 0;
  ForEachMatrix(w, [&](const Matrix& m) {
    if (m.data == nullptr || m.rows == 0 || !matrices.insert(m.data).second) return;
    bytes += opt.packed ? static_cast<uint64_t>(kernels::PackedBytes(m)) : static_cast<uint64_t>(m.rows) * m.row_bytes();
  });
  // Embedding tables take nothing more: a row per token is read from the tied LM head's copy (packed,
  // or in place, counted above) or copied out of the file with pread (Model::EmbeddingRow).
  for (const Matrix* t : {&w.token_embd, &w.ple_token_embd}) {
    if (t->data != nullptr) matrices.insert(t->data);
  }
  if (opt.packed) {
    // The vectors (norms, scales, RoPE factors) are copied; nothing else of the file stays resident.
    ForEachVec(w, [&](const Vec& v) { bytes += v.data ? 4 * static_cast<uint64_t>(v.n) : 0; });
  } else {
    // Everything else is read in place, whole.
    for (const auto& t : model.file().tensors()) {
      if (!matrices.count(t.data)) bytes += t.nbytes;
    }
  }
  return bytes;
}

uint64_t WorkingBytes(const Model& model, const MemoryPlanOptions& opt, int n_threads) {
  const ModelConfig& c = model.config();
  // Context::Scratch is sized for the largest micro-batch; one output row per sequence per step
  // (the last prompt token, then each generated token).
  const uint64_t n = static_cast<uint64_t>(std::min<int64_t>(opt.n_batch, opt.n_ctx * opt.n_seq));
  const uint64_t n_out = static_cast<uint64_t>(opt.n_seq);
  uint64_t max_q = 0, max_kv = 0, max_ff = 0, max_hd = 0, rot[2] = {0, 0};
  for (const auto& L : c.layers) {
    max_q = std::max<uint64_t>(max_q, uint64_t(L.n_head) * L.head_dim);
    max_kv = std::max<uint64_t>(max_kv, uint64_t(L.n_head_kv) * L.head_dim);
    max_ff = std::max<uint64_t>(max_ff, uint64_t(L.n_ff));
    max_hd = std::max<uint64_t>(max_hd, uint64_t(L.head_dim));
    rot[L.sliding ? 0 : 1] = uint64_t(L.rope.n_rot);
  }
  const uint64_t E = uint64_t(c.n_embd), P = uint64_t(c.n_embd_per_layer), PL = P * uint64_t(c.n_layer);
  uint64_t floats = n * (3 * E + 2 * max_q + 2 * max_kv + 2 * max_ff + rot[0] + rot[1]);
  if (P > 0) floats += n * (2 * PL + P);
  if (c.n_expert > 0) floats += n * (4 * E + uint64_t(c.n_expert) + 2 * uint64_t(c.n_ff_exp));
  floats += n_out * E;                      // final-normed hidden rows
  floats += n_out * uint64_t(c.n_vocab);    // logits
  uint64_t bytes = floats * 4 + n * (2 * 8 + 4);  // + group ranges and embedding-row indices
  // MatMul's activation workspace (the caller's thread), when quantized weights take the integer
  // path: int8 values per 64 columns and 18 bytes of scales and sums per group of 32, for the widest
  // input. Float weights (F32/F16/BF16) read the f32 activations in place.
  bool quantized = false;
  ForEachMatrix(model.weights(), [&](const Matrix& m) {
    quantized |= m.data != nullptr && m.type != GgmlType::F32 && m.type != GgmlType::F16 && m.type != GgmlType::BF16;
  });
  const uint64_t cols = std::max({E, max_q, max_ff, P});
  if (quantized) bytes += n * ((cols + 63) / 64 * 64 + ((cols / 32 + 15) / 16 * 16) * 18);
  // Per thread: kernel scratch, and attention's running-softmax state for 32 (token, head) pairs.
  bytes += uint64_t(n_threads) * (kKernelScratchPerThread + 32 * (2 * max_hd + 64) * 4);
  // Sampler per sequence: adjusted logits, candidate indices and their probabilities.
  bytes += n_out * uint64_t(c.n_vocab) * (4 + 4 + 8);
  return bytes;
}

}  // namespace

MemoryPlan PlanMemory(const Model& model, const MemoryPlanOptions& opt) {
  if (opt.n_ctx <= 0) Fail("memory plan: context of %lld tokens", (long long)opt.n_ctx);
  if (opt.n_seq <= 0) Fail("memory plan: %d sequences", opt.n_seq);
  if (opt.n_batch <= 0) Fail("memory plan: batch of %lld tokens", (long long)opt.n_batch);
  const int n_threads = opt.n_threads > 0 ? opt.n_threads : std::max(1u, std::thread::hardware_concurrency());
  MemoryPlan p;
  p.weights = WeightsBytes(model, opt);
  KvCacheOptions kv;
  kv.n_seq = opt.n_seq;
  kv.n_ctx = opt.n_ctx;
  kv.slack = std::max(KvCacheOptions{}.slack, opt.n_batch);  // as Context sets it
  kv.type_k = opt.type_k;
  kv.type_v = opt.type_v;
  p.kv_cache = KvCache::BytesAtContext(model.config(), kv, opt.n_ctx);
  p.working = WorkingBytes(model, opt, n_threads);
  if (opt.packed) {
    // kernels::PackMatrix releases the source in slices of about 16 MiB (whole panels of 16 rows).
    ForEachMatrix(model.weights(), [&](const Matrix& m) {
      if (m.data == nullptr || m.rows == 0) return;
      const uint64_t panel = uint64_t(kPanelRowsForPlan) * m.row_bytes();
      const uint64_t slice = std::max<uint64_t>(1, (uint64_t{16} << 20) / panel) * panel;
      p.loading = std::max(p.loading, std::min<uint64_t>(slice, uint64_t(m.rows) * m.row_bytes()) + 2 * PageSize());
    });
  }
  p.runtime = kRuntimeBase + uint64_t(n_threads) * kPerThread + kMetadataFactor * model.file().data_offset();
  return p;
}

int64_t LargestContext(const Model& model, MemoryPlanOptions opt, uint64_t budget) {
  const int64_t max_ctx = model.config().n_ctx_train > 0 ? model.config().n_ctx_train : int64_t{1} << 24;
  auto fits = [&](int64_t n) {
    opt.n_ctx = n;
    return PlanMemory(model, opt).total() <= budget;
  };
  if (fits(max_ctx)) return max_ctx;
  const int64_t step = KvCache::kChunk;
  int64_t lo = 0, hi = (max_ctx + step - 1) / step;  // in chunks: lo fits (or is 0), hi does not
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    (fits(mid * step) ? lo : hi) = mid;
  }
  return lo * step;
}

uint64_t AvailableMemory() {
  std::ifstream in("/proc/meminfo");
  if (!in) Fail("cannot read /proc/meminfo to find the available memory");
  std::string line;
  while (std::getline(in, line)) {
    unsigned long long kib = 0;
    if (std::sscanf(line.c_str(), "MemAvailable: %llu kB", &kib) == 1) return uint64_t{kib} * 1024;
  }
  Fail("/proc/meminfo has no MemAvailable line");
}

uint64_t ParseMemorySize(const std::string& text, const char* what) {
  const char* s = text.c_str();
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s, &end);
  if (end == s || errno != 0 || !(v > 0) || !std::isfinite(v)) {
    Fail("%s: '%s' is not a memory size (examples: 16G, 512M, 1.5GiB)", what, text.c_str());
  }
  std::string unit(end);
  for (auto& ch : unit) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  double mul = 0;
  if (unit.empty() || unit == "B") mul = 1;
  else if (unit == "K" || unit == "KB" || unit == "KIB") mul = 1024.0;
  else if (unit == "M" || unit == "MB" || unit == "MIB") mul = 1024.0 * 1024;
  else if (unit == "G" || unit == "GB" || unit == "GIB") mul = 1024.0 * 1024 * 1024;
  else if (unit == "T" || unit == "TB" || unit == "TIB") mul = 1024.0 * 1024 * 1024 * 1024;
  else Fail("%s: unknown unit '%s' in '%s' (B, K, M, G, T; binary multiples)", what, end, text.c_str());
  const double bytes = v * mul;
  if (bytes >= 1.8e19) Fail("%s: '%s' is too large", what, text.c_str());
  return static_cast<uint64_t>(bytes);
}

}  // namespace g4
