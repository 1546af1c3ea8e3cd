/* Vocabulary and SentencePiece-style BPE tokenizer.
 * Pieces are stored as SentencePiece spells them: a space is U+2581 ('▁'), bytes of the
 * byte fallback are "<0xNN>" pieces. Encoding follows llama.cpp's SPM tokenizer exactly
 * (escape spaces, optional leading space, merge the best-scoring adjacent pair that
 * is a piece until none is left, unknown characters fall back to bytes), so token ids
 * match llama.cpp's on the same vocabulary. */
#ifndef LOWBIT_TOKENIZER_H
#define LOWBIT_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Token types, numbered as GGUF's tokenizer.ggml.token_type and SentencePiece's. */
typedef enum lb_token_type {
    LB_TOKEN_NORMAL       = 1,
    LB_TOKEN_UNKNOWN      = 2,
    LB_TOKEN_CONTROL      = 3,
    LB_TOKEN_USER_DEFINED = 4,
    LB_TOKEN_UNUSED       = 5,
    LB_TOKEN_BYTE         = 6,
} lb_token_type;

typedef struct lb_vocab lb_vocab;

/* Build a vocabulary: create with n tokens, set each, then build (checks and indexes).
 * Special ids (BOS, EOS, UNK, PAD) are -1 when the vocabulary has no such token; a new
 * vocabulary has BOS 1, EOS 2, UNK 0 and no PAD, and adds BOS. lb_vocab_add_bos is false
 * when there is no BOS, whatever the flag. */
lb_status lb_vocab_create(lb_vocab **out, int32_t n_tokens, lb_error *err);
lb_status lb_vocab_set_token(lb_vocab *v, int32_t id, const char *text, size_t len, float score,
                             int32_t type);
void      lb_vocab_set_special(lb_vocab *v, int32_t bos, int32_t eos, int32_t unk);
void      lb_vocab_set_pad(lb_vocab *v, int32_t pad);
void      lb_vocab_set_flags(lb_vocab *v, bool add_bos, bool add_space_prefix);
/* A loader's one-line warning (a special id it dropped, ...), kept for the caller to show:
 * the library never prints. lb_vocab_warning returns NULL when there is none. */
void        lb_vocab_set_warning(lb_vocab *v, const char *line);
const char *lb_vocab_warning(const lb_vocab *v);
lb_status lb_vocab_build(lb_vocab *v, lb_error *err);
void      lb_vocab_free(lb_vocab *v); /* accepts NULL */

/* Loaders for tokenizer files (llama2.c tokenizer.bin, SentencePiece .model): by content. */
lb_status lb_vocab_load_file(lb_vocab **out, const char *path, lb_error *err);
lb_status lb_vocab_load_llama2c(lb_vocab **out, const void *data, size_t size, const char *name,
                                lb_error *err);
lb_status lb_vocab_load_spm_proto(lb_vocab **out, const void *data, size_t size,
                                  const char *name, lb_error *err);

int32_t     lb_vocab_n_tokens(const lb_vocab *v);
int32_t     lb_vocab_bos(const lb_vocab *v);
int32_t     lb_vocab_eos(const lb_vocab *v);
int32_t     lb_vocab_unk(const lb_vocab *v);
int32_t     lb_vocab_pad(const lb_vocab *v);
bool        lb_vocab_add_bos(const lb_vocab *v);
/* The vocabulary's add_eos (tokenizer.ggml.add_eos_token, HF add_eos_token), carried from its
 * file to the files lowbit writes; lb_tokenize does not append EOS. */
bool        lb_vocab_add_eos(const lb_vocab *v);
void        lb_vocab_set_add_eos(lb_vocab *v, bool add_eos);
bool        lb_vocab_add_space_prefix(const lb_vocab *v);
const char *lb_vocab_text(const lb_vocab *v, int32_t id, size_t *len); /* NUL-terminated too */
float       lb_vocab_score(const lb_vocab *v, int32_t id);
int32_t     lb_vocab_type(const lb_vocab *v, int32_t id);
/* Id of a piece, -1 when absent. */
int32_t     lb_vocab_find(const lb_vocab *v, const char *text, size_t len);

/* ---- byte-level BPE (GPT-2, Llama-3, Qwen2, DeepSeek): tokenizer.ggml.model "gpt2" ---- */
typedef enum lb_vocab_kind { LB_VOCAB_SPM = 0, LB_VOCAB_BPE = 1, LB_VOCAB_UGM = 2 } lb_vocab_kind;

/* Make v byte-level BPE: merges "left right" ranked by position; the pre-tokenizer is the
 * regex sequence given (PCRE2 syntax, each match isolated) or, when regexes is NULL,
 * llama.cpp's preset named pre (gpt-2, llama-bpe, qwen2, smollm, deepseek-llm, deepseek-coder,
 * default) with llama.cpp's flags for it; ignore_merges takes a word that is a token whole.
 * Clears add_space_prefix; add_bos becomes llama.cpp's default for the preset. */
lb_status     lb_vocab_set_bpe(lb_vocab *v, const char *const *merges, size_t n_merges,
                               const char *pre, const char *const *regexes, size_t n_regexes,
                               bool ignore_merges, lb_error *err);
lb_vocab_kind lb_vocab_kind_of(const lb_vocab *v);
/* llama.cpp's name of the pre-tokenizer when the regexes are one of its presets, else NULL */
const char   *lb_vocab_pre(const lb_vocab *v);
size_t        lb_vocab_n_merges(const lb_vocab *v);
const char   *lb_vocab_merge(const lb_vocab *v, size_t i);
size_t        lb_vocab_n_pre_regex(const lb_vocab *v);
const char   *lb_vocab_pre_regex(const lb_vocab *v, size_t i);
bool          lb_vocab_ignore_merges(const lb_vocab *v);
/* ---- SentencePiece Unigram: tokenizer.ggml.model "t5" ---- */
/* Make v a Unigram vocabulary (call once its tokens and unk are set): the best-scoring
 * segmentation (Viterbi) as sentencepiece makes it, after its normalizer: the precompiled
 * charsmap (NormalizerSpec.precompiled_charsmap, copied; n 0 for none), remove_extra_whitespaces
 * and the dummy prefix (add_space_prefix). Byte pieces in v mean byte fallback. */
lb_status   lb_vocab_set_unigram(lb_vocab *v, const void *charsmap, size_t n,
                                 bool remove_extra_whitespaces, lb_error *err);
const void *lb_vocab_charsmap(const lb_vocab *v, size_t *n); /* NULL, 0 when none */
bool        lb_vocab_remove_extra_whitespaces(const lb_vocab *v);
/* The chat template (Jinja text) carried along for the GGUF and HF writers. */
lb_status     lb_vocab_set_chat_template(lb_vocab *v, const char *tmpl);
const char   *lb_vocab_chat_template(const lb_vocab *v);

/* A Hugging Face tokenizer: tokenizer.json (+ tokenizer_config.json) in dir; the BPE model,
 * SentencePiece-style (byte_fallback, '▁') or byte-level. n_vocab > 0 pads the vocabulary
 * to the model's embedding rows with unused "[PADn]" tokens, as llama.cpp's converter does.
 * LB_ERR_NOT_FOUND when dir has no tokenizer.json. */
lb_status lb_vocab_load_hf(lb_vocab **out, const char *dir, int32_t n_vocab, lb_error *err);
/* tokenizer.json and tokenizer_config.json text for v (malloc'd, NUL-terminated). */
lb_status lb_vocab_to_hf_json(const lb_vocab *v, char **tokenizer_json, char **config_json,
                              lb_error *err);

/* Tokenize text. *out is malloc'd (free it); add_bos prepends BOS; parse_special lets
 * control tokens' text in the input become those tokens (user-defined tokens always do). */
lb_status lb_tokenize(const lb_vocab *v, const char *text, size_t len, bool add_bos,
                      bool parse_special, int32_t **out, size_t *n_out, lb_error *err);

/* The text of one token as it should be printed after token prev: '▁' becomes ' ',
 * byte pieces become their byte, control tokens print nothing, and the leading space
 * right after BOS is dropped (llama2.c). Returns the number of bytes (at most 64
 * written to buf; longer pieces are truncated). */
size_t lb_token_to_piece(const lb_vocab *v, int32_t prev, int32_t id, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
