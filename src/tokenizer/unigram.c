/* SentencePiece Unigram encoding, as sentencepiece's normalizer and optimized Viterbi do it
 * (llama.cpp calls this vocabulary "t5"/UGM).
 *
 * Normalization, one prefix at a time: a user-defined piece passes as it is; else the longest
 * match in the precompiled charsmap (a darts-clone double array over the input bytes whose
 * leaves index NUL-terminated replacements) is replaced; else one UTF-8 character is copied
 * (a malformed byte becomes U+FFFD). With remove_extra_whitespaces, leading, trailing and
 * repeated spaces go; with add_dummy_prefix one space leads; spaces become U+2581.
 *
 * Encoding: the best path over the lattice of pieces (normal, user-defined and unused ones,
 * unused never taken) by the sum of their scores, in float as sentencepiece sums them; a
 * user-defined piece scores len * max_score - 0.1; a character that no single piece covers
 * is <unk> scored min_score - 10. A piece's candidate sum is made and compared in double, an
 * <unk>'s in float, and the best kept in float: sentencepiece's types, which decide near-ties. Ties keep the first candidate (shortest piece from the
 * leftmost start). Runs of <unk> are one <unk>, or with byte pieces in the vocabulary
 * (byte_fallback) each byte of them is its byte piece.
 *
 * Invariants: the charsmap is a private copy; every trie index is checked against its size. */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "lowbit/tokenizer.h"
#include "vocab_internal.h"

#define UNK_PENALTY 10.0f

typedef struct {
    int32_t child;   /* first child, -1 none */
    int32_t sibling; /* next sibling, -1 none */
    int32_t id;      /* piece ending here, -1 none */
    uint8_t label;
} trie_node;

struct lb_ugm {
    uint8_t   *charsmap; /* the precompiled blob as given (for the writers) */
    size_t     charsmap_n;
    uint32_t  *units;    /* the double array, aligned copy */
    size_t     n_units;
    const char *repl;    /* replacements, into charsmap */
    size_t     repl_n;
    bool       remove_extra_ws, byte_fallback;
    float      min_score, max_score;
    trie_node *nodes;
    size_t     n_nodes, cap_nodes;
    int32_t    root[256]; /* the root's children by byte */
    int32_t   *user;      /* user-defined piece ids */
    size_t     n_user;
};

void lb_ugm_free(struct lb_ugm *u) {
    if (!u) return;
    free(u->charsmap);
    free(u->units);
    free(u->nodes);
    free(u->user);
    free(u);
}

/* ---- piece trie ---- */

static int32_t trie_child(const struct lb_ugm *u, int32_t node, uint8_t c) {
    if (node < 0) return u->root[c];
    for (int32_t k = u->nodes[node].child; k >= 0; k = u->nodes[k].sibling)
        if (u->nodes[k].label == c) return k;
    return -1;
}

static bool trie_insert(struct lb_ugm *u, const char *s, size_t n, int32_t id) {
    int32_t node = -1;
    for (size_t i = 0; i < n; i++) {
        const uint8_t c    = (uint8_t)s[i];
        int32_t       next = trie_child(u, node, c);
        if (next < 0) {
            if (u->n_nodes == u->cap_nodes) {
                const size_t cap = u->cap_nodes ? 2 * u->cap_nodes : 1024;
                trie_node   *p   = realloc(u->nodes, cap * sizeof *p);
                if (!p) return false;
                u->nodes     = p;
                u->cap_nodes = cap;
            }
            next             = (int32_t)u->n_nodes++;
            u->nodes[next]   = (trie_node){ -1, -1, -1, c };
            if (node < 0) {
                u->root[c] = next;
            } else {
                u->nodes[next].sibling = u->nodes[node].child;
                u->nodes[node].child   = next;
            }
        }
        node = next;
    }
    if (node >= 0) u->nodes[node].id = id; /* a repeated piece: the later id */
    return true;
}

/* ---- the charsmap's double array (darts-clone units) ---- */

static uint32_t unit_offset(uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }
static uint32_t unit_label(uint32_t u) { return u & ((1u << 31) | 0xff); }
static bool     unit_leaf(uint32_t u) { return (u >> 8) & 1; }
static uint32_t unit_value(uint32_t u) { return u & ((1u << 31) - 1); }

/* Longest charsmap match at s: its length (0 none) and replacement. */
static size_t charsmap_match(const struct lb_ugm *u, const char *s, size_t n, const char **out,
                             size_t *out_n) {
    if (!u->n_units) return 0;
    size_t best = 0;
    size_t pos  = unit_offset(u->units[0]);
    for (size_t i = 0; i < n; i++) {
        const uint8_t c = (uint8_t)s[i];
        pos ^= c;
        if (pos >= u->n_units) break;
        const uint32_t unit = u->units[pos];
        if (unit_label(unit) != c) break;
        pos ^= unit_offset(unit);
        if (unit_leaf(unit)) {
            if (pos >= u->n_units) break;
            const uint32_t v = unit_value(u->units[pos]);
            if (v >= u->repl_n) continue; /* hostile: ignore a replacement past the blob */
            const char *r = u->repl + v;
            const char *z = memchr(r, '\0', u->repl_n - v);
            best          = i + 1;
            *out          = r;
            *out_n        = z ? (size_t)(z - r) : u->repl_n - v;
        }
    }
    return best;
}

/* Length of the valid UTF-8 character at s, 0 when malformed (sentencepiece's rules). */
static size_t utf8_valid(const uint8_t *s, size_t n) {
    uint32_t cp;
    size_t   len;
    if (s[0] < 0x80) return 1;
    if ((s[0] & 0xe0) == 0xc0) len = 2, cp = s[0] & 0x1fu;
    else if ((s[0] & 0xf0) == 0xe0) len = 3, cp = s[0] & 0x0fu;
    else if ((s[0] & 0xf8) == 0xf0) len = 4, cp = s[0] & 0x07u;
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    static const uint32_t min_cp[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (cp < min_cp[len] || (cp >= 0xd800 && cp < 0xe000) || cp > 0x10ffff) return 0;
    return len;
}

/* One normalized prefix of s: bytes consumed, the text it becomes in *out. */
static size_t norm_prefix(const lb_vocab *v, const char *s, size_t n, const char **out,
                          size_t *out_n) {
    const struct lb_ugm *u    = v->ugm;
    size_t               best = 0;
    for (size_t k = 0; k < u->n_user; k++) {
        const size_t l = v->len[u->user[k]];
        if (l > best && l <= n && memcmp(s, v->text[u->user[k]], l) == 0) best = l;
    }
    if (best) {
        *out   = s;
        *out_n = best;
        return best;
    }
    best = charsmap_match(u, s, n, out, out_n);
    if (best) return best;
    const size_t l = utf8_valid((const uint8_t *)s, n);
    if (!l) {
        *out   = "\xef\xbf\xbd";
        *out_n = 3;
        return 1;
    }
    *out   = s;
    *out_n = l;
    return l;
}

typedef struct {
    char  *p;
    size_t n, cap;
} buf;

static bool buf_add(buf *b, const char *s, size_t n) {
    if (b->cap - b->n < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->n < n) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return false;
        b->p   = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    return true;
}

#define SPACE "\xe2\x96\x81"

/* sentencepiece's Normalizer::Normalize (escape_whitespaces on, whitespace as prefix). */
static bool normalize(const lb_vocab *v, const char *s, size_t n, buf *out) {
    const bool  rm = v->ugm->remove_extra_ws;
    const char *r;
    size_t      rn, c;
    if (rm) {
        while (n > 0 && (c = norm_prefix(v, s, n, &r, &rn)) && rn == 1 && r[0] == ' ') s += c, n -= c;
    }
    if (n == 0) return true;
    if (v->add_space_prefix && !buf_add(out, SPACE, 3)) return false;
    bool prev_space = rm;
    while (n > 0) {
        c = norm_prefix(v, s, n, &r, &rn);
        while (prev_space && rn > 0 && r[0] == ' ') r++, rn--;
        if (rn > 0) {
            for (size_t i = 0; i < rn; i++)
                if (!(r[i] == ' ' ? buf_add(out, SPACE, 3) : buf_add(out, r + i, 1))) return false;
            prev_space = r[rn - 1] == ' ';
        }
        s += c;
        n -= c;
        if (!rm) prev_space = false;
    }
    if (rm)
        while (out->n >= 3 && memcmp(out->p + out->n - 3, SPACE, 3) == 0) out->n -= 3;
    return true;
}

/* ---- Viterbi ---- */

typedef struct {
    int32_t id;    /* -1: unknown */
    int32_t start; /* -1: not reached */
    float   score;
} best_end;

static size_t one_char_len(uint8_t c) {
    static const uint8_t lookup[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 };
    return lookup[c >> 4];
}

static void push_id(int32_t **ids, size_t *n, size_t *cap, int32_t id, bool *oom) {
    if (*oom) return;
    if (*n == *cap) {
        const size_t c = *cap ? 2 * *cap : 64;
        int32_t     *p = realloc(*ids, c * sizeof *p);
        if (!p) {
            *oom = true;
            return;
        }
        *ids = p;
        *cap = c;
    }
    (*ids)[(*n)++] = id;
}

static lb_status viterbi(const lb_vocab *v, const char *s, size_t n, int32_t **ids, size_t *n_ids,
                         size_t *cap) {
    const struct lb_ugm *u = v->ugm;
    if (n == 0) return LB_OK;
    if (n > (size_t)INT32_MAX - 1) return LB_ERR_PARAM;
    best_end *b = malloc((n + 1) * sizeof *b);
    if (!b) return LB_ERR_NOMEM;
    for (size_t i = 0; i <= n; i++) b[i] = (best_end){ -1, -1, 0.0f };
    const float unk_score = u->min_score - UNK_PENALTY;
    for (size_t at = 0; at < n;) {
        const float  base   = b[at].score;
        size_t       mblen  = one_char_len((uint8_t)s[at]);
        bool         single = false;
        int32_t      node   = -1;
        if (mblen > n - at) mblen = n - at;
        for (size_t k = at; k < n;) {
            node = trie_child(u, node, (uint8_t)s[k++]);
            if (node < 0) break;
            const int32_t id = u->nodes[node].id;
            if (id < 0 || v->type[id] == LB_TOKEN_UNUSED) continue;
            const size_t len = k - at;
            /* in double, as sentencepiece's `user ? len * max - 0.1 : score` makes it; kept as float */
            const double score = v->type[id] == LB_TOKEN_USER_DEFINED
                                     ? (double)((float)len * u->max_score) - 0.1
                                     : (double)v->score[id];
            const double cand  = score + (double)base;
            if (b[k].start < 0 || cand > (double)b[k].score)
                b[k] = (best_end){ id, (int32_t)at, (float)cand };
            if (len == mblen) single = true;
        }
        if (!single) {
            const float cand = unk_score + base;
            best_end   *t    = &b[at + mblen];
            if (t->start < 0 || cand > t->score) *t = (best_end){ -1, (int32_t)at, cand };
        }
        at += mblen;
    }
    /* backtrack: count the pieces, then emit them in order */
    size_t count = 0;
    for (size_t e = n; e > 0; e = (size_t)b[e].start) count++;
    size_t *ends = malloc(count * sizeof *ends);
    if (!ends) {
        free(b);
        return LB_ERR_NOMEM;
    }
    size_t k = count;
    for (size_t e = n; e > 0; e = (size_t)b[e].start) ends[--k] = e;
    bool oom = false, prev_unk = false;
    for (size_t i = 0; i < count; i++) {
        const best_end *e     = &b[ends[i]];
        const bool      unk   = e->id < 0;
        if (unk && u->byte_fallback) {
            for (size_t j = (size_t)e->start; j < ends[i]; j++)
                push_id(ids, n_ids, cap, v->byte_id[(uint8_t)s[j]], &oom);
        } else if (!(unk && prev_unk)) {
            push_id(ids, n_ids, cap, e->id < 0 ? v->unk : e->id, &oom);
        }
        prev_unk = unk;
    }
    free(ends);
    free(b);
    return oom ? LB_ERR_NOMEM : LB_OK;
}

lb_status lb_ugm_encode(const lb_vocab *v, const char *text, size_t len, int32_t **ids, size_t *n,
                        size_t *cap) {
    buf norm = { 0 };
    if (!normalize(v, text, len, &norm)) {
        free(norm.p);
        return LB_ERR_NOMEM;
    }
    const lb_status st = viterbi(v, norm.p, norm.n, ids, n, cap);
    free(norm.p);
    return st;
}

/* ---- setup ---- */

lb_status lb_vocab_set_unigram(lb_vocab *v, const void *charsmap, size_t charsmap_n,
                               bool remove_extra_whitespaces, lb_error *err) {
    LB_RETURN_IF(v->unk < 0 || v->unk >= v->n, err, LB_ERR_CORRUPT,
                 "unigram vocabulary without an <unk> piece");
    struct lb_ugm *u = calloc(1, sizeof *u);
    lb_status      st = LB_OK;
    LB_RETURN_IF(!u, err, LB_ERR_NOMEM, "out of memory");
    u->remove_extra_ws = remove_extra_whitespaces;
    for (int c = 0; c < 256; c++) u->root[c] = -1;
    if (charsmap_n > 0) {
        uint32_t tn;
        LB_GOTO_IF(charsmap_n <= 4, err, LB_ERR_CORRUPT, "unigram: precompiled charsmap of %zu bytes",
                   charsmap_n);
        memcpy(&tn, charsmap, 4);
        LB_GOTO_IF(tn == 0 || tn % 4 != 0 || tn > charsmap_n - 4, err, LB_ERR_CORRUPT,
                   "unigram: precompiled charsmap's trie of %u bytes does not fit its %zu bytes",
                   tn, charsmap_n);
        u->charsmap   = malloc(charsmap_n);
        u->units      = malloc(tn);
        LB_GOTO_IF(!u->charsmap || !u->units, err, LB_ERR_NOMEM, "out of memory");
        memcpy(u->charsmap, charsmap, charsmap_n);
        memcpy(u->units, u->charsmap + 4, tn);
        u->charsmap_n = charsmap_n;
        u->n_units    = tn / 4;
        u->repl       = (const char *)u->charsmap + 4 + tn;
        u->repl_n     = charsmap_n - 4 - tn;
    }
    u->min_score = FLT_MAX;
    u->max_score = FLT_MIN; /* sentencepiece's start: user-defined pieces then score about -0.1 */
    size_t n_user = 0;
    for (int32_t id = 0; id < v->n; id++) {
        const int32_t t = v->type[id];
        if (t == LB_TOKEN_NORMAL) {
            if (v->score[id] < u->min_score) u->min_score = v->score[id];
            if (v->score[id] > u->max_score) u->max_score = v->score[id];
        }
        if (t == LB_TOKEN_BYTE) u->byte_fallback = true;
        if (t == LB_TOKEN_USER_DEFINED && v->len[id] > 0) n_user++;
        if ((t == LB_TOKEN_NORMAL || t == LB_TOKEN_USER_DEFINED || t == LB_TOKEN_UNUSED) &&
            v->len[id] > 0)
            LB_GOTO_IF(!trie_insert(u, v->text[id], v->len[id], id), err, LB_ERR_NOMEM, "out of memory");
    }
    LB_GOTO_IF(u->min_score == FLT_MAX, err, LB_ERR_CORRUPT, "unigram vocabulary without normal pieces");
    if (n_user) {
        u->user = malloc(n_user * sizeof *u->user);
        LB_GOTO_IF(!u->user, err, LB_ERR_NOMEM, "out of memory");
        for (int32_t id = 0; id < v->n; id++)
            if (v->type[id] == LB_TOKEN_USER_DEFINED && v->len[id] > 0) u->user[u->n_user++] = id;
    }
    lb_bpe_free(v->bpe);
    v->bpe = NULL;
    lb_ugm_free(v->ugm);
    v->ugm  = u;
    v->kind = LB_VOCAB_UGM;
    return LB_OK;
fail:
    lb_ugm_free(u);
    return st;
}

const void *lb_vocab_charsmap(const lb_vocab *v, size_t *n) {
    *n = v->ugm ? v->ugm->charsmap_n : 0;
    return v->ugm ? v->ugm->charsmap : NULL;
}

bool lb_vocab_remove_extra_whitespaces(const lb_vocab *v) { return v->ugm && v->ugm->remove_extra_ws; }
