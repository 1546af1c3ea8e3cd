/* Save a model as a llama-architecture GGUF that llama.cpp loads: the `llama.*` keys with
 * the types llama.cpp checks (u32 sizes, f32 epsilon and rope base), llama.cpp's tensor
 * names, the SentencePiece tokenizer as tokenizer.ggml.*, 32-byte alignment. Each tensor
 * is stored in the type its plan gives (converted or quantized here, rows in parallel).
 * A model loaded from a GGUF keeps that file's other keys (save_meta.c).
 *
 * lowbit's own types (INTn, NF4, FP8, ternary: no ggml type id) are stored so that lowbit
 * reads them back (llama.cpp does not compute with them): a tensor of R rows of C values
 * becomes a ggml I8 tensor of ne = [lb_row_size(type, C), R] holding the rows' bytes as
 * the type lays them out, plus two metadata keys per tensor:
 *   lowbit.tensor_type.<tensor name>  string  the lowbit type name ("int4_g128")
 *   lowbit.tensor_ne0.<tensor name>   u64     C, the real row length
 * The loader (load_gguf.c) takes the type and ne[0] from these keys and checks that the I8
 * row bytes equal lb_row_size(type, C). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "model_internal.h"
#include "rotary.h"

/* Rows r0 .. r0+nr of t as f32, prepared by the plan's hook (range clipping) for a
 * quantized type. */
static void load_rows(float *rows, const lb_tensor *t, int64_t r0, int64_t nr, lb_type type,
                      const float *importance, const lb_write_plan *plan) {
    const int64_t n_per_row = t->ne[0];
    for (int64_t r = 0; r < nr; r++) lb_tensor_get_row_f32(t, r0 + r, rows + r * n_per_row);
    if (plan->prepare_rows && lb_type_get_traits(type)->is_quantized)
        plan->prepare_rows(rows, nr, n_per_row, type, importance, plan->user);
}

/* t converted to `type` (quantized with importance when given) into a new buffer. Rows are
 * converted and quantized in parallel chunks; a whole_tensor type's quantizer gets all rows
 * in one call (they are still converted and prepared in parallel chunks). Rows are
 * independent, so the bytes do not depend on the thread count. */
static lb_status convert(const lb_tensor *t, lb_type type, const float *importance,
                         const lb_write_plan *plan, void **out, size_t *nbytes, const char *name,
                         lb_error *err) {
    const int64_t n_per_row = t->ne[0], nrow = lb_tensor_nelements(t) / t->ne[0];
    const size_t  rs        = lb_row_size(type, n_per_row);
    const bool    whole     = lb_type_get_traits(type)->whole_tensor;
    const int64_t chunk     = 16;
    LB_RETURN_IF(rs == 0, err, LB_ERR_SHAPE, "tensor '%s': rows of %lld do not fit type %s", name,
                 (long long)n_per_row, lb_type_name(type));
    uint8_t *buf = malloc(rs * (size_t)nrow);
    float   *all = whole ? malloc((size_t)(nrow * n_per_row) * sizeof *all) : NULL;
    if (!buf || (whole && !all)) {
        free(buf);
        free(all);
        return lb_fail(err, LB_ERR_NOMEM, "out of memory converting '%s'", name);
    }
    bool oom = false;
#pragma omp parallel
    {
        float *rows = whole ? NULL : malloc((size_t)(chunk * n_per_row) * sizeof *rows);
        if (!whole && !rows) {
#pragma omp atomic write
            oom = true;
        }
#pragma omp for schedule(dynamic)
        for (int64_t r0 = 0; r0 < nrow; r0 += chunk) {
            const int64_t nr = nrow - r0 < chunk ? nrow - r0 : chunk;
            if (whole) {
                load_rows(all + r0 * n_per_row, t, r0, nr, type, importance, plan);
            } else if (rows) {
                load_rows(rows, t, r0, nr, type, importance, plan);
                lb_quantize_rows(type, buf + (size_t)r0 * rs, rows, nr, n_per_row, importance);
            }
        }
        free(rows);
    }
    if (whole) lb_quantize_rows(type, buf, all, nrow, n_per_row, importance);
    free(all);
    if (oom) {
        free(buf);
        return lb_fail(err, LB_ERR_NOMEM, "out of memory converting '%s'", name);
    }
    *out    = buf;
    *nbytes = rs * (size_t)nrow;
    return LB_OK;
}

/* Add tensor t (data of nb bytes, stored as `type`). A type with a ggml id is stored as
 * itself; one without (lowbit's own) as ggml I8 rows of its bytes, with its type name and
 * row length in metadata (see the top of this file). */
static lb_status add_tensor(lb_gguf_writer *w, const char *name, const lb_tensor *t,
                            lb_type type, const void *data, size_t nb, lb_error *err) {
    const uint32_t n_dims = (uint32_t)(t->ne[1] > 1 ? 2 : 1);
    const int32_t  gt     = lb_type_to_ggml(type);
    if (gt >= 0) return lb_gguf_writer_add_tensor(w, name, (uint32_t)gt, n_dims, t->ne, data, nb, err);
    char          key[128];
    const int64_t ne[LB_MAX_DIMS] = { (int64_t)lb_row_size(type, t->ne[0]), t->ne[1], t->ne[2], t->ne[3] };
    snprintf(key, sizeof key, "lowbit.tensor_type.%s", name);
    lb_status st = lb_gguf_writer_set_str(w, key, lb_type_name(type));
    snprintf(key, sizeof key, "lowbit.tensor_ne0.%s", name);
    if (!st) st = lb_gguf_writer_set_u64(w, key, (uint64_t)t->ne[0]);
    LB_RETURN_IF(st, err, st, "tensor '%s': cannot add its lowbit type to the metadata", name);
    return lb_gguf_writer_add_tensor(w, name, LB_GGML_I8, n_dims, ne, data, nb, err);
}

static lb_status write_vocab(lb_gguf_writer *w, const lb_vocab *v) {
    const int32_t n      = lb_vocab_n_tokens(v);
    const char  **texts  = malloc((size_t)n * sizeof *texts);
    float        *scores = malloc((size_t)n * sizeof *scores);
    int32_t      *types  = malloc((size_t)n * sizeof *types);
    lb_status     st     = LB_ERR_NOMEM;
    if (texts && scores && types) {
        for (int32_t i = 0; i < n; i++) {
            texts[i]  = lb_vocab_text(v, i, NULL);
            scores[i] = lb_vocab_score(v, i);
            types[i]  = lb_vocab_type(v, i);
        }
        const lb_vocab_kind kind = lb_vocab_kind_of(v);
        st = lb_gguf_writer_set_str(w, "tokenizer.ggml.model",
                                    kind == LB_VOCAB_BPE ? "gpt2" : kind == LB_VOCAB_UGM ? "t5" : "llama");
        if (!st) st = lb_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", texts, (uint64_t)n);
        if (!st) st = lb_gguf_writer_set_arr(w, "tokenizer.ggml.scores", LB_GGUF_F32, scores, (uint64_t)n);
        if (!st) st = lb_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", LB_GGUF_I32, types, (uint64_t)n);
        const struct {
            const char *key;
            int32_t     id;
        } special[] = { /* an absent token has no key */
            { "tokenizer.ggml.bos_token_id", lb_vocab_bos(v) },
            { "tokenizer.ggml.eos_token_id", lb_vocab_eos(v) },
            { "tokenizer.ggml.unknown_token_id", lb_vocab_unk(v) },
            { "tokenizer.ggml.padding_token_id", lb_vocab_pad(v) },
        };
        for (size_t k = 0; k < sizeof special / sizeof special[0]; k++)
            if (!st && special[k].id >= 0) st = lb_gguf_writer_set_u32(w, special[k].key, (uint32_t)special[k].id);
        if (!st) st = lb_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", lb_vocab_add_bos(v));
        if (!st) st = lb_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", lb_vocab_add_eos(v));
        if (!st && ((!lb_vocab_add_space_prefix(v) && kind == LB_VOCAB_SPM) || kind == LB_VOCAB_UGM))
            st = lb_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", lb_vocab_add_space_prefix(v));
        if (!st) st = lb_vocab_extra_to_gguf(w, v); /* merges, pre, chat template */
    }
    free(texts);
    free(scores);
    free(types);
    return st;
}

static lb_status write_hparams(lb_gguf_writer *w, const lb_model *m, uint32_t file_type) {
    const lb_llama_config *c    = &m->cfg;
    const char            *arch = m->arch ? m->arch->gguf : "llama";
    const struct {
        const char *key;
        int32_t     v;
    } u32s[] = {
        { "context_length", c->n_ctx_train },      { "embedding_length", c->n_embd },
        { "feed_forward_length", c->n_ff },        { "block_count", c->n_layers },
        { "attention.head_count", c->n_heads },    { "attention.head_count_kv", c->n_kv_heads },
        { "rope.dimension_count", c->head_dim },   { "vocab_size", c->n_vocab },
        { "attention.key_length", c->head_dim },   { "attention.value_length", c->head_dim },
    };
    /* the head size goes in only when it is not n_embd / n_heads (llama.cpp's default) */
    const size_t n_u32 = sizeof u32s / sizeof u32s[0] - (c->head_dim * c->n_heads == c->n_embd ? 2 : 0);
    char         key[96];
    lb_status    st = lb_gguf_writer_set_str(w, "general.architecture", arch);
    if (!st) st = lb_gguf_writer_set_str(w, "general.name", m->name ? m->name : "lowbit");
    if (!st) st = lb_gguf_writer_set_u32(w, "general.file_type", file_type);
    if (!st) st = lb_gguf_writer_set_u32(w, "general.quantization_version", 2);
    for (size_t i = 0; !st && i < n_u32; i++) {
        snprintf(key, sizeof key, "%s.%s", arch, u32s[i].key);
        st = lb_gguf_writer_set_u32(w, key, (uint32_t)u32s[i].v);
    }
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", arch);
    if (!st) st = lb_gguf_writer_set_f32(w, key, c->norm_eps);
    snprintf(key, sizeof key, "%s.rope.freq_base", arch);
    if (!st) st = lb_gguf_writer_set_f32(w, key, c->rope_theta);
    if (c->rope_linear > 0 && c->rope_linear != 1.0f) {
        snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
        if (!st) st = lb_gguf_writer_set_str(w, key, "linear");
        snprintf(key, sizeof key, "%s.rope.scaling.factor", arch);
        if (!st) st = lb_gguf_writer_set_f32(w, key, c->rope_linear);
    }
    return st;
}

/* lowbit's keys: the <arch>.* keys, the tokenizer, then the caller's (add_meta, may be NULL). */
static lb_status write_own(lb_gguf_writer *w, const lb_model *m, uint32_t file_type,
                           lb_status (*add_meta)(lb_gguf_writer *, void *), void *user) {
    lb_status st = write_hparams(w, m, file_type);
    if (!st) st = write_vocab(w, m->vocab);
    if (!st && add_meta) st = add_meta(w, user);
    return st;
}

/* The metadata of the output: lowbit's keys, merged into the input's when the model came
 * from a GGUF (save_meta.c). */
static lb_status write_keys(lb_gguf_writer *w, const lb_model *m, uint32_t file_type,
                            lb_status (*add_meta)(lb_gguf_writer *, void *), void *user,
                            lb_error *err) {
    if (!m->meta) return write_own(w, m, file_type, add_meta, user);
    lb_gguf_writer *own = lb_gguf_writer_create();
    lb_status       st  = own ? write_own(own, m, file_type, add_meta, user) : LB_ERR_NOMEM;
    if (!st) st = lb_model_merge_meta(w, m->meta, own, m->vocab_from_meta, err);
    lb_gguf_writer_free(own);
    return st;
}

/* The <arch>.* keys and the tokenizer of m (for writers that add tensors their own way), kept
 * with the input's other keys when m came from a GGUF. */
lb_status lb_model_write_meta(lb_gguf_writer *w, const lb_model *m, uint32_t file_type) {
    return write_keys(w, m, file_type, NULL, NULL, NULL);
}

lb_status lb_model_write_gguf(const lb_model *m, const char *path, const lb_write_plan *plan,
                              lb_error *err) {
    const int32_t    cap  = lb_model_n_tensors(m);
    lb_named_tensor *ts   = malloc((size_t)cap * sizeof *ts);
    void           **bufs = calloc((size_t)cap, sizeof *bufs);
    const void     **done = calloc((size_t)cap, sizeof *done); /* each tensor's bytes as stored */
    size_t          *dnb  = calloc((size_t)cap, sizeof *dnb);
    lb_gguf_writer  *w    = lb_gguf_writer_create();
    lb_status        st   = LB_OK;
    lb_progress      bar;
    LB_GOTO_IF(!ts || !bufs || !done || !dnb || !w, err, LB_ERR_NOMEM, "out of memory");
    const int32_t n = lb_model_tensors(m, ts);
    lb_error kerr = { 0 };
    st = write_keys(w, m, plan->file_type, plan->add_meta, plan->user, &kerr);
    LB_GOTO_IF(st, err, st, "%s: cannot build metadata (%s)", path,
               kerr.code ? kerr.msg : lb_status_str(st));
    if (plan->progress) lb_progress_begin(&bar, "write", n);
    for (int32_t i = 0; i < n; i++) {
        const lb_tensor *t    = ts[i].t;
        const lb_type    type = plan->types[i];
        const void      *data = t->data;
        size_t           nb   = lb_tensor_nbytes(t);
        if (plan->data && plan->data[i]) {
            data = plan->data[i];
            nb   = lb_row_size(type, t->ne[0]) * (size_t)(lb_tensor_nelements(t) / t->ne[0]);
        } else if (type != t->type) {
            LB_TRY(convert(t, type, plan->importance ? plan->importance[i] : NULL, plan, &bufs[i],
                           &nb, ts[i].name, err));
            data = bufs[i];
        }
        const int64_t hr = m->arch && m->arch->rope_neox ? lb_rotary_head_rows(m, lb_slot_of(ts[i].role)) : 0;
        if (hr > 0) { /* NEOX-rope architectures store rotary rows split in halves (rotary.h) */
            const bool    vec  = t->ne[1] == 1;
            const int64_t rows = vec ? t->ne[0] : t->ne[1];
            const size_t  rb   = vec ? lb_row_size(type, 1) : lb_row_size(type, t->ne[0]);
            void         *half = malloc(nb);
            LB_GOTO_IF(!half || rows % hr || (size_t)rows * rb != nb, err, half ? LB_ERR_SHAPE : LB_ERR_NOMEM,
                       "%s: tensor '%s' cannot be stored in rotary halves", path, ts[i].name);
            lb_rotary_rows(half, data, rows, rb, hr, false);
            free(bufs[i]);
            data = bufs[i] = half;
        }
        done[i] = data, dnb[i] = nb;
        int             part;
        const lb_fused *fu = lb_arch_fusion(m->arch, ts[i].role, &part);
        if (fu && fu->gguf_write) { /* stored as one tensor (Phi-3's ffn_up: gate's rows, then up's) */
            if (part + 1 < 3 && fu->parts[part + 1] != LB_ROLE_COUNT) continue; /* the last part writes */
            size_t   total = 0;
            int32_t  at[3];
            lb_tensor ft = *t;
            ft.ne[1]     = 0;
            for (int k = 0; k <= part; k++) { /* the parts of this layer, listed before */
                at[k] = -1;
                for (int32_t j = i; j >= 0 && at[k] < 0; j--)
                    if (ts[j].layer == ts[i].layer && ts[j].role == fu->parts[k]) at[k] = j;
                LB_GOTO_IF(at[k] < 0 || plan->types[at[k]] != type, err, LB_ERR_PARAM,
                           "%s: blk.%d.%s holds several tensors in one; give them one type", path,
                           ts[i].layer, fu->gguf);
                total += dnb[at[k]];
                ft.ne[1] += ts[at[k]].t->ne[1];
            }
            uint8_t *cat = malloc(total);
            LB_GOTO_IF(!cat, err, LB_ERR_NOMEM, "out of memory");
            size_t off = 0;
            for (int k = 0; k <= part; k++) {
                memcpy(cat + off, done[at[k]], dnb[at[k]]);
                off += dnb[at[k]];
            }
            free(bufs[i]);
            bufs[i] = cat;
            char fname[80];
            lb_tensor_name(fname, sizeof fname, fu->gguf, ts[i].layer, false);
            LB_TRY(add_tensor(w, fname, &ft, type, cat, total, err));
            if (plan->progress) lb_progress_update(&bar, i + 1);
            continue;
        }
        LB_TRY(add_tensor(w, ts[i].name, t, type, data, nb, err));
        if (plan->progress) lb_progress_update(&bar, i + 1);
    }
    if (plan->progress) lb_progress_end(&bar);
    LB_TRY(lb_gguf_writer_write(w, path, err));
fail:
    for (int32_t i = 0; bufs && i < cap; i++) free(bufs[i]);
    free(bufs);
    free(done);
    free(dnb);
    free(ts);
    lb_gguf_writer_free(w);
    return st;
}

static uint32_t file_type_of(lb_type t) { /* llama.cpp's llama_ftype for a plain conversion */
    switch (t) {
    case LB_TYPE_F16:  return 1;
    case LB_TYPE_BF16: return 32;
    default:           return 0;
    }
}

lb_status lb_model_save_gguf(const lb_model *m, const char *path, lb_type type, lb_error *err) {
    LB_RETURN_IF(type != LB_TYPE_F32 && type != LB_TYPE_F16 && type != LB_TYPE_BF16, err,
                 LB_ERR_PARAM, "convert writes f32, f16 or bf16, not %s", lb_type_name(type));
    lb_named_tensor *ts    = malloc((size_t)lb_model_n_tensors(m) * sizeof *ts);
    lb_type         *types = malloc((size_t)lb_model_n_tensors(m) * sizeof *types);
    lb_status        st    = LB_ERR_NOMEM;
    if (ts && types) {
        const int32_t n = lb_model_tensors(m, ts);
        st              = LB_OK;
        for (int32_t i = 0; i < n && !st; i++) {
            types[i] = ts[i].t->ne[1] == 1 ? LB_TYPE_F32 : type;
            float v; /* NaN and Inf are kept as they are; a finite value must not become Inf */
            const int64_t at = types[i] == LB_TYPE_F16 ? lb_tensor_find_bad(ts[i].t, 65504.0f, &v) : -1;
            if (at >= 0 && isfinite(v))
                st = lb_fail(err, LB_ERR_NUMERIC, "tensor '%s' holds %g at row %lld, column %lld, past "
                             "the f16 range: convert it to bf16 or f32", ts[i].name, (double)v,
                             (long long)(at / ts[i].t->ne[0]), (long long)(at % ts[i].t->ne[0]));
        }
        const lb_write_plan plan = { .types = types, .file_type = file_type_of(type) };
        if (!st) st = lb_model_write_gguf(m, path, &plan, err);
    } else {
        lb_fail(err, st, "out of memory");
    }
    free(ts);
    free(types);
    return st;
}
