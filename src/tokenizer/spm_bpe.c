/* SentencePiece-style BPE encoding and decoding, as llama.cpp's SPM tokenizer does it:
 * user-defined (and, on request, control) tokens are cut out of the text first; each
 * remaining fragment gets a leading space if it follows a special token or starts the
 * text, spaces become '▁', the fragment is split into UTF-8 characters, and the
 * adjacent pair whose concatenation is the highest-scoring piece is merged (ties: the
 * leftmost) until no pair is a piece. Characters left that are no piece become bytes. */
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "lowbit/tokenizer.h"
#include "vocab_internal.h"

/* ---- growable id list ---- */
typedef struct {
    int32_t *v;
    size_t   n, cap;
    bool     oom;
} ids;

static void ids_push(ids *a, int32_t x) {
    if (a->oom) return;
    if (a->n == a->cap) {
        const size_t cap = a->cap ? 2 * a->cap : 64;
        int32_t     *p   = realloc(a->v, cap * sizeof *p);
        if (!p) {
            a->oom = true;
            return;
        }
        a->v   = p;
        a->cap = cap;
    }
    a->v[a->n++] = x;
}

/* ---- symbols and the bigram heap ---- */
typedef struct {
    const char *text;
    size_t      n;
    int32_t     prev, next;
} symbol;

typedef struct {
    int32_t left, right;
    float   score;
    size_t  size;
} bigram;

typedef struct {
    bigram *v;
    size_t  n, cap;
    bool    oom;
} heap;

/* a is popped before b: higher score first, then the leftmost */
static bool before(const bigram *a, const bigram *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(heap *h, bigram b) {
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
    while (i > 0 && before(&b, &h->v[(i - 1) / 2])) {
        h->v[i] = h->v[(i - 1) / 2];
        i       = (i - 1) / 2;
    }
    h->v[i] = b;
}

static bigram heap_pop(heap *h) {
    const bigram top  = h->v[0];
    const bigram last = h->v[--h->n];
    size_t       i    = 0;
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

static void try_add_bigram(const lb_vocab *v, const symbol *syms, heap *h, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const size_t  n  = syms[l].n + syms[r].n;
    const int32_t id = lb_vocab_find(v, syms[l].text, n); /* l and r are adjacent in memory */
    if (id < 0) return;
    heap_push(h, (bigram){ l, r, v->score[id], n });
}

static size_t utf8_len(uint8_t c) {
    static const uint8_t lookup[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 };
    return lookup[c >> 4];
}

/* Encode one escaped fragment (spaces already '▁'). */
static lb_status encode_fragment(const lb_vocab *v, const char *text, size_t len, ids *out) {
    symbol   *syms = malloc((len ? len : 1) * sizeof *syms);
    heap      h    = { 0 };
    lb_status st   = LB_OK;
    if (!syms) return LB_ERR_NOMEM;
    int32_t n = 0;
    for (size_t off = 0; off < len; n++) {
        size_t cl = utf8_len((uint8_t)text[off]);
        if (cl > len - off) cl = len - off;
        syms[n] = (symbol){ text + off, cl, n - 1, off + cl == len ? -1 : n + 1 };
        off += cl;
    }
    for (int32_t i = 1; i < n; i++) try_add_bigram(v, syms, &h, i - 1, i);
    while (h.n > 0 && !h.oom) {
        const bigram b = heap_pop(&h);
        symbol      *l = &syms[b.left], *r = &syms[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue; /* stale */
        l->n += r->n;
        r->n    = 0;
        l->next = r->next;
        if (r->next >= 0) syms[r->next].prev = b.left;
        try_add_bigram(v, syms, &h, l->prev, b.left);
        try_add_bigram(v, syms, &h, b.left, l->next);
    }
    if (h.oom) st = LB_ERR_NOMEM;
    for (int32_t i = 0; st == LB_OK && n > 0 && i != -1; i = syms[i].next) {
        const int32_t id = lb_vocab_find(v, syms[i].text, syms[i].n);
        if (id >= 0) {
            ids_push(out, id);
        } else {
            for (size_t j = 0; j < syms[i].n; j++) /* a byte with no piece and no UNK: dropped */
                if (v->byte_id[(uint8_t)syms[i].text[j]] >= 0) ids_push(out, v->byte_id[(uint8_t)syms[i].text[j]]);
        }
    }
    free(h.v);
    free(syms);
    return out->oom ? LB_ERR_NOMEM : st;
}

/* ---- special-token partition ---- */
typedef struct {
    int32_t token; /* -1: raw text */
    size_t  off, len;
} fragment;

static bool is_special_candidate(const lb_vocab *v, int32_t id, bool parse_special) {
    const int32_t t = v->type[id];
    if (v->len[id] == 0) return false;
    if (t == LB_TOKEN_USER_DEFINED) return v->kind != LB_VOCAB_UGM; /* Unigram: its normalizer's */
    return parse_special && (t == LB_TOKEN_CONTROL || t == LB_TOKEN_UNKNOWN);
}

static int cmp_len_desc(const void *a, const void *b, void *ctx) {
    const lb_vocab *v  = ctx;
    const int32_t   ia = *(const int32_t *)a, ib = *(const int32_t *)b;
    if (v->len[ia] != v->len[ib]) return v->len[ia] > v->len[ib] ? -1 : 1;
    return ia < ib ? -1 : ia > ib;
}

static lb_status partition(const lb_vocab *v, const char *text, size_t len, bool parse_special,
                           fragment **out, size_t *n_out) {
    size_t    n = 0, cap = 16;
    fragment *f = malloc(cap * sizeof *f);
    int32_t  *sp = NULL;
    size_t    nsp = 0;
    if (!f) return LB_ERR_NOMEM;
    if (len > 0) f[n++] = (fragment){ -1, 0, len };
    for (int32_t id = 0; len > 0 && id < v->n; id++)
        if (is_special_candidate(v, id, parse_special)) nsp++;
    if (nsp > 0) {
        sp = malloc(nsp * sizeof *sp);
        if (!sp) goto oom;
        nsp = 0;
        for (int32_t id = 0; id < v->n; id++)
            if (is_special_candidate(v, id, parse_special)) sp[nsp++] = id;
        qsort_r(sp, nsp, sizeof *sp, cmp_len_desc, (void *)v);
    }
    for (size_t s = 0; s < nsp; s++) {
        const char  *tok = v->text[sp[s]];
        const size_t tl  = v->len[sp[s]];
        for (size_t i = 0; i < n; i++) {
            if (f[i].token >= 0) continue;
            const char *hit = memmem(text + f[i].off, f[i].len, tok, tl);
            if (!hit) continue;
            const size_t at = (size_t)(hit - text);
            /* split f[i] into [left] [token] [right]; right is scanned next iteration */
            if (n + 2 > cap) {
                cap *= 2;
                fragment *p = realloc(f, cap * sizeof *p);
                if (!p) goto oom;
                f = p;
            }
            const fragment cur   = f[i];
            const size_t   left  = at - cur.off;
            const size_t   right = cur.off + cur.len - (at + tl);
            size_t         k     = 0;
            fragment       repl[3];
            if (left > 0) repl[k++] = (fragment){ -1, cur.off, left };
            repl[k++] = (fragment){ sp[s], at, tl };
            if (right > 0) repl[k++] = (fragment){ -1, at + tl, right };
            memmove(&f[i + k], &f[i + 1], (n - i - 1) * sizeof *f);
            memcpy(&f[i], repl, k * sizeof *f);
            n += k - 1;
            i += (left > 0 ? 1 : 0); /* now at the token; loop's ++ moves to the right part */
        }
    }
    free(sp);
    *out   = f;
    *n_out = n;
    return LB_OK;
oom:
    free(sp);
    free(f);
    return LB_ERR_NOMEM;
}

lb_status lb_tokenize(const lb_vocab *v, const char *text, size_t len, bool add_bos,
                      bool parse_special, int32_t **out, size_t *n_out, lb_error *err) {
    ids       res  = { 0 };
    fragment *frag = NULL;
    size_t    nf   = 0;
    char     *buf  = NULL;
    lb_status st   = LB_OK;
    *out           = NULL;
    *n_out         = 0;
    if (add_bos && v->bos >= 0) ids_push(&res, v->bos);
    LB_GOTO_IF(partition(v, text, len, parse_special, &frag, &nf), err, LB_ERR_NOMEM,
               "tokenize: out of memory");
    /* worst case: a leading space plus every byte a space, each 3 bytes once escaped */
    buf = malloc(3 * (len + 1));
    LB_GOTO_IF(!buf, err, LB_ERR_NOMEM, "tokenize: out of memory");
    bool prev_special = true;
    for (size_t i = 0; i < nf; i++) {
        if (frag[i].token >= 0) {
            ids_push(&res, frag[i].token);
            prev_special = true;
            continue;
        }
        if (v->kind == LB_VOCAB_BPE) { /* byte-level BPE: no space prefix, no escaping */
            LB_GOTO_IF(lb_bpe_encode(v, text + frag[i].off, frag[i].len, &res.v, &res.n, &res.cap),
                       err, LB_ERR_NOMEM, "tokenize: out of memory");
            continue;
        }
        if (v->kind == LB_VOCAB_UGM) { /* Unigram: its own normalizer, then Viterbi */
            st = lb_ugm_encode(v, text + frag[i].off, frag[i].len, &res.v, &res.n, &res.cap);
            LB_GOTO_IF(st, err, st, "tokenize: %s", st == LB_ERR_NOMEM ? "out of memory" : "text too long");
            continue;
        }
        size_t n = 0;
        if (v->add_space_prefix && prev_special) {
            memcpy(buf, "\xe2\x96\x81", 3);
            n = 3;
        }
        for (size_t j = 0; j < frag[i].len; j++) {
            const char c = text[frag[i].off + j];
            if (c == ' ') {
                memcpy(buf + n, "\xe2\x96\x81", 3);
                n += 3;
            } else {
                buf[n++] = c;
            }
        }
        LB_GOTO_IF(encode_fragment(v, buf, n, &res), err, LB_ERR_NOMEM, "tokenize: out of memory");
        prev_special = false;
    }
    LB_GOTO_IF(res.oom, err, LB_ERR_NOMEM, "tokenize: out of memory");
    free(buf);
    free(frag);
    *out   = res.v;
    *n_out = res.n;
    return LB_OK;
fail:
    free(buf);
    free(frag);
    free(res.v);
    return st;
}

size_t lb_token_to_piece(const lb_vocab *v, int32_t prev, int32_t id, char *buf, size_t cap) {
    if (id < 0 || id >= v->n || cap == 0) return 0;
    const int32_t t = v->type[id];
    if (v->kind == LB_VOCAB_BPE) return lb_bpe_token_to_piece(v, id, buf, cap);
    if (t == LB_TOKEN_CONTROL || t == LB_TOKEN_UNUSED) return 0;
    if (t == LB_TOKEN_BYTE) {
        unsigned b = 0;
        const char *s = v->text[id];
        if (v->len[id] == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x') {
            for (int k = 3; k < 5; k++) {
                const char c = s[k];
                b = b * 16 + (unsigned)(c >= 'A' ? (c | 32) - 'a' + 10 : c - '0');
            }
            buf[0] = (char)b;
            return 1;
        }
    }
    size_t       n = 0;
    const char  *s = v->text[id];
    const size_t l = v->len[id];
    for (size_t i = 0; i < l && n < cap; i++) {
        if (i + 2 < l && (uint8_t)s[i] == 0xe2 && (uint8_t)s[i + 1] == 0x96 && (uint8_t)s[i + 2] == 0x81) {
            buf[n++] = ' ';
            i += 2;
        } else {
            buf[n++] = s[i];
        }
    }
    if (prev == v->bos && n > 0 && buf[0] == ' ') {
        memmove(buf, buf + 1, n - 1);
        n--;
    }
    return n;
}
