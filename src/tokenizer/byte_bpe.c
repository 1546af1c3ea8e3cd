/* Byte-level BPE (GPT-2 style), as llama.cpp's BPE tokenizer does it: the text is split into
 * words by the pre-tokenizer, each word's bytes are mapped to GPT-2's printable characters
 * (bytes_to_unicode), and adjacent symbols are merged by the lowest merge rank (ties: the
 * leftmost) until no adjacent pair is a merge. A final symbol that is no token falls back to
 * its single bytes' tokens (dropped when absent). ignore_merges: a word that is a token is
 * taken whole. Merges are kept as "left right" strings, indexed by a hash. */
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "lowbit/tokenizer.h"
#include "pretokenize.h"
#include "vocab_internal.h"

struct lb_bpe {
    char     **merges;
    size_t     n_merges;
    int32_t   *slots; /* open addressing: merge string -> rank */
    size_t     mask;
    char      *pre;   /* llama.cpp's name of the pre-tokenizer */
    char     **regex;
    size_t     n_regex;
    lb_pretok *pt;
    bool       ignore_merges;
    char       enc[256][3];  /* byte -> UTF-8 of its printable character */
    uint8_t    enc_len[256];
    int16_t    dec[324];     /* code point (< 324) -> byte, -1: none */
};

void lb_bpe_free(struct lb_bpe *b) {
    if (!b) return;
    for (size_t i = 0; b->merges && i < b->n_merges; i++) free(b->merges[i]);
    for (size_t i = 0; b->regex && i < b->n_regex; i++) free(b->regex[i]);
    free(b->merges);
    free(b->regex);
    free(b->slots);
    free(b->pre);
    lb_pretok_free(b->pt);
    free(b);
}

static uint64_t hash_bytes(const char *p, size_t n) { /* FNV-1a */
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
    return h;
}

static int32_t merge_rank(const struct lb_bpe *b, const char *key, size_t n) {
    for (size_t s = (size_t)hash_bytes(key, n) & b->mask;; s = (s + 1) & b->mask) {
        const int32_t r = b->slots[s];
        if (r < 0) return -1;
        if (strlen(b->merges[r]) == n && memcmp(b->merges[r], key, n) == 0) return r;
    }
}

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the others to
 * U+0100, U+0101, ... in byte order. */
static void byte_maps(struct lb_bpe *b) {
    int n = 0;
    for (int i = 0; i < 324; i++) b->dec[i] = -1;
    for (int c = 0; c < 256; c++) {
        const bool     keep = (c >= 0x21 && c <= 0x7e) || (c >= 0xa1 && c <= 0xac) || c >= 0xae;
        const uint32_t cp   = keep ? (uint32_t)c : 256u + (uint32_t)n++;
        if (cp < 0x80) {
            b->enc[c][0] = (char)cp, b->enc_len[c] = 1;
        } else {
            b->enc[c][0] = (char)(0xc0 | (cp >> 6));
            b->enc[c][1] = (char)(0x80 | (cp & 0x3f));
            b->enc_len[c] = 2;
        }
        b->dec[cp] = (int16_t)c;
    }
}

lb_status lb_vocab_set_bpe(lb_vocab *v, const char *const *merges, size_t n_merges,
                           const char *pre, const char *const *regexes, size_t n_regexes,
                           bool ignore_merges, lb_error *err) {
    const lb_pretok_preset *preset = NULL;
    if (!regexes) { /* by name: the preset's regexes and llama.cpp's flags for it */
        preset = pre ? lb_pretok_preset_by_name(pre, strlen(pre)) : NULL;
        LB_RETURN_IF(!preset, err, LB_ERR_UNSUPPORTED,
                     "byte-level BPE: pre-tokenizer '%.40s' is not one lowbit knows (gpt-2, "
                     "llama-bpe, qwen2, smollm, deepseek-llm, deepseek-coder, default)", pre ? pre : "(none)");
        regexes = preset->regexes;
        for (n_regexes = 0; regexes[n_regexes]; n_regexes++) {}
        ignore_merges = ignore_merges || preset->ignore_merges;
    } else {
        preset = lb_pretok_preset_by_regexes(regexes, n_regexes);
    }
    LB_RETURN_IF(n_merges > (1u << 24), err, LB_ERR_CORRUPT, "byte-level BPE: %zu merges", n_merges);
    struct lb_bpe *b = calloc(1, sizeof *b);
    LB_RETURN_IF(!b, err, LB_ERR_NOMEM, "out of memory");
    byte_maps(b);
    b->ignore_merges = ignore_merges;
    size_t cap       = 16;
    while (cap < 2 * n_merges) cap *= 2;
    b->merges = calloc(n_merges ? n_merges : 1, sizeof *b->merges);
    b->regex  = calloc(n_regexes ? n_regexes : 1, sizeof *b->regex);
    b->slots  = malloc(cap * sizeof *b->slots);
    b->pre    = preset ? strdup(preset->name) : NULL;
    lb_status st = LB_OK;
    LB_GOTO_IF(!b->merges || !b->regex || !b->slots || (preset && !b->pre), err, LB_ERR_NOMEM,
               "out of memory");
    b->mask = cap - 1;
    for (size_t i = 0; i < cap; i++) b->slots[i] = -1;
    for (size_t i = 0; i < n_merges; i++, b->n_merges++) {
        const size_t len = strlen(merges[i]);
        LB_GOTO_IF(!(b->merges[i] = strdup(merges[i])), err, LB_ERR_NOMEM, "out of memory");
        size_t s = (size_t)hash_bytes(merges[i], len) & b->mask;
        while (b->slots[s] >= 0 && strcmp(b->merges[b->slots[s]], merges[i]) != 0) s = (s + 1) & b->mask;
        if (b->slots[s] < 0) b->slots[s] = (int32_t)i; /* a repeated merge keeps its first rank */
    }
    for (size_t i = 0; i < n_regexes; i++, b->n_regex++)
        LB_GOTO_IF(!(b->regex[i] = strdup(regexes[i])), err, LB_ERR_NOMEM, "out of memory");
    LB_TRY(lb_pretok_create(&b->pt, regexes, n_regexes, err));
    lb_bpe_free(v->bpe);
    v->bpe              = b;
    v->kind             = LB_VOCAB_BPE;
    v->add_space_prefix = false;
    v->add_bos          = preset && preset->add_bos; /* llama.cpp's default; a key may override */
    return LB_OK;
fail:
    lb_bpe_free(b);
    return st;
}

lb_vocab_kind lb_vocab_kind_of(const lb_vocab *v) { return (lb_vocab_kind)v->kind; }
const char   *lb_vocab_pre(const lb_vocab *v) { return v->bpe ? v->bpe->pre : NULL; }
size_t        lb_vocab_n_merges(const lb_vocab *v) { return v->bpe ? v->bpe->n_merges : 0; }
const char   *lb_vocab_merge(const lb_vocab *v, size_t i) { return v->bpe->merges[i]; }
size_t        lb_vocab_n_pre_regex(const lb_vocab *v) { return v->bpe ? v->bpe->n_regex : 0; }
const char   *lb_vocab_pre_regex(const lb_vocab *v, size_t i) { return v->bpe->regex[i]; }
bool          lb_vocab_ignore_merges(const lb_vocab *v) { return v->bpe && v->bpe->ignore_merges; }

/* ---- encoding ---- */
typedef struct {
    const char *text;
    size_t      n;
    int32_t     prev, next;
} symbol;

typedef struct {
    int32_t rank, left, right;
    size_t  nl, nr; /* the symbols' sizes when queued: a change makes the entry stale */
} bigram;

typedef struct {
    bigram *v;
    size_t  n, cap;
    bool    oom;
} heap;

static bool before(const bigram *a, const bigram *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(heap *h, bigram x) {
    if (h->oom) return;
    if (h->n == h->cap) {
        const size_t cap = h->cap ? 2 * h->cap : 64;
        bigram      *p   = realloc(h->v, cap * sizeof *p);
        if (!p) {
            h->oom = true;
            return;
        }
        h->v   = p;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0 && before(&x, &h->v[(i - 1) / 2])) {
        h->v[i] = h->v[(i - 1) / 2];
        i       = (i - 1) / 2;
    }
    h->v[i] = x;
}

static bigram heap_pop(heap *h) {
    const bigram top = h->v[0], last = h->v[--h->n];
    size_t       i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && before(&h->v[c + 1], &h->v[c])) c++;
        if (!before(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i       = c;
    }
    if (h->n > 0) h->v[i] = last;
    return top;
}

typedef struct {
    int32_t **ids;
    size_t   *n, *cap;
    bool      oom;
} out_ids;

static void emit(out_ids *o, int32_t id) {
    if (o->oom) return;
    if (*o->n == *o->cap) {
        const size_t cap = *o->cap ? 2 * *o->cap : 64;
        int32_t     *p   = realloc(*o->ids, cap * sizeof *p);
        if (!p) {
            o->oom = true;
            return;
        }
        *o->ids = p;
        *o->cap = cap;
    }
    (*o->ids)[(*o->n)++] = id;
}

static void try_bigram(const struct lb_bpe *b, const symbol *s, heap *h, char *key, int32_t l,
                       int32_t r) {
    if (l < 0 || r < 0) return;
    memcpy(key, s[l].text, s[l].n);
    key[s[l].n] = ' ';
    memcpy(key + s[l].n + 1, s[r].text, s[r].n);
    const int32_t rank = merge_rank(b, key, s[l].n + 1 + s[r].n);
    if (rank >= 0) heap_push(h, (bigram){ rank, l, r, s[l].n, s[r].n });
}

/* One word, already mapped to printable characters (e, n bytes). */
static lb_status encode_word(const lb_vocab *v, const char *e, size_t n, symbol *syms, char *key,
                             out_ids *o) {
    const struct lb_bpe *b = v->bpe;
    if (b->ignore_merges) {
        const int32_t id = lb_vocab_find(v, e, n);
        if (id >= 0) {
            emit(o, id);
            return LB_OK;
        }
    }
    int32_t ns = 0;
    for (size_t off = 0; off < n; ns++) {
        size_t cl = ((uint8_t)e[off] & 0xe0) == 0xc0 ? 2 : 1;
        if (cl > n - off) cl = n - off;
        syms[ns] = (symbol){ e + off, cl, ns - 1, off + cl == n ? -1 : ns + 1 };
        off += cl;
    }
    heap h = { 0 };
    for (int32_t i = 1; i < ns; i++) try_bigram(b, syms, &h, key, i - 1, i);
    while (h.n > 0 && !h.oom) {
        const bigram g = heap_pop(&h);
        symbol      *l = &syms[g.left], *r = &syms[g.right];
        if (l->n == 0 || r->n == 0 || l->n != g.nl || r->n != g.nr || l->next != g.right) continue;
        l->n += r->n;
        r->n    = 0;
        l->next = r->next;
        if (r->next >= 0) syms[r->next].prev = g.left;
        try_bigram(b, syms, &h, key, l->prev, g.left);
        try_bigram(b, syms, &h, key, g.left, l->next);
    }
    const bool oom = h.oom;
    free(h.v);
    if (oom) return LB_ERR_NOMEM;
    for (int32_t i = 0; ns > 0 && i != -1; i = syms[i].next) {
        const int32_t id = lb_vocab_find(v, syms[i].text, syms[i].n);
        if (id >= 0) {
            emit(o, id);
            continue;
        }
        for (size_t j = 0; j < syms[i].n; j++) { /* single bytes of the mapped text */
            const int32_t bid = lb_vocab_find(v, syms[i].text + j, 1);
            if (bid >= 0) emit(o, bid);
        }
    }
    return LB_OK;
}

lb_status lb_bpe_encode(const lb_vocab *v, const char *text, size_t len, int32_t **ids, size_t *n,
                        size_t *cap) {
    const struct lb_bpe *b     = v->bpe;
    char                *clean = NULL;
    size_t              *ends  = NULL, n_words = 0, clen = 0;
    lb_status st = lb_pretok_split(b->pt, text, len, &clean, &clen, &ends, &n_words);
    if (st) return st;
    out_ids o   = { ids, n, cap, false };
    char   *e   = malloc(2 * clen + 1);                 /* a word's mapped text */
    char   *key = malloc(4 * clen + 2);                 /* "left right" */
    symbol *s   = malloc((clen ? clen : 1) * sizeof *s); /* one symbol per byte */
    if (!e || !key || !s) st = LB_ERR_NOMEM;
    for (size_t w = 0, begin = 0; !st && w < n_words; begin = ends[w++]) {
        size_t k = 0;
        for (size_t i = begin; i < ends[w]; i++) {
            const uint8_t c = (uint8_t)clean[i];
            memcpy(e + k, b->enc[c], b->enc_len[c]);
            k += b->enc_len[c];
        }
        st = encode_word(v, e, k, s, key, &o);
    }
    if (!st && o.oom) st = LB_ERR_NOMEM;
    free(e);
    free(key);
    free(s);
    free(clean);
    free(ends);
    return st;
}

size_t lb_bpe_token_to_piece(const lb_vocab *v, int32_t id, char *buf, size_t cap) {
    const int32_t t = v->type[id];
    const char   *s = v->text[id];
    const size_t  l = v->len[id];
    if (t == LB_TOKEN_CONTROL || t == LB_TOKEN_UNKNOWN || t == LB_TOKEN_UNUSED) return 0;
    if (t == LB_TOKEN_USER_DEFINED) {
        const size_t n = l < cap ? l : cap;
        memcpy(buf, s, n);
        return n;
    }
    size_t n = 0;
    for (size_t i = 0; i < l && n < cap;) { /* each character back to its byte */
        const uint8_t c  = (uint8_t)s[i];
        size_t        cl = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : 4;
        if (cl > l - i) cl = l - i;
        uint32_t cp = cl == 1 ? c : cl == 2 ? ((c & 0x1fu) << 6) | ((uint8_t)s[i + 1] & 0x3fu) : 0xffff;
        if (cp < 324 && v->bpe->dec[cp] >= 0) {
            buf[n++] = (char)v->bpe->dec[cp];
        } else {
            for (size_t j = 0; j < cl && n < cap; j++) buf[n++] = s[i + j];
        }
        i += cl;
    }
    return n;
}
