/* Tokenizer files: llama2.c's tokenizer.bin and SentencePiece's .model protobuf.
 *
 * llama2.c: i32 max_token_length, then per token { f32 score, i32 len, len bytes } to the
 * end of the file. Pieces use ' ' for spaces; ids 0, 1, 2 are <unk>, <s>, </s> (stored as
 * "<unk>", "\n<s>\n", "\n</s>\n"). We convert to SentencePiece spelling, as llama.cpp's
 * convert-llama2c-to-ggml does.
 *
 * SentencePiece ModelProto: field 1 = repeated SentencePiece { 1: piece, 2: score (f32),
 * 3: type }, field 2 = TrainerSpec { 3: model_type (UNIGRAM 1, the default; BPE 2; WORD 3;
 * CHAR 4), 24: treat_whitespace_as_suffix, 40: unk_id, 41: bos_id, 42: eos_id, 43: pad_id;
 * -1 for none }, field 3 = NormalizerSpec { 1: name, 2: precompiled_charsmap,
 * 3: add_dummy_prefix, 4: remove_extra_whitespaces, 5: escape_whitespaces }. Unknown fields
 * are skipped. BPE models become lowbit's SPM vocabulary, Unigram ones its UGM vocabulary
 * (with the normalizer); WORD and CHAR models, and whitespace options lowbit does not run,
 * are refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "lowbit/core.h"
#include "lowbit/tokenizer.h"

/* ---- llama2.c ---- */

static bool is_byte_piece(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return false;
    for (int i = 3; i < 5; i++) {
        const char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

/* Count the entries; LB_OK only when they fill the file exactly. */
static lb_status llama2c_scan(const uint8_t *p, size_t size, const char *name, int32_t *count,
                              lb_error *err) {
    int32_t maxlen;
    LB_RETURN_IF(size < 4, err, LB_ERR_TRUNCATED, "%s: too short for a llama2.c tokenizer", name);
    memcpy(&maxlen, p, 4);
    LB_RETURN_IF(maxlen <= 0 || maxlen > 1024, err, LB_ERR_FORMAT,
                 "%s: not a llama2.c tokenizer (max_token_length %d)", name, maxlen);
    size_t  pos = 4;
    int32_t n   = 0;
    while (pos < size) {
        int32_t len;
        LB_RETURN_IF(size - pos < 8, err, LB_ERR_TRUNCATED,
                     "%s: token %d truncated at offset %zu", name, n, pos);
        memcpy(&len, p + pos + 4, 4);
        LB_RETURN_IF(len < 0 || len > maxlen || (size_t)len > size - pos - 8, err,
                     LB_ERR_CORRUPT, "%s: token %d at offset %zu has bad length %d", name, n, pos,
                     len);
        pos += 8 + (size_t)len;
        n++;
        LB_RETURN_IF(n > (1 << 24), err, LB_ERR_CORRUPT, "%s: too many tokens", name);
    }
    LB_RETURN_IF(n < 3, err, LB_ERR_CORRUPT, "%s: only %d tokens", name, n);
    *count = n;
    return LB_OK;
}

lb_status lb_vocab_load_llama2c(lb_vocab **out, const void *data, size_t size, const char *name,
                                lb_error *err) {
    const uint8_t *p = data;
    int32_t        n;
    lb_vocab      *v  = NULL;
    char          *sp = NULL;
    lb_status      st = llama2c_scan(p, size, name, &n, err);
    if (st) return st;
    LB_TRY(lb_vocab_create(&v, n, err));
    size_t pos = 4;
    for (int32_t i = 0; i < n; i++) {
        float   score;
        int32_t len;
        memcpy(&score, p + pos, 4);
        memcpy(&len, p + pos + 4, 4);
        const char *s = (const char *)p + pos + 8;
        pos += 8 + (size_t)len;
        int32_t type = LB_TOKEN_NORMAL;
        /* spaces become U+2581 (3 bytes) */
        free(sp);
        sp = malloc(3 * (size_t)len + 8); /* room for "<unk>" etc. even when len is 0 */
        LB_GOTO_IF(!sp, err, LB_ERR_NOMEM, "%s: out of memory", name);
        size_t k = 0;
        if (i == 0) {
            type = LB_TOKEN_UNKNOWN;
            k    = (size_t)sprintf(sp, "<unk>");
        } else if (i == 1) {
            type = LB_TOKEN_CONTROL;
            k    = (size_t)sprintf(sp, "<s>");
        } else if (i == 2) {
            type = LB_TOKEN_CONTROL;
            k    = (size_t)sprintf(sp, "</s>");
        } else {
            if (is_byte_piece(s, (size_t)len)) type = LB_TOKEN_BYTE;
            for (int32_t j = 0; j < len; j++) {
                if (s[j] == ' ') {
                    memcpy(sp + k, "\xe2\x96\x81", 3);
                    k += 3;
                } else {
                    sp[k++] = s[j];
                }
            }
        }
        LB_GOTO_IF(lb_vocab_set_token(v, i, sp, k, score, type), err, LB_ERR_NOMEM,
                   "%s: out of memory", name);
    }
    lb_vocab_set_special(v, 1, 2, 0);
    LB_TRY(lb_vocab_build(v, err));
    free(sp);
    *out = v;
    return LB_OK;
fail:
    free(sp);
    lb_vocab_free(v);
    return st;
}

/* ---- SentencePiece protobuf ---- */

typedef struct {
    const uint8_t *p;
    size_t         n, pos;
} pb;

static bool pb_varint(pb *b, uint64_t *v) {
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (b->pos >= b->n) return false;
        const uint8_t c = b->p[b->pos++];
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

/* Read a field key; for length-delimited fields also the payload bounds. */
typedef struct {
    uint32_t field, wire;
    uint64_t value;      /* varint / fixed */
    pb       sub;        /* length-delimited payload */
} pb_field;

static bool pb_next(pb *b, pb_field *f) {
    uint64_t key;
    if (!pb_varint(b, &key)) return false;
    f->field = (uint32_t)(key >> 3);
    f->wire  = (uint32_t)(key & 7);
    switch (f->wire) {
    case 0: return pb_varint(b, &f->value);
    case 1:
        if (b->n - b->pos < 8) return false;
        memcpy(&f->value, b->p + b->pos, 8);
        b->pos += 8;
        return true;
    case 5: {
        uint32_t v;
        if (b->n - b->pos < 4) return false;
        memcpy(&v, b->p + b->pos, 4);
        f->value = v;
        b->pos += 4;
        return true;
    }
    case 2: {
        uint64_t len;
        if (!pb_varint(b, &len) || len > b->n - b->pos) return false;
        f->sub = (pb){ b->p + b->pos, (size_t)len, 0 };
        b->pos += (size_t)len;
        return true;
    }
    default: return false;
    }
}

lb_status lb_vocab_load_spm_proto(lb_vocab **out, const void *data, size_t size,
                                  const char *name, lb_error *err) {
    pb        b = { data, size, 0 };
    pb_field  f;
    int64_t   n = 0;
    int64_t   unk = 0, bos = 1, eos = 2, pad = -1, model_type = 1; /* SentencePiece's defaults; -1: disabled */
    bool      dummy_prefix = true, remove_ws = true, escape_ws = true, ws_suffix = false;
    pb        charsmap = { NULL, 0, 0 };
    lb_vocab *v  = NULL;
    lb_status st = LB_OK;
    /* pass 1: count pieces, read specs */
    while (b.pos < b.n) {
        LB_RETURN_IF(!pb_next(&b, &f), err, LB_ERR_FORMAT,
                     "%s: not a SentencePiece model (bad protobuf at offset %zu)", name, b.pos);
        if (f.field == 1 && f.wire == 2) n++;
        if (f.field == 2 && f.wire == 2) {
            pb_field g;
            while (f.sub.pos < f.sub.n && pb_next(&f.sub, &g)) {
                if (g.wire != 0) continue;
                if (g.field == 3) model_type = (int64_t)g.value;
                if (g.field == 24) ws_suffix = g.value != 0;
                if (g.field == 40) unk = (int32_t)g.value;
                if (g.field == 41) bos = (int32_t)g.value;
                if (g.field == 42) eos = (int32_t)g.value;
                if (g.field == 43) pad = (int32_t)g.value;
            }
        }
        if (f.field == 3 && f.wire == 2) {
            pb_field g;
            while (f.sub.pos < f.sub.n && pb_next(&f.sub, &g)) {
                if (g.field == 2 && g.wire == 2) charsmap = g.sub;
                if (g.wire != 0) continue;
                if (g.field == 3) dummy_prefix = g.value != 0;
                if (g.field == 4) remove_ws = g.value != 0;
                if (g.field == 5) escape_ws = g.value != 0;
            }
        }
    }
    LB_RETURN_IF(model_type != 1 && model_type != 2, err, LB_ERR_UNSUPPORTED,
                 "%s: SentencePiece model type %s is not supported (only Unigram and BPE)", name,
                 model_type == 3 ? "WORD" : model_type == 4 ? "CHAR" : "unknown");
    LB_RETURN_IF(!escape_ws || ws_suffix, err, LB_ERR_UNSUPPORTED,
                 "%s: SentencePiece %s is not supported", name,
                 !escape_ws ? "escape_whitespaces=false" : "treat_whitespace_as_suffix=true");
    LB_RETURN_IF(n < 1 || n > (1 << 24), err, LB_ERR_FORMAT,
                 "%s: SentencePiece model with %lld pieces", name, (long long)n);
    LB_TRY(lb_vocab_create(&v, (int32_t)n, err));
    b.pos      = 0;
    int32_t id = 0;
    while (b.pos < b.n && pb_next(&b, &f)) {
        if (f.field != 1 || f.wire != 2) continue;
        const char *piece = NULL;
        size_t      plen  = 0;
        float       score = 0;
        int32_t     type  = LB_TOKEN_NORMAL;
        pb_field    g;
        while (f.sub.pos < f.sub.n) {
            LB_GOTO_IF(!pb_next(&f.sub, &g), err, LB_ERR_CORRUPT, "%s: piece %d is corrupt", name, id);
            if (g.field == 1 && g.wire == 2) {
                piece = (const char *)g.sub.p;
                plen  = g.sub.n;
            } else if (g.field == 2 && g.wire == 5) {
                const uint32_t u = (uint32_t)g.value;
                memcpy(&score, &u, 4);
            } else if (g.field == 3 && g.wire == 0) {
                type = (int32_t)g.value;
            }
        }
        LB_GOTO_IF(!piece, err, LB_ERR_CORRUPT, "%s: piece %d has no text", name, id);
        LB_GOTO_IF(type < LB_TOKEN_NORMAL || type > LB_TOKEN_BYTE, err, LB_ERR_CORRUPT,
                   "%s: piece %d has unknown type %d", name, id, type);
        LB_GOTO_IF(lb_vocab_set_token(v, id, piece, plen, score, type), err, LB_ERR_NOMEM,
                   "%s: out of memory", name);
        id++;
    }
    LB_GOTO_IF(unk < -1 || unk >= n || bos < -1 || bos >= n || eos < -1 || eos >= n ||
                   pad < -1 || pad >= n,
               err, LB_ERR_CORRUPT, "%s: special ids out of range", name);
    if (model_type == 1) /* Unigram: <unk> is the piece of that type, as in sentencepiece */
        for (int32_t i = 0; i < id; i++)
            if (lb_vocab_type(v, i) == LB_TOKEN_UNKNOWN) unk = i;
    lb_vocab_set_special(v, (int32_t)bos, (int32_t)eos, (int32_t)unk);
    lb_vocab_set_pad(v, (int32_t)pad);
    lb_vocab_set_flags(v, bos >= 0, dummy_prefix);
    LB_TRY(lb_vocab_build(v, err));
    if (model_type == 1) {
        LB_GOTO_IF(unk < 0 || lb_vocab_type(v, (int32_t)unk) != LB_TOKEN_UNKNOWN, err, LB_ERR_CORRUPT,
                   "%s: Unigram model without an <unk> piece", name);
        lb_error e2 = { 0 };
        st          = lb_vocab_set_unigram(v, charsmap.p, charsmap.n, remove_ws, &e2);
        LB_GOTO_IF(st, err, st, "%s: %s", name, e2.msg);
    }
    *out = v;
    return LB_OK;
fail:
    lb_vocab_free(v);
    return st;
}

lb_status lb_vocab_load_file(lb_vocab **out, const char *path, lb_error *err) {
    lb_source src;
    lb_status st = lb_source_open_file(&src, path, err);
    if (st) return st;
    int32_t n;
    lb_error scan_err;
    if (llama2c_scan(src.data, src.size, path, &n, &scan_err) == LB_OK)
        st = lb_vocab_load_llama2c(out, src.data, src.size, path, err);
    else
        st = lb_vocab_load_spm_proto(out, src.data, src.size, path, err);
    if (st == LB_ERR_FORMAT)
        st = lb_fail(err, LB_ERR_FORMAT,
                     "%s: neither a llama2.c tokenizer.bin nor a SentencePiece .model", path);
    lb_source_close(&src);
    return st;
}
