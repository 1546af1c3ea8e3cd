/* Pre-tokenizer of byte-level BPE: text split into words by a sequence of regexes (PCRE2,
 * UTF-8 and Unicode properties), each applied to every piece the previous ones left, with
 * matches and the text between them both kept as pieces (tokenizers' Split "Isolated").
 * Shared by the files of src/tokenizer only. */
#ifndef LB_TOKENIZER_PRETOKENIZE_H
#define LB_TOKENIZER_PRETOKENIZE_H

#include <stddef.h>

#include "lowbit/status.h"

typedef struct lb_pretok lb_pretok;

/* GPT-2's word regex, as tokenizer.json's ByteLevel (use_regex) and llama.cpp's gpt-2 preset
 * have it */
#define LB_GPT2_REGEX "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

/* A preset of llama.cpp's (tokenizer.ggml.pre): its regexes and flags; NULL when unknown. */
typedef struct lb_pretok_preset {
    const char        *name;     /* the name lowbit writes */
    const char *const *aliases;  /* other names llama.cpp accepts, NULL-terminated */
    const char *const *regexes;  /* NULL-terminated */
    bool               ignore_merges;
    bool               add_bos;
} lb_pretok_preset;
const lb_pretok_preset *lb_pretok_preset_by_name(const char *name, size_t len);
/* The preset whose regexes are exactly these, or NULL. */
const lb_pretok_preset *lb_pretok_preset_by_regexes(const char *const *regexes, size_t n);

lb_status lb_pretok_create(lb_pretok **out, const char *const *regexes, size_t n, lb_error *err);
void      lb_pretok_free(lb_pretok *p);

/* Clean the text as llama.cpp does before splitting (invalid UTF-8 becomes U+FFFD) into
 * *clean (malloc'd), then split it: *ends receives the end offset of each word in *clean. */
lb_status lb_pretok_split(const lb_pretok *p, const char *text, size_t len, char **clean,
                          size_t *clean_len, size_t **ends, size_t *n_words);

#endif
