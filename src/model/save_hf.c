/* Save a model as a Hugging Face directory transformers loads: config.json
 * (LlamaForCausalLM, or Qwen2ForCausalLM when the attention has biases), generation_config.json,
 * model.safetensors (weight matrices in f32/f16/bf16, norms and biases f32), tokenizer.json and
 * tokenizer_config.json. Q and K rows (and biases) go back from GGUF's adjacent rotary pairs
 * to HF's half-split order (the inverse of load_hf.c). The directory is built under a unique
 * temporary name beside DIR and renamed at the end (lb_out): never a partial output. */
#include <dirent.h>
#include <math.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fail.h"
#include "core/json.h"
#include "hf_quant.h"
#include "lowbit/hf.h"
#include "lowbit/safetensors.h"
#include "model_internal.h"
#include "rotary.h"

/* dir/name into out; false when it does not fit. */
static bool join(char *out, size_t cap, const char *dir, const char *name, const char *ext) {
    const int k = snprintf(out, cap, "%s/%s%s", dir, name, ext);
    return k > 0 && (size_t)k < cap;
}

/* rope_freqs as rope_scaling "llama3": factor = the largest divisor, the other parameters
 * llama's (1, 4) with the original context a power of two or n_ctx; 0 when none fits. */
static bool llama3_params(const lb_model *m, float out[4]) {
    const int32_t half = m->cfg.head_dim / 2;
    const float  *ff   = m->rope_freqs.data;
    float         mx = 1.0f, *t = malloc((size_t)half * sizeof *t);
    if (!t) return false;
    for (int32_t j = 0; j < half; j++) mx = ff[j] > mx ? ff[j] : mx;
    bool ok = false;
    for (int k = 4; k <= 21 && !ok; k++) {
        const float orig = k == 21 ? (float)m->cfg.n_ctx_train : (float)(1 << k);
        lb_rope_llama3_factors(t, m->cfg.head_dim, m->cfg.rope_theta, mx, 1.0f, 4.0f, orig);
        ok = memcmp(t, ff, (size_t)half * sizeof *t) == 0;
        out[0] = mx, out[1] = 1.0f, out[2] = 4.0f, out[3] = orig;
    }
    free(t);
    return ok;
}

/* x as the shortest decimal that reads back as the same float (integral ones as 10000.0). */
static const char *shortest(char *s, size_t cap, float x) {
    if (x == (float)(int32_t)x) {
        snprintf(s, cap, "%.1f", (double)x);
        return s;
    }
    for (int p = 1; p <= 9; p++) {
        snprintf(s, cap, "%.*g", p, (double)x);
        if ((float)strtod(s, NULL) == x) break;
    }
    return s;
}

static void put_float(lb_strbuf *b, const char *key, float x) {
    char s[32];
    lb_strbuf_printf(b, ",\n  \"%s\": %s", key, shortest(s, sizeof s, x));
}

static void put_floats(lb_strbuf *b, const char *key, const float *x, int32_t n) {
    char s[32];
    lb_strbuf_printf(b, ",\n  \"%s\": [", key);
    for (int32_t i = 0; i < n; i++) lb_strbuf_printf(b, "%s%s", i ? ", " : "", shortest(s, sizeof s, x[i]));
    lb_strbuf_printf(b, "]");
}

/* Gemma's windows (and each layer's type, as newer transformers read them), soft-capping and
 * query scale (load_hf.c's gemma_config reads them back). */
static void put_gemma(lb_strbuf *b, const lb_model *m) {
    const lb_llama_config *c = &m->cfg;
    if (c->n_swa > 0) {
        lb_strbuf_printf(b, ",\n  \"sliding_window\": %d,\n  \"sliding_window_pattern\": %d,\n  \"layer_types\": [",
                         c->n_swa, c->swa_pattern);
        for (int32_t l = 0; l < c->n_layers; l++)
            lb_strbuf_printf(b, "%s\"%s\"", l ? ", " : "", lb_layer_windowed(c, l) ? "sliding_attention" : "full_attention");
        lb_strbuf_printf(b, "]");
    } else {
        lb_strbuf_printf(b, ",\n  \"sliding_window\": null");
    }
    if (m->arch->ops.swa_rope_own) put_float(b, "rope_local_base_freq", c->rope_theta_swa > 0 ? c->rope_theta_swa : 10000.0f);
    if (c->final_softcap > 0) put_float(b, "final_logit_softcapping", c->final_softcap);
    else lb_strbuf_printf(b, ",\n  \"final_logit_softcapping\": null");
    if (c->attn_softcap > 0) put_float(b, "attn_logit_softcapping", c->attn_softcap);
    else lb_strbuf_printf(b, ",\n  \"attn_logit_softcapping\": null");
    const float scale = c->attn_scale > 0 ? c->attn_scale : 1.0f / sqrtf((float)c->head_dim);
    put_float(b, "query_pre_attn_scalar", c->attn_scale > 0 ? 1.0f / (scale * scale) : (float)c->head_dim);
}

/* gptq_bits > 0: a GPTQ checkpoint's quantization_config (symmetric, v1 zeros, no act-order). */
/* DeepSeek's fields (load_hf.c's mla_config reads them back) */
static void put_deepseek(lb_strbuf *b, const lb_llama_config *c) {
    if (c->n_lora_q > 0) lb_strbuf_printf(b, ",\n  \"q_lora_rank\": %d", c->n_lora_q);
    else lb_strbuf_printf(b, ",\n  \"q_lora_rank\": null");
    lb_strbuf_printf(b, ",\n  \"kv_lora_rank\": %d,\n  \"qk_nope_head_dim\": %d,\n  \"qk_rope_head_dim\": %d,\n"
                        "  \"v_head_dim\": %d,\n  \"n_routed_experts\": %d,\n  \"num_experts_per_tok\": %d,\n"
                        "  \"moe_intermediate_size\": %d,\n  \"n_shared_experts\": %d,\n  \"first_k_dense_replace\": %d,\n"
                        "  \"moe_layer_freq\": 1,\n  \"norm_topk_prob\": %s,\n  \"scoring_func\": \"%s\",\n"
                        "  \"topk_method\": \"%s\",\n  \"n_group\": %d,\n  \"topk_group\": %d",
                     c->n_lora_kv, c->head_dim - c->n_rot, c->n_rot, c->head_dim_v > 0 ? c->head_dim_v : c->head_dim,
                     c->n_expert, c->n_expert_used, c->n_ff_exp, c->n_expert_shared, c->n_dense_lead,
                     c->moe_norm_w ? "true" : "false", c->moe_gating == LB_GATING_SIGMOID ? "sigmoid" : "softmax",
                     c->moe_gating == LB_GATING_SIGMOID ? "noaux_tc" : c->n_expert_groups > 1 ? "group_limited_greedy" : "greedy",
                     c->n_expert_groups > 0 ? c->n_expert_groups : 1,
                     c->n_group_used > 0 ? c->n_group_used : 1);
    put_float(b, "routed_scaling_factor", c->moe_w_scale > 0 ? c->moe_w_scale : 1.0f);
}

static char *config_json(const lb_model *m, lb_type type, bool bias, const float *scaling, int32_t gptq_bits,
                         int32_t gptq_group) {
    const lb_llama_config *c = &m->cfg;
    lb_strbuf              b = { 0 };
    /* llama with biases (a Qwen2 model lowbit wrote as llama) goes back as Qwen2 */
    const lb_arch *arch = bias && !strcmp(m->arch->name, "llama") ? lb_arch_find("qwen2", 5) : m->arch;
    const int      cls  = arch->ops.swa_every && c->n_swa > 0 ? 1 /* a window: Mistral's class */
                        : arch->ops.mla && c->moe_gating == LB_GATING_SIGMOID ? 1 : 0; /* DeepSeek-V3's router */
    lb_strbuf_printf(&b, "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\"",
                     arch->hf_class[cls], arch->hf_type[cls]);
    const struct {
        const char *k;
        int32_t     v;
    } ints[] = {
        { "hidden_size", c->n_embd },          { "intermediate_size", c->n_ff },
        { "num_hidden_layers", c->n_layers },  { "num_attention_heads", c->n_heads },
        { "num_key_value_heads", c->n_kv_heads }, { "head_dim", c->head_dim },
        { "vocab_size", c->n_vocab },          { "max_position_embeddings", c->n_ctx_train },
        { "bos_token_id", lb_vocab_bos(m->vocab) }, { "eos_token_id", lb_vocab_eos(m->vocab) },
    };
    const bool mla = arch->ops.mla; /* DeepSeek: its own head sizes; HF's KV heads are the query heads */
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (ints[i].v >= 0 && !(mla && !strcmp(ints[i].k, "head_dim")))
            lb_strbuf_printf(&b, ",\n  \"%s\": %d", ints[i].k, mla && !strcmp(ints[i].k, "num_key_value_heads") ? c->n_heads : ints[i].v);
    put_float(&b, "rms_norm_eps", c->norm_eps);
    put_float(&b, "rope_theta", c->rope_theta);
    if (scaling) {
        lb_strbuf_printf(&b, ",\n  \"rope_scaling\": {\"rope_type\": \"llama3\"");
        put_float(&b, "factor", scaling[0]);
        put_float(&b, "low_freq_factor", scaling[1]);
        put_float(&b, "high_freq_factor", scaling[2]);
        put_float(&b, "original_max_position_embeddings", scaling[3]);
        lb_strbuf_printf(&b, "}");
    } else if (c->rope_linear > 0 && c->rope_linear != 1.0f) {
        lb_strbuf_printf(&b, ",\n  \"rope_scaling\": {\"rope_type\": \"linear\"");
        put_float(&b, "factor", c->rope_linear);
        lb_strbuf_printf(&b, "}");
    } else if (c->rope_yarn > 0) { /* the attention factor: transformers' whole one */
        const float ms = lb_rope_yarn_mscale(c->rope_yarn, 1.0f);
        lb_strbuf_printf(&b, ",\n  \"rope_scaling\": {\"rope_type\": \"yarn\"");
        put_float(&b, "factor", c->rope_yarn);
        lb_strbuf_printf(&b, ",\n  \"original_max_position_embeddings\": %d", c->rope_orig_ctx > 0 ? c->rope_orig_ctx : c->n_ctx_train);
        put_float(&b, "beta_fast", c->yarn_beta_fast > 0 ? c->yarn_beta_fast : 32.0f);
        put_float(&b, "beta_slow", c->yarn_beta_slow > 0 ? c->yarn_beta_slow : 1.0f);
        if (c->rope_attn_factor > 0 && c->rope_attn_factor != 1.0f) put_float(&b, "attention_factor", c->rope_attn_factor * ms);
        if (mla && c->rope_yarn_log_mul > 0) { /* DeepSeek's: the query scale's */
            put_float(&b, "mscale", c->rope_yarn_log_mul);
            put_float(&b, "mscale_all_dim", c->rope_yarn_log_mul);
        }
        lb_strbuf_printf(&b, "}");
    } else if (m->rope_long.data) {
        lb_strbuf_printf(&b, ",\n  \"rope_scaling\": {\"rope_type\": \"longrope\"");
        put_floats(&b, "long_factor", m->rope_long.data, c->head_dim / 2);
        put_floats(&b, "short_factor", m->rope_short.data, c->head_dim / 2);
        put_float(&b, "attention_factor", c->rope_attn_factor > 0 ? c->rope_attn_factor : 1.0f);
        lb_strbuf_printf(&b, "},\n  \"original_max_position_embeddings\": %d", c->rope_orig_ctx > 0 ? c->rope_orig_ctx : c->n_ctx_train);
    } else {
        lb_strbuf_printf(&b, ",\n  \"rope_scaling\": null");
    }
    const bool gelu = arch->ops.act == LB_ACT_GELU_TANH;
    lb_strbuf_printf(&b, ",\n  \"%s\": \"%s\",\n  \"tie_word_embeddings\": %s", gelu ? "hidden_activation" : "hidden_act",
                     gelu ? "gelu_pytorch_tanh" : "silu", m->tied_output ? "true" : "false");
    if (arch->ops.swa_pattern > 0) put_gemma(&b, m);
    else if (cls) lb_strbuf_printf(&b, ",\n  \"sliding_window\": %d", c->n_swa);
    else if (strcmp(arch->name, "llama") != 0) lb_strbuf_printf(&b, ",\n  \"use_sliding_window\": false");
    if (!bias) lb_strbuf_printf(&b, ",\n  \"attention_bias\": false,\n  \"mlp_bias\": false");
    if (mla) put_deepseek(&b, c);
    else if (arch->moe && !arch->ops.moe_ff_exp) /* Mixtral */
        lb_strbuf_printf(&b, ",\n  \"num_local_experts\": %d,\n  \"num_experts_per_tok\": %d", c->n_expert, c->n_expert_used);
    else if (arch->moe)
        lb_strbuf_printf(&b, ",\n  \"num_experts\": %d,\n  \"num_experts_per_tok\": %d,\n  \"moe_intermediate_size\": %d,\n"
                         "  \"norm_topk_prob\": %s,\n  \"decoder_sparse_step\": 1,\n  \"mlp_only_layers\": []",
                         c->n_expert, c->n_expert_used, c->n_ff_exp > 0 ? c->n_ff_exp : c->n_ff,
                         arch->ops.moe_norm ? "true" : "false");
    if (arch->moe && !mla && c->n_ff_shexp > 0)
        lb_strbuf_printf(&b, ",\n  \"shared_expert_intermediate_size\": %d", c->n_ff_shexp);
    if (gptq_bits > 0)
        lb_strbuf_printf(&b, ",\n  \"quantization_config\": {\"quant_method\": \"gptq\", \"bits\": %d, "
                         "\"group_size\": %d, \"sym\": true, \"desc_act\": false, \"checkpoint_format\": \"gptq\", "
                         "\"true_sequential\": true, \"static_groups\": false, \"lm_head\": false}", gptq_bits, gptq_group);
    lb_strbuf_printf(&b, ",\n  \"torch_dtype\": \"%s\",\n  \"use_cache\": true\n}\n",
                     type == LB_TYPE_F32 ? "float32" : type == LB_TYPE_F16 ? "float16" : "bfloat16");
    return b.oom ? (free(b.p), NULL) : b.p;
}

/* t in `type`, rows permuted from rotary pairs to half-split when heads > 0; *out is t's own
 * data when nothing changes, else a new buffer (*owned). */
static lb_status convert(const lb_tensor *t, lb_type type, int32_t heads, float shift, const void **out,
                         void **owned, size_t *nbytes) {
    const bool    vec  = t->ne[1] == 1 && heads > 0; /* a bias: its elements are the rows */
    const int64_t cols = vec ? 1 : t->ne[0], rows = vec ? t->ne[0] : lb_tensor_nelements(t) / t->ne[0];
    const size_t  es = type == LB_TYPE_F32 ? 4 : 2, rb = es * (size_t)cols;
    *nbytes          = rb * (size_t)rows;
    *owned           = NULL;
    if (t->type == type && heads <= 0 && shift == 0) {
        *out = t->data;
        return LB_OK;
    }
    uint8_t *buf = malloc(*nbytes ? *nbytes : 1);
    float   *row = malloc((size_t)t->ne[0] * sizeof *row);
    if (!buf || !row) {
        free(buf);
        free(row);
        return LB_ERR_NOMEM;
    }
    const int64_t D = heads > 0 ? rows / heads : 2;
    if (vec) lb_tensor_get_row_f32(t, 0, row); /* the whole vector */
    for (int64_t r = 0; r < rows; r++) {
        int64_t src = r; /* HF row r = h*D + s*D/2 + j comes from row h*D + 2j + s */
        if (heads > 0) {
            const int64_t h = r / D, i = r % D, s = i / (D / 2), j = i % (D / 2);
            src             = h * D + 2 * j + s;
        }
        const float *x = row;
        if (vec) x = row + src;
        else lb_tensor_get_row_f32(t, src, row);
        uint8_t *o = buf + (size_t)r * rb;
        for (int64_t k = 0; k < cols; k++) {
            const float xk = x[k] + shift;
            if (type == LB_TYPE_F32) {
                memcpy(o + 4 * k, &xk, 4);
            } else {
                const uint16_t hv = type == LB_TYPE_F16 ? lb_f32_to_f16(xk) : lb_f32_to_bf16(xk);
                memcpy(o + 2 * k, &hv, 2);
            }
        }
    }
    free(row);
    *out   = buf;
    *owned = buf;
    return LB_OK;
}

static lb_status write_text(const char *dir, const char *name, const char *text, lb_error *err) {
    char path[4096];
    LB_RETURN_IF(!join(path, sizeof path, dir, name, ""), err, LB_ERR_PARAM, "%s: path too long", dir);
    FILE *f = fopen(path, "wb");
    LB_RETURN_IF(!f, err, LB_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    const size_t n  = strlen(text);
    const bool   ok = fwrite(text, 1, n, f) == n;
    LB_RETURN_IF(fclose(f) != 0 || !ok, err, LB_ERR_IO, "%s: write failed", path);
    return LB_OK;
}

/* A GPTQ checkpoint's packed layer: the rows of the parts of HF tensor `name` (one part, or a
 * fused tensor's), Q/K rows back in the half-split order, as NAME.qweight, .qzeros, .scales
 * and .g_idx into ts[*n..*n+3]; their buffers go to own. */
static lb_status put_packed(const lb_named_tensor *parts, int np, const lb_model *m, const char *name,
                            lb_st_write_tensor *ts, void **own, char (*names)[96], int32_t *n, lb_error *err) {
    int64_t n_out = 0;
    for (int k = 0; k < np; k++) n_out += parts[k].t->ne[1];
    const lb_type t    = parts[0].t->type;
    const int64_t n_in = parts[0].t->ne[0];
    const void  **rows = malloc((size_t)n_out * sizeof *rows);
    uint8_t      *hold[3] = { NULL, NULL, NULL }; /* rotary rows reordered */
    lb_status     st   = LB_OK;
    LB_GOTO_IF(!rows, err, LB_ERR_NOMEM, "out of memory");
    for (int k = 0, r0 = 0; k < np; r0 += (int)parts[k].t->ne[1], k++) {
        const lb_tensor *pt = parts[k].t;
        const int64_t    hr = lb_rotary_head_rows(m, lb_slot_of(parts[k].role));
        const size_t     rb = lb_row_size(t, n_in);
        const uint8_t   *src = pt->data;
        LB_GOTO_IF(pt->type != t, err, LB_ERR_UNSUPPORTED, "%s: its parts are stored in %s and %s", name,
                   lb_type_name(t), lb_type_name(pt->type));
        if (hr > 0) {
            LB_GOTO_IF(!(hold[k] = malloc((size_t)pt->ne[1] * rb)), err, LB_ERR_NOMEM, "out of memory");
            lb_rotary_rows(hold[k], pt->data, pt->ne[1], rb, hr, false);
            src = hold[k];
        }
        for (int64_t r = 0; r < pt->ne[1]; r++) rows[r0 + r] = src + (size_t)r * rb;
    }
    lb_error perr = { 0 };
    st            = lb_hfq_export(t, rows, n_out, n_in, ts + *n, own + *n, &perr);
    LB_GOTO_IF(st, err, st, "tensor '%s': %s", name, perr.msg);
    static const char *const what[4] = { "qweight", "qzeros", "scales", "g_idx" };
    for (int k = 0; k < 4; k++) {
        snprintf(names[*n + k], sizeof names[0], "%s.%s", name, what[k]);
        ts[*n + k].name = names[*n + k];
    }
    *n += 4;
fail:
    for (int k = 0; k < 3; k++) free(hold[k]);
    free(rows);
    return st;
}

/* DeepSeek's kv_b_proj [H * (dn + dv), R] of layer l from attn_k_b [dn, R, H] (transposed per
 * head) and attn_v_b [R, dv, H], as the converter split it (load_hf.c's get_kv_b), in type */
static lb_status put_kv_b(const lb_model *m, int32_t l, lb_type type, lb_st_write_tensor *out, void **own, char *name,
                          lb_error *err) {
    const lb_tensor *kb = lb_model_tensor_c(m, l, LB_ROLE_ATTN_K_B), *vb = lb_model_tensor_c(m, l, LB_ROLE_ATTN_V_B);
    const int64_t    DN = kb->ne[0], R = kb->ne[1], H = kb->ne[2], DV = vb->ne[1];
    float           *w = malloc((size_t)(H * (DN + DV) * R) * sizeof *w), *row = malloc((size_t)(DN > R ? DN : R) * sizeof *row);
    lb_status        st = LB_OK;
    LB_GOTO_IF(!w || !row, err, LB_ERR_NOMEM, "out of memory");
    for (int64_t h = 0; h < H; h++) {
        float *o = w + h * (DN + DV) * R;
        for (int64_t r = 0; r < R; r++) { /* k_b[h] row r is column r of the head's k rows */
            lb_tensor_get_row_f32(kb, h * R + r, row);
            for (int64_t i = 0; i < DN; i++) o[i * R + r] = row[i];
        }
        for (int64_t i = 0; i < DV; i++) lb_tensor_get_row_f32(vb, h * DV + i, o + (DN + i) * R);
    }
    const lb_tensor t = { .type = LB_TYPE_F32, .n_dims = 2, .ne = { R, H * (DN + DV), 1, 1 }, .data = w };
    snprintf(name, 96, "model.layers.%d.self_attn.kv_b_proj.weight", l);
    LB_GOTO_IF(convert(&t, type, 0, 0, &out->data, own, &out->nbytes), err, LB_ERR_NOMEM, "out of memory");
    if (!*own) *own = w, w = NULL; /* f32 as it is: the writer keeps w */
    out->name     = name;
    out->dtype    = type == LB_TYPE_F32 ? LB_ST_F32 : type == LB_TYPE_F16 ? LB_ST_F16 : LB_ST_BF16;
    out->n_dims   = 2;
    out->shape[0] = H * (DN + DV);
    out->shape[1] = R;
fail:
    free(w);
    free(row);
    return st;
}

/* gptq: the blocks' weight matrices packed (put_packed), the rest f16 and f32. */
static lb_status write_weights(const lb_model *m, const char *dir, lb_type type, bool gptq, lb_error *err) {
    const int32_t          cap = 4 * lb_model_n_tensors(m) + 3 * m->cfg.n_layers * m->cfg.n_expert; /* a packed
                                 layer: 4 tensors; experts: one each */
    lb_named_tensor       *nt  = calloc((size_t)lb_model_n_tensors(m), sizeof *nt);
    lb_st_write_tensor    *ts  = calloc((size_t)cap, sizeof *ts);
    void                 **own = calloc((size_t)cap, sizeof *own);
    char                 (*names)[96] = calloc((size_t)cap, sizeof *names);
    lb_status              st  = LB_OK;
    int32_t                n   = 0, part_at[3] = { 0, 0, 0 };
    lb_named_tensor        fparts[3]; /* a fused tensor's parts, as they come */
    LB_GOTO_IF(!nt || !ts || !own || !names, err, LB_ERR_NOMEM, "out of memory");
    const int32_t nn = lb_model_tensors(m, nt, lb_model_n_tensors(m));
    for (int32_t i = 0; i < nn; i++) { /* every tensor by its slot's HF name */
        const lb_slot   *s  = lb_slot_of(nt[i].role);
        const lb_tensor *t  = nt[i].t;
        const lb_type    ty = s->flags & LB_SLOT_F32 ? LB_TYPE_F32 : type;
        const char      *hf = lb_arch_hf_name(m->arch, s);
        if (nt[i].role == LB_ROLE_ATTN_V_B) { /* with k_b: DeepSeek's kv_b_proj */
            LB_TRY(put_kv_b(m, nt[i].layer, ty, &ts[n], &own[n], names[n], err));
            n++;
            continue;
        }
        if (!hf) continue; /* rope_freqs: config.json's rope_scaling says it; k_b: with v_b */
        int             part;
        const lb_fused *fu = lb_arch_fusion(m->arch, nt[i].role, &part);
        if (gptq && nt[i].layer >= 0 && t->ne[1] > 1 && !(s->flags & LB_SLOT_F32)) { /* a packed layer */
            const bool fused = fu && fu->hf;
            if (fused) fparts[part] = nt[i];
            if (fused && part + 1 < 3 && fu->parts[part + 1] != LB_ROLE_COUNT) continue; /* the last part packs */
            char base[96];
            lb_tensor_name(base, sizeof base, fused ? fu->hf : hf, nt[i].layer, true);
            base[strlen(base) - 7] = 0; /* without ".weight" */
            LB_TRY(put_packed(fused ? fparts : nt + i, fused ? part + 1 : 1, m, base, ts, own, names, &n, err));
            continue;
        }
        if (s->flags & LB_SLOT_EXPERTS) { /* one HF tensor per expert */
            for (int64_t e = 0; e < t->ne[2]; e++, n++) {
                char      pat[96];
                lb_tensor te = *t;
                te.ne[2]     = 1;
                te.data      = (const uint8_t *)t->data + (size_t)e * (size_t)t->ne[1] * lb_row_size(t->type, t->ne[0]);
                lb_tensor_name(pat, sizeof pat, hf, nt[i].layer, true);
                snprintf(names[n], sizeof names[n], pat, (int)e);
                LB_GOTO_IF(convert(&te, ty, 0, 0, &ts[n].data, &own[n], &ts[n].nbytes), err, LB_ERR_NOMEM, "out of memory");
                ts[n] = (lb_st_write_tensor){ .name = names[n], .dtype = ty == LB_TYPE_F32 ? LB_ST_F32 : ty == LB_TYPE_F16 ? LB_ST_F16 : LB_ST_BF16,
                                              .n_dims = 2, .shape = { te.ne[1], te.ne[0] }, .data = ts[n].data, .nbytes = ts[n].nbytes };
            }
            continue;
        }
        lb_tensor_name(names[n], sizeof names[n], hf, nt[i].layer, true);
        const int64_t hr    = lb_rotary_head_rows(m, s), rows = t->ne[1] > 1 ? t->ne[1] : t->ne[0];
        const int32_t heads = hr > 0 ? (int32_t)(rows / hr) : 0;
        const float   shift = s->flags & LB_SLOT_NORM && m->arch->ops.hf_norm_plus1 ? -1.0f : 0.0f;
        LB_GOTO_IF(convert(t, ty, heads, shift, &ts[n].data, &own[n], &ts[n].nbytes), err, LB_ERR_NOMEM, "out of memory");
        ts[n].name     = names[n];
        ts[n].dtype    = ty == LB_TYPE_F32 ? LB_ST_F32 : ty == LB_TYPE_F16 ? LB_ST_F16 : LB_ST_BF16;
        ts[n].n_dims   = t->ne[1] > 1 ? 2 : 1;
        ts[n].shape[0] = t->ne[1] > 1 ? t->ne[1] : t->ne[0];
        ts[n].shape[1] = t->ne[0];
        if (nt[i].role == LB_ROLE_FFN_GATE_INP_SHEXP) /* nn.Linear(E, 1): [1, E] */
            ts[n].n_dims = 2, ts[n].shape[0] = 1, ts[n].shape[1] = t->ne[0];
        n++;
        if (fu && fu->hf) { /* Phi-3's qkv_proj, gate_up_proj: the parts' rows in one tensor */
            part_at[part] = n - 1;
            if (part + 1 < 3 && fu->parts[part + 1] != LB_ROLE_COUNT) continue;
            size_t total = 0;
            for (int k = 0; k <= part; k++) total += ts[part_at[k]].nbytes;
            uint8_t *cat = malloc(total);
            LB_GOTO_IF(!cat, err, LB_ERR_NOMEM, "out of memory");
            size_t  off  = 0;
            int64_t frows = 0;
            for (int k = 0; k <= part; k++) {
                memcpy(cat + off, ts[part_at[k]].data, ts[part_at[k]].nbytes);
                off += ts[part_at[k]].nbytes;
                frows += ts[part_at[k]].shape[0];
                if (k > 0) ts[part_at[k]].name = NULL; /* folded into the first */
            }
            lb_st_write_tensor *f0 = &ts[part_at[0]];
            free(own[part_at[0]]);
            own[part_at[0]] = cat;
            lb_tensor_name(names[part_at[0]], sizeof names[0], fu->hf, nt[i].layer, true);
            f0->data = cat, f0->nbytes = total, f0->shape[0] = frows;
        }
    }
    int32_t kept = 0; /* drop the parts folded into a fused tensor */
    for (int32_t i = 0; i < n; i++)
        if (ts[i].name) ts[kept++] = ts[i];
    char path[4096];
    LB_GOTO_IF(!join(path, sizeof path, dir, "model.safetensors", ""), err, LB_ERR_PARAM, "%s: path too long", dir);
    st = lb_safetensors_write(path, ts, (size_t)kept, err);
fail:
    for (int32_t i = 0; own && i < cap; i++) free(own[i]);
    free(own);
    free(ts);
    free(nt);
    free(names);
    return st;
}

/* type: the matrices' (f32, f16, bf16); gptq: the blocks' matrices packed, the others f16. */
static lb_status save_hf(const lb_model *m, const char *dir, lb_type type, bool gptq, lb_error *err) {
    LB_RETURN_IF(!m->arch || !m->arch->hf_class[0], err, LB_ERR_UNSUPPORTED, "%s: lowbit writes no Hugging Face "
                 "checkpoint of %s yet (GGUF only)", dir, m->arch ? m->arch->name : "this model");
    LB_RETURN_IF(gptq && m->cfg.n_expert > 0, err, LB_ERR_UNSUPPORTED, "%s: a GPTQ checkpoint of a mixture of "
                 "experts is not supported yet (--to hf writes it in f16/bf16/f32)", dir);
    lb_named_tensor *nt = malloc((size_t)lb_model_n_tensors(m) * sizeof *nt);
    LB_RETURN_IF(!nt, err, LB_ERR_NOMEM, "out of memory");
    const int32_t nn = lb_model_tensors(m, nt, lb_model_n_tensors(m));
    int32_t       bits = 0, group = 0;
    for (int32_t i = 0; i < nn; i++) {
        const lb_type t = nt[i].t->type;
        int32_t       b, g;
        const bool    packed = gptq && nt[i].layer >= 0 && nt[i].t->ne[1] > 1 && !(lb_slot_of(nt[i].role)->flags & LB_SLOT_F32);
        lb_status     st = LB_OK;
        if (packed && !lb_hfq_export_spec(t, &b, &g))
            st = lb_fail(err, LB_ERR_UNSUPPORTED, "%s: tensor '%s' is %s; a GPTQ checkpoint is written from "
                         "q4_0, q8_0, int4_gN or int8_gN matrices (quantize --type q4_0 --method gptq)", dir,
                         nt[i].name, lb_type_name(t));
        else if (packed && bits && (b != bits || g != group))
            st = lb_fail(err, LB_ERR_UNSUPPORTED, "%s: tensor '%s' is %s, where others have %d bits in groups of "
                         "%d; a GPTQ checkpoint has one layout (give --tensor-type no other matrix type)", dir,
                         nt[i].name, lb_type_name(t), bits, group);
        else if (!gptq && t != LB_TYPE_F32 && t != LB_TYPE_F16 && t != LB_TYPE_BF16)
            st = lb_fail(err, LB_ERR_UNSUPPORTED, "%s: tensor '%s' is %s; an HF directory is written from f32, "
                         "f16 or bf16 models (or, --to hf-gptq, from q4_0 or q8_0 ones)", dir, nt[i].name, lb_type_name(t));
        if (st) {
            free(nt);
            return st;
        }
        if (packed) bits = b, group = g;
    }
    free(nt);
    float scaling[4];
    LB_RETURN_IF(m->rope_freqs.data && !llama3_params(m, scaling), err, LB_ERR_UNSUPPORTED,
                 "%s: the model's rope_freqs are no llama3 rope_scaling lowbit can write", dir);
    struct stat sb; /* an existing empty directory is replaced by the rename, nothing else */
    if (stat(dir, &sb) == 0) {
        LB_RETURN_IF(!S_ISDIR(sb.st_mode), err, LB_ERR_IO, "%s: exists and is not a directory", dir);
        DIR *d = opendir(dir);
        bool empty = d != NULL;
        for (struct dirent *e; d && (e = readdir(d));)
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = false;
        if (d) closedir(d);
        LB_RETURN_IF(!empty, err, LB_ERR_IO, "%s: exists and is not empty", dir);
    }
    lb_out    out;
    lb_status st = lb_out_open_dir(&out, dir, err);
    if (st) return st;
    const char *tmp = out.tmp;
    char       *cfg = config_json(m, type, m->cfg.n_layers > 0 && m->layers[0].bq.data != NULL,
                                m->rope_freqs.data ? scaling : NULL, bits, group);
    char       *tj = NULL, *tc = NULL, gen[128];
    LB_GOTO_IF(!cfg, err, LB_ERR_NOMEM, "out of memory");
    { /* absent tokens have no key */
        const int32_t bos = lb_vocab_bos(m->vocab), eos = lb_vocab_eos(m->vocab);
        int           k   = snprintf(gen, sizeof gen, "{");
        if (bos >= 0) k += snprintf(gen + k, sizeof gen - (size_t)k, "\n  \"bos_token_id\": %d%s", bos, eos >= 0 ? "," : "");
        if (eos >= 0) k += snprintf(gen + k, sizeof gen - (size_t)k, "\n  \"eos_token_id\": %d", eos);
        snprintf(gen + k, sizeof gen - (size_t)k, "\n}\n");
    }
    LB_TRY(lb_vocab_to_hf_json(m->vocab, &tj, &tc, err));
    LB_TRY(write_text(tmp, "config.json", cfg, err));
    LB_TRY(write_text(tmp, "generation_config.json", gen, err));
    LB_TRY(write_text(tmp, "tokenizer.json", tj, err));
    LB_TRY(write_text(tmp, "tokenizer_config.json", tc, err));
    LB_TRY(write_weights(m, tmp, type, gptq, err));
    LB_TRY(lb_out_commit(&out, err));
fail:
    if (st) lb_out_abort(&out);
    free(cfg);
    free(tj);
    free(tc);
    return st;
}

lb_status lb_model_save_hf(const lb_model *m, const char *dir, lb_type type, lb_error *err) {
    LB_RETURN_IF(type != LB_TYPE_F32 && type != LB_TYPE_F16 && type != LB_TYPE_BF16, err,
                 LB_ERR_PARAM, "an HF directory holds f32, f16 or bf16 weights, not %s", lb_type_name(type));
    return save_hf(m, dir, type, false, err);
}

lb_status lb_model_save_hf_gptq(const lb_model *m, const char *dir, lb_error *err) {
    return save_hf(m, dir, LB_TYPE_F16, true, err);
}
