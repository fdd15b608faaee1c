// gemma4 bench: prompt-processing and generation speed, measured like llama-bench (pp512, tg128,
// pp512+tg128), so the figures can be put side by side. Tokens are random ids; the cache starts
// empty for every repetition. It also measures the machine's memory read bandwidth and reports, for
// generation, the fraction of the bandwidth roofline reached (every weight byte is read once per
// token, so bandwidth / bytes read per token is the most any engine can do), and for prompt
// processing the time of one run (the time to first token for a prompt of that length).
// The machine's bandwidth is measured once before the model loads; a generation test's roofline
// uses the bandwidth measured during the test itself: a read of the model's packed weights (the bytes
// generation streams) before every kSampleEvery-th token, its time left out of the test's. On a
// shared host the bandwidth changes by a fifth from one second to the next, so a figure from
// another moment says little.
// With -d N every test runs after N tokens already in the cache (llama-bench's n_depth), filled by a
// real prefill of random tokens (--depth-fill compute) or with seeded random keys and values
// (--depth-fill synthetic: the same attention work at a fraction of the set-up time, so generation at
// 128K tokens of context can be measured on a model whose 128K prefill would take hours).
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <functional>
#include <map>
#include <random>
#include <sstream>

#include "cli/common.h"
#include "util/error.h"
#include "util/timer.h"

namespace g4::cli {

namespace {
struct BenchOptions {
  std::string model;
  std::string prompts = "512";
  std::string gens = "128";
  std::string pg;         // "512,128": prompt then generation in one test
  std::string threads;    // comma list; default: all cores
  int reps = 3;
  int64_t batch = 512;
  bool json = false;
  bool exact = false;
  bool bandwidth = true;
  std::string cache_type_k, cache_type_v;
  std::string depths = "0";
  std::string depth_fill = "compute";
};

// A comma-separated list of non-negative integers; errors name the flag and the element.
std::vector<int> IntList(const std::string& s, const char* flag) {
  std::vector<int> v;
  if (s.empty()) return v;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    const std::string item = s.substr(i, j - i);
    char* end = nullptr;
    errno = 0;
    const long x = item.empty() ? -1 : std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || errno != 0 || x < 0 || x > INT32_MAX) {
      Fail("%s: element %zu ('%s') is not a non-negative integer", flag, v.size(), item.c_str());
    }
    v.push_back(static_cast<int>(x));
    i = j + 1;
  }
  return v;
}

struct Test {
  int n_prompt = 0, n_gen = 0;
  std::string Name(int depth) const {
    std::string s = n_prompt && n_gen ? "pp" + std::to_string(n_prompt) + "+tg" + std::to_string(n_gen)
                    : n_prompt        ? "pp" + std::to_string(n_prompt)
                                      : "tg" + std::to_string(n_gen);
    return depth > 0 ? s + " @ d" + std::to_string(depth) : s;
  }
};

uint64_t PeakRssBytes() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  uint64_t kb = 0;
  while (std::fgets(line, sizeof(line), f)) {
    if (std::sscanf(line, "VmHWM: %llu kB", reinterpret_cast<unsigned long long*>(&kb)) == 1) break;
  }
  std::fclose(f);
  return kb * 1024;
}

// Sets the peak-RSS mark (VmHWM, and the ru_maxrss a parent sees) to the current resident size.
void ResetPeakRss() {
  if (FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
    std::fputs("5", f);
    std::fclose(f);
  }
}

double Mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

double StdDev(const std::vector<double>& v) {
  if (v.size() < 2) return 0.0;
  const double m = Mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

// Calls `between` before every kSampleEvery-th generated token (gemma4 bench reads the bandwidth
// there); Decode leaves that time out of the test's.
constexpr int kSampleEvery = 8;

// Decodes n_prompt random tokens (in batches of n_batch) then n_gen one by one, after what the cache
// holds; returns the seconds it took.
double Decode(Context& ctx, int n_prompt, int n_gen, std::mt19937& rng, const std::function<void()>& between = {}) {
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(ctx.config().n_vocab - 1));
  const double t0 = NowSeconds();
  int64_t pos = ctx.kv().SeqLen(0);
  Batch b;
  const int64_t step = ctx.options().n_batch;
  for (int i = 0; i < n_prompt; i += static_cast<int>(step)) {
    b.Clear();
    const int end = std::min<int>(n_prompt, i + static_cast<int>(step));
    for (int j = i; j < end; ++j) b.Add(tok(rng), 0, pos++, j + 1 == n_prompt);
    ctx.Decode(b);
  }
  double left_out = 0;
  for (int i = 0; i < n_gen; ++i) {
    if (between && i % kSampleEvery == 0) {
      const double s0 = NowSeconds();
      between();
      left_out += NowSeconds() - s0;
    }
    b.Clear();
    b.Add(tok(rng), 0, pos++, true);
    ctx.Decode(b);
  }
  return NowSeconds() - t0 - left_out;
}

// Fills the cache to `depth` positions (a real prefill or synthetic keys and values).
void FillToDepth(Context& ctx, int depth, bool synthetic, std::mt19937& rng) {
  ctx.kv().Clear(0);
  if (depth == 0) return;
  if (synthetic) {
    ctx.kv().FillSynthetic(0, depth, rng());
  } else {
    const double sec = Decode(ctx, depth, 0, rng);
    std::fprintf(stderr, "bench: prefilled %d tokens of depth in %.1f s\n", depth, sec);
  }
}

// Runs one repetition of a test from `depth` and returns its duration in seconds; the cache is then
// rolled back to the depth for the next one: truncated where the sliding-window ring still holds the
// depth's last window, otherwise (a test longer than the ring's slack) filled to the depth again, which
// RunBench allows only for synthetic fills.
double RunOnce(Context& ctx, const Test& t, int depth, bool synthetic, std::mt19937& rng,
               const std::function<void()>& between = {}) {
  const double sec = Decode(ctx, t.n_prompt, t.n_gen, rng, between);
  if (ctx.kv().CanTruncate(0, depth)) {
    ctx.kv().Truncate(0, depth);
  } else {
    FillToDepth(ctx, depth, synthetic, rng);
  }
  return sec;
}

void RunBench(const BenchOptions& o) {
  std::vector<Test> tests;
  for (int p : IntList(o.prompts, "-p")) {
    if (p > 0) tests.push_back({p, 0});
  }
  for (int n : IntList(o.gens, "-n")) {
    if (n > 0) tests.push_back({0, n});
  }
  if (!o.pg.empty()) {
    auto v = IntList(o.pg, "--pg");
    if (v.size() != 2) Fail("--pg: expected PROMPT,GEN");
    tests.push_back({v[0], v[1]});
  }
  if (tests.empty()) Fail("nothing to measure: give -p and/or -n");
  std::vector<int> thread_counts = IntList(o.threads, "-t");
  if (thread_counts.empty()) thread_counts.push_back(ThreadPool::DefaultThreads());
  if (o.reps < 1) Fail("-r: at least one repetition");
  std::vector<int> depths = IntList(o.depths, "-d");
  if (depths.empty()) depths.push_back(0);
  if (o.depth_fill != "compute" && o.depth_fill != "synthetic") {
    Fail("--depth-fill: '%s' is not compute or synthetic", o.depth_fill.c_str());
  }
  const bool synthetic = o.depth_fill == "synthetic";

  // Memory read bandwidth at each thread count, measured before the model is loaded; the buffer
  // is then freed and the peak-RSS mark reset, so peak_rss_bytes is the engine's own.
  std::map<int, double> bandwidth;
  if (o.bandwidth) {
    for (int nt : thread_counts) {
      ThreadPool bw_pool(nt);
      bandwidth[nt] = kernels::MeasureReadBandwidth(bw_pool);
    }
    ResetPeakRss();
  }
  auto model = Model::Load(o.model);
  int max_test = 0;
  for (const auto& t : tests) max_test = std::max(max_test, t.n_prompt + t.n_gen);
  const int max_ctx = max_test + *std::max_element(depths.begin(), depths.end());
  const int64_t model_max = model->config().n_ctx_train;
  if (model_max > 0 && max_ctx > model_max) {
    Fail("-d/-p/-n: the deepest test needs %d positions, more than the model's context of %lld", max_ctx,
         (long long)model_max);
  }
  nlohmann::json results = nlohmann::json::array();
  struct TestBandwidth {
    int threads;
    std::string test;
    double bytes_per_s;
    bool weights;
  };
  std::vector<TestBandwidth> test_bandwidth;
  if (!o.json) {
    std::printf("| model | size | params | threads | test | t/s | ms/run | roofline |\n"
                "|---|---:|---:|---:|---:|---:|---:|---:|\n");
  }
  std::mt19937 rng(1234);
  for (int nt : thread_counts) {
    ModelOptions mo;
    mo.model = o.model;
    mo.threads = nt;
    mo.ctx = std::max(max_ctx, 16);
    mo.batch = o.batch;
    mo.exact = o.exact;
    mo.cache_type_k = o.cache_type_k;
    mo.cache_type_v = o.cache_type_v;
    ContextOptions co = MakeContextOptions(mo, *model);
    // Each repetition is rolled back to the depth. A computed depth is too slow to fill again, so then
    // the sliding-window ring keeps a whole test's tokens beyond the window (more memory than the engine
    // needs otherwise); at depth 0 or with a synthetic fill the ring is the engine's usual one, so the
    // peak resident memory is what a real prompt of that length takes.
    const bool any_depth = *std::max_element(depths.begin(), depths.end()) > 0;
    if (any_depth && !synthetic) co.kv.slack = std::max<int64_t>(co.kv.slack, max_test);
    Context ctx(*model, co);
    const auto bw_it = bandwidth.find(nt);
    const double bw = bw_it == bandwidth.end() ? 0.0 : bw_it->second;
    const uint64_t weight_bytes = BytesReadPerToken(model->weights(), model->config());
    // Reads of the packed weights between generated tokens (from wherever they are: a model small
    // enough to stay in a cache is read from the cache by generation too); the machine's figure for
    // weights read in the file's layout (GEMMA4_NO_PACK).
    const std::vector<kernels::ByteRange> ranges = model->PackedRanges();
    const bool weights_bw = bw > 0 && model->PackedBytes() > 0;
    for (int depth : depths) {
      FillToDepth(ctx, depth, synthetic, rng);
      for (const auto& t : tests) {
        RunOnce(ctx, {std::min(t.n_prompt, 16), std::min(t.n_gen, 2)}, depth, synthetic, rng);  // warm-up
        const bool gen = bw > 0 && t.n_prompt == 0;
        std::vector<double> ts, ns, bws;  // bws[r]: mean of the reads during repetition r
        for (int r = 0; r < o.reps; ++r) {
          double sum = 0;
          int reads = 0;
          const auto read = [&] {
            sum += kernels::MeasureReadBandwidthOver(ctx.pool(), ranges, 1);  // the test's own threads
            ++reads;
          };
          const double sec = RunOnce(ctx, t, depth, synthetic, rng, gen && weights_bw ? read : std::function<void()>{});
          ns.push_back(sec * 1e9);
          ts.push_back((t.n_prompt + t.n_gen) / sec);
          if (reads > 0) bws.push_back(sum / reads);
        }
        const double ms_per_run = Mean(ns) / 1e6;
        // Generation roofline: bandwidth / bytes read per token (weights, plus the KV cache rows the
        // attention reads at the test's mean position). Repetition r is held against the mean of the
        // reads between its tokens; the fraction is the mean over repetitions.
        double roofline_ts = 0, fraction = 0, test_bw = 0;
        if (gen) {
          KvCacheOptions one = ctx.kv().options();
          one.n_seq = 1;
          one.slack = 0;
          const double per_token =
              static_cast<double>(weight_bytes) + static_cast<double>(KvCache::BytesAtContext(model->config(), one, depth + t.n_gen / 2));
          for (size_t r = 0; r < ts.size(); ++r) {
            const double bw_r = weights_bw ? bws[r] : bw;
            test_bw += bw_r / static_cast<double>(ts.size());
            fraction += ts[r] * per_token / bw_r / static_cast<double>(ts.size());
          }
          roofline_ts = test_bw / per_token;
          test_bandwidth.push_back({nt, t.Name(depth), test_bw, weights_bw});
        }
        const std::string model_name = model->config().name.empty() ? ArchName(model->config().arch) : model->config().name;
        uint64_t params = 0;
        for (const auto& ti : model->file().tensors()) params += static_cast<uint64_t>(ti.Elements());
        if (o.json) {
          results.push_back({{"model_filename", o.model},
                             {"model_type", model_name},
                             {"model_size", model->weights().total_bytes},
                             {"model_n_params", params},
                             {"n_batch", o.batch},
                             {"n_threads", nt},
                             {"type_k", TypeName(ctx.kv().options().type_k)},
                             {"type_v", TypeName(ctx.kv().options().type_v)},
                             {"n_prompt", t.n_prompt},
                             {"n_gen", t.n_gen},
                             {"n_depth", depth},
                             {"depth_fill", o.depth_fill},
                             {"test", t.Name(depth)},
                             {"avg_ns", static_cast<uint64_t>(Mean(ns))},
                             {"stddev_ns", static_cast<uint64_t>(StdDev(ns))},
                             {"avg_ts", Mean(ts)},
                             {"stddev_ts", StdDev(ts)},
                             {"samples_ns", ns},
                             {"samples_ts", ts},
                             {"peak_rss_bytes", PeakRssBytes()},
                             {"ms_per_run", ms_per_run},
                             {"mem_read_bytes_per_s", bw},
                             {"test_read_bytes_per_s", test_bw},
                             {"test_read_of", gen ? (weights_bw ? "packed weights during the test" : "buffer before loading") : ""},
                             {"weight_bytes_per_token", weight_bytes},
                             {"roofline_ts", roofline_ts},
                             {"roofline_fraction", fraction}});
        } else {
          char roof[64] = "";
          if (roofline_ts > 0) std::snprintf(roof, sizeof(roof), "%.0f%% of %.2f", fraction * 100, roofline_ts);
          std::printf("| %s | %s | %.2f B | %d | %s | %.2f ± %.2f | %.1f | %s |\n", model_name.c_str(),
                      HumanBytes(static_cast<double>(model->weights().total_bytes)).c_str(), params / 1e9, nt,
                      t.Name(depth).c_str(), Mean(ts), StdDev(ts), ms_per_run, roof);
          std::fflush(stdout);
        }
      }
    }
  }
  if (o.json) {
    std::printf("%s\n", results.dump(2).c_str());
  } else {
    std::printf("\npeak resident memory: %s\n", HumanBytes(static_cast<double>(PeakRssBytes())).c_str());
    for (const auto& [nt, bw] : bandwidth) std::printf("memory read bandwidth (%d threads): %.1f GB/s\n", nt, bw / 1e9);
    for (const auto& b : test_bandwidth) {
      std::printf("  during %s at %d threads: %.1f GB/s%s\n", b.test.c_str(), b.threads, b.bytes_per_s / 1e9,
                  b.weights ? " (the packed weights, read between tokens; the roofline's)" : "");
    }
  }
}
}  // namespace

void AddBench(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* sub = app.add_subcommand("bench", "Measure prompt processing and generation speed (like llama-bench)");
  sub->add_option("-m,--model", o->model, "Model file (GGUF)")->required();
  sub->add_option("-p,--n-prompt", o->prompts, "Prompt lengths, comma-separated (0 = none)");
  sub->add_option("-n,--n-gen", o->gens, "Generation lengths, comma-separated (0 = none)");
  sub->add_option("--pg", o->pg, "Prompt then generation in one test: PROMPT,GEN");
  sub->add_option("-t,--threads", o->threads, "Thread counts, comma-separated");
  sub->add_option("-r,--repetitions", o->reps, "Repetitions of each test");
  sub->add_option("-b,--batch", o->batch, "Batch size for prompt processing");
  sub->add_flag("--json", o->json, "Print JSON with llama-bench's field names");
  sub->add_flag("--exact", o->exact, "Reference numerics");
  sub->add_flag("!--no-bandwidth", o->bandwidth, "Skip the memory bandwidth measurement (and the roofline)");
  sub->add_option("-d,--depth", o->depths, "Tokens already in the cache before each test, comma-separated");
  sub->add_option("--depth-fill", o->depth_fill,
                  "How the depth is filled: compute (a prefill of random tokens) or synthetic (random keys "
                  "and values, no forward pass)");
  sub->add_option("--cache-type-k", o->cache_type_k, "KV cache type for keys");
  sub->add_option("--cache-type-v", o->cache_type_v, "KV cache type for values");
  sub->callback([o] { RunBench(*o); });
}

}  // namespace g4::cli
