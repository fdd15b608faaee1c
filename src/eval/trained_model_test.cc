// Tests of the committed default model (models/, trained by tools/train) and its assistant:
//  * the engine's logits on a few prompts equal the PyTorch logits recorded at export, and its
//    tokenizer gives the token ids the recipe's tokenizer gave;
//  * `gemma4 perplexity`'s computation on the held-out prose equals the recipe's within 1%;
//  * on held-out tool questions the model writes a well-formed call of a declared tool, with the
//    right tool and arguments at least 90% of the time, read by the engine's own output parser;
//  * the assistant GGUF has the layout of llama.cpp's gemma4-assistant files (../shared/golden).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "chat/output_parser.h"
#include "engine/generator.h"
#include "eval/perplexity.h"
#include "model/context.h"
#include "testutil.h"
#include "tokenizer/tokenizer.h"

namespace g4 {
namespace {

using nlohmann::json;

const std::string kModels = std::string(GEMMA4_SOURCE_DIR) + "/models/";
const std::string kFixtures = kModels + "fixtures/";

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Loaded {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tok;
  std::unique_ptr<Context> ctx;
};

Loaded Load(const std::string& file, kernels::Math math, int64_t n_ctx) {
  Loaded l;
  l.model = Model::Load(kModels + file);
  l.tok = std::make_unique<Tokenizer>(Tokenizer::FromGguf(l.model->file()));
  ContextOptions o;
  o.math = math;
  o.kv.type_k = o.kv.type_v = GgmlType::F32;
  o.kv.n_ctx = n_ctx;
  o.n_batch = n_ctx;
  o.n_threads = 2;
  l.ctx = std::make_unique<Context>(*l.model, o);
  return l;
}

TEST(TrainedModel, LogitsEqualPyTorch) {
  const json spec = json::parse(Read(kFixtures + "logits.json"));
  Loaded l = Load(spec["model"].get<std::string>(), kernels::Math::kExact, 256);
  const int64_t V = l.model->config().n_vocab;
  for (const auto& c : spec["cases"]) {
    const auto want_ids = c["tokens"].get<std::vector<int32_t>>();
    // The engine's tokenizer reads the converted vocabulary exactly like the recipe's tokenizer.
    EXPECT_EQ(l.tok->Encode(c["text"].get<std::string>(), /*parse_special=*/true), want_ids) << c["text"];
    const std::vector<float> want = testing::ReadF32(kFixtures + c["logits"].get<std::string>());
    ASSERT_EQ(want.size(), want_ids.size() * static_cast<size_t>(V));
    l.ctx->kv().Clear(0);
    Batch b;
    for (size_t i = 0; i < want_ids.size(); ++i) b.Add(want_ids[i], 0, static_cast<int64_t>(i), true);
    l.ctx->Decode(b);
    double max_diff = 0;
    for (size_t i = 0; i < want_ids.size(); ++i) {
      for (int64_t v = 0; v < V; ++v) {
        max_diff = std::max(max_diff, std::fabs(double(l.ctx->Logits(int(i))[v]) - want[i * V + v]));
      }
    }
    // bf16 weights are exact in both; only f32 summation order differs.
    EXPECT_LT(max_diff, 1e-3) << c["text"];
  }
}

TEST(TrainedModel, PerplexityEqualsTheRecipes) {
  const json want = json::parse(Read(kFixtures + "perplexity.json"));
  Loaded l = Load("gemma4-tiny-chat.gguf", kernels::Math::kFast, want["n_ctx"].get<int64_t>());
  const PerplexityResult r = ComputePerplexity(*l.ctx, *l.tok, Read(kFixtures + "heldout_prose.txt"), want["n_ctx"]);
  EXPECT_EQ(r.n_scored, want["tokens"].get<int64_t>());
  EXPECT_NEAR(r.Perplexity(), want["perplexity"].get<double>(), 0.01 * want["perplexity"].get<double>());
}

// Greedy answers to the held-out tool questions, parsed by the engine's own output parser.
struct ToolAnswer {
  json question;
  std::string text;
  chat::ParsedOutput parsed;
};

std::vector<ToolAnswer> AnswerToolQuestions() {
  Loaded l = Load("gemma4-tiny-chat.gguf", kernels::Math::kFast, 512);
  std::ifstream in(kFixtures + "tool_eval.jsonl");
  std::string line;
  std::vector<ToolAnswer> out;
  while (std::getline(in, line)) {
    ToolAnswer a;
    a.question = json::parse(line);
    const std::string prompt = a.question["prompt"];
    l.ctx->kv().Clear(0);
    Generator gen(*l.ctx, *l.tok, 0, /*render_special=*/true);
    SamplingParams greedy;
    greedy.temperature = 0;
    StopCriteria stop;
    stop.max_tokens = 96;
    stop.eog_tokens = EndOfGenerationTokens(*l.tok);
    stop.include_eog_text = true;
    const auto ids = l.tok->Encode(prompt, /*parse_special=*/true);
    a.text = gen.Generate(ids, greedy, stop, [](int32_t, std::string_view) { return true; }).text;
    a.parsed = chat::ParseFull(a.text, chat::ChatFormat::kGemma4,
                               chat::InitialStateForPrompt(prompt, chat::ChatFormat::kGemma4));
    out.push_back(std::move(a));
  }
  return out;
}

// The model answers a tool question with exactly one well-formed call of a declared tool, ending its
// output at <|tool_response>: the chat format, the vocabulary's special tokens and the parser work
// together.
TEST(TrainedModel, AnswersToolQuestionsWithWellFormedCalls) {
  const auto answers = AnswerToolQuestions();
  ASSERT_GE(answers.size(), 30u);
  int well_formed = 0;
  std::string failures;
  for (const auto& a : answers) {
    const std::string prompt = a.question["prompt"];
    const bool ok = a.parsed.tool_calls.size() == 1 && a.parsed.warnings.empty() && a.parsed.stop == "<|tool_response>" &&
                    prompt.find("declaration:" + a.parsed.tool_calls[0].name + "{") != std::string::npos;
    well_formed += ok;
    if (!ok) failures += "\n  " + a.text;
  }
  EXPECT_GE(well_formed * 10, static_cast<int>(answers.size()) * 9) << well_formed << "/" << answers.size() << failures;
  int right = 0;
  for (const auto& a : answers) {
    right += a.parsed.tool_calls.size() == 1 && a.parsed.tool_calls[0].name == a.question["name"] &&
             a.parsed.tool_calls[0].arguments == a.question["arguments"];
  }
  std::printf("tool questions: %d/%zu well-formed calls of a declared tool, %d/%zu with the right tool and arguments\n",
              well_formed, answers.size(), right, answers.size());
}

// The bar of the task: the right tool with the right arguments at least 90% of the time (the
// committed model: see models/README.md).
TEST(TrainedModel, CallsToolsWithTheRightArguments) {
  const auto answers = AnswerToolQuestions();
  int right = 0;
  std::string failures;
  for (const auto& a : answers) {
    const bool ok = a.parsed.tool_calls.size() == 1 && a.parsed.tool_calls[0].name == a.question["name"] &&
                    a.parsed.tool_calls[0].arguments == a.question["arguments"];
    right += ok;
    if (!ok) failures += "\n  want " + a.question["name"].get<std::string>() + a.question["arguments"].dump() + ", got: " + a.text;
  }
  EXPECT_GE(right * 10, static_cast<int>(answers.size()) * 9) << right << "/" << answers.size() << " right" << failures;
}

TEST(TrainedModel, AssistantHasTheLlamaCppLayout) {
  auto a = gguf::File::Open(kModels + "gemma4-tiny-chat-assistant.gguf");
  auto target = gguf::File::Open(kModels + "gemma4-tiny-chat.gguf");
  ModelConfig ac = ReadModelConfig(*a);
  EXPECT_EQ(ac.arch, Arch::kGemma4Assistant);
  EXPECT_EQ(ac.n_embd_backbone, ReadModelConfig(*target).n_embd);
  ModelWeights w = BindWeights(*a, ac);  // every tensor present with its shape
  EXPECT_NE(w.nextn_pre_proj.data, nullptr);
  if (!testing::SharedDir()) GTEST_SKIP() << "shared reference data not found";
  auto golden = gguf::File::Open(testing::SharedPath("golden/g4u-assistant-tiny/g4u-assistant-tiny.f32.gguf"));
  std::set<std::string> got, want;
  for (const auto& t : a->tensors()) got.insert(t.name);
  for (const auto& t : golden->tensors()) want.insert(t.name);
  EXPECT_EQ(got, want);
  std::set<std::string> got_keys, want_keys;
  for (const auto& kv : a->kvs()) got_keys.insert(kv.key);
  for (const auto& kv : golden->kvs()) want_keys.insert(kv.key);
  for (const auto& k : want_keys) {
    if (k == "general.name" || k.rfind("tokenizer.", 0) == 0) continue;
    EXPECT_TRUE(got_keys.count(k)) << "missing key " << k;
  }
}

}  // namespace
}  // namespace g4
