#include "convert/hf_vocab.h"

#include <set>

#include "util/error.h"

namespace g4::convert {

namespace {
constexpr int32_t kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kByte = 6;

bool IsByteToken(const std::string& s) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); };
  return s.size() == 6 && s.compare(0, 3, "<0x") == 0 && hex(s[3]) && hex(s[4]) && s[5] == '>';
}

// tokenizer_config's "bos_token" etc.: a string, or an AddedToken object {"content": ...}.
std::string TokenName(const nlohmann::json& cfg, const char* key) {
  if (!cfg.is_object() || !cfg.contains(key)) return "";
  const auto& v = cfg[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return "";
}
}  // namespace

GgufVocab VocabFromTokenizerJson(const nlohmann::json& t, const nlohmann::json& cfg, const std::string& where) {
  const char* w = where.c_str();
  if (!t.is_object() || !t.contains("model") || !t["model"].is_object()) Fail("%s: no \"model\" object", w);
  const auto& m = t["model"];
  if (!m.contains("type") || m["type"] != "BPE") {
    Fail("%s: model.type is %s; Gemma tokenizers are BPE", w, m.contains("type") ? m["type"].dump().c_str() : "missing");
  }
  if (!m.contains("vocab") || !m["vocab"].is_object()) Fail("%s: model.vocab must be an object", w);
  // Ids come from the vocab and from added_tokens; together they must cover 0..n-1 exactly once.
  std::vector<std::string> tokens;
  std::vector<char> have;
  auto put = [&](const std::string& text, const nlohmann::json& id_json, bool added) {
    if (!id_json.is_number_integer() || id_json.get<int64_t>() < 0 || id_json.get<int64_t>() >= (1 << 24)) {
      Fail("%s: token '%s' has a bad id %s", w, text.c_str(), id_json.dump().c_str());
    }
    const size_t id = id_json.get<size_t>();
    if (id >= tokens.size()) {
      tokens.resize(id + 1);
      have.resize(id + 1, 0);
    }
    if (have[id] && tokens[id] != text) {
      Fail("%s: id %zu is both '%s' and '%s'", w, id, tokens[id].c_str(), text.c_str());
    }
    if (have[id] && !added) Fail("%s: id %zu appears twice in model.vocab", w, id);
    tokens[id] = text;
    have[id] = 1;
  };
  for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it) put(it.key(), it.value(), false);
  std::set<size_t> added_ids, special_ids;
  if (t.contains("added_tokens")) {
    if (!t["added_tokens"].is_array()) Fail("%s: added_tokens must be an array", w);
    for (const auto& a : t["added_tokens"]) {
      if (!a.is_object() || !a.contains("content") || !a["content"].is_string() || !a.contains("id")) {
        Fail("%s: an added_tokens entry needs \"id\" and \"content\"", w);
      }
      put(a["content"].get<std::string>(), a["id"], true);
      const size_t id = a["id"].get<size_t>();
      added_ids.insert(id);
      if (a.value("special", false)) special_ids.insert(id);
    }
  }
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (!have[i]) Fail("%s: no token has id %zu (ids must be 0..%zu without gaps)", w, i, tokens.size() - 1);
  }
  GgufVocab v;
  const std::set<std::string> visible = {"<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>",
                                         "<|tool_response>", "<tool_response|>", "<|\"|>"};
  const std::string unk = m.contains("unk_token") && m["unk_token"].is_string() ? m["unk_token"].get<std::string>() : "<unk>";
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string& s = tokens[i];
    int32_t type = kNormal;
    if (s == unk) {
      type = kUnknown;
    } else if (IsByteToken(s)) {
      type = kByte;
    } else if (added_ids.count(i)) {
      const bool looks_control = s.size() >= 2 && s.front() == '<' && s.back() == '>';
      type = special_ids.count(i) || looks_control ? kControl : kUserDefined;
    }
    if (visible.count(s)) type = kUserDefined;
    v.tokens.push_back(s);
    v.types.push_back(type);
    v.scores.push_back(type == kNormal ? -static_cast<float>(i) : 0.0f);
  }
  if (m.contains("merges")) {
    if (!m["merges"].is_array()) Fail("%s: model.merges must be an array", w);
    v.merges.reserve(m["merges"].size());
    for (const auto& mg : m["merges"]) {
      // Newer files store a pair ["a", "b"], older ones the string "a b".
      if (mg.is_array() && mg.size() == 2 && mg[0].is_string() && mg[1].is_string()) {
        v.merges.push_back(mg[0].get<std::string>() + " " + mg[1].get<std::string>());
      } else if (mg.is_string()) {
        v.merges.push_back(mg.get<std::string>());
      } else {
        Fail("%s: model.merges entry %zu is neither a pair of strings nor a string", w, v.merges.size());
      }
    }
  }
  auto id_of = [&](const std::string& name) -> int32_t {
    for (size_t i = 0; i < v.tokens.size(); ++i) {
      if (v.tokens[i] == name) return static_cast<int32_t>(i);
    }
    return -1;
  };
  auto special = [&](const char* key, const char* fallback) {
    std::string name = TokenName(cfg, key);
    if (name.empty()) name = fallback;
    return id_of(name);
  };
  v.bos = special("bos_token", "<bos>");
  v.eos = special("eos_token", "<eos>");
  v.unk = special("unk_token", "<unk>");
  v.pad = special("pad_token", "<pad>");
  if (cfg.is_object() && cfg.contains("add_eos_token") && cfg["add_eos_token"].is_boolean()) {
    v.add_eos = cfg["add_eos_token"].get<bool>() ? 1 : 0;
  }
  if (cfg.is_object() && cfg.contains("chat_template") && cfg["chat_template"].is_string()) {
    v.chat_template = cfg["chat_template"].get<std::string>();
  }
  return v;
}

void WriteVocab(gguf::Writer& w, const GgufVocab& v) {
  w.SetString("tokenizer.ggml.model", v.model);
  w.SetStringArray("tokenizer.ggml.tokens", v.tokens);
  w.SetFloat32Array("tokenizer.ggml.scores", v.scores);
  w.SetInt32Array("tokenizer.ggml.token_type", v.types);
  w.SetStringArray("tokenizer.ggml.merges", v.merges);
  if (v.bos >= 0) w.SetUInt32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(v.bos));
  if (v.eos >= 0) w.SetUInt32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(v.eos));
  if (v.unk >= 0) w.SetUInt32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(v.unk));
  if (v.pad >= 0) w.SetUInt32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(v.pad));
  w.SetBool("tokenizer.ggml.add_space_prefix", false);
  w.SetBool("tokenizer.ggml.add_bos_token", true);
  if (v.add_eos >= 0) w.SetBool("tokenizer.ggml.add_eos_token", v.add_eos == 1);
  if (!v.chat_template.empty()) w.SetString("tokenizer.chat_template", v.chat_template);
}

}  // namespace g4::convert
