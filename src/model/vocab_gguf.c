/* GGUF tokenizer metadata beyond SentencePiece's keys, read and written: byte-level BPE
 * (tokenizer.ggml.model "gpt2": tokenizer.ggml.merges, tokenizer.ggml.pre), SentencePiece
 * Unigram ("t5": tokenizer.ggml.precompiled_charsmap, tokenizer.ggml.remove_extra_whitespaces)
 * and tokenizer.chat_template. A pre-tokenizer llama.cpp has no name for is written as "default"
 * plus its regexes in lowbit.tokenizer.pre_regex (and lowbit.tokenizer.ignore_merges):
 * llama.cpp ignores these keys, lowbit reads them back and tokenizes exactly. */
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "model_internal.h"

#define PRE_REGEX_KEY     "lowbit.tokenizer.pre_regex"
#define IGNORE_MERGES_KEY "lowbit.tokenizer.ignore_merges"

/* An array of strings as NUL-terminated copies (*out: n pointers into one block). */
static lb_status str_array(const lb_gguf *g, const lb_gguf_kv *kv, char ***out, lb_error *err) {
    size_t total = 0;
    for (uint64_t i = 0; i < kv->arr_n; i++) total += (size_t)kv->arr_str[i].n + 1;
    char **p = malloc((size_t)kv->arr_n * sizeof *p + total + 1);
    LB_RETURN_IF(!p, err, LB_ERR_NOMEM, "%s: out of memory reading %s", g->src.name, kv->key);
    char *s = (char *)(p + kv->arr_n);
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        const lb_gguf_str x = kv->arr_str[i];
        if (memchr(x.p, '\0', (size_t)x.n)) {
            free(p);
            return lb_fail(err, LB_ERR_CORRUPT, "%s: %s[%llu] holds a NUL byte", g->src.name,
                           kv->key, (unsigned long long)i);
        }
        p[i] = s;
        memcpy(s, x.p, (size_t)x.n);
        s[x.n] = '\0';
        s += x.n + 1;
    }
    *out = p;
    return LB_OK;
}

lb_status lb_vocab_bpe_from_gguf(lb_vocab *v, const lb_gguf *g, lb_error *err) {
    const char       *name   = g->src.name;
    const lb_gguf_kv *merges = NULL, *regex = NULL;
    lb_gguf_str       pre    = { "default", 7 };
    char            **m = NULL, **r = NULL, pre_name[64];
    bool              ignore = false;
    lb_status         st     = lb_gguf_get_arr(g, "tokenizer.ggml.merges", &merges, err);
    LB_RETURN_IF(st == LB_ERR_NOT_FOUND, err, LB_ERR_NOT_FOUND,
                 "%s: byte-level BPE without tokenizer.ggml.merges", name);
    if (st) return st;
    LB_RETURN_IF(merges->arr_type != LB_GGUF_STRING, err, LB_ERR_CORRUPT,
                 "%s: tokenizer.ggml.merges is not an array of strings", name);
    st = lb_gguf_get_str(g, "tokenizer.ggml.pre", &pre, err);
    if (st && st != LB_ERR_NOT_FOUND) return st;
    LB_RETURN_IF(pre.n >= sizeof pre_name || memchr(pre.p, '\0', (size_t)pre.n), err, LB_ERR_CORRUPT,
                 "%s: tokenizer.ggml.pre is not a short name", name);
    memcpy(pre_name, pre.p, (size_t)pre.n);
    pre_name[pre.n] = '\0';
    st = lb_gguf_get_arr(g, PRE_REGEX_KEY, &regex, err);
    if (st && st != LB_ERR_NOT_FOUND) return st;
    LB_RETURN_IF(regex && (regex->arr_type != LB_GGUF_STRING || regex->arr_n == 0 || regex->arr_n > 64),
                 err, LB_ERR_CORRUPT, "%s: %s must be 1..64 strings", name, PRE_REGEX_KEY);
    st = lb_gguf_get_bool(g, IGNORE_MERGES_KEY, &ignore, err);
    if (st && st != LB_ERR_NOT_FOUND) return st;
    st = LB_OK;
    LB_TRY(str_array(g, merges, &m, err));
    if (regex) LB_TRY(str_array(g, regex, &r, err));
    lb_error e2 = { 0 };
    st          = lb_vocab_set_bpe(v, (const char *const *)m, (size_t)merges->arr_n, pre_name,
                                   (const char *const *)r, regex ? (size_t)regex->arr_n : 0, ignore, &e2);
    LB_GOTO_IF(st, err, st, "%s: %s", name, e2.msg);
fail:
    free(m);
    free(r);
    return st;
}

lb_status lb_vocab_unigram_from_gguf(lb_vocab *v, const lb_gguf *g, lb_error *err) {
    const char       *name = g->src.name;
    const lb_gguf_kv *cm   = NULL;
    bool              rm   = true;
    lb_status         st   = lb_gguf_get_arr(g, "tokenizer.ggml.precompiled_charsmap", &cm, err);
    if (st && st != LB_ERR_NOT_FOUND) return st;
    LB_RETURN_IF(cm && cm->arr_type != LB_GGUF_U8 && cm->arr_type != LB_GGUF_I8, err, LB_ERR_CORRUPT,
                 "%s: tokenizer.ggml.precompiled_charsmap is not an array of bytes", name);
    st = lb_gguf_get_bool(g, "tokenizer.ggml.remove_extra_whitespaces", &rm, err);
    if (st && st != LB_ERR_NOT_FOUND) return st;
    lb_error e2 = { 0 };
    st = lb_vocab_set_unigram(v, cm ? cm->arr_data : NULL, cm ? (size_t)cm->arr_n : 0, rm, &e2);
    LB_RETURN_IF(st, err, st, "%s: %s", name, e2.msg);
    return LB_OK;
}

lb_status lb_vocab_chat_template_from_gguf(lb_vocab *v, const lb_gguf *g, lb_error *err) {
    lb_gguf_str t;
    lb_status   st = lb_gguf_get_str(g, "tokenizer.chat_template", &t, err);
    if (st == LB_ERR_NOT_FOUND) return LB_OK;
    if (st) return st;
    char *s = malloc((size_t)t.n + 1);
    LB_RETURN_IF(!s, err, LB_ERR_NOMEM, "out of memory");
    memcpy(s, t.p, (size_t)t.n);
    s[t.n] = '\0';
    st = lb_vocab_set_chat_template(v, s);
    free(s);
    LB_RETURN_IF(st, err, st, "out of memory");
    return LB_OK;
}

lb_status lb_vocab_extra_to_gguf(lb_gguf_writer *w, const lb_vocab *v) {
    lb_status st = LB_OK;
    if (lb_vocab_kind_of(v) == LB_VOCAB_BPE) {
        const size_t nm = lb_vocab_n_merges(v), nr = lb_vocab_n_pre_regex(v);
        const char **m  = malloc((nm ? nm : 1) * sizeof *m);
        const char **r  = malloc((nr ? nr : 1) * sizeof *r);
        if (!m || !r) st = LB_ERR_NOMEM;
        for (size_t i = 0; !st && i < nm; i++) m[i] = lb_vocab_merge(v, i);
        for (size_t i = 0; !st && i < nr; i++) r[i] = lb_vocab_pre_regex(v, i);
        const char *pre = lb_vocab_pre(v);
        if (!st) st = lb_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre ? pre : "default");
        if (!st) st = lb_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", m, (uint64_t)nm);
        if (!st && !pre) st = lb_gguf_writer_set_arr_str(w, PRE_REGEX_KEY, r, (uint64_t)nr);
        if (!st && !pre && lb_vocab_ignore_merges(v)) st = lb_gguf_writer_set_bool(w, IGNORE_MERGES_KEY, true);
        free(m);
        free(r);
    }
    if (!st && lb_vocab_kind_of(v) == LB_VOCAB_UGM) {
        size_t      n;
        const void *cm = lb_vocab_charsmap(v, &n);
        st = lb_gguf_writer_set_bool(w, "tokenizer.ggml.remove_extra_whitespaces",
                                     lb_vocab_remove_extra_whitespaces(v));
        if (!st && n) st = lb_gguf_writer_set_arr(w, "tokenizer.ggml.precompiled_charsmap", LB_GGUF_U8, cm, n);
    }
    if (!st && lb_vocab_chat_template(v))
        st = lb_gguf_writer_set_str(w, "tokenizer.chat_template", lb_vocab_chat_template(v));
    return st;
}
