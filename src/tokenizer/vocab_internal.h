/* The vocabulary's fields, shared by the files of src/tokenizer only. */
#ifndef LB_TOKENIZER_VOCAB_INTERNAL_H
#define LB_TOKENIZER_VOCAB_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

struct lb_vocab {
    int32_t  n;
    char   **text; /* NUL-terminated copies */
    size_t  *len;
    float   *score;
    int32_t *type;
    int32_t  bos, eos, unk;
    bool     add_bos, add_space_prefix;
    int32_t *slots; /* open-addressing hash: text -> id */
    size_t   mask;
    int32_t  byte_id[256]; /* byte-fallback token of each byte */
};

#endif
