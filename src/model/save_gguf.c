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

/* Add tensor t (data of nb bytes, stored as `type`). A type with a ggml id is stored as
 * itself; one without (lowbit's own) as ggml I8 rows of its bytes, with its type name and
 * row length in metadata (see the top of this file). */
static lb_status add_tensor(lb_gguf_writer *w, const char *name, const lb_tensor *t,
                            lb_type type, size_t nb, lb_error *err) {
    const void *data = NULL; /* declared: the bytes come with lb_model_writer_put */
    const uint32_t n_dims = (uint32_t)(t->ne[2] > 1 ? 3 : t->ne[1] > 1 ? 2 : 1);
    const int32_t  gt     = lb_type_to_ggml(type);
    LB_RETURN_IF(lb_type_get_traits(type)->internal, err, LB_ERR_PARAM,
                 "tensor '%s': %s is a kernel layout, not a type a file can hold", name, lb_type_name(type));
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

static lb_status write_windows(lb_gguf_writer *w, const lb_model *m);

/* RoPE scaling as llama.cpp's converter writes it (load_gguf.c reads it back), then the windows:
 * linear or YaRN's type and factor, the original context, the attention factor, YaRN's betas
 * when they are not llama.cpp's defaults; LongRoPE's factors are tensors. */
static lb_status write_rope_scaling(lb_gguf_writer *w, const lb_model *m) {
    const lb_llama_config *c    = &m->cfg;
    const char            *arch = m->arch ? m->arch->gguf : "llama";
    const bool             yarn = c->rope_yarn > 0, linear = c->rope_linear > 0 && c->rope_linear != 1.0f;
    char                   key[96];
    lb_status              st = LB_OK;
    if (linear || yarn) {
        snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
        st = lb_gguf_writer_set_str(w, key, yarn ? "yarn" : "linear");
        snprintf(key, sizeof key, "%s.rope.scaling.factor", arch);
        if (!st) st = lb_gguf_writer_set_f32(w, key, yarn ? c->rope_yarn : c->rope_linear);
    }
    snprintf(key, sizeof key, "%s.rope.scaling.original_context_length", arch);
    if (!st && c->rope_orig_ctx > 0) st = lb_gguf_writer_set_u32(w, key, (uint32_t)c->rope_orig_ctx);
    snprintf(key, sizeof key, "%s.rope.scaling.attn_factor", arch);
    if (!st && c->rope_attn_factor > 0 && c->rope_attn_factor != 1.0f) st = lb_gguf_writer_set_f32(w, key, c->rope_attn_factor);
    snprintf(key, sizeof key, "%s.rope.scaling.yarn_beta_fast", arch);
    if (!st && yarn && c->yarn_beta_fast > 0 && c->yarn_beta_fast != 32.0f) st = lb_gguf_writer_set_f32(w, key, c->yarn_beta_fast);
    snprintf(key, sizeof key, "%s.rope.scaling.yarn_beta_slow", arch);
    if (!st && yarn && c->yarn_beta_slow > 0 && c->yarn_beta_slow != 1.0f) st = lb_gguf_writer_set_f32(w, key, c->yarn_beta_slow);
    return st ? st : write_windows(w, m);
}

/* Sliding windows, soft-capping and the query scale, as load_gguf.c reads them back. */
static lb_status write_windows(lb_gguf_writer *w, const lb_model *m) {
    const lb_llama_config *c = &m->cfg;
    const lb_arch_ops     *o = m->arch ? &m->arch->ops : NULL;
    const char            *arch = m->arch ? m->arch->gguf : "llama";
    char                   key[96];
    lb_status              st = LB_OK;
    /* the window: Mistral's when it has one; Gemma's always (Gemma 2 reads 4096 when absent) */
    snprintf(key, sizeof key, "%s.attention.sliding_window", arch);
    if (o && (o->swa_every || o->swa_pattern > 0) && (c->n_swa > 0 || (o->swa_pattern > 0 && !o->swa_rope_own)))
        st = lb_gguf_writer_set_u32(w, key, (uint32_t)c->n_swa);
    if (o && o->swa_pattern > 0 && (c->n_swa > 0 || !o->swa_rope_own)) {
        snprintf(key, sizeof key, "%s.attention.sliding_window_pattern", arch);
        if (!st && c->swa_pattern != o->swa_pattern) st = lb_gguf_writer_set_u32(w, key, (uint32_t)c->swa_pattern);
        snprintf(key, sizeof key, "%s.rope.freq_base_swa", arch);
        if (!st && c->rope_theta_swa > 0) st = lb_gguf_writer_set_f32(w, key, c->rope_theta_swa);
    }
    if (o && o->softcaps) {
        snprintf(key, sizeof key, "%s.final_logit_softcapping", arch);
        if (!st && (c->final_softcap > 0 || o->final_softcap > 0)) st = lb_gguf_writer_set_f32(w, key, c->final_softcap);
        snprintf(key, sizeof key, "%s.attn_logit_softcapping", arch);
        if (!st && o->attn_softcap > 0) st = lb_gguf_writer_set_f32(w, key, c->attn_softcap);
    }
    snprintf(key, sizeof key, "%s.attention.scale", arch); /* lowbit's, when llama.cpp's rule differs */
    if (!st && c->attn_scale != lb_arch_attn_scale(m->arch, c)) st = lb_gguf_writer_set_f32(w, key, c->attn_scale);
    return st;
}

/* DeepSeek's keys, as llama.cpp's converter writes them (load_gguf.c's mla_keys reads them) */
static lb_status write_mla(lb_gguf_writer *w, const lb_model *m) {
    const lb_llama_config *c = &m->cfg;
    const struct {
        const char *key;
        int32_t     v;
    } u32s[] = {
        { "rope.dimension_count", c->n_rot },          { "attention.key_length", c->n_lora_kv + c->n_rot },
        { "attention.value_length", c->n_lora_kv },    { "attention.key_length_mla", c->head_dim },
        { "attention.value_length_mla", (int32_t)lb_model_dim(m, LB_DIM_DV) },
        { "attention.kv_lora_rank", c->n_lora_kv },    { "attention.q_lora_rank", c->n_lora_q }, /* 0: wq (llama.cpp
                                                          needs the key unless it takes the model for a Lite) */
        { "leading_dense_block_count", c->n_dense_lead }, { "expert_shared_count", c->n_expert_shared },
        { "expert_gating_func", c->moe_gating == LB_GATING_SIGMOID ? 2 : 1 },
        { "expert_group_count", c->n_expert_groups },  { "expert_group_used_count", c->n_group_used },
    };
    char      key[96];
    lb_status st = LB_OK;
    for (size_t i = 0; !st && i < sizeof u32s / sizeof u32s[0]; i++) {
        snprintf(key, sizeof key, "deepseek2.%s", u32s[i].key);
        if (u32s[i].v > 0 || i < 7) st = lb_gguf_writer_set_u32(w, key, (uint32_t)u32s[i].v);
    }
    if (!st && c->moe_w_scale > 0) st = lb_gguf_writer_set_f32(w, "deepseek2.expert_weights_scale", c->moe_w_scale);
    if (!st && c->moe_norm_w) st = lb_gguf_writer_set_bool(w, "deepseek2.expert_weights_norm", true);
    if (!st && c->rope_yarn_log_mul > 0) /* as the converter writes it: 0.1 * mscale_all_dim */
        st = lb_gguf_writer_set_f32(w, "deepseek2.rope.scaling.yarn_log_multiplier", 0.1f * c->rope_yarn_log_mul);
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
        { "vocab_size", c->n_vocab },              { "rope.dimension_count", c->head_dim },
        { "attention.key_length", c->head_dim },   { "attention.value_length", c->head_dim },
    };
    /* the head size goes in only when it is not n_embd / n_heads (llama.cpp's default); MLA
     * writes its own */
    const bool   mla   = m->arch && m->arch->ops.mla;
    const size_t n_u32 = sizeof u32s / sizeof u32s[0] - (mla ? 3 : c->head_dim * c->n_heads == c->n_embd ? 2 : 0);
    char         key[96];
    lb_status    st = lb_gguf_writer_set_str(w, "general.architecture", arch);
    if (!st) st = lb_gguf_writer_set_str(w, "general.name", m->name ? m->name : "lowbit");
    if (!st) st = lb_gguf_writer_set_u32(w, "general.file_type", file_type);
    if (!st) st = lb_gguf_writer_set_u32(w, "general.quantization_version", 2);
    for (size_t i = 0; !st && i < n_u32; i++) {
        snprintf(key, sizeof key, "%s.%s", arch, u32s[i].key);
        st = lb_gguf_writer_set_u32(w, key, (uint32_t)u32s[i].v);
    }
    const struct {
        const char *key;
        int32_t     v;
    } moe[] = { /* a mixture of experts' (Mixtral's expert FFN is feed_forward_length) */
        { "expert_count", c->n_expert }, { "expert_used_count", c->n_expert_used },
        { "expert_feed_forward_length", c->n_ff_exp }, { "expert_shared_feed_forward_length", c->n_ff_shexp },
    };
    for (size_t i = 0; !st && c->n_expert > 0 && i < sizeof moe / sizeof moe[0] - mla; i++) {
        snprintf(key, sizeof key, "%s.%s", arch, moe[i].key);
        if (moe[i].v > 0) st = lb_gguf_writer_set_u32(w, key, (uint32_t)moe[i].v);
    }
    if (!st && mla) st = write_mla(w, m);
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", arch);
    if (!st) st = lb_gguf_writer_set_f32(w, key, c->norm_eps);
    snprintf(key, sizeof key, "%s.rope.freq_base", arch);
    if (!st) st = lb_gguf_writer_set_f32(w, key, c->rope_theta);
    return st ? st : write_rope_scaling(w, m);
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
    if (!lb_model_gguf(m)) return write_own(w, m, file_type, add_meta, user);
    lb_gguf_writer *own = lb_gguf_writer_create();
    lb_status       st  = own ? write_own(own, m, file_type, add_meta, user) : LB_ERR_NOMEM;
    if (!st) st = lb_model_merge_meta(w, lb_model_gguf(m), own, m->priv->vocab_from_meta, err);
    if (!st) st = lb_gguf_writer_add_tensors_of(w, own, err); /* add_meta's (LLM.int8's outlier columns) */
    lb_gguf_writer_free(own);
    return st;
}

/* The <arch>.* keys and the tokenizer of m (for writers that add tensors their own way), kept
 * with the input's other keys when m came from a GGUF. */
lb_status lb_model_write_meta(lb_gguf_writer *w, const lb_model *m, uint32_t file_type) {
    return write_keys(w, m, file_type, NULL, NULL, NULL);
}

struct lb_model_writer {
    lb_gguf_writer  *w;
    const lb_model  *m;
    lb_named_tensor *ts;
    int32_t          n;
    lb_type         *types;
    size_t          *nbytes; /* [n] stored bytes of each tensor */
    int64_t         *gi;     /* [n] its index in the file; a fused part: the fused tensor's */
    int32_t         *last;   /* [n] a fused part: the index of the tensor's last part; else i */
    void           **held;   /* [n] a fused part's bytes until its tensor is complete */
    bool            *part;   /* [n] a part of a fused tensor */
};

void lb_model_writer_free(lb_model_writer *mw) {
    if (!mw) return;
    for (int32_t i = 0; mw->held && i < mw->n; i++) free(mw->held[i]);
    lb_gguf_writer_free(mw->w); /* removes the temp unless committed */
    free(mw->ts), free(mw->types), free(mw->nbytes), free(mw->gi), free(mw->last), free(mw->held);
    free(mw->part);
    free(mw);
}

/* the parts of fused tensor `last` (its last part) in order: indices into at[], returns how many */
static int fused_parts(const lb_model_writer *mw, int32_t last, int32_t at[3]) {
    int             part, k = 0;
    const lb_fused *fu = lb_arch_fusion(mw->m->arch, mw->ts[last].role, &part);
    for (int p = 0; p <= part; p++)
        for (int32_t j = last; j >= 0; j--)
            if (mw->ts[j].layer == mw->ts[last].layer && mw->ts[j].role == fu->parts[p]) {
                at[k++] = j;
                break;
            }
    return k;
}

lb_status lb_model_writer_open(lb_model_writer **out, const lb_model *m, const char *path,
                               const lb_write_plan *plan, lb_error *err) {
    *out                = NULL;
    const int32_t    cap = lb_model_n_tensors(m);
    lb_model_writer *mw = calloc(1, sizeof *mw);
    lb_status        st = LB_OK;
    LB_RETURN_IF(!mw, err, LB_ERR_NOMEM, "out of memory");
    mw->m      = m;
    mw->w      = lb_gguf_writer_create();
    mw->ts     = malloc((size_t)cap * sizeof *mw->ts);
    mw->types  = malloc((size_t)cap * sizeof *mw->types);
    mw->nbytes = malloc((size_t)cap * sizeof *mw->nbytes);
    mw->gi     = malloc((size_t)cap * sizeof *mw->gi);
    mw->last   = malloc((size_t)cap * sizeof *mw->last);
    mw->held   = calloc((size_t)cap, sizeof *mw->held);
    mw->part   = calloc((size_t)cap, sizeof *mw->part);
    LB_GOTO_IF(!mw->w || !mw->ts || !mw->types || !mw->nbytes || !mw->gi || !mw->last || !mw->held || !mw->part, err,
               LB_ERR_NOMEM, "out of memory");
    mw->n = lb_model_tensors(m, mw->ts, lb_model_n_tensors(m));
    lb_error kerr = { 0 };
    for (int32_t k = 0; !st && k < plan->n_kv_overrides; k++) st = lb_gguf_writer_override(mw->w, plan->kv_overrides[k], &kerr);
    if (!st) st = write_keys(mw->w, m, plan->file_type, plan->add_meta, plan->user, &kerr);
    LB_GOTO_IF(st, err, st, "%s: cannot build metadata (%s)", path, kerr.code ? kerr.msg : lb_status_str(st));
    for (int32_t i = 0; i < mw->n; i++) {
        const lb_tensor *t    = mw->ts[i].t;
        const lb_type    type = plan->types[i];
        const size_t     rs   = lb_row_size(type, t->ne[0]);
        LB_GOTO_IF(rs == 0, err, LB_ERR_SHAPE, "%s: tensor '%s': rows of %lld do not fit type %s", path,
                   mw->ts[i].name, (long long)t->ne[0], lb_type_name(type));
        mw->types[i]  = type;
        mw->nbytes[i] = rs * (size_t)(lb_tensor_nelements(t) / t->ne[0]);
        mw->last[i]   = i;
        mw->gi[i]     = -1;
    }
    int64_t next = (int64_t)lb_gguf_writer_n_tensors(mw->w); /* after those add_meta gave (W8A8's) */
    for (int32_t i = 0; i < mw->n; i++) {
        int             part;
        const lb_fused *fu = lb_arch_fusion(m->arch, mw->ts[i].role, &part);
        if (fu && fu->gguf_write) { /* stored as one tensor (Phi-3's ffn_up: gate's rows, then up's) */
            if (part + 1 < 3 && fu->parts[part + 1] != LB_ROLE_COUNT) continue; /* the last part declares */
            int32_t   at[3];
            const int np = fused_parts(mw, i, at);
            size_t    total = 0;
            lb_tensor ft    = *mw->ts[i].t;
            ft.ne[1]        = 0;
            LB_GOTO_IF(np != part + 1, err, LB_ERR_PARAM, "%s: blk.%d.%s: a part is missing", path, mw->ts[i].layer,
                       fu->gguf);
            for (int k = 0; k < np; k++) {
                LB_GOTO_IF(mw->types[at[k]] != mw->types[i], err, LB_ERR_PARAM, "%s: blk.%d.%s holds several "
                           "tensors in one; give them one type", path, mw->ts[i].layer, fu->gguf);
                total += mw->nbytes[at[k]];
                ft.ne[1] += mw->ts[at[k]].t->ne[1];
                mw->gi[at[k]]   = next;
                mw->last[at[k]] = i;
                mw->part[at[k]] = true;
            }
            char fname[80];
            lb_tensor_name(fname, sizeof fname, fu->gguf, mw->ts[i].layer, false);
            LB_TRY(add_tensor(mw->w, fname, &ft, mw->types[i], total, err));
        } else {
            mw->gi[i] = next;
            LB_TRY(add_tensor(mw->w, mw->ts[i].name, mw->ts[i].t, mw->types[i], mw->nbytes[i], err));
        }
        next++;
    }
    lb_gguf_writer_split(mw->w, plan->split_max_bytes, (uint64_t)(plan->split_max_tensors > 0 ? plan->split_max_tensors : 0));
    for (int32_t i = 0; plan->keep_split && lb_model_gguf(m) && i < mw->n; i++) { /* each where the input had it */
        const char   *name = mw->part[i] ? NULL : mw->ts[i].name;
        const int64_t at   = name ? lb_gguf_find_tensor(lb_model_gguf(m), name) : -1;
        if (at >= 0 && mw->gi[i] >= 0)
            LB_TRY(lb_gguf_writer_set_shard(mw->w, (uint64_t)mw->gi[i], (uint16_t)lb_gguf_tensor_shard(lb_model_gguf(m), at), err));
    }
    if (plan->partial) LB_TRY(lb_gguf_writer_begin_partial(mw->w, plan->partial, path, plan->resume, err));
    else LB_TRY(lb_gguf_writer_begin(mw->w, path, err));
    *out = mw;
    return LB_OK;
fail:
    lb_model_writer_free(mw);
    return st;
}

lb_status lb_model_writer_put(lb_model_writer *mw, int32_t i, const void *data, size_t nb,
                              lb_error *err) {
    LB_RETURN_IF(i < 0 || i >= mw->n, err, LB_ERR_PARAM, "writer: no tensor %d", i);
    LB_RETURN_IF(nb != mw->nbytes[i], err, LB_ERR_SHAPE, "writer: tensor '%s': %zu bytes given, %zu planned",
                 mw->ts[i].name, nb, mw->nbytes[i]);
    const lb_tensor *t    = mw->ts[i].t;
    void            *own  = NULL;
    lb_status        st   = LB_OK;
    const int64_t    hr   = mw->m->arch && mw->m->arch->rope_neox ? lb_rotary_head_rows(mw->m, lb_slot_of(mw->ts[i].role)) : 0;
    if (hr > 0) { /* NEOX-rope architectures store rotary rows split in halves (rotary.h) */
        const bool    vec  = t->ne[1] == 1;
        const int64_t rows = vec ? t->ne[0] : t->ne[1];
        const size_t  rb   = vec ? lb_row_size(mw->types[i], 1) : lb_row_size(mw->types[i], t->ne[0]);
        LB_RETURN_IF(rows % hr || (size_t)rows * rb != nb, err, LB_ERR_SHAPE,
                     "writer: tensor '%s' cannot be stored in rotary halves", mw->ts[i].name);
        LB_RETURN_IF(!(own = malloc(nb)), err, LB_ERR_NOMEM, "out of memory");
        lb_rotary_rows(own, data, rows, rb, hr, false);
        data = own;
    }
    if (!mw->part[i]) {
        st = lb_gguf_writer_put(mw->w, (uint64_t)mw->gi[i], data, nb, err);
        free(own);
        return st;
    }
    /* a part of a fused tensor: held until every part is here, then written in part order */
    LB_GOTO_IF(mw->held[i], err, LB_ERR_PARAM, "writer: tensor '%s' given twice", mw->ts[i].name);
    if (!own) {
        LB_GOTO_IF(!(own = malloc(nb)), err, LB_ERR_NOMEM, "out of memory");
        memcpy(own, data, nb);
    }
    mw->held[i] = own;
    own         = NULL;
    int32_t   at[3];
    const int np    = fused_parts(mw, mw->last[i], at);
    size_t    total = 0;
    for (int k = 0; k < np; k++) {
        if (!mw->held[at[k]]) return LB_OK;
        total += mw->nbytes[at[k]];
    }
    uint8_t *cat = malloc(total);
    LB_GOTO_IF(!cat, err, LB_ERR_NOMEM, "out of memory");
    for (size_t k = 0, off = 0; k < (size_t)np; off += mw->nbytes[at[k]], k++) {
        memcpy(cat + off, mw->held[at[k]], mw->nbytes[at[k]]);
        free(mw->held[at[k]]);
        mw->held[at[k]] = NULL;
    }
    st = lb_gguf_writer_put(mw->w, (uint64_t)mw->gi[i], cat, total, err);
    free(cat);
fail:
    free(own);
    return st;
}

void lb_model_writer_assume(lb_model_writer *mw, int32_t i) {
    if (i >= 0 && i < mw->n && mw->gi[i] >= 0) lb_gguf_writer_assume(mw->w, (uint64_t)mw->gi[i]);
}

lb_status lb_model_writer_sync(lb_model_writer *mw, lb_error *err) {
    return lb_gguf_writer_sync(mw->w, err);
}

lb_status lb_model_writer_commit(lb_model_writer *mw, lb_error *err) {
    const lb_status st = lb_gguf_writer_finish(mw->w, err);
    lb_model_writer_free(mw);
    return st;
}

lb_status lb_model_write_gguf(const lb_model *m, const char *path, const lb_write_plan *plan,
                              lb_error *err) {
    lb_model_writer *mw;
    lb_status        st = lb_model_writer_open(&mw, m, path, plan, err);
    if (st) return st;
    if (plan->progress) plan->progress(plan->progress_user, "write", 0, mw->n);
    for (int32_t i = 0; i < mw->n && !st; i++) {
        const lb_tensor *t    = mw->ts[i].t;
        const lb_type    type = plan->types[i];
        void            *buf  = NULL;
        size_t           nb   = lb_tensor_nbytes(t);
        if (plan->data && plan->data[i]) {
            st = lb_model_writer_put(mw, i, plan->data[i], mw->nbytes[i], err);
        } else if (type != t->type) {
            lb_error cerr = { 0 };
            st = lb_tensor_convert(t, type, plan->importance ? plan->importance[i] : NULL, plan->prepare_rows,
                                   plan->user, &buf, &nb, &cerr);
            if (st) lb_fail(err, st, "%s: tensor '%s': %s", path, mw->ts[i].name, cerr.msg);
            else st = lb_model_writer_put(mw, i, buf, nb, err);
        } else {
            st = lb_model_writer_put(mw, i, t->data, nb, err);
        }
        free(buf);
        if (plan->progress) plan->progress(plan->progress_user, "write", i + 1, mw->n);
    }
    if (st) {
        lb_model_writer_free(mw);
        return st;
    }
    return lb_model_writer_commit(mw, err);
}

static uint32_t file_type_of(lb_type t) { /* llama.cpp's llama_ftype for a plain conversion */
    switch (t) {
    case LB_TYPE_F16:  return 1;
    case LB_TYPE_BF16: return 32;
    case LB_TYPE_Q4_0: return 2;
    case LB_TYPE_Q4_1: return 3;
    case LB_TYPE_Q8_0: return 7;
    default:           return 0;
    }
}

lb_status lb_model_save_gguf(const lb_model *m, const char *path, lb_type type, lb_error *err) {
    const bool keep = type == LB_TYPE_INVALID;
    LB_RETURN_IF(!keep && type != LB_TYPE_F32 && type != LB_TYPE_F16 && type != LB_TYPE_BF16, err,
                 LB_ERR_PARAM, "convert writes f32, f16 or bf16, not %s", lb_type_name(type));
    lb_named_tensor *ts    = malloc((size_t)lb_model_n_tensors(m) * sizeof *ts);
    lb_type         *types = malloc((size_t)lb_model_n_tensors(m) * sizeof *types);
    lb_status        st    = LB_ERR_NOMEM;
    lb_type          type_of_file = type; /* keep: the first ffn_down's, as llama.cpp names a mix */
    if (ts && types) {
        const int32_t n = lb_model_tensors(m, ts, lb_model_n_tensors(m));
        st              = LB_OK;
        for (int32_t i = 0; i < n && !st; i++) {
            /* norms, biases and a router f32, as llama.cpp's converter writes them */
            types[i] = keep ? ts[i].t->type
                     : ts[i].t->ne[1] == 1 || (lb_slot_of(ts[i].role)->flags & LB_SLOT_F32) ? LB_TYPE_F32 : type;
            if (keep && (ts[i].role == LB_ROLE_FFN_DOWN || ts[i].role == LB_ROLE_FFN_DOWN_EXPS) && ts[i].layer == 0)
                type_of_file = types[i];
            float v; /* NaN and Inf are kept as they are; a finite value must not become Inf */
            const int64_t at = types[i] == LB_TYPE_F16 ? lb_tensor_find_bad(ts[i].t, 65504.0f, &v) : -1;
            if (at >= 0 && isfinite(v))
                st = lb_fail(err, LB_ERR_NUMERIC, "tensor '%s' holds %g at row %lld, column %lld, past "
                             "the f16 range: convert it to bf16 or f32", ts[i].name, (double)v,
                             (long long)(at / ts[i].t->ne[0]), (long long)(at % ts[i].t->ne[0]));
        }
        const lb_write_plan plan = { .types = types, .file_type = file_type_of(type_of_file) };
        if (!st) st = lb_model_write_gguf(m, path, &plan, err);
    } else {
        lb_fail(err, st, "out of memory");
    }
    free(ts);
    free(types);
    return st;
}
