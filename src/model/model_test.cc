// Loading: the embedding rows the forward pass reads after the file's pages are released, and that
// no page of the file stays in the process once the weights are packed (a fault on the mapping
// makes a whole read-ahead window resident, tens of MB on some machines).
#include "model/model.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "model/context.h"
#include "model/synthetic.h"
#include "testutil.h"
#include "util/error.h"

namespace g4 {
namespace {

std::string Create(const std::string& preset, FileType type) {
  const std::string path = g4::testing::TempDir() + "/model_test_" + preset + ".gguf";
  CreateOptions o;
  o.preset = preset;
  o.type = type;
  o.n_threads = 2;
  CreateSyntheticModel(o, path);
  return path;
}

// Resident kB of this process's mappings of `path` (/proc/self/smaps).
int64_t ResidentKbOf(const std::string& path) {
  std::ifstream in("/proc/self/smaps");
  std::string line;
  bool ours = false;
  int64_t kb = 0;
  while (std::getline(in, line)) {
    if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) && line.find('-') < line.find(' ')) {
      ours = line.size() >= path.size() && line.compare(line.size() - path.size(), path.size(), path) == 0;
    } else if (ours && line.rfind("Rss:", 0) == 0) {
      std::istringstream f(line.substr(4));
      int64_t v = 0;
      f >> v;
      kb += v;
    }
  }
  return kb;
}

TEST(Model, EmbeddingRowsAreTheFileRows) {
  // Q8_0: the tied head (= token_embd) is packed and serves the rows; the E2B preset's per-layer
  // table is read from the file with pread. Both must give the file's values exactly.
  const std::string path = Create("tiny-e2b", FileType::Q8_0);
  const auto model = Model::Load(path, /*pack=*/true);
  const ModelWeights& w = model->weights();
  ASSERT_NE(w.token_embd.packed, nullptr);
  ASSERT_NE(w.ple_token_embd.data, nullptr);
  ASSERT_EQ(w.ple_token_embd.packed, nullptr);
  for (const kernels::Matrix* t : {&w.token_embd, &w.ple_token_embd}) {
    std::vector<float> got(static_cast<size_t>(t->cols)), want(got.size());
    for (int32_t id : {0, 1, 15, 16, 17, static_cast<int32_t>(t->rows) - 1}) {
      model->EmbeddingRow(*t, id, got.data());
      kernels::DequantizeRow(t->type, t->row(id), want.data(), t->cols);  // through the mapping
      ASSERT_EQ(got, want) << "row " << id << " of a " << t->cols << "-column table";
    }
    std::vector<float> out(static_cast<size_t>(t->cols));
    for (int32_t bad : {-1, static_cast<int32_t>(t->rows)}) {
      try {
        model->EmbeddingRow(*t, bad, out.data());
        FAIL() << "expected an error for row " << bad;
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("embedding row " + std::to_string(bad)), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      }
    }
  }
}

TEST(Model, NoPageOfThePackedFileStaysResident) {
  for (const char* preset : {"tiny", "tiny-e2b"}) {
    const std::string path = Create(preset, FileType::Q4_K_M);
    const auto model = Model::Load(path, /*pack=*/true);
    ContextOptions o;
    o.kv.n_ctx = 256;
    o.n_threads = 2;
    Context ctx(*model, o);
    std::mt19937 rng(7);
    Batch b;
    for (int i = 0; i < 100; ++i) b.Add(static_cast<int32_t>(rng() % model->config().n_vocab), 0, i, i == 99);
    ctx.Decode(b);
    EXPECT_EQ(ResidentKbOf(path), 0) << preset << ": pages of " << path << " are mapped into the process";
  }
}

}  // namespace
}  // namespace g4
