/* The vocabulary's fields, shared by the files of src/tokenizer only. */
#ifndef LB_TOKENIZER_VOCAB_INTERNAL_H
#define LB_TOKENIZER_VOCAB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lowbit/tokenizer.h"

struct lb_bpe; /* byte-level BPE: merges and pre-tokenizer (byte_bpe.c) */
struct lb_ugm; /* SentencePiece Unigram: normalizer and piece trie (unigram.c) */

struct lb_vocab {
    int32_t  n;
    char   **text; /* NUL-terminated copies */
    size_t  *len;
    float   *score;
    int32_t *type;
    int32_t  bos, eos, unk, pad; /* -1: the vocabulary has none */
    bool     add_bos, add_space_prefix, add_eos;
    int32_t *slots; /* open-addressing hash: text -> id */
    size_t   mask;
    int32_t  byte_id[256]; /* byte-fallback token of each byte */
    int32_t  kind;          /* lb_vocab_kind */
    struct lb_bpe *bpe;     /* LB_VOCAB_BPE only */
    struct lb_ugm *ugm;     /* LB_VOCAB_UGM only */
    char    *chat_template; /* NULL when none */
    char     warning[256];  /* a loader's one-line note ("" when none) */
};

/* byte_bpe.c */
void      lb_bpe_free(struct lb_bpe *b);
/* Append the ids of text (no special tokens in it) to *ids (n used of cap, grown). */
lb_status lb_bpe_encode(const lb_vocab *v, const char *text, size_t len, int32_t **ids, size_t *n,
                        size_t *cap);
size_t    lb_bpe_token_to_piece(const lb_vocab *v, int32_t id, char *buf, size_t cap);

/* unigram.c */
void      lb_ugm_free(struct lb_ugm *u);
/* Append the ids of text (no control tokens in it) to *ids (n used of cap, grown). */
lb_status lb_ugm_encode(const lb_vocab *v, const char *text, size_t len, int32_t **ids, size_t *n,
                        size_t *cap);

#endif
