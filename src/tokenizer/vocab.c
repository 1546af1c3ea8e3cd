/* Vocabulary: token texts, scores and types, with a hash index from text to id.
 * When two tokens share a text, the later id wins (as in llama.cpp's token_to_id). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "lowbit/tokenizer.h"
#include "vocab_internal.h"

lb_status lb_vocab_create(lb_vocab **out, int32_t n_tokens, lb_error *err) {
    *out = NULL;
    LB_RETURN_IF(n_tokens <= 0 || n_tokens > (1 << 24), err, LB_ERR_PARAM,
                 "vocabulary of %d tokens (1..16M allowed)", n_tokens);
    lb_vocab *v = calloc(1, sizeof *v);
    LB_RETURN_IF(!v, err, LB_ERR_NOMEM, "out of memory");
    v->n      = n_tokens;
    v->text   = calloc((size_t)n_tokens, sizeof *v->text);
    v->len    = calloc((size_t)n_tokens, sizeof *v->len);
    v->score  = calloc((size_t)n_tokens, sizeof *v->score);
    v->type   = calloc((size_t)n_tokens, sizeof *v->type);
    v->bos    = 1;
    v->eos    = 2;
    v->unk    = 0;
    v->pad    = -1;
    v->add_bos          = true;
    v->add_space_prefix = true;
    if (!v->text || !v->len || !v->score || !v->type) {
        lb_vocab_free(v);
        return lb_fail(err, LB_ERR_NOMEM, "out of memory");
    }
    *out = v;
    return LB_OK;
}

lb_status lb_vocab_set_token(lb_vocab *v, int32_t id, const char *text, size_t len, float score,
                             int32_t type) {
    if (id < 0 || id >= v->n) return LB_ERR_PARAM;
    char *t = malloc(len + 1);
    if (!t) return LB_ERR_NOMEM;
    memcpy(t, text, len);
    t[len] = '\0';
    free(v->text[id]);
    v->text[id]  = t;
    v->len[id]   = len;
    v->score[id] = score;
    v->type[id]  = type;
    return LB_OK;
}

void lb_vocab_set_special(lb_vocab *v, int32_t bos, int32_t eos, int32_t unk) {
    v->bos = bos;
    v->eos = eos;
    v->unk = unk;
}

void lb_vocab_set_pad(lb_vocab *v, int32_t pad) { v->pad = pad; }

void lb_vocab_set_warning(lb_vocab *v, const char *line) {
    snprintf(v->warning, sizeof v->warning, "%s", line ? line : "");
}

const char *lb_vocab_warning(const lb_vocab *v) { return v->warning[0] ? v->warning : NULL; }

void lb_vocab_set_flags(lb_vocab *v, bool add_bos, bool add_space_prefix) {
    v->add_bos          = add_bos;
    v->add_space_prefix = add_space_prefix;
}

static uint64_t hash_bytes(const char *p, size_t n) { /* FNV-1a */
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
    return h;
}

lb_status lb_vocab_build(lb_vocab *v, lb_error *err) {
    for (int32_t i = 0; i < v->n; i++)
        LB_RETURN_IF(!v->text[i], err, LB_ERR_CORRUPT, "vocabulary: token %d was never set", i);
    LB_RETURN_IF(v->bos >= v->n || v->eos >= v->n || v->unk >= v->n || v->pad >= v->n, err,
                 LB_ERR_CORRUPT, "vocabulary: special token id out of range (bos %d, eos %d, "
                 "unk %d, pad %d, %d tokens)", v->bos, v->eos, v->unk, v->pad, v->n);
    int32_t *special[] = { &v->bos, &v->eos, &v->unk, &v->pad };
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
        if (*special[i] < 0) *special[i] = -1; /* absent */
    size_t cap = 16;
    while (cap < (size_t)v->n * 2) cap *= 2;
    free(v->slots);
    v->slots = malloc(cap * sizeof *v->slots);
    LB_RETURN_IF(!v->slots, err, LB_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < cap; i++) v->slots[i] = -1;
    v->mask = cap - 1;
    for (int32_t id = 0; id < v->n; id++) {
        size_t s = (size_t)hash_bytes(v->text[id], v->len[id]) & v->mask;
        for (;; s = (s + 1) & v->mask) {
            const int32_t o = v->slots[s];
            if (o < 0) {
                v->slots[s] = id;
                break;
            }
            if (v->len[o] == v->len[id] && memcmp(v->text[o], v->text[id], v->len[id]) == 0) {
                v->slots[s] = id; /* later id wins */
                break;
            }
        }
    }
    for (int b = 0; b < 256; b++) {
        static const char hex[] = "0123456789ABCDEF";
        const char        piece[6] = { '<', '0', 'x', hex[b >> 4], hex[b & 15], '>' };
        const char        raw = (char)b;
        int32_t           id  = lb_vocab_find(v, piece, 6);
        if (id < 0) id = lb_vocab_find(v, &raw, 1);
        v->byte_id[b] = id >= 0 ? id : v->unk;
    }
    return LB_OK;
}

void lb_vocab_free(lb_vocab *v) {
    if (!v) return;
    if (v->text)
        for (int32_t i = 0; i < v->n; i++) free(v->text[i]);
    free(v->text);
    free(v->len);
    free(v->score);
    free(v->type);
    free(v->slots);
    lb_bpe_free(v->bpe);
    lb_ugm_free(v->ugm);
    free(v->chat_template);
    free(v);
}

lb_status lb_vocab_set_chat_template(lb_vocab *v, const char *tmpl) {
    char *t = tmpl ? strdup(tmpl) : NULL;
    if (tmpl && !t) return LB_ERR_NOMEM;
    free(v->chat_template);
    v->chat_template = t;
    return LB_OK;
}

const char *lb_vocab_chat_template(const lb_vocab *v) { return v->chat_template; }

int32_t lb_vocab_find(const lb_vocab *v, const char *text, size_t len) {
    size_t s = (size_t)hash_bytes(text, len) & v->mask;
    for (;; s = (s + 1) & v->mask) {
        const int32_t o = v->slots[s];
        if (o < 0) return -1;
        if (v->len[o] == len && memcmp(v->text[o], text, len) == 0) return o;
    }
}

int32_t lb_vocab_n_tokens(const lb_vocab *v) { return v->n; }
int32_t lb_vocab_bos(const lb_vocab *v) { return v->bos; }
int32_t lb_vocab_eos(const lb_vocab *v) { return v->eos; }
int32_t lb_vocab_unk(const lb_vocab *v) { return v->unk; }
int32_t lb_vocab_pad(const lb_vocab *v) { return v->pad; }
bool    lb_vocab_add_bos(const lb_vocab *v) { return v->add_bos && v->bos >= 0; }
bool    lb_vocab_add_eos(const lb_vocab *v) { return v->add_eos && v->eos >= 0; }
void    lb_vocab_set_add_eos(lb_vocab *v, bool add_eos) { v->add_eos = add_eos; }
bool    lb_vocab_add_space_prefix(const lb_vocab *v) { return v->add_space_prefix; }
float   lb_vocab_score(const lb_vocab *v, int32_t id) { return v->score[id]; }
int32_t lb_vocab_type(const lb_vocab *v, int32_t id) { return v->type[id]; }

const char *lb_vocab_text(const lb_vocab *v, int32_t id, size_t *len) {
    if (len) *len = v->len[id];
    return v->text[id];
}
