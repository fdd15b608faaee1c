/* gemma4.cpp public C API.
 *
 * A small, stable surface for embedding the engine in other programs (as whisper.cpp does): load a
 * model, tokenize, run batches of tokens over one or more sequences, read logits, roll a sequence
 * back. Everything else is private C++. All functions are thread-compatible: a model may be shared
 * by contexts on different threads; one context must be used by one thread at a time.
 *
 * Errors: functions return NULL or a negative value and set a thread-local message readable with
 * gemma4_last_error(). Nothing aborts the process on bad input. */
#ifndef GEMMA4_H
#define GEMMA4_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gemma4_model gemma4_model;
typedef struct gemma4_context gemma4_context;

typedef struct gemma4_context_params {
  int32_t n_ctx;      /* positions per sequence (default 4096) */
  int32_t n_seq;      /* sequences that can run in one batch (default 1) */
  int32_t n_batch;    /* tokens per forward step (default 512) */
  int32_t n_threads;  /* 0: one per core */
  int32_t exact;      /* 1: reference numerics (exact dequantization, f32 cache) */
} gemma4_context_params;

/* The message of the last error on this thread ("" if none). */
const char* gemma4_last_error(void);

gemma4_model* gemma4_model_load(const char* path);
void gemma4_model_free(gemma4_model* model);
int32_t gemma4_model_n_vocab(const gemma4_model* model);
int32_t gemma4_model_n_embd(const gemma4_model* model);
/* Token ids by name ("<turn|>", "<eos>"...), -1 if absent. */
int32_t gemma4_token_lookup(const gemma4_model* model, const char* piece);
int32_t gemma4_token_bos(const gemma4_model* model);
int32_t gemma4_token_eos(const gemma4_model* model);

/* Tokenizes UTF-8 text into out (capacity max_tokens). Returns the number of tokens, or -(needed) if
 * out is too small, or INT32_MIN on error. */
int32_t gemma4_tokenize(const gemma4_model* model, const char* text, size_t text_len, int parse_special,
                        int add_bos, int32_t* out, int32_t max_tokens);
/* Writes the bytes token `id` contributes to text into buf. Returns the length, -(needed) if buf is too
 * small, or INT32_MIN on error. */
int32_t gemma4_token_to_piece(const gemma4_model* model, int32_t id, char* buf, int32_t buf_len);

gemma4_context_params gemma4_context_default_params(void);
gemma4_context* gemma4_context_new(const gemma4_model* model, gemma4_context_params params);
void gemma4_context_free(gemma4_context* ctx);

/* Runs n tokens: tokens[i] in sequence seq[i] at position pos[i] (each sequence continues its cache
 * contiguously); logits are computed for the tokens whose want_logits[i] is nonzero. Returns 0 or -1. */
int gemma4_decode(gemma4_context* ctx, const int32_t* tokens, const int32_t* seq, const int32_t* pos,
                  const int8_t* want_logits, int32_t n);
/* Logits (n_vocab floats, softcap applied) of the k-th token flagged want_logits in the last decode. */
const float* gemma4_get_logits(gemma4_context* ctx, int32_t k);
/* Positions stored for a sequence. */
int32_t gemma4_seq_length(const gemma4_context* ctx, int32_t seq);
/* Drops positions >= len of a sequence (for speculative decoding and edits). Returns 0 or -1. */
int gemma4_seq_truncate(gemma4_context* ctx, int32_t seq, int32_t len);

#ifdef __cplusplus
}
#endif

#endif /* GEMMA4_H */
