// The C API (include/gemma4.h): thin wrappers that turn exceptions into error codes.
#include "gemma4.h"

#include <climits>
#include <cstring>
#include <memory>
#include <string>

#include "model/context.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

struct gemma4_model {
  std::unique_ptr<g4::Model> model;
  std::unique_ptr<g4::Tokenizer> tok;
};

struct gemma4_context {
  std::unique_ptr<g4::Context> ctx;
};

namespace {
thread_local std::string g_error;

template <typename R, typename F>
R Guard(R on_error, F&& f) {
  try {
    g_error.clear();
    return f();
  } catch (const std::exception& e) {
    g_error = e.what();
  } catch (...) {
    g_error = "unknown error";
  }
  return on_error;
}
}  // namespace

extern "C" {

const char* gemma4_last_error(void) { return g_error.c_str(); }

gemma4_model* gemma4_model_load(const char* path) {
  return Guard<gemma4_model*>(nullptr, [&]() -> gemma4_model* {
    if (!path) throw g4::Error("gemma4_model_load: path is NULL");
    auto m = std::make_unique<gemma4_model>();
    m->model = g4::Model::Load(path);
    m->tok = std::make_unique<g4::Tokenizer>(g4::Tokenizer::FromGguf(m->model->file()));
    return m.release();
  });
}

void gemma4_model_free(gemma4_model* model) { delete model; }

int32_t gemma4_model_n_vocab(const gemma4_model* m) { return m ? static_cast<int32_t>(m->model->config().n_vocab) : -1; }
int32_t gemma4_model_n_embd(const gemma4_model* m) { return m ? static_cast<int32_t>(m->model->config().n_embd) : -1; }
int32_t gemma4_token_lookup(const gemma4_model* m, const char* piece) {
  return m && piece ? m->tok->Lookup(piece) : -1;
}
int32_t gemma4_token_bos(const gemma4_model* m) { return m ? m->tok->bos() : -1; }
int32_t gemma4_token_eos(const gemma4_model* m) { return m ? m->tok->eos() : -1; }

int32_t gemma4_tokenize(const gemma4_model* m, const char* text, size_t len, int parse_special, int add_bos,
                        int32_t* out, int32_t max_tokens) {
  return Guard<int32_t>(INT32_MIN, [&]() -> int32_t {
    if (!m || (!text && len)) throw g4::Error("gemma4_tokenize: NULL argument");
    const auto ids = m->tok->Encode(std::string_view(text ? text : "", len), parse_special != 0, add_bos != 0);
    const auto n = static_cast<int32_t>(ids.size());
    if (n > max_tokens || (!out && n > 0)) return -n;
    std::memcpy(out, ids.data(), ids.size() * sizeof(int32_t));
    return n;
  });
}

int32_t gemma4_token_to_piece(const gemma4_model* m, int32_t id, char* buf, int32_t buf_len) {
  return Guard<int32_t>(INT32_MIN, [&]() -> int32_t {
    if (!m) throw g4::Error("gemma4_token_to_piece: NULL model");
    const std::string_view s = m->tok->TokenBytes(id);
    const auto n = static_cast<int32_t>(s.size());
    if (n > buf_len || (!buf && n > 0)) return -n;
    std::memcpy(buf, s.data(), s.size());
    return n;
  });
}

gemma4_context_params gemma4_context_default_params(void) { return {4096, 1, 512, 0, 0}; }

gemma4_context* gemma4_context_new(const gemma4_model* m, gemma4_context_params p) {
  return Guard<gemma4_context*>(nullptr, [&]() -> gemma4_context* {
    if (!m) throw g4::Error("gemma4_context_new: NULL model");
    if (p.n_ctx <= 0 || p.n_seq <= 0 || p.n_batch <= 0 || p.n_threads < 0) {
      throw g4::Error("gemma4_context_new: n_ctx, n_seq and n_batch must be positive, n_threads >= 0");
    }
    g4::ContextOptions o;
    o.kv.n_ctx = p.n_ctx;
    o.kv.n_seq = p.n_seq;
    o.n_batch = p.n_batch;
    o.n_threads = p.n_threads;
    o.math = p.exact ? g4::kernels::Math::kExact : g4::kernels::Math::kFast;
    o.kv.type_k = o.kv.type_v = p.exact ? g4::GgmlType::F32 : m->model->DefaultCacheType();
    auto c = std::make_unique<gemma4_context>();
    c->ctx = std::make_unique<g4::Context>(*m->model, o);
    return c.release();
  });
}

void gemma4_context_free(gemma4_context* ctx) { delete ctx; }

int gemma4_decode(gemma4_context* c, const int32_t* tokens, const int32_t* seq, const int32_t* pos,
                  const int8_t* want_logits, int32_t n) {
  return Guard<int>(-1, [&]() -> int {
    if (!c || n < 0 || (n > 0 && (!tokens || !seq || !pos || !want_logits))) {
      throw g4::Error("gemma4_decode: NULL argument or negative count");
    }
    g4::Batch b;
    for (int32_t i = 0; i < n; ++i) b.Add(tokens[i], seq[i], pos[i], want_logits[i] != 0);
    c->ctx->Decode(b);
    return 0;
  });
}

const float* gemma4_get_logits(gemma4_context* c, int32_t k) {
  return Guard<const float*>(nullptr, [&]() -> const float* {
    if (!c) throw g4::Error("gemma4_get_logits: NULL context");
    if (k < 0 || k >= c->ctx->n_outputs()) {
      throw g4::Error("gemma4_get_logits: output " + std::to_string(k) + " of " + std::to_string(c->ctx->n_outputs()));
    }
    return c->ctx->Logits(k);
  });
}

int32_t gemma4_seq_length(const gemma4_context* c, int32_t seq) {
  return Guard<int32_t>(-1, [&]() -> int32_t { return static_cast<int32_t>(c->ctx->kv().SeqLen(seq)); });
}

int gemma4_seq_truncate(gemma4_context* c, int32_t seq, int32_t len) {
  return Guard<int>(-1, [&]() -> int {
    c->ctx->kv().Truncate(seq, len);
    return 0;
  });
}

}  // extern "C"
