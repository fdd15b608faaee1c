// Tests of the safetensors reader, `convert` and `quantize`.
//  * Round trips through the golden models: each ../shared/golden GGUF is written back as a Hugging
//    Face checkpoint (safetensors written here, config.json, tokenizer.json), converted, and must give
//    the same tensors and, run by the engine, the golden llama.cpp logits.
//  * The vocabulary of the real Gemma tokenizer.json must equal llama.cpp's gemma4-vocab.gguf.
//  * Quantizing the golden F32 model to Q8_0 must give llama-quantize's file, byte for byte.
//  * Malformed checkpoints fail with errors that name the file and the tensor.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "convert/checkpoint.h"
#include "convert/convert.h"
#include "convert/hf_vocab.h"
#include "convert/quantize.h"
#include "convert/safetensors.h"
#include "formats/gguf.h"
#include "kernels/kernels.h"
#include "model/context.h"
#include "testutil.h"
#include "util/error.h"
#include "util/fp16.h"

namespace g4::convert {
namespace {

using nlohmann::json;
using testing::SharedPath;
using testing::TempDir;

// ---- A small safetensors writer (the format is simple enough to write by hand) ----

struct StEntry {
  std::string name;
  std::string dtype;  // "F32" or "BF16"
  std::vector<int64_t> shape;
  std::string bytes;
};

std::string SafetensorsImage(const std::vector<StEntry>& ts, json extra = json::object()) {
  json h = json::object();
  uint64_t off = 0;
  for (const auto& t : ts) {
    h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + t.bytes.size()}}};
    off += t.bytes.size();
  }
  for (auto it = extra.begin(); it != extra.end(); ++it) h[it.key()] = it.value();
  std::string hs = h.dump();
  while (hs.size() % 8) hs += ' ';
  std::string out(8, '\0');
  const uint64_t n = hs.size();
  std::memcpy(out.data(), &n, 8);
  out += hs;
  for (const auto& t : ts) out += t.bytes;
  return out;
}

StEntry F32Entry(const std::string& name, std::vector<int64_t> shape, const float* data, int64_t n, float add = 0) {
  StEntry e{name, "F32", std::move(shape), std::string(static_cast<size_t>(n) * 4, '\0')};
  for (int64_t i = 0; i < n; ++i) {
    const float v = data[i] + add;
    std::memcpy(e.bytes.data() + 4 * i, &v, 4);
  }
  return e;
}

void WriteFile(const std::string& path, const std::string& bytes) { testing::WriteBytes(path, bytes); }

// ---- GGUF -> Hugging Face checkpoint (the inverse of the converter's mapping) ----

// tokenizer.json whose conversion gives back the GGUF's tokens, types and merges.
json TokenizerJsonFromGguf(const gguf::File& f) {
  const auto& toks = f.GetStringArray("tokenizer.ggml.tokens");
  const auto types = f.GetIntArray("tokenizer.ggml.token_type");
  json vocab = json::object(), added = json::array(), merges = json::array();
  for (size_t i = 0; i < toks.size(); ++i) {
    const std::string s(toks[i]);
    vocab[s] = i;
    if (types[i] == 3 || types[i] == 4) {
      added.push_back({{"id", i}, {"content", s}, {"special", types[i] == 3}, {"normalized", false}});
    }
  }
  if (f.Has("tokenizer.ggml.merges")) {
    for (auto m : f.GetStringArray("tokenizer.ggml.merges")) {
      const size_t sp = m.find(' ');
      merges.push_back({std::string(m.substr(0, sp)), std::string(m.substr(sp + 1))});
    }
  }
  return {{"version", "1.0"}, {"added_tokens", added},
          {"model", {{"type", "BPE"}, {"unk_token", "<unk>"}, {"byte_fallback", true}, {"vocab", vocab}, {"merges", merges}}}};
}

std::string HfName(const std::string& gguf_name, const std::string& pre) {
  static const std::map<std::string, std::string> kTop = {
      {"token_embd.weight", "embed_tokens.weight"}, {"output_norm.weight", "norm.weight"}};
  static const std::map<std::string, std::string> kBlk = {
      {"attn_norm.weight", "input_layernorm.weight"}, {"attn_q.weight", "self_attn.q_proj.weight"},
      {"attn_k.weight", "self_attn.k_proj.weight"}, {"attn_v.weight", "self_attn.v_proj.weight"},
      {"attn_output.weight", "self_attn.o_proj.weight"}, {"attn_q_norm.weight", "self_attn.q_norm.weight"},
      {"attn_k_norm.weight", "self_attn.k_norm.weight"}, {"post_attention_norm.weight", "post_attention_layernorm.weight"},
      {"ffn_norm.weight", "pre_feedforward_layernorm.weight"}, {"ffn_gate.weight", "mlp.gate_proj.weight"},
      {"ffn_up.weight", "mlp.up_proj.weight"}, {"ffn_down.weight", "mlp.down_proj.weight"},
      {"post_ffw_norm.weight", "post_feedforward_layernorm.weight"}, {"layer_output_scale.weight", "layer_scalar"}};
  if (gguf_name == "nextn.pre_projection.weight") return "pre_projection.weight";
  if (gguf_name == "nextn.post_projection.weight") return "post_projection.weight";
  if (kTop.count(gguf_name)) return pre + kTop.at(gguf_name);
  const size_t dot = gguf_name.find('.', 4);
  return pre + "layers." + gguf_name.substr(4, dot - 4) + "." + kBlk.at(gguf_name.substr(dot + 1));
}

// Writes DIR as the checkpoint a model like `f` would come in; returns DIR.
std::string CheckpointFromGguf(const gguf::File& f, const std::string& dir, int n_shards) {
  const std::string arch = f.GetString("general.architecture");
  const std::string a = arch + ".";
  const bool g3 = arch == "gemma3", asst = arch == "gemma4-assistant";
  const int n_layer = static_cast<int>(f.GetUInt(a + "block_count"));
  json tc = {{"hidden_size", f.GetUInt(a + "embedding_length")}, {"num_hidden_layers", n_layer},
             {"intermediate_size", f.GetUInt(a + "feed_forward_length")},
             {"num_attention_heads", f.GetUInt(a + "attention.head_count")},
             {"rms_norm_eps", f.GetFloat(a + "attention.layer_norm_rms_epsilon")},
             {"sliding_window", f.GetUInt(a + "attention.sliding_window")},
             {"max_position_embeddings", f.GetUInt(a + "context_length")},
             {"vocab_size", f.GetStringArray("tokenizer.ggml.tokens").size()}};
  const auto kv = f.GetIntPerLayer(a + "attention.head_count_kv", n_layer);
  std::vector<std::string> types;
  if (g3) {
    tc["num_key_value_heads"] = kv[0];
    tc["head_dim"] = f.GetUInt(a + "attention.key_length");
    tc["rope_theta"] = f.GetFloat(a + "rope.freq_base");
    tc["rope_local_base_freq"] = 10000.0;
    tc["rope_scaling"] = {{"rope_type", "linear"}, {"factor", f.GetFloat(a + "rope.scaling.factor")}};
    tc["sliding_window_pattern"] = 6;
  } else {
    const auto swa = f.GetBoolArray(a + "attention.sliding_window_pattern");
    int kv_swa = 0, kv_full = 0;
    for (int i = 0; i < n_layer; ++i) {
      types.push_back(swa[i] ? "sliding_attention" : "full_attention");
      (swa[i] ? kv_swa : kv_full) = static_cast<int>(kv[i]);
    }
    tc["layer_types"] = types;
    tc["num_key_value_heads"] = kv_swa;
    tc["num_global_key_value_heads"] = kv_full;
    tc["head_dim"] = f.GetUInt(a + "attention.key_length_swa");
    tc["global_head_dim"] = f.GetUInt(a + "attention.key_length");
    tc["attention_k_eq_v"] = !asst && f.FindTensor("blk.5.attn_v.weight") == nullptr;
    tc["num_kv_shared_layers"] = f.GetUInt(a + "attention.shared_kv_layers");
    tc["hidden_size_per_layer_input"] = 0;
    const auto rf = f.FindTensor("rope_freqs.weight");
    int r = 0;
    for (int64_t i = 0; i < rf->ne[0]; ++i) r += reinterpret_cast<const float*>(rf->data)[i] == 1.0f;
    tc["rope_parameters"] = {
        {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", f.GetFloat(a + "rope.freq_base_swa")}}},
        {"full_attention", {{"rope_type", "proportional"}, {"rope_theta", f.GetFloat(a + "rope.freq_base")},
                            {"partial_rotary_factor", 2.0 * r / static_cast<double>(f.GetUInt(a + "attention.key_length"))}}}};
    if (!asst) tc["final_logit_softcapping"] = f.GetFloat(a + "final_logit_softcapping");
  }
  json cfg;
  std::string pre = "model.";
  if (asst) {
    cfg = {{"architectures", {"Gemma4AssistantForCausalLM"}}, {"text_config", tc},
           {"backbone_hidden_size", f.GetUInt(a + "embedding_length_out")}};
  } else if (g3) {
    cfg = tc;
    cfg["architectures"] = {"Gemma3ForCausalLM"};
  } else {
    cfg = {{"architectures", {"Gemma4ForConditionalGeneration"}}, {"text_config", tc}};
    pre = "model.language_model.";
  }
  testing::RunCommand("mkdir -p '" + dir + "'");
  WriteFile(dir + "/config.json", cfg.dump(1));
  WriteFile(dir + "/tokenizer.json", TokenizerJsonFromGguf(f).dump());
  json tok_cfg = {{"bos_token", "<bos>"}, {"eos_token", "<eos>"}};
  if (f.Has("tokenizer.ggml.add_eos_token")) tok_cfg["add_eos_token"] = f.GetBool("tokenizer.ggml.add_eos_token");
  WriteFile(dir + "/tokenizer_config.json", tok_cfg.dump());
  // Tensors, spread over n_shards files with an index when n_shards > 1.
  std::vector<std::vector<StEntry>> shards(static_cast<size_t>(n_shards));
  size_t k = 0;
  for (const auto& t : f.tensors()) {
    if (t.name == "rope_freqs.weight") continue;
    std::vector<int64_t> shape(t.ne, t.ne + t.n_dims);
    std::reverse(shape.begin(), shape.end());
    const bool norm = t.name.size() > 11 && t.name.compare(t.name.size() - 11, 11, "norm.weight") == 0;
    shards[k++ % shards.size()].push_back(F32Entry(HfName(t.name, pre), shape, reinterpret_cast<const float*>(t.data),
                                                   t.Elements(), g3 && norm ? -1.0f : 0.0f));
  }
  if (n_shards == 1) {
    WriteFile(dir + "/model.safetensors", SafetensorsImage(shards[0]));
  } else {
    json index = {{"metadata", json::object()}, {"weight_map", json::object()}};
    for (int s = 0; s < n_shards; ++s) {
      char name[64];
      std::snprintf(name, sizeof(name), "model-%05d-of-%05d.safetensors", s + 1, n_shards);
      WriteFile(dir + "/" + name, SafetensorsImage(shards[s]));
      for (const auto& e : shards[s]) index["weight_map"][e.name] = name;
    }
    WriteFile(dir + "/model.safetensors.index.json", index.dump(1));
  }
  return dir;
}

void ExpectSameModel(const gguf::File& want, const gguf::File& got, float tol) {
  ASSERT_EQ(want.tensors().size(), got.tensors().size());
  for (const auto& t : want.tensors()) {
    const gguf::TensorInfo* g = got.FindTensor(t.name);
    ASSERT_NE(g, nullptr) << t.name;
    ASSERT_EQ(g->type, GgmlType::F32) << t.name;
    ASSERT_EQ(std::vector<int64_t>(g->ne, g->ne + 4), std::vector<int64_t>(t.ne, t.ne + 4)) << t.name;
    const float* a = reinterpret_cast<const float*>(t.data);
    const float* b = reinterpret_cast<const float*>(g->data);
    for (int64_t i = 0; i < t.Elements(); ++i) ASSERT_NEAR(a[i], b[i], tol) << t.name << "[" << i << "]";
  }
  for (const auto& kv : want.kvs()) {
    if (kv.key.rfind("tokenizer.ggml.scores", 0) == 0 || kv.key == "general.name") continue;
    const gguf::Value* v = got.Find(kv.key);
    ASSERT_NE(v, nullptr) << "missing key " << kv.key;
    if (kv.value.type == gguf::ValueType::ARRAY) {
      EXPECT_EQ(v->count, kv.value.count) << kv.key;
      if (kv.value.elem_type == gguf::ValueType::STRING) {
        EXPECT_EQ(v->strs, kv.value.strs) << kv.key;
      }
    } else if (kv.value.type == gguf::ValueType::STRING) {
      EXPECT_EQ(v->str, kv.value.str) << kv.key;
    } else {
      EXPECT_NEAR(v->IsInteger() ? double(v->i + v->u) : v->f, kv.value.IsInteger() ? double(kv.value.i + kv.value.u) : kv.value.f,
                  1e-9) << kv.key;
    }
  }
  EXPECT_EQ(got.GetIntArray("tokenizer.ggml.token_type"), want.GetIntArray("tokenizer.ggml.token_type"));
}

// Runs the converted model on a golden case and compares with llama.cpp's exact-GELU logits.
void ExpectGoldenLogits(const std::string& model_path, const std::string& case_json) {
  const json c = json::parse(testing::ReadText(SharedPath(case_json)));
  auto model = Model::Load(model_path);
  ContextOptions o;
  o.math = kernels::Math::kExact;
  o.kv.type_k = o.kv.type_v = GgmlType::F32;
  o.kv.n_ctx = 256;
  o.n_threads = 2;
  Context ctx(*model, o);
  Batch b;
  const auto toks = c["tokens"].get<std::vector<int32_t>>();
  for (size_t i = 0; i < toks.size(); ++i) b.Add(toks[i], 0, static_cast<int64_t>(i), true);
  ctx.Decode(b);
  const std::string dir = case_json.substr(0, case_json.find_last_of('/') + 1);
  const std::vector<float> want = testing::ReadF32(SharedPath(dir + c["logits_exact_gelu"].get<std::string>()));
  const int64_t V = c["n_vocab"].get<int64_t>();
  double max_diff = 0;
  for (size_t i = 0; i < toks.size(); ++i) {
    for (int64_t v = 0; v < V; ++v) max_diff = std::max(max_diff, std::fabs(double(ctx.Logits(int(i))[v]) - want[i * V + v]));
  }
  EXPECT_LT(max_diff, 1e-4) << model_path;
}

struct RoundTrip {
  const char* gguf;
  const char* case_json;
  int shards;
  float tol;
};

class GoldenRoundTrip : public ::testing::TestWithParam<RoundTrip> {};

TEST_P(GoldenRoundTrip, ConvertGivesTheGoldenModelBack) {
  G4_REQUIRE_SHARED();
  const RoundTrip& p = GetParam();
  auto want = gguf::File::Open(SharedPath(p.gguf));
  const std::string dir = CheckpointFromGguf(*want, TempDir() + "/hf", p.shards);
  ConvertOptions o;
  o.type = FileType::F32;
  o.quiet = true;
  const std::string out = TempDir() + "/out.gguf";
  ConvertCheckpointToGguf(dir, out, o);
  auto got = gguf::File::Open(out);
  ExpectSameModel(*want, *got, p.tol);
  if (p.case_json) ExpectGoldenLogits(out, p.case_json);
}

INSTANTIATE_TEST_SUITE_P(
    Golden, GoldenRoundTrip,
    ::testing::Values(RoundTrip{"golden/g4u-tiny/g4u-tiny.f32.gguf", "golden/g4u-tiny/f32.prompt8.json", 1, 0},
                      RoundTrip{"golden/g4u-tiny/g4u-tiny.f32.gguf", nullptr, 3, 0},
                      RoundTrip{"golden/g3-tiny/g3-tiny.f32.gguf", "golden/g3-tiny/f32.prompt8.json", 2, 1e-6f},
                      RoundTrip{"golden/g4u-assistant-tiny/g4u-assistant-tiny.f32.gguf", nullptr, 1, 0}));

TEST(ConvertTest, Bf16CheckpointKeepsItsPrecision) {
  G4_REQUIRE_SHARED();
  auto src = gguf::File::Open(SharedPath("golden/g4u-tiny/g4u-tiny.f32.gguf"));
  const std::string dir = CheckpointFromGguf(*src, TempDir() + "/hf", 1);
  // Rewrite the weights as bf16.
  auto st = SafetensorsFile::Open(dir + "/model.safetensors");
  std::vector<StEntry> es;
  for (const auto& [name, t] : st->tensors()) {
    StEntry e{name, "BF16", t.shape, std::string(static_cast<size_t>(t.Elements()) * 2, '\0')};
    std::vector<float> v(static_cast<size_t>(t.Elements()));
    ReadF32(t, 0, t.Elements(), v.data());
    for (size_t i = 0; i < v.size(); ++i) {
      const uint16_t h = F32ToBf16(v[i]);
      std::memcpy(e.bytes.data() + 2 * i, &h, 2);
    }
    es.push_back(std::move(e));
  }
  st.reset();
  WriteFile(dir + "/model.safetensors", SafetensorsImage(es));
  ConvertOptions o;
  o.quiet = true;
  const std::string out = TempDir() + "/bf16.gguf";
  ConvertCheckpointToGguf(dir, out, o);
  auto got = gguf::File::Open(out);
  EXPECT_EQ(got->GetUInt("general.file_type"), static_cast<uint64_t>(FileType::BF16));
  EXPECT_EQ(got->FindTensor("blk.0.attn_q.weight")->type, GgmlType::BF16);
  EXPECT_EQ(got->FindTensor("blk.0.attn_norm.weight")->type, GgmlType::F32);  // 1-D stays f32
  EXPECT_EQ(got->FindTensor("blk.5.attn_v.weight"), nullptr);                 // K = V layer
  const auto* q = got->FindTensor("blk.0.attn_q.weight");
  const auto* q0 = src->FindTensor("blk.0.attn_q.weight");
  for (int64_t i = 0; i < q->Elements(); ++i) {
    uint16_t h;
    std::memcpy(&h, q->data + 2 * i, 2);
    ASSERT_EQ(h, F32ToBf16(reinterpret_cast<const float*>(q0->data)[i]));
  }
}

TEST(VocabTest, RealGemmaTokenizerGivesLlamaCppVocabulary) {
  G4_REQUIRE_SHARED();
  const std::string tmp = TempDir() + "/tok.json";
  ASSERT_EQ(testing::RunCommand("gzip -dc '" + SharedPath("tokenizer/gemma3-tokenizer.json.gz") + "' > '" + tmp + "'").status, 0);
  json t = json::parse(testing::ReadText(tmp));
  // The Gemma 4 tokenizer is the Gemma 3 one with the chat tokens renamed and made special
  // (../shared/tokenizer/README.md).
  const std::map<int, std::string> renamed = {
      {46, "<|tool>"},      {47, "<tool|>"},       {48, "<|tool_call>"}, {49, "<tool_call|>"},
      {50, "<|tool_response>"}, {51, "<tool_response|>"}, {52, "<|\"|>"}, {98, "<|think|>"},
      {100, "<|channel>"},  {101, "<channel|>"},   {105, "<|turn>"},     {106, "<turn|>"},
      {255999, "<|image>"}, {256000, "<|audio>"},  {258880, "<|image|>"}, {258881, "<|audio|>"},
      {258882, "<image|>"}, {258883, "<audio|>"},  {258884, "<|video|>"}};
  json vocab = json::object();
  for (auto it = t["model"]["vocab"].begin(); it != t["model"]["vocab"].end(); ++it) {
    const int id = it.value().get<int>();
    if (id >= 262144) continue;
    vocab[renamed.count(id) ? renamed.at(id) : it.key()] = id;
  }
  t["model"]["vocab"] = vocab;
  json added = json::array();
  for (auto a : t["added_tokens"]) {
    const int id = a["id"].get<int>();
    if (id >= 262144) continue;
    if (renamed.count(id)) {
      a["content"] = renamed.at(id);
      a["special"] = true;
    }
    added.push_back(a);
  }
  t["added_tokens"] = added;
  const GgufVocab v = VocabFromTokenizerJson(t, nullptr, "gemma4 tokenizer.json");
  auto ref = gguf::File::Open(SharedPath("tokenizer/gemma4-vocab.gguf"));
  const auto& toks = ref->GetStringArray("tokenizer.ggml.tokens");
  ASSERT_EQ(v.tokens.size(), toks.size());
  for (size_t i = 0; i < toks.size(); ++i) ASSERT_EQ(v.tokens[i], toks[i]) << i;
  const auto types = ref->GetIntArray("tokenizer.ggml.token_type");
  const auto scores = ref->GetFloatArray("tokenizer.ggml.scores");
  for (size_t i = 0; i < toks.size(); ++i) {
    ASSERT_EQ(v.types[i], types[i]) << i << " " << toks[i];
    ASSERT_EQ(v.scores[i], scores[i]) << i << " " << toks[i];
  }
  const auto& merges = ref->GetStringArray("tokenizer.ggml.merges");
  ASSERT_EQ(v.merges.size(), merges.size());
  for (size_t i = 0; i < merges.size(); ++i) ASSERT_EQ(v.merges[i], merges[i]) << i;
  EXPECT_EQ(v.bos, 2);
  EXPECT_EQ(v.eos, 1);
  EXPECT_EQ(v.pad, 0);
  EXPECT_EQ(v.unk, 3);
}

TEST(QuantizeTest, Q8_0MatchesLlamaQuantize) {
  G4_REQUIRE_SHARED();
  const std::string out = TempDir() + "/q8.gguf";
  QuantizeGguf(SharedPath("golden/g4u-tiny/g4u-tiny.f32.gguf"), out, FileType::Q8_0, 2, true);
  auto got = gguf::File::Open(out);
  auto want = gguf::File::Open(SharedPath("golden/g4u-tiny/g4u-tiny.q8_0.gguf"));
  EXPECT_EQ(got->GetUInt("general.file_type"), 7u);
  ASSERT_EQ(got->tensors().size(), want->tensors().size());
  for (const auto& t : want->tensors()) {
    const auto* g = got->FindTensor(t.name);
    ASSERT_NE(g, nullptr) << t.name;
    EXPECT_EQ(g->type, t.type) << t.name;
    ASSERT_EQ(g->nbytes, t.nbytes) << t.name;
    EXPECT_EQ(std::memcmp(g->data, t.data, t.nbytes), 0) << t.name;
  }
  EXPECT_EQ(got->GetStringArray("tokenizer.ggml.tokens"), want->GetStringArray("tokenizer.ggml.tokens"));
}

TEST(QuantizeTest, KQuantMixesRunAndKeepNormsF32) {
  G4_REQUIRE_SHARED();
  for (FileType ft : {FileType::Q4_K_M, FileType::Q5_K_M, FileType::Q6_K, FileType::Q4_0}) {
    const std::string out = TempDir() + "/q.gguf";
    QuantizeGguf(SharedPath("golden/g4u-tiny/g4u-tiny.f32.gguf"), out, ft, 2, true);
    auto got = gguf::File::Open(out);
    EXPECT_EQ(got->GetUInt("general.file_type"), static_cast<uint64_t>(ft));
    EXPECT_EQ(got->FindTensor("blk.0.attn_norm.weight")->type, GgmlType::F32);
    EXPECT_NE(got->FindTensor("blk.0.ffn_up.weight")->type, GgmlType::F32) << FileTypeName(ft);
    auto model = Model::Load(out);  // binds every tensor
    ContextOptions o;
    o.kv.n_ctx = 16;
    o.n_threads = 2;
    Context ctx(*model, o);
    Batch b;
    for (int i = 0; i < 4; ++i) b.Add(10 + i, 0, i, i == 3);
    ctx.Decode(b);
    for (int64_t v = 0; v < model->config().n_vocab; ++v) ASSERT_TRUE(std::isfinite(ctx.Logits(0)[v]));
  }
}

// The golden mmproj written back as the unified 12B's embedder tensors (undoing llama.cpp's CHW
// permutation and table transpose) must convert to the same file.
TEST(ConvertTest, MultimodalEmbedderGivesTheGoldenMmproj) {
  G4_REQUIRE_SHARED();
  auto text = gguf::File::Open(SharedPath("golden/g4u-tiny/g4u-tiny.f32.gguf"));
  auto mm = gguf::File::Open(SharedPath("golden/multimodal/mmproj-g4u-mm-tiny.f32.gguf"));
  const int64_t D = mm->GetUInt("clip.vision.projection_dim");
  ASSERT_EQ(D, static_cast<int64_t>(text->GetUInt("gemma4.embedding_length")));
  const std::string dir = CheckpointFromGguf(*text, TempDir() + "/hf", 1);
  auto data = [&](const char* n) { return reinterpret_cast<const float*>(mm->FindTensor(n)->data); };
  auto hwc = [](const float* chw, int64_t rows) {
    std::vector<float> out(static_cast<size_t>(rows * 6912));
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t i = 0; i < 6912; ++i) {
        const int64_t c = i / 2304, y = (i / 48) % 48, x = i % 48;
        out[r * 6912 + y * 144 + x * 3 + c] = chw[r * 6912 + i];
      }
    }
    return out;
  };
  std::vector<float> pos(static_cast<size_t>(1120 * 2 * D));
  for (int64_t t = 0; t < 2; ++t) {
    for (int64_t p = 0; p < 1120; ++p) {
      std::memcpy(&pos[(p * 2 + t) * D], data("v.position_embd.weight") + (t * 1120 + p) * D, D * 4);
    }
  }
  const auto ln1w = hwc(data("v.patch_norm.1.weight"), 1), ln1b = hwc(data("v.patch_norm.1.bias"), 1);
  const auto dense = hwc(data("v.patch_embd.weight"), D);
  std::vector<StEntry> es = {
      F32Entry("model.vision_embedder.patch_ln1.weight", {6912}, ln1w.data(), 6912),
      F32Entry("model.vision_embedder.patch_ln1.bias", {6912}, ln1b.data(), 6912),
      F32Entry("model.vision_embedder.patch_dense.weight", {D, 6912}, dense.data(), D * 6912),
      F32Entry("model.vision_embedder.patch_dense.bias", {D}, data("v.patch_embd.bias"), D),
      F32Entry("model.vision_embedder.patch_ln2.weight", {D}, data("v.patch_norm.2.weight"), D),
      F32Entry("model.vision_embedder.patch_ln2.bias", {D}, data("v.patch_norm.2.bias"), D),
      F32Entry("model.vision_embedder.pos_embedding", {1120, 2, D}, pos.data(), 1120 * 2 * D),
      F32Entry("model.vision_embedder.pos_norm.weight", {D}, data("v.patch_norm.3.weight"), D),
      F32Entry("model.vision_embedder.pos_norm.bias", {D}, data("v.patch_norm.3.bias"), D),
      F32Entry("model.embed_vision.embedding_projection.weight", {D, D}, data("mm.input_projection.weight"), D * D),
      F32Entry("model.embed_audio.embedding_projection.weight", {D, 640}, data("mm.a.input_projection.weight"), D * 640)};
  WriteFile(dir + "/model-mm.safetensors", SafetensorsImage(es));
  json idx = {{"weight_map", json::object()}};
  auto text_st = SafetensorsFile::Open(dir + "/model.safetensors");
  for (const auto& [name, t] : text_st->tensors()) idx["weight_map"][name] = "model.safetensors";
  for (const auto& e : es) idx["weight_map"][e.name] = "model-mm.safetensors";
  WriteFile(dir + "/model.safetensors.index.json", idx.dump());
  json cfg = json::parse(testing::ReadText(dir + "/config.json"));
  cfg["architectures"] = {"Gemma4UnifiedForConditionalGeneration"};
  WriteFile(dir + "/config.json", cfg.dump());
  ConvertOptions o;
  o.type = FileType::F32;
  o.quiet = true;
  const std::string out_dir = TempDir();
  o.mmproj_out = out_dir + "/mmproj.gguf";
  ConvertCheckpointToGguf(dir, out_dir + "/text.gguf", o);
  auto got = gguf::File::Open(o.mmproj_out);
  ASSERT_EQ(got->tensors().size(), mm->tensors().size());
  for (const auto& t : mm->tensors()) {
    const auto* g = got->FindTensor(t.name);
    ASSERT_NE(g, nullptr) << t.name;
    EXPECT_EQ(std::vector<int64_t>(g->ne, g->ne + 4), std::vector<int64_t>(t.ne, t.ne + 4)) << t.name;
    ASSERT_EQ(g->nbytes, t.nbytes) << t.name;
    EXPECT_EQ(std::memcmp(g->data, t.data, t.nbytes), 0) << t.name;
  }
  for (const auto& kv : mm->kvs()) {
    if (kv.key == "general.name") continue;
    EXPECT_TRUE(got->Has(kv.key)) << kv.key;
  }
  // The text model of the same checkpoint is the plain one.
  EXPECT_EQ(gguf::File::Open(out_dir + "/text.gguf")->tensors().size(), text->tensors().size());
}

// ---- Malformed input ----

std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(SafetensorsTest, ValidatesTheHeader) {
  const float data[4] = {1, 2, 3, 4};
  const std::string good = SafetensorsImage({F32Entry("w", {2, 2}, data, 4)});
  auto f = SafetensorsFile::Parse(reinterpret_cast<const uint8_t*>(good.data()), good.size(), "good.safetensors");
  ASSERT_NE(f->Find("w"), nullptr);
  float back[4];
  ReadF32(*f->Find("w"), 0, 4, back);
  EXPECT_EQ(back[3], 4.0f);

  auto parse = [](const std::string& img) {
    return ErrorOf([&] { SafetensorsFile::Parse(reinterpret_cast<const uint8_t*>(img.data()), img.size(), "bad.safetensors"); });
  };
  std::string lying = good;
  const uint64_t huge = 1ull << 40;
  std::memcpy(lying.data(), &huge, 8);
  EXPECT_NE(parse(lying).find("header length"), std::string::npos) << parse(lying);
  EXPECT_NE(parse("abc").find("bad.safetensors"), std::string::npos);
  // Offsets past the data section.
  StEntry e = F32Entry("w", {2, 2}, data, 4);
  std::string img = SafetensorsImage({e});
  img.resize(img.size() - 4);
  EXPECT_NE(parse(img).find("'w'"), std::string::npos) << parse(img);
  EXPECT_NE(parse(img).find("outside the data section"), std::string::npos) << parse(img);
  // A shape that does not match the byte range.
  e.shape = {3, 2};
  img = SafetensorsImage({e});
  EXPECT_NE(parse(img).find("needs 24 bytes but data_offsets give 16"), std::string::npos) << parse(img);
  // Overlapping tensors.
  img = SafetensorsImage({F32Entry("a", {4}, data, 4)},
                         {{"b", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {8, 16}}}}});
  EXPECT_NE(parse(img).find("overlap"), std::string::npos) << parse(img);
  // Unknown dtype, and a shape that overflows.
  img = SafetensorsImage({}, {{"c", {{"dtype", "Q4"}, {"shape", {1}}, {"data_offsets", {0, 1}}}}});
  EXPECT_NE(parse(img).find("unknown dtype"), std::string::npos) << parse(img);
  img = SafetensorsImage({}, {{"c", {{"dtype", "F32"}, {"shape", {1ull << 40, 1ull << 40}}, {"data_offsets", {0, 4}}}}});
  EXPECT_NE(parse(img).find("too large"), std::string::npos) << parse(img);
}

class MalformedCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::SharedDir()) GTEST_SKIP() << "shared reference data not found";
    src_ = gguf::File::Open(SharedPath("golden/g4u-tiny/g4u-tiny.f32.gguf"));
    dir_ = CheckpointFromGguf(*src_, TempDir() + "/hf", 2);
  }
  std::string Convert() {
    return ErrorOf([&] {
      ConvertOptions o;
      o.quiet = true;
      ConvertCheckpointToGguf(dir_, TempDir() + "/x.gguf", o);
    });
  }
  std::unique_ptr<gguf::File> src_;
  std::string dir_;
};

TEST_F(MalformedCheckpoint, MissingShard) {
  std::remove((dir_ + "/model-00002-of-00002.safetensors").c_str());
  const std::string e = Convert();
  EXPECT_NE(e.find("model-00002-of-00002.safetensors: missing shard"), std::string::npos) << e;
}

TEST_F(MalformedCheckpoint, HeaderThatLies) {
  std::string img = testing::ReadText(dir_ + "/model-00001-of-00002.safetensors");
  img.resize(img.size() - 100);  // the last tensor's bytes are gone
  WriteFile(dir_ + "/model-00001-of-00002.safetensors", img);
  const std::string e = Convert();
  EXPECT_NE(e.find("model-00001-of-00002.safetensors: tensor '"), std::string::npos) << e;
  EXPECT_NE(e.find("outside the data section"), std::string::npos) << e;
}

TEST_F(MalformedCheckpoint, TensorOfTheWrongShape) {
  json cfg = json::parse(testing::ReadText(dir_ + "/config.json"));
  cfg["text_config"]["intermediate_size"] = 512;
  WriteFile(dir_ + "/config.json", cfg.dump());
  const std::string e = Convert();
  EXPECT_NE(e.find("tensor 'model.language_model.layers.0.mlp.gate_proj.weight' has shape [256, 256], expected [512, 256]"),
            std::string::npos) << e;
}

TEST_F(MalformedCheckpoint, UnknownArchitecture) {
  json cfg = json::parse(testing::ReadText(dir_ + "/config.json"));
  cfg["architectures"] = {"LlamaForCausalLM"};
  WriteFile(dir_ + "/config.json", cfg.dump());
  const std::string e = Convert();
  EXPECT_NE(e.find("config.json: unknown architecture 'LlamaForCausalLM'"), std::string::npos) << e;
}

TEST_F(MalformedCheckpoint, IndexNamesATensorTheShardLacks) {
  json idx = json::parse(testing::ReadText(dir_ + "/model.safetensors.index.json"));
  idx["weight_map"]["model.language_model.layers.0.extra.weight"] = "model-00001-of-00002.safetensors";
  WriteFile(dir_ + "/model.safetensors.index.json", idx.dump());
  const std::string e = Convert();
  EXPECT_NE(e.find("'model.language_model.layers.0.extra.weight'"), std::string::npos) << e;
  EXPECT_NE(e.find("not there"), std::string::npos) << e;
}

TEST_F(MalformedCheckpoint, MissingAndUnknownTensors) {
  json cfg = json::parse(testing::ReadText(dir_ + "/config.json"));
  cfg["text_config"]["num_hidden_layers"] = 13;
  cfg["text_config"]["layer_types"].push_back("sliding_attention");
  WriteFile(dir_ + "/config.json", cfg.dump());
  std::string e = Convert();
  EXPECT_NE(e.find("missing tensor 'model.language_model.layers.12.input_layernorm.weight'"), std::string::npos) << e;
  cfg["text_config"]["num_hidden_layers"] = 11;
  cfg["text_config"]["layer_types"] = json::array();
  for (int i = 0; i < 11; ++i) cfg["text_config"]["layer_types"].push_back((i + 1) % 6 ? "sliding_attention" : "full_attention");
  WriteFile(dir_ + "/config.json", cfg.dump());
  e = Convert();
  EXPECT_NE(e.find("tensor 'model.language_model.layers.11."), std::string::npos) << e;
  EXPECT_NE(e.find("is not part of the gemma4 layout"), std::string::npos) << e;
}

}  // namespace
}  // namespace g4::convert
