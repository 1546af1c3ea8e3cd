/* Model lifetime, format detection, validation and sizes. */
#include <dirent.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fail.h"
#include "lowbit/actq.h"
#include "model_internal.h"

lb_status lb_model_own(lb_model *m, void *p) {
    void **o = realloc(m->owned, (size_t)(m->n_owned + 1) * sizeof *o);
    if (!o) {
        free(p);
        return LB_ERR_NOMEM;
    }
    m->owned               = o;
    m->owned[m->n_owned++] = p;
    return LB_OK;
}

lb_status lb_model_own_f32_copy(lb_model *m, lb_tensor *t) {
    const int64_t n   = lb_tensor_nelements(t);
    float        *buf = malloc((size_t)n * sizeof *buf);
    if (!buf) return LB_ERR_NOMEM;
    /* row by row: row-scaled types (per channel / per tensor) keep a header in every row */
    for (int64_t r = 0; r < n / t->ne[0]; r++) lb_tensor_get_row_f32(t, r, buf + r * t->ne[0]);
    t->type = LB_TYPE_F32;
    t->data = buf;
    return lb_model_own(m, buf);
}

lb_status lb_model_make_f32(lb_model *m, lb_tensor *t) {
    if (t->type == LB_TYPE_F32) return LB_OK;
    const int64_t n   = lb_tensor_nelements(t);
    float        *buf = malloc((size_t)n * sizeof *buf);
    if (!buf) return LB_ERR_NOMEM;
    /* row by row: row-scaled types (per channel / per tensor) keep a header in every row */
    for (int64_t r = 0; r < n / t->ne[0]; r++) lb_tensor_get_row_f32(t, r, buf + r * t->ne[0]);
    t->type = LB_TYPE_F32;
    t->data = buf;
    return lb_model_own(m, buf);
}

void lb_model_free(lb_model *m) {
    if (!m) return;
    for (int32_t i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    free(m->name);
    lb_actq_free(m->actq);
    if (!m->vocab_borrowed) lb_vocab_free(m->vocab);
    lb_gguf_close(m->gguf);
    lb_hf_files_free(m->hf_files);
    lb_source_close(&m->src);
    free(m);
}

static lb_status check_tensor(const lb_tensor *t, const char *name, int64_t ne0, int64_t ne1,
                              const char *path, lb_error *err) {
    LB_RETURN_IF(!t->data, err, LB_ERR_NOT_FOUND, "%s: tensor '%s' is missing", path, name);
    LB_RETURN_IF(t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != 1 || t->ne[3] != 1, err,
                 LB_ERR_SHAPE, "%s: tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]",
                 path, name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                 (long long)t->ne[3], (long long)ne0, (long long)ne1);
    LB_RETURN_IF(!lb_type_get_traits(t->type), err, LB_ERR_UNSUPPORTED,
                 "%s: tensor '%s' has a type lowbit cannot compute with", path, name);
    return LB_OK;
}

lb_status lb_model_validate(const lb_model *m, const char *path, lb_error *err) {
    const lb_llama_config *c = &m->cfg;
    LB_RETURN_IF(c->n_embd <= 0 || c->n_ff <= 0 || c->n_layers <= 0 || c->n_heads <= 0 ||
                     c->n_kv_heads <= 0 || c->n_vocab <= 0 || c->n_ctx_train <= 0,
                 err, LB_ERR_CORRUPT,
                 "%s: bad hyperparameters (n_embd %d, n_ff %d, n_layers %d, n_heads %d, "
                 "n_kv_heads %d, n_vocab %d, n_ctx %d)",
                 path, c->n_embd, c->n_ff, c->n_layers, c->n_heads, c->n_kv_heads, c->n_vocab,
                 c->n_ctx_train);
    LB_RETURN_IF(c->n_embd > (1 << 16) || c->n_ff > (1 << 18) || c->n_layers > 1024 ||
                     c->n_vocab > (1 << 22) || c->n_ctx_train > (1 << 24),
                 err, LB_ERR_CORRUPT, "%s: absurd hyperparameters (n_embd %d, n_ff %d, "
                 "n_layers %d, n_vocab %d, n_ctx %d)", path, c->n_embd, c->n_ff, c->n_layers,
                 c->n_vocab, c->n_ctx_train);
    LB_RETURN_IF(c->n_embd % c->n_heads != 0 || c->n_heads % c->n_kv_heads != 0 ||
                     c->head_dim != c->n_embd / c->n_heads || c->head_dim % 2 != 0,
                 err, LB_ERR_CORRUPT, "%s: n_embd %d, n_heads %d, n_kv_heads %d, head_dim %d "
                 "do not fit together", path, c->n_embd, c->n_heads, c->n_kv_heads, c->head_dim);
    LB_RETURN_IF(!(c->norm_eps > 0 && c->norm_eps < 1) || !(c->rope_theta > 0), err,
                 LB_ERR_CORRUPT, "%s: bad norm epsilon %g or rope base %g", path,
                 (double)c->norm_eps, (double)c->rope_theta);
    const int64_t E = c->n_embd, F = c->n_ff, V = c->n_vocab;
    const int64_t Q = (int64_t)c->n_heads * c->head_dim, KV = (int64_t)c->n_kv_heads * c->head_dim;
    lb_status     st;
    if ((st = check_tensor(&m->tok_embd, "token_embd", E, V, path, err)) ||
        (st = check_tensor(&m->output_norm, "output_norm", E, 1, path, err)) ||
        (st = check_tensor(&m->output, "output", E, V, path, err)))
        return st;
    if (m->rope_freqs.data) {
        if ((st = check_tensor(&m->rope_freqs, "rope_freqs", c->head_dim / 2, 1, path, err))) return st;
        LB_RETURN_IF(m->rope_freqs.type != LB_TYPE_F32, err, LB_ERR_UNSUPPORTED,
                     "%s: rope_freqs must be f32", path);
    }
    for (int32_t l = 0; l < c->n_layers; l++) {
        const lb_layer *L = &m->layers[l];
        char            n[64];
#define CHECK(field, tname, a, b)                                                                  \
    snprintf(n, sizeof n, "blk.%d." tname, l);                                                     \
    if ((st = check_tensor(&L->field, n, a, b, path, err))) return st;
        CHECK(attn_norm, "attn_norm", E, 1)
        CHECK(wq, "attn_q", E, Q)
        CHECK(wk, "attn_k", E, KV)
        CHECK(wv, "attn_v", E, KV)
        CHECK(wo, "attn_output", Q, E)
        CHECK(ffn_norm, "ffn_norm", E, 1)
        CHECK(ffn_gate, "ffn_gate", E, F)
        CHECK(ffn_up, "ffn_up", E, F)
        CHECK(ffn_down, "ffn_down", F, E)
        if (L->bq.data) { /* attention biases: all three, f32 */
            CHECK(bq, "attn_q.bias", Q, 1)
            CHECK(bk, "attn_k.bias", KV, 1)
            CHECK(bv, "attn_v.bias", KV, 1)
            LB_RETURN_IF(L->bq.type != LB_TYPE_F32 || L->bk.type != LB_TYPE_F32 || L->bv.type != LB_TYPE_F32,
                         err, LB_ERR_UNSUPPORTED, "%s: blk.%d attention biases must be f32", path, l);
        }
#undef CHECK
    }
    if (m->vocab)
        LB_RETURN_IF(lb_vocab_n_tokens(m->vocab) != c->n_vocab, err, LB_ERR_SHAPE,
                     "%s: the tokenizer has %d tokens but the model's vocabulary is %d",
                     path, lb_vocab_n_tokens(m->vocab), c->n_vocab);
    return LB_OK;
}

/* A tokenizer next to a llama2.c checkpoint: tokenizer.bin/.model, else tok*.bin/.model. */
static char *find_tokenizer(const char *model_path) {
    char *copy = strdup(model_path);
    if (!copy) return NULL;
    const char *dir  = dirname(copy);
    char       *best = NULL;
    DIR        *d    = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            const char  *n   = e->d_name;
            const size_t len = strlen(n);
            const bool   ext = (len > 4 && strcmp(n + len - 4, ".bin") == 0) ||
                             (len > 6 && strcmp(n + len - 6, ".model") == 0);
            const bool named = strncmp(n, "tokenizer.", 10) == 0 || strncmp(n, "tok", 3) == 0;
            if (!ext || !named) continue;
            if (best && strcmp(n, best) >= 0 && strncmp(n, "tokenizer.", 10) != 0) continue;
            free(best);
            best = strdup(n);
        }
        closedir(d);
    }
    char *path = NULL;
    if (best && (path = malloc(strlen(dir) + strlen(best) + 2)))
        sprintf(path, "%s/%s", dir, best);
    free(best);
    free(copy);
    return path;
}

static bool is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static bool is_gguf_file(const char *path) {
    FILE *f = NULL;
    char  magic[4];
    bool  yes = false;
    if (lb_open_input(path, &f, NULL) == LB_OK) {
        yes = fread(magic, 1, 4, f) == 4 && memcmp(magic, "GGUF", 4) == 0;
        fclose(f);
    }
    return yes;
}

lb_status lb_model_load(lb_model **out, const char *path, const char *tokenizer_path,
                        lb_error *err) {
    *out        = NULL;
    lb_model *m = calloc(1, sizeof *m);
    LB_RETURN_IF(!m, err, LB_ERR_NOMEM, "out of memory");
    lb_status st;
    char     *found = NULL;
    if (is_gguf_file(path)) {
        m->format = LB_MODEL_GGUF;
        LB_TRY(lb_model_load_gguf(m, path, err));
    } else if (is_dir(path)) {
        m->format = LB_MODEL_HF;
        LB_TRY(lb_model_load_hf(m, path, err));
    } else {
        m->format = LB_MODEL_LLAMA2C;
        LB_TRY(lb_model_load_llama2c(m, path, err));
        if (!tokenizer_path) {
            found          = find_tokenizer(path);
            tokenizer_path = found;
        }
        LB_GOTO_IF(!tokenizer_path, err, LB_ERR_PARAM,
                   "%s: a llama2.c checkpoint needs a tokenizer (--tokenizer FILE)", path);
    }
    if (tokenizer_path) {
        lb_vocab_free(m->vocab);
        m->vocab = NULL;
        const size_t tl = strlen(tokenizer_path);
        if (tl >= 14 && strcmp(tokenizer_path + tl - 14, "tokenizer.json") == 0) { /* its directory */
            char *copy = strdup(tokenizer_path);
            LB_GOTO_IF(!copy, err, LB_ERR_NOMEM, "out of memory");
            st = lb_vocab_load_hf(&m->vocab, dirname(copy), m->cfg.n_vocab, err);
            free(copy);
            LB_TRY(st);
        } else if (is_dir(tokenizer_path)) { /* an HF directory's tokenizer.json */
            LB_TRY(lb_vocab_load_hf(&m->vocab, tokenizer_path, m->cfg.n_vocab, err));
        } else
            LB_TRY(lb_vocab_load_file(&m->vocab, tokenizer_path, err));
    }
    LB_GOTO_IF(!m->vocab, err, LB_ERR_NOT_FOUND, "%s: no tokenizer in the file", path);
    LB_TRY(lb_model_validate(m, path, err));
    if (!m->name) {
        char *copy = strdup(path);
        m->name    = copy ? strdup(basename(copy)) : NULL;
        free(copy);
    }
    free(found);
    *out = m;
    return LB_OK;
fail:
    free(found);
    lb_model_free(m);
    return st;
}

lb_status lb_vocab_load_any(lb_vocab **out, const char *path, lb_error *err) {
    *out = NULL;
    if (is_dir(path)) { /* an HF directory: its tokenizer alone, else the whole model */
        lb_status st = lb_vocab_load_hf(out, path, 0, err);
        if (st != LB_ERR_NOT_FOUND) return st;
        lb_model *m;
        if ((st = lb_model_load(&m, path, NULL, err))) return st;
        *out     = m->vocab;
        m->vocab = NULL;
        lb_model_free(m);
        return LB_OK;
    }
    if (!is_gguf_file(path)) {
        /* a tokenizer file, else a llama2.c checkpoint with a tokenizer beside it */
        lb_status st = lb_vocab_load_file(out, path, err);
        if (st != LB_ERR_FORMAT) return st;
        lb_model *m;
        lb_error  merr;
        if (lb_model_load(&m, path, NULL, &merr) != LB_OK) return st;
        *out     = m->vocab;
        m->vocab = NULL;
        lb_model_free(m);
        return LB_OK;
    }
    lb_gguf  *g;
    lb_status st = lb_gguf_open(&g, path, err);
    if (st) return st;
    st = lb_vocab_from_gguf(out, g, err);
    lb_gguf_close(g);
    return st;
}

static size_t tensor_bytes(const lb_tensor *t) {
    return t->data ? lb_tensor_nbytes(t) : 0;
}

size_t lb_model_nbytes(const lb_model *m) {
    size_t n = tensor_bytes(&m->tok_embd) + tensor_bytes(&m->output_norm);
    if (!m->tied_output) n += tensor_bytes(&m->output);
    for (int32_t l = 0; l < m->cfg.n_layers; l++) {
        const lb_layer *L = &m->layers[l];
        n += tensor_bytes(&L->attn_norm) + tensor_bytes(&L->wq) + tensor_bytes(&L->wk) +
             tensor_bytes(&L->wv) + tensor_bytes(&L->wo) + tensor_bytes(&L->ffn_norm) +
             tensor_bytes(&L->ffn_gate) + tensor_bytes(&L->ffn_up) + tensor_bytes(&L->ffn_down);
    }
    return n;
}

int64_t lb_model_nparams(const lb_model *m) {
    const lb_llama_config *c = &m->cfg;
    const int64_t E = c->n_embd, F = c->n_ff, V = c->n_vocab;
    const int64_t Q = (int64_t)c->n_heads * c->head_dim, KV = (int64_t)c->n_kv_heads * c->head_dim;
    const int64_t per_layer = 2 * E + E * Q + 2 * E * KV + Q * E + 3 * E * F;
    return V * E * (m->tied_output ? 1 : 2) + E + c->n_layers * per_layer;
}

lb_status lb_model_clone_f32(const lb_model *m, lb_model **out, lb_error *err) {
    *out        = NULL;
    lb_model *c = calloc(1, sizeof *c);
    LB_RETURN_IF(!c, err, LB_ERR_NOMEM, "out of memory");
    c->cfg            = m->cfg;
    c->vocab          = m->vocab;
    c->vocab_borrowed = true;
    c->format         = m->format;
    c->tied_output    = m->tied_output;
    c->name           = m->name ? strdup(m->name) : NULL;
    c->layers         = calloc((size_t)m->cfg.n_layers, sizeof *c->layers);
    lb_status st      = c->layers ? LB_OK : LB_ERR_NOMEM;
    c->tok_embd = m->tok_embd, c->output_norm = m->output_norm, c->output = m->output;
    c->rope_freqs = m->rope_freqs; /* f32, borrowed like the vocabulary */
    for (int32_t l = 0; !st && l < m->cfg.n_layers; l++) c->layers[l] = m->layers[l];
    /* every tensor to an owned f32 copy (the tied output shares the embedding's) */
    st = st ? st : lb_model_own_f32_copy(c, &c->tok_embd);
    st = st ? st : lb_model_own_f32_copy(c, &c->output_norm);
    if (!st) {
        if (c->tied_output) c->output = c->tok_embd;
        else st = lb_model_own_f32_copy(c, &c->output);
    }
    for (int32_t l = 0; !st && l < m->cfg.n_layers; l++) {
        lb_layer  *L    = &c->layers[l];
        lb_tensor *ts[] = { &L->attn_norm, &L->wq, &L->wk, &L->wv, &L->wo, &L->ffn_norm,
                            &L->ffn_gate, &L->ffn_up, &L->ffn_down };
        for (size_t k = 0; !st && k < sizeof ts / sizeof ts[0]; k++) st = lb_model_own_f32_copy(c, ts[k]);
    }
    if (st) {
        lb_model_free(c);
        return lb_fail(err, st, "out of memory copying the model");
    }
    *out = c;
    return LB_OK;
}
