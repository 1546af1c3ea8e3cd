/* Hugging Face tokenizers: tokenizer.json (+ tokenizer_config.json) into a vocabulary.
 * Only the BPE model, in its two flavours:
 *  - SentencePiece-style (Llama-2, Mistral, TinyLlama): byte_fallback, '▁' for spaces through
 *    a Prepend/Replace normalizer or a Metaspace pre-tokenizer. It becomes lowbit's SPM vocab
 *    with scores from the merges: a piece's score is minus the order in which merges first
 *    make it (pieces no merge makes follow, by id), so "highest score first" merges as the
 *    ranks do, and a tokenizer.json made from a SentencePiece model gets its scores back.
 *  - byte-level (GPT-2, Llama-3, Qwen2, DeepSeek): ByteLevel, merges by rank, the regexes of
 *    Split/Digits/ByteLevel pre-tokenizers (in sequence, matches isolated).
 * added_tokens: "special" ones are control tokens, the others user-defined. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fail.h"
#include "core/json.h"
#include "lowbit/tokenizer.h"
#include "pretokenize.h"
#include "vocab_internal.h"

#define MAX_REGEX  32

typedef struct hf_tok {
    const char *file;         /* tokenizer.json's path, for messages */
    cJSON      *root, *cfg;   /* tokenizer.json, tokenizer_config.json (may be NULL) */
    const char **text;        /* n: the vocabulary, borrowed from root */
    int32_t    *type;
    int32_t     n;
    bool        byte_level;
    char       *regex[MAX_REGEX];
    size_t      n_regex;
} hf_tok;

static bool is_type(const cJSON *o, const char *t) {
    const char *s = lb_json_str(o, "type");
    return s && strcmp(s, t) == 0;
}

/* o, or one of o's "pretokenizers"/"normalizers"/"decoders" (Sequence), of type t */
static const cJSON *find_type(const cJSON *o, const char *list, const char *t) {
    if (!cJSON_IsObject(o)) return NULL;
    if (is_type(o, t)) return o;
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(o, list);
    for (const cJSON *e = cJSON_IsArray(l) ? l->child : NULL; e; e = e->next)
        if (is_type(e, t)) return e;
    return NULL;
}

static lb_status add_regex(hf_tok *h, const char *re, size_t n, lb_error *err) {
    LB_RETURN_IF(h->n_regex == MAX_REGEX, err, LB_ERR_UNSUPPORTED, "%s: more than %d pre-tokenizers",
                 h->file, MAX_REGEX);
    char *c = malloc(n + 1);
    LB_RETURN_IF(!c, err, LB_ERR_NOMEM, "out of memory");
    memcpy(c, re, n);
    c[n] = '\0';
    h->regex[h->n_regex++] = c;
    return LB_OK;
}

/* One pre-tokenizer of a byte-level tokenizer into regexes. */
static lb_status pre_one(hf_tok *h, const cJSON *p, lb_error *err) {
    const char *t = lb_json_str(p, "type");
    if (t && strcmp(t, "ByteLevel") == 0) {
        const cJSON *ap = cJSON_GetObjectItemCaseSensitive(p, "add_prefix_space");
        const cJSON *ur = cJSON_GetObjectItemCaseSensitive(p, "use_regex");
        LB_RETURN_IF(cJSON_IsTrue(ap), err, LB_ERR_UNSUPPORTED,
                     "%s: ByteLevel with add_prefix_space is not supported", h->file);
        return cJSON_IsFalse(ur) ? LB_OK : add_regex(h, LB_GPT2_REGEX, strlen(LB_GPT2_REGEX), err);
    }
    if (t && strcmp(t, "Digits") == 0) {
        const bool one = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "individual_digits"));
        return add_regex(h, one ? "\\p{N}" : "\\p{N}+", one ? 5 : 6, err);
    }
    if (t && strcmp(t, "Split") == 0) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(p, "pattern");
        const char  *re = lb_json_str(pat, "Regex"), *str = lb_json_str(pat, "String");
        const char  *beh = lb_json_str(p, "behavior");
        LB_RETURN_IF(!beh || strcmp(beh, "Isolated") != 0 || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "invert")),
                     err, LB_ERR_UNSUPPORTED, "%s: Split pre-tokenizers must be Isolated, not inverted",
                     h->file);
        if (re) return add_regex(h, re, strlen(re), err);
        LB_RETURN_IF(!str || !*str || strstr(str, "\\E"), err, LB_ERR_CORRUPT,
                     "%s: Split pre-tokenizer without a usable pattern", h->file);
        char buf[256];
        const int k = snprintf(buf, sizeof buf, "\\Q%s\\E", str);
        LB_RETURN_IF(k < 0 || (size_t)k >= sizeof buf, err, LB_ERR_UNSUPPORTED,
                     "%s: Split pattern too long", h->file);
        return add_regex(h, buf, (size_t)k, err);
    }
    return lb_fail(err, LB_ERR_UNSUPPORTED, "%s: pre-tokenizer '%.32s' is not supported (Split, "
                   "Digits, ByteLevel)", h->file, t ? t : "?");
}

static lb_status pre_tokenizers(hf_tok *h, lb_error *err) {
    const cJSON *p = lb_json_get(h->root, "pre_tokenizer");
    if (!p) return LB_OK;
    if (is_type(p, "Sequence")) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers");
        LB_RETURN_IF(!cJSON_IsArray(l), err, LB_ERR_CORRUPT, "%s: Sequence without pretokenizers",
                     h->file);
        for (const cJSON *e = l->child; e; e = e->next) {
            lb_status st = pre_one(h, e, err);
            if (st) return st;
        }
        return LB_OK;
    }
    return pre_one(h, p, err);
}

/* A token named in tokenizer_config.json: "text" or {"content": "text"}; -1 when absent. */
static int32_t config_token(const lb_vocab *v, const cJSON *cfg, const char *key) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(cfg, key);
    const char  *s = cJSON_IsString(t) ? t->valuestring : lb_json_str(t, "content");
    return s ? lb_vocab_find(v, s, strlen(s)) : -1;
}

/* The merges as "left right" strings (the list form's spaces written as U+0120, as llama.cpp). */
static lb_status merges_list(hf_tok *h, char ***out, size_t *n_out, lb_error *err) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(h->root, "model"), "merges");
    *out = NULL, *n_out = 0;
    if (!m || cJSON_IsNull(m)) return LB_OK;
    LB_RETURN_IF(!cJSON_IsArray(m), err, LB_ERR_CORRUPT, "%s: model.merges is not an array", h->file);
    const size_t n = (size_t)cJSON_GetArraySize(m);
    char       **s = calloc(n ? n : 1, sizeof *s);
    LB_RETURN_IF(!s, err, LB_ERR_NOMEM, "out of memory");
    size_t i = 0;
    for (const cJSON *e = m->child; e; e = e->next, i++) {
        const char *a = NULL, *b = NULL;
        if (cJSON_IsString(e)) {
            s[i] = strdup(e->valuestring);
        } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 && cJSON_IsString(e->child) &&
                   cJSON_IsString(e->child->next)) {
            a = e->child->valuestring, b = e->child->next->valuestring;
            lb_strbuf sb = { 0 };
            for (const char *p = a; *p; p++) lb_strbuf_add(&sb, *p == ' ' ? "\xc4\xa0" : p, *p == ' ' ? 2 : 1);
            lb_strbuf_add(&sb, " ", 1);
            for (const char *p = b; *p; p++) lb_strbuf_add(&sb, *p == ' ' ? "\xc4\xa0" : p, *p == ' ' ? 2 : 1);
            s[i] = sb.oom ? (free(sb.p), NULL) : sb.p;
        } else {
            for (size_t k = 0; k < i; k++) free(s[k]);
            free(s);
            return lb_fail(err, LB_ERR_CORRUPT, "%s: merge %zu is neither \"a b\" nor [a, b]", h->file, i);
        }
        if (!s[i]) {
            for (size_t k = 0; k < i; k++) free(s[k]);
            free(s);
            return lb_fail(err, LB_ERR_NOMEM, "out of memory");
        }
    }
    *out   = s;
    *n_out = n;
    return LB_OK;
}

/* SentencePiece-style: scores from the order in which merges first make each piece. */
static lb_status spm_scores(lb_vocab *v, char **merges, size_t n_merges, lb_error *err) {
    int32_t *order = malloc((size_t)v->n * sizeof *order);
    char    *cat   = NULL;
    LB_RETURN_IF(!order, err, LB_ERR_NOMEM, "out of memory");
    for (int32_t i = 0; i < v->n; i++) order[i] = -1;
    int32_t next = 0;
    for (size_t i = 0; i < n_merges; i++) {
        const char *sp = strchr(merges[i] + (merges[i][0] ? 1 : 0), ' ');
        if (!sp) continue;
        const size_t la = (size_t)(sp - merges[i]), lb = strlen(sp + 1);
        char        *c  = realloc(cat, la + lb + 1);
        if (!c) {
            free(cat);
            free(order);
            return lb_fail(err, LB_ERR_NOMEM, "out of memory");
        }
        cat = c;
        memcpy(cat, merges[i], la);
        memcpy(cat + la, sp + 1, lb);
        const int32_t id = lb_vocab_find(v, cat, la + lb);
        if (id >= 0 && order[id] < 0 && v->type[id] == LB_TOKEN_NORMAL) order[id] = next++;
    }
    for (int32_t i = 0; i < v->n; i++)
        if (order[i] < 0 && v->type[i] == LB_TOKEN_NORMAL) order[i] = next++;
    for (int32_t i = 0; i < v->n; i++) v->score[i] = order[i] < 0 ? 0.0f : -(float)order[i];
    free(cat);
    free(order);
    return LB_OK;
}

/* The vocabulary: model.vocab plus added_tokens, padded to n_vocab. */
static lb_status read_vocab(hf_tok *h, int32_t n_vocab, bool spm, lb_vocab **out, lb_error *err) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(h->root, "model");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *added = lb_json_get(h->root, "added_tokens");
    LB_RETURN_IF(!cJSON_IsObject(vocab), err, LB_ERR_CORRUPT, "%s: model.vocab is not an object", h->file);
    LB_RETURN_IF(added && !cJSON_IsArray(added), err, LB_ERR_CORRUPT, "%s: added_tokens is not an array", h->file);
    int64_t max_id = -1, id;
    for (const cJSON *e = vocab->child; e; e = e->next) {
        LB_RETURN_IF(!lb_json_int(e, 0, (1 << 24) - 1, &id), err, LB_ERR_CORRUPT,
                     "%s: token '%.40s' has a bad id", h->file, e->string ? e->string : "");
        max_id = id > max_id ? id : max_id;
    }
    for (const cJSON *e = added ? added->child : NULL; e; e = e->next) {
        LB_RETURN_IF(!lb_json_int(cJSON_GetObjectItemCaseSensitive(e, "id"), 0, (1 << 24) - 1, &id) ||
                         !lb_json_str(e, "content"),
                     err, LB_ERR_CORRUPT, "%s: an added token lacks an id or content", h->file);
        max_id = id > max_id ? id : max_id;
    }
    LB_RETURN_IF(max_id < 0, err, LB_ERR_CORRUPT, "%s: empty vocabulary", h->file);
    LB_RETURN_IF(n_vocab > 0 && max_id >= n_vocab, err, LB_ERR_SHAPE,
                 "%s: token id %lld is past the model's vocabulary of %d", h->file, (long long)max_id, n_vocab);
    h->n    = n_vocab > 0 ? n_vocab : (int32_t)max_id + 1;
    h->text = calloc((size_t)h->n, sizeof *h->text);
    h->type = calloc((size_t)h->n, sizeof *h->type);
    LB_RETURN_IF(!h->text || !h->type, err, LB_ERR_NOMEM, "out of memory");
    const char *unk = lb_json_str(model, "unk_token");
    for (const cJSON *e = vocab->child; e; e = e->next) {
        lb_json_int(e, 0, INT32_MAX, &id);
        LB_RETURN_IF(h->text[id], err, LB_ERR_CORRUPT, "%s: id %lld is given to two tokens", h->file, (long long)id);
        h->text[id] = e->string;
        h->type[id] = LB_TOKEN_NORMAL;
        if (spm && strlen(e->string) == 6 && memcmp(e->string, "<0x", 3) == 0 && e->string[5] == '>')
            h->type[id] = LB_TOKEN_BYTE;
        if (unk && strcmp(unk, e->string) == 0) h->type[id] = LB_TOKEN_UNKNOWN;
    }
    for (const cJSON *e = added ? added->child : NULL; e; e = e->next) {
        lb_json_int(cJSON_GetObjectItemCaseSensitive(e, "id"), 0, INT32_MAX, &id);
        char pad[32];
        snprintf(pad, sizeof pad, "[PAD%lld]", (long long)id);
        h->text[id] = lb_json_str(e, "content");
        h->type[id] = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "special")) ? LB_TOKEN_CONTROL
                                                                                    : LB_TOKEN_USER_DEFINED;
        if (h->type[id] == LB_TOKEN_CONTROL && strcmp(h->text[id], pad) == 0)
            h->type[id] = LB_TOKEN_UNUSED; /* padding, as hf_tokenizer_write.c writes it */
        if (unk && strcmp(unk, h->text[id]) == 0) h->type[id] = LB_TOKEN_UNKNOWN;
    }
    lb_vocab *v;
    lb_status st = lb_vocab_create(&v, h->n, err);
    if (st) return st;
    for (int32_t i = 0; i < h->n && !st; i++) {
        char pad[32];
        if (!h->text[i]) snprintf(pad, sizeof pad, "[PAD%d]", i);
        const char *t = h->text[i] ? h->text[i] : pad;
        st = lb_vocab_set_token(v, i, t, strlen(t), 0.0f, h->text[i] ? h->type[i] : LB_TOKEN_UNUSED);
    }
    if (st) {
        lb_vocab_free(v);
        return lb_fail(err, st, "out of memory");
    }
    int32_t unk_id = spm ? 0 : -1;
    for (int32_t i = 0; i < h->n; i++)
        if (h->text[i] && h->type[i] == LB_TOKEN_UNKNOWN) unk_id = i;
    lb_vocab_set_special(v, -1, -1, unk_id);
    *out = v;
    return LB_OK;
}

static lb_status load(hf_tok *h, int32_t n_vocab, lb_vocab **out, lb_error *err) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(h->root, "model");
    const char  *mtype = lb_json_str(model, "type");
    LB_RETURN_IF(!cJSON_IsObject(model), err, LB_ERR_CORRUPT, "%s: no model object", h->file);
    LB_RETURN_IF(mtype ? strcmp(mtype, "BPE") != 0 : !cJSON_GetObjectItemCaseSensitive(model, "merges"),
                 err, LB_ERR_UNSUPPORTED, "%s: tokenizer model '%.32s' is not supported (BPE only; a SentencePiece "
                 "Unigram tokenizer loads from its .model file)",
                 h->file, mtype ? mtype : "?");
    const char *csp = lb_json_str(model, "continuing_subword_prefix"), *eow = lb_json_str(model, "end_of_word_suffix");
    LB_RETURN_IF((csp && *csp) || (eow && *eow), err, LB_ERR_UNSUPPORTED,
                 "%s: BPE with subword prefixes or word suffixes is not supported", h->file);
    const cJSON *norm = lb_json_get(h->root, "normalizer"), *pre = lb_json_get(h->root, "pre_tokenizer");
    const cJSON *meta = find_type(pre, "pretokenizers", "Metaspace");
    const cJSON *repl = find_type(norm, "normalizers", "Replace");
    h->byte_level     = find_type(pre, "pretokenizers", "ByteLevel") ||
                    find_type(lb_json_get(h->root, "decoder"), "decoders", "ByteLevel");
    const bool spm = !h->byte_level && (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback")) ||
                                        meta || repl);
    LB_RETURN_IF(!h->byte_level && !spm, err, LB_ERR_UNSUPPORTED,
                 "%s: a BPE tokenizer neither byte-level nor SentencePiece-style", h->file);
    if (h->byte_level && norm)
        LB_RETURN_IF(!is_type(norm, "NFC"), err, LB_ERR_UNSUPPORTED,
                     "%s: normalizer '%.32s' is not supported with byte-level BPE", h->file,
                     lb_json_str(norm, "type") ? lb_json_str(norm, "type") : "?");
    lb_vocab *v      = NULL;
    char    **merges = NULL;
    size_t    n_merges = 0;
    lb_status st       = read_vocab(h, n_vocab, spm, &v, err);
    if (st) return st;
    LB_TRY(merges_list(h, &merges, &n_merges, err));
    bool add_bos = spm, add_space = false;
    if (spm) {
        const cJSON *prep = find_type(norm, "normalizers", "Prepend");
        const char  *scheme = lb_json_str(meta, "prepend_scheme");
        add_space = (prep != NULL) || (meta && (scheme ? strcmp(scheme, "never") != 0
                                                       : !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(meta, "add_prefix_space"))));
        LB_TRY(lb_vocab_build(v, err)); /* the index, for the scores */
        LB_TRY(spm_scores(v, merges, n_merges, err));
        const int32_t bos = lb_vocab_find(v, "<s>", 3), eos = lb_vocab_find(v, "</s>", 4);
        lb_vocab_set_special(v, bos, eos, v->unk);
    } else {
        LB_TRY(pre_tokenizers(h, err));
        const bool ignore = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "ignore_merges"));
        LB_TRY(lb_vocab_set_bpe(v, (const char *const *)merges, n_merges, NULL,
                                (const char *const *)h->regex, h->n_regex, ignore, err));
        LB_TRY(lb_vocab_build(v, err));
        /* a post-processor template that starts with a special token adds it as BOS */
        const cJSON *pp   = find_type(lb_json_get(h->root, "post_processor"), "processors", "TemplateProcessing");
        const cJSON *sgl  = cJSON_GetObjectItemCaseSensitive(pp, "single");
        const char  *first = lb_json_str(cJSON_GetObjectItemCaseSensitive(cJSON_IsArray(sgl) ? sgl->child : NULL, "SpecialToken"), "id");
        if (first && lb_vocab_find(v, first, strlen(first)) >= 0) {
            lb_vocab_set_special(v, lb_vocab_find(v, first, strlen(first)), v->eos, v->unk);
            add_bos = true;
        }
    }
    if (h->cfg) { /* tokenizer_config.json has the last word */
        /* a token given replaces the one found above; null (Qwen2's bos_token) removes it */
        const int32_t bos = config_token(v, h->cfg, "bos_token"), eos = config_token(v, h->cfg, "eos_token");
        const bool    no_bos = cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(h->cfg, "bos_token"));
        lb_vocab_set_special(v, bos >= 0 ? bos : no_bos ? -1 : v->bos, eos >= 0 ? eos : v->eos, v->unk);
        lb_vocab_set_pad(v, config_token(v, h->cfg, "pad_token"));
        const cJSON *ab = cJSON_GetObjectItemCaseSensitive(h->cfg, "add_bos_token");
        if (cJSON_IsBool(ab)) add_bos = cJSON_IsTrue(ab);
        lb_vocab_set_add_eos(v, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(h->cfg, "add_eos_token")));
        const cJSON *ct = cJSON_GetObjectItemCaseSensitive(h->cfg, "chat_template");
        const char  *tmpl = cJSON_IsString(ct) ? ct->valuestring : NULL;
        for (const cJSON *e = cJSON_IsArray(ct) ? ct->child : NULL; e && !tmpl; e = e->next)
            if (lb_json_str(e, "name") && strcmp(lb_json_str(e, "name"), "default") == 0) tmpl = lb_json_str(e, "template");
        if (tmpl) LB_GOTO_IF(lb_vocab_set_chat_template(v, tmpl), err, LB_ERR_NOMEM, "out of memory");
    }
    lb_vocab_set_flags(v, add_bos && v->bos >= 0, add_space);
fail:
    for (size_t i = 0; i < n_merges; i++) free(merges[i]);
    free(merges);
    if (st) {
        lb_vocab_free(v);
        return st;
    }
    *out = v;
    return LB_OK;
}

lb_status lb_vocab_load_hf(lb_vocab **out, const char *dir, int32_t n_vocab, lb_error *err) {
    char path[4096], cpath[4096];
    *out = NULL;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    snprintf(cpath, sizeof cpath, "%s/tokenizer_config.json", dir);
    LB_RETURN_IF(access(path, F_OK) != 0, err, LB_ERR_NOT_FOUND, "%s: no tokenizer.json", dir);
    hf_tok    h  = { .file = path };
    lb_status st = lb_json_load_file(&h.root, path, err);
    if (!st && access(cpath, F_OK) == 0) st = lb_json_load_file(&h.cfg, cpath, err);
    if (!st) st = load(&h, n_vocab, out, err);
    cJSON_Delete(h.root);
    cJSON_Delete(h.cfg);
    free(h.text);
    free(h.type);
    for (size_t i = 0; i < h.n_regex; i++) free(h.regex[i]);
    return st;
}
