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
    void **o = realloc(m->priv->owned, (size_t)(m->priv->n_owned + 1) * sizeof *o);
    if (!o) {
        free(p);
        return LB_ERR_NOMEM;
    }
    m->priv->owned               = o;
    m->priv->owned[m->priv->n_owned++] = p;
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

lb_status lb_model_make_slots_f32(lb_model *m, lb_error *err) {
    int            ns;
    const lb_slot *slots = lb_slots(&ns);
    for (int i = 0; i < ns; i++) {
        if (!(slots[i].flags & LB_SLOT_F32)) continue;
        for (int32_t l = lb_slot_first(&slots[i]); l < lb_slot_end(m, &slots[i]); l++) {
            lb_tensor *t = lb_model_tensor(m, l, slots[i].role);
            LB_RETURN_IF(t && t->data && lb_model_make_f32(m, t), err, LB_ERR_NOMEM, "out of memory");
        }
    }
    return LB_OK;
}

lb_status lb_model_shift_norms(lb_model *m, float delta, lb_error *err) {
    int            ns;
    const lb_slot *slots = lb_slots(&ns);
    for (int i = 0; i < ns; i++) {
        if (!(slots[i].flags & LB_SLOT_NORM)) continue;
        for (int32_t l = lb_slot_first(&slots[i]); l < lb_slot_end(m, &slots[i]); l++) {
            lb_tensor *t = lb_model_tensor(m, l, slots[i].role);
            if (!t || !t->data) continue;
            const int64_t n   = lb_tensor_nelements(t);
            float        *buf = malloc((size_t)n * sizeof *buf);
            LB_RETURN_IF(!buf || lb_model_own(m, buf), err, LB_ERR_NOMEM, "out of memory");
            for (int64_t r = 0; r < n / t->ne[0]; r++) lb_tensor_get_row_f32(t, r, buf + r * t->ne[0]);
            for (int64_t k = 0; k < n; k++) buf[k] += delta;
            t->type = LB_TYPE_F32;
            t->data = buf;
        }
    }
    return LB_OK;
}

lb_model *lb_model_alloc(void) {
    lb_model *m = calloc(1, sizeof *m);
    if (m && !(m->priv = calloc(1, sizeof *m->priv))) {
        free(m);
        return NULL;
    }
    return m;
}

void lb_model_keep_meta_of(lb_model *m, const lb_model *src) {
    m->priv->meta            = src->priv ? src->priv->meta : NULL; /* borrowed like the vocabulary */
    m->priv->vocab_from_meta = src->priv && src->priv->vocab_from_meta;
}

const lb_gguf *lb_model_gguf(const lb_model *m) {
    return m && m->priv ? m->priv->meta : NULL;
}

void lb_model_free(lb_model *m) {
    if (!m) return;
    for (int32_t i = 0; i < m->priv->n_owned; i++) free(m->priv->owned[i]);
    free(m->priv->owned);
    free(m->layers);
    free(m->name);
    lb_actq_free(m->actq);
    if (!m->priv || !m->priv->vocab_borrowed) lb_vocab_free(m->vocab);
    if (m->priv) {
        lb_gguf_close(m->priv->gguf);
        lb_hf_files_free(m->priv->hf_files);
        free(m->priv->hf_quant);
        lb_source_close(&m->priv->src);
        free(m->priv);
    }
    free(m);
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
    lb_model *m = lb_model_alloc();
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
        m->vocab           = NULL;
        m->priv->vocab_from_meta = false;
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

lb_status lb_model_clone_f32(const lb_model *m, lb_model **out, lb_error *err) {
    *out        = NULL;
    lb_model *c = lb_model_alloc();
    LB_RETURN_IF(!c, err, LB_ERR_NOMEM, "out of memory");
    c->cfg            = m->cfg;
    c->vocab          = m->vocab;
    c->priv->vocab_borrowed = true;
    c->format         = m->format;
    c->tied_output    = m->tied_output;
    c->name           = m->name ? strdup(m->name) : NULL;
    c->arch           = m->arch;
    lb_model_keep_meta_of(c, m);
    c->layers         = calloc((size_t)m->cfg.n_layers, sizeof *c->layers);
    lb_status st      = c->layers ? LB_OK : LB_ERR_NOMEM;
    c->tok_embd = m->tok_embd, c->output_norm = m->output_norm, c->output = m->output;
    c->rope_freqs = m->rope_freqs; /* f32, borrowed like the vocabulary */
    c->rope_long = m->rope_long, c->rope_short = m->rope_short;
    for (int32_t l = 0; !st && l < m->cfg.n_layers; l++) c->layers[l] = m->layers[l];
    /* every tensor to an owned f32 copy (the tied output shares the embedding's) */
    const int32_t    n  = lb_model_n_tensors(m);
    lb_named_tensor *nt = st ? NULL : malloc((size_t)n * sizeof *nt);
    if (!st && !nt) st = LB_ERR_NOMEM;
    if (!st) lb_model_tensors(c, nt, lb_model_n_tensors(c));
    for (int32_t i = 0; !st && i < n; i++)
        if (!(lb_slot_of(nt[i].role)->flags & LB_SLOT_ROPE)) st = lb_model_own_f32_copy(c, lb_model_tensor(c, nt[i].layer, nt[i].role));
    free(nt);
    if (!st && c->tied_output) c->output = c->tok_embd;
    if (st) {
        lb_model_free(c);
        return lb_fail(err, st, "out of memory copying the model");
    }
    *out = c;
    return LB_OK;
}
