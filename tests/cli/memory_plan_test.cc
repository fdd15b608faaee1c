// The memory planner (model/memory_plan.h) against what a real run takes: the peak resident memory
// (VmHWM, from wait4's ru_maxrss) of a `gemma4 generate` child that fills its KV cache, at several
// contexts; plus `gemma4 info`, `gemma4 fit` and `--ctx auto` as a user runs them.
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

#include "testutil.h"

extern char** environ;

namespace g4 {
namespace {

using g4::testing::CliPath;
using g4::testing::RunCommand;
using nlohmann::json;

// The tiny-kv preset: 41 MB of F32 weights (mostly the tied LM head of a 32K vocabulary) and 16 KB
// of F32 KV per token, with layers cheap enough to fill 2K tokens in about a second.
const std::string& Model() {
  static const std::string path = [] {
    const std::string p = g4::testing::TempDir() + "/tiny-kv.gguf";
    auto r = RunCommand(CliPath() + " create --preset tiny-kv --type F32 -o " + p + " 2>&1");
    EXPECT_EQ(r.status, 0) << r.out;
    return p;
  }();
  return path;
}

// Runs `cmd` (through sh, exec'd so the measured process is gemma4 itself); returns its exit status
// and peak resident bytes.
std::pair<int, uint64_t> PeakResident(const std::string& cmd) {
  const std::string full = "exec " + cmd;
  const char* argv[] = {"/bin/sh", "-c", full.c_str(), nullptr};
  pid_t pid = 0;
  if (posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ) != 0) return {-1, 0};
  int status = 0;
  struct rusage ru = {};
  if (wait4(pid, &status, 0, &ru) != pid) return {-1, 0};
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, static_cast<uint64_t>(ru.ru_maxrss) * 1024};
}

json Info(const std::string& args) {
  auto r = RunCommand(CliPath() + " info " + Model() + " --json " + args);
  EXPECT_EQ(r.status, 0) << r.out;
  return json::parse(r.out);
}

TEST(MemoryPlan, MatchesPeakResidentMemoryWithin5Percent) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "under AddressSanitizer the process's memory (shadow, quarantine) is not what the planner models";
#endif
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> id(3, 32767);
  const std::string flags = " -t 2 -b 512 --cache-type-k f32 --cache-type-v f32";
  uint64_t planned_prev = 0, measured_prev = 0;
  int ctx_prev = 0;
  for (int ctx : {1024, 1536, 2048}) {
    // A prompt of ctx - 1 random tokens and one generated token: every KV chunk is in use.
    std::string tokens = "2";
    for (int i = 1; i < ctx - 1; ++i) {
      tokens += ',';
      tokens += std::to_string(id(rng));
    }
    const auto [status, measured] = PeakResident(CliPath() + " generate -m " + Model() + " --tokens " + tokens +
                                                 " -n 1 --temp 0 --ids -c " + std::to_string(ctx) + flags +
                                                 " >/dev/null 2>&1");
    ASSERT_EQ(status, 0) << "ctx " << ctx;
    const json mem = Info("-c " + std::to_string(ctx) + flags)["memory"];
    const uint64_t planned = mem["total_bytes"].get<uint64_t>();
    const double err = (double(planned) - double(measured)) / double(measured);
    std::printf("ctx %5d: planned %.2f MiB (weights %.2f, KV %.2f, working %.2f, runtime %.2f), measured %.2f MiB, "
                "%+.2f%%\n",
                ctx, planned / 1048576.0, mem["weights_bytes"].get<double>() / 1048576,
                mem["kv_cache_bytes"].get<double>() / 1048576, mem["working_bytes"].get<double>() / 1048576,
                mem["runtime_bytes"].get<double>() / 1048576, measured / 1048576.0, 100 * err);
    EXPECT_LT(std::fabs(err), 0.05) << "ctx " << ctx;
    // The cache really grew with the context (16 KB of F32 K and V per token on the full layers).
    if (planned_prev) {
      EXPECT_GT(measured, measured_prev + uint64_t(ctx - ctx_prev) * 16384 * 8 / 10) << "ctx " << ctx;
      EXPECT_GT(planned, planned_prev);
    }
    planned_prev = planned;
    measured_prev = measured;
    ctx_prev = ctx;
  }
}

TEST(MemoryPlan, InfoPrintsWeightsCacheAndWorkingMemory) {
  auto r = RunCommand(CliPath() + " info " + Model() + " --ctx 4096 --cache-type-k q8_0 --cache-type-v q4_0");
  ASSERT_EQ(r.status, 0) << r.out;
  for (const char* s : {"weights:", "KV cache:", "at ctx 4096", "K q8_0, V q4_0", "working:", "total:"}) {
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
  }
  const json a = Info("--ctx 4096")["memory"], b = Info("--ctx 8192")["memory"];
  EXPECT_EQ(a["weights_bytes"], b["weights_bytes"]);
  EXPECT_GT(b["kv_cache_bytes"].get<uint64_t>(), a["kv_cache_bytes"].get<uint64_t>());
  EXPECT_EQ(a["total_bytes"].get<uint64_t>(),
            a["weights_bytes"].get<uint64_t>() + a["runtime_bytes"].get<uint64_t>() +
                std::max(a["kv_cache_bytes"].get<uint64_t>() + a["working_bytes"].get<uint64_t>(),
                         a["loading_bytes"].get<uint64_t>()));
}

TEST(MemoryPlan, FitFindsTheLargestContextPerCacheType) {
  // A budget that holds the weights and some thousands of tokens, but not the model's 32K.
  const uint64_t at0 = Info("--ctx 256 -t 2")["memory"]["total_bytes"].get<uint64_t>();
  const uint64_t mem = at0 + (uint64_t{40} << 20);
  auto r = RunCommand(CliPath() + " fit " + Model() + " --mem " + std::to_string(mem) + " -t 2 --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const json j = json::parse(r.out);
  ASSERT_EQ(j["fits"].size(), 4u);
  int64_t prev = 0;
  for (const auto& row : j["fits"]) {  // f16, bf16, q8_0, q4_0: smaller rows hold more tokens
    const int64_t ctx = row["ctx"].get<int64_t>();
    const std::string type = row["cache_type"].get<std::string>();
    EXPECT_GT(ctx, 256) << type;
    EXPECT_LT(ctx, 32768) << type;
    EXPECT_GE(ctx, prev) << type;
    prev = ctx;
    // The largest: it fits and 256 more do not.
    const std::string ct = " -t 2 --cache-type-k " + type + " --cache-type-v " + type;
    EXPECT_LE(Info("--ctx " + std::to_string(ctx) + ct)["memory"]["total_bytes"].get<uint64_t>(), mem) << type;
    EXPECT_GT(Info("--ctx " + std::to_string(ctx + 256) + ct)["memory"]["total_bytes"].get<uint64_t>(), mem) << type;
  }
  EXPECT_EQ(j["fits"][0]["cache_type"], "f16");
  EXPECT_GT(j["fits"][3]["ctx"].get<int64_t>(), 2 * j["fits"][0]["ctx"].get<int64_t>());  // q4_0 vs f16
  // A large budget is capped at the model's maximum; the table says so.
  r = RunCommand(CliPath() + " fit " + Model() + " --mem 64G");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("32768"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(model maximum)"), std::string::npos) << r.out;
  // Bad budgets are named.
  for (const char* bad : {"lots", "16X", "-1G", "0"}) {
    r = RunCommand(CliPath() + " fit " + Model() + " --mem " + bad + " 2>&1");
    EXPECT_NE(r.status, 0) << bad;
    EXPECT_NE(r.out.find("--mem"), std::string::npos) << bad << ": " << r.out;
  }
}

TEST(MemoryPlan, CtxAutoPicksAContextAndSaysSo) {
  auto r = RunCommand(CliPath() + " run -m " + Model() + " --ctx auto -n 1 --temp 0 -t 2 hello 2>&1");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("--ctx auto: "), std::string::npos) << r.out;
  // A margin larger than the machine leaves nothing: a clear error.
  r = RunCommand(CliPath() + " run -m " + Model() + " --ctx auto --ctx-margin 1000T -n 1 hello 2>&1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("--ctx auto: not even 256 tokens fit"), std::string::npos) << r.out;
  r = RunCommand(CliPath() + " run -m " + Model() + " --ctx automatic -n 1 hello 2>&1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("--ctx: 'automatic' is neither a number of tokens"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace g4
