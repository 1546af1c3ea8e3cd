/* Save a model as a llama-architecture GGUF that llama.cpp loads: the `llama.*` keys with
 * the types llama.cpp checks (u32 sizes, f32 epsilon and rope base), llama.cpp's tensor
 * names, the SentencePiece tokenizer as tokenizer.ggml.*, 32-byte alignment. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "model_internal.h"

typedef struct {
    void  **bufs;
    int32_t n;
} buflist;

static void buflist_free(buflist *b) {
    for (int32_t i = 0; i < b->n; i++) free(b->bufs[i]);
    free(b->bufs);
}

/* Add tensor t as `type` (converted into a buffer kept in bl when the type differs). */
static lb_status add(lb_gguf_writer *w, buflist *bl, const char *name, const lb_tensor *t,
                     lb_type type, lb_error *err) {
    const void *data   = t->data;
    size_t      nbytes = lb_tensor_nbytes(t);
    if (type != t->type) {
        const int64_t n   = lb_tensor_nelements(t);
        const size_t  out = lb_row_size(type, t->ne[0]) * (size_t)(n / t->ne[0]);
        float        *row = malloc((size_t)t->ne[0] * sizeof *row);
        uint8_t      *buf = malloc(out);
        void        **nb  = realloc(bl->bufs, (size_t)(bl->n + 1) * sizeof *nb);
        if (nb) bl->bufs = nb;
        if (!row || !buf || !nb) {
            free(row);
            free(buf);
            return lb_fail(err, LB_ERR_NOMEM, "out of memory converting '%s'", name);
        }
        bl->bufs[bl->n++]    = buf;
        const size_t rowsize = lb_row_size(type, t->ne[0]);
        for (int64_t r = 0; r < n / t->ne[0]; r++) {
            lb_tensor_get_row_f32(t, r, row);
            lb_type_get_traits(type)->from_float(buf + (size_t)r * rowsize, row, t->ne[0]);
        }
        free(row);
        data   = buf;
        nbytes = out;
    }
    const int32_t gt = lb_type_to_ggml(type);
    LB_RETURN_IF(gt < 0, err, LB_ERR_UNSUPPORTED, "type %s has no GGUF equivalent", lb_type_name(type));
    return lb_gguf_writer_add_tensor(w, name, (uint32_t)gt, (uint32_t)(t->ne[1] > 1 ? 2 : 1), t->ne,
                                     data, nbytes, err);
}

static uint32_t file_type(lb_type t) { /* llama.cpp's llama_ftype */
    switch (t) {
    case LB_TYPE_F16:  return 1;
    case LB_TYPE_BF16: return 32;
    default:           return 0;
    }
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
        st = lb_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
        if (!st) st = lb_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", texts, (uint64_t)n);
        if (!st) st = lb_gguf_writer_set_arr(w, "tokenizer.ggml.scores", LB_GGUF_F32, scores, (uint64_t)n);
        if (!st) st = lb_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", LB_GGUF_I32, types, (uint64_t)n);
        if (!st) st = lb_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)lb_vocab_bos(v));
        if (!st) st = lb_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)lb_vocab_eos(v));
        if (!st) st = lb_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)lb_vocab_unk(v));
        if (!st) st = lb_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", lb_vocab_add_bos(v));
        if (!st) st = lb_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false);
        if (!st && !lb_vocab_add_space_prefix(v))
            st = lb_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", false);
    }
    free(texts);
    free(scores);
    free(types);
    return st;
}

lb_status lb_model_save_gguf(const lb_model *m, const char *path, lb_type type, lb_error *err) {
    LB_RETURN_IF(type != LB_TYPE_F32 && type != LB_TYPE_F16 && type != LB_TYPE_BF16, err,
                 LB_ERR_PARAM, "convert writes f32, f16 or bf16, not %s", lb_type_name(type));
    const lb_llama_config *c  = &m->cfg;
    lb_gguf_writer        *w  = lb_gguf_writer_create();
    buflist                bl = { 0 };
    lb_status              st = LB_OK;
    LB_RETURN_IF(!w, err, LB_ERR_NOMEM, "out of memory");
    const uint32_t u32s[][2] = {
        { 0, (uint32_t)c->n_ctx_train }, { 1, (uint32_t)c->n_embd },   { 2, (uint32_t)c->n_ff },
        { 3, (uint32_t)c->n_layers },    { 4, (uint32_t)c->n_heads },  { 5, (uint32_t)c->n_kv_heads },
        { 6, (uint32_t)c->head_dim },    { 7, (uint32_t)c->n_vocab },
    };
    static const char *const keys[] = {
        "llama.context_length",       "llama.embedding_length",    "llama.feed_forward_length",
        "llama.block_count",          "llama.attention.head_count", "llama.attention.head_count_kv",
        "llama.rope.dimension_count", "llama.vocab_size",
    };
    st = lb_gguf_writer_set_str(w, "general.architecture", "llama");
    if (!st) st = lb_gguf_writer_set_str(w, "general.name", m->name ? m->name : "lowbit");
    if (!st) st = lb_gguf_writer_set_u32(w, "general.file_type", file_type(type));
    if (!st) st = lb_gguf_writer_set_u32(w, "general.quantization_version", 2);
    if (!st) st = lb_gguf_writer_set_str(w, "general.quantized_by", "lowbit " LB_VERSION);
    for (size_t i = 0; !st && i < sizeof u32s / sizeof u32s[0]; i++)
        st = lb_gguf_writer_set_u32(w, keys[u32s[i][0]], u32s[i][1]);
    if (!st) st = lb_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", c->norm_eps);
    if (!st) st = lb_gguf_writer_set_f32(w, "llama.rope.freq_base", c->rope_theta);
    if (!st) st = write_vocab(w, m->vocab);
    LB_GOTO_IF(st, err, st, "%s: cannot build metadata (%s)", path, lb_status_str(st));

    LB_TRY(add(w, &bl, "token_embd.weight", &m->tok_embd, type, err));
    LB_TRY(add(w, &bl, "output_norm.weight", &m->output_norm, LB_TYPE_F32, err));
    if (!m->tied_output) LB_TRY(add(w, &bl, "output.weight", &m->output, type, err));
    for (int32_t l = 0; l < c->n_layers; l++) {
        const lb_layer *L = &m->layers[l];
        const struct {
            const char      *suffix;
            const lb_tensor *t;
            bool             norm;
        } ts[] = {
            { "attn_norm", &L->attn_norm, true }, { "attn_q", &L->wq, false },
            { "attn_k", &L->wk, false },          { "attn_v", &L->wv, false },
            { "attn_output", &L->wo, false },     { "ffn_norm", &L->ffn_norm, true },
            { "ffn_gate", &L->ffn_gate, false },  { "ffn_down", &L->ffn_down, false },
            { "ffn_up", &L->ffn_up, false },
        };
        for (size_t k = 0; k < sizeof ts / sizeof ts[0]; k++) {
            char n[64];
            snprintf(n, sizeof n, "blk.%d.%s.weight", l, ts[k].suffix);
            LB_TRY(add(w, &bl, n, ts[k].t, ts[k].norm ? LB_TYPE_F32 : type, err));
        }
    }
    LB_TRY(lb_gguf_writer_write(w, path, err));
fail:
    buflist_free(&bl);
    lb_gguf_writer_free(w);
    return st;
}
