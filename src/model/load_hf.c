/* Hugging Face model directories: config.json (LlamaForCausalLM, MistralForCausalLM,
 * Qwen2ForCausalLM), generation_config.json (eos), the weights of model.safetensors or of the
 * shards model.safetensors.index.json lists (mmapped, F32/F16/BF16, shapes checked against
 * config.json), and tokenizer.json (or a SentencePiece tokenizer.model).
 * HF stores Q and K rows (and their biases) in the half-split rotary order; they are
 * permuted once, here, into GGUF's adjacent pairs (owned copies): row h*D + 2j + s of the
 * result is row h*D + s*D/2 + j of the file, as llama.cpp's convert_hf_to_gguf.py does. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fail.h"
#include "core/json.h"
#include "hf_quant.h"
#include "lowbit/safetensors.h"
#include "model_internal.h"
#include "rotary.h"

typedef struct hf_files {
    lb_safetensors   **f;
    int32_t            n;
    lb_hfq             q;   /* a GPTQ/AWQ checkpoint's scheme: its layers are packed */
    lb_hf_quant_report *rep; /* what their import did (the model's) */
} hf_files;

void lb_hf_files_free(void *p) {
    hf_files *h = p;
    if (!h) return;
    for (int32_t i = 0; i < h->n; i++) lb_safetensors_close(h->f[i]);
    free(h->f);
    free(h);
}

static void join(char *out, size_t cap, const char *dir, const char *name) {
    snprintf(out, cap, "%s/%s", dir, name);
}

/* ---- config.json ---- */
typedef struct hf_config {
    bool    tied;
    const lb_arch *arch;
    int64_t bos, eos;  /* -1: not given */
    bool    llama3;    /* rope_scaling {"rope_type": "llama3", ...} */
    float  *rope_long, *rope_short; /* LongRoPE's factors [head_dim / 2] (malloc'd), or NULL */
    lb_hfq  q;         /* quantization_config (GPTQ, AWQ), or method NONE */
    float   factor, low, high, orig;
} hf_config;

/* As convert_hf_to_gguf.py computes them (float32, as torch does). */
void lb_rope_llama3_factors(float *out, int32_t head_dim, float theta, float factor,
                           float low_freq_factor, float high_freq_factor, float orig_ctx) {
    const float low_wavelen = orig_ctx / low_freq_factor, high_wavelen = orig_ctx / high_freq_factor;
    for (int32_t j = 0; j < head_dim / 2; j++) {
        const float freq    = 1.0f / powf(theta, (float)(2 * j) / (float)head_dim);
        const float wavelen = (float)(2.0 * 3.14159265358979323846) / freq;
        if (wavelen < high_wavelen) {
            out[j] = 1.0f;
        } else if (wavelen > low_wavelen) {
            out[j] = factor;
        } else {
            const float smooth = (orig_ctx / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
            out[j]             = 1.0f / ((1.0f - smooth) / factor + smooth);
        }
    }
}

float lb_rope_yarn_mscale(float factor, float mscale) {
    return factor <= 1.0f ? 1.0f : 0.1f * mscale * logf(factor) + 1.0f;
}

static lb_status cfg_int(const cJSON *j, const char *key, int64_t def, int32_t *out, const char *f,
                         lb_error *err) {
    const cJSON *it = lb_json_get(j, key);
    int64_t      v  = def;
    LB_RETURN_IF(!it && def < 0, err, LB_ERR_NOT_FOUND, "%s: '%s' is missing", f, key);
    LB_RETURN_IF(it && !lb_json_int(it, 1, INT32_MAX, &v), err, LB_ERR_CORRUPT,
                 "%s: '%s' is not a positive integer", f, key);
    *out = (int32_t)v;
    return LB_OK;
}

/* A number in (lo, hi] (open_lo) or [lo, hi]: finite, and a float once converted. */
static lb_status cfg_float(const cJSON *j, const char *key, double def, double lo, bool open_lo,
                           double hi, float *out, const char *f, lb_error *err) {
    const cJSON *it = lb_json_get(j, key);
    LB_RETURN_IF(it && !cJSON_IsNumber(it), err, LB_ERR_CORRUPT, "%s: '%s' is not a number", f, key);
    const double v = it ? it->valuedouble : def;
    LB_RETURN_IF(!isfinite(v) || !(open_lo ? v > lo : v >= lo) || !(v <= hi), err, LB_ERR_CORRUPT,
                 "%s: '%s' is %g, outside %c%g, %g]", f, key, v, open_lo ? '(' : '[', lo, hi);
    *out = (float)v;
    return LB_OK;
}

/* An id, or the first of a list of ids (eos_token_id may be either). */
static int64_t cfg_id(const cJSON *j, const char *key) {
    const cJSON *it = lb_json_get(j, key);
    int64_t      v  = -1;
    if (cJSON_IsArray(it)) it = it->child;
    return it && lb_json_int(it, 0, INT32_MAX, &v) ? v : -1;
}

/* Gemma's windows, soft-capping and query scale (the keys load_gguf.c reads from GGUF):
 * sliding_window; which layers use it, from layer_types or sliding_window_pattern (they must
 * follow a period, as llama.cpp's are); Gemma 3's rope_local_base_freq; the soft-capping values
 * (null: none); query_pre_attn_scalar. */
static lb_status gemma_config(const cJSON *j, const lb_arch *a, lb_llama_config *c, const char *f, lb_error *err) {
    lb_status    st  = LB_OK;
    const cJSON *win = lb_json_get(j, "sliding_window");
    int64_t      v   = 0;
    LB_RETURN_IF(win && !cJSON_IsNull(win) && !lb_json_int(win, 1, INT32_MAX, &v), err, LB_ERR_CORRUPT,
                 "%s: 'sliding_window' is not a positive integer", f);
    c->n_swa       = (int32_t)v;
    c->swa_pattern = a->ops.swa_pattern;
    const cJSON *pat = lb_json_get(j, "sliding_window_pattern");
    LB_RETURN_IF(pat && !cJSON_IsNull(pat) && !lb_json_int(pat, 0, 1024, &v), err, LB_ERR_CORRUPT,
                 "%s: 'sliding_window_pattern' is not an integer in [0, 1024]", f);
    if (pat && !cJSON_IsNull(pat)) c->swa_pattern = (int32_t)v;
    const cJSON *lt = lb_json_get(j, "layer_types"); /* newer transformers: one per layer */
    if (cJSON_IsArray(lt)) {
        LB_RETURN_IF(cJSON_GetArraySize(lt) != c->n_layers, err, LB_ERR_CORRUPT, "%s: 'layer_types' has %d "
                     "entries for %d layers", f, cJSON_GetArraySize(lt), c->n_layers);
        int32_t period = 0, l = 0; /* the first full-attention layer + 1 */
        for (const cJSON *e = lt->child; e && !period; e = e->next, l++)
            if (cJSON_IsString(e) && !strcmp(e->valuestring, "full_attention")) period = l + 1;
        c->swa_pattern = period;
        l = 0;
        for (const cJSON *e = lt->child; e; e = e->next, l++) {
            const bool sliding = cJSON_IsString(e) && !strcmp(e->valuestring, "sliding_attention");
            LB_RETURN_IF(!sliding && !(cJSON_IsString(e) && !strcmp(e->valuestring, "full_attention")), err,
                         LB_ERR_UNSUPPORTED, "%s: layer type '%.32s' is not supported", f,
                         cJSON_IsString(e) ? e->valuestring : "?");
            LB_RETURN_IF(sliding != lb_layer_windowed(c, l), err, LB_ERR_UNSUPPORTED, "%s: 'layer_types' "
                         "do not repeat with a period (llama.cpp's sliding_window_pattern)", f);
        }
    }
    if (c->n_swa == 0) c->swa_pattern = a->ops.swa_pattern;
    if (a->ops.swa_rope_own) {
        LB_TRY_RET(cfg_float(j, "rope_local_base_freq", 10000.0, 0, true, 1e12, &c->rope_theta_swa, f, err));
    }
    static const char *const caps[2] = { "final_logit_softcapping", "attn_logit_softcapping" };
    float *const             out[2]  = { &c->final_softcap, &c->attn_softcap };
    for (int k = 0; k < 2; k++) {
        const cJSON *it = lb_json_get(j, caps[k]);
        const float  def = k ? a->ops.attn_softcap : a->ops.final_softcap;
        *out[k] = 0;
        if (k == 1 && def <= 0) { /* a family without attention soft-capping */
            LB_RETURN_IF(it && !cJSON_IsNull(it), err, LB_ERR_UNSUPPORTED, "%s: '%s' is not supported for %s",
                         f, caps[k], a->hf_class[0]);
            continue;
        }
        if (!it) *out[k] = def;
        if (!it || cJSON_IsNull(it)) continue;
        LB_TRY_RET(cfg_float(j, caps[k], def, 0, true, 1e6, out[k], f, err));
    }
    float qs = 0;
    LB_TRY_RET(cfg_float(j, "query_pre_attn_scalar", c->head_dim, 0, true, 1e9, &qs, f, err));
    c->attn_scale = qs == (float)c->head_dim ? 0.0f : 1.0f / sqrtf(qs);
    const float rule = lb_arch_attn_scale(a, c); /* llama.cpp's value when it is this one */
    if (rule > 0 && fabsf(rule - c->attn_scale) <= 1e-6f * rule) c->attn_scale = rule;
    return st;
}


/* rope_scaling "yarn" as transformers reads it: factor, original_max_position_embeddings
 * (default max_position_embeddings), beta_fast and beta_slow, attention_factor or mscale and
 * mscale_all_dim (kept as the attention factor over llama.cpp's own, 1 + 0.1 ln factor). */
static lb_status yarn_config(const cJSON *rs, lb_llama_config *c, const char *f, lb_error *err) {
    float     orig = 0, ms = 0, ms_all = 0, attn = 0;
    lb_status st   = LB_OK;
    LB_TRY_RET(cfg_float(rs, "factor", 1.0, 0, true, 1024, &c->rope_yarn, f, err));
    LB_TRY_RET(cfg_float(rs, "original_max_position_embeddings", c->n_ctx_train, 0, true, 1 << 24, &orig, f, err));
    LB_TRY_RET(cfg_float(rs, "beta_fast", 32.0, 0, true, 1e6, &c->yarn_beta_fast, f, err));
    LB_TRY_RET(cfg_float(rs, "beta_slow", 1.0, 0, true, 1e6, &c->yarn_beta_slow, f, err));
    LB_TRY_RET(cfg_float(rs, "mscale", 0.0, 0, false, 1e3, &ms, f, err));
    LB_TRY_RET(cfg_float(rs, "mscale_all_dim", 0.0, 0, false, 1e3, &ms_all, f, err));
    LB_TRY_RET(cfg_float(rs, "attention_factor", 0.0, 0, false, 1e3, &attn, f, err));
    LB_RETURN_IF(cJSON_IsFalse(lb_json_get(rs, "truncate")), err, LB_ERR_UNSUPPORTED,
                 "%s: YaRN with truncate false is not supported", f);
    c->rope_orig_ctx = (int32_t)orig;
    if (attn <= 0) attn = ms > 0 && ms_all > 0 ? lb_rope_yarn_mscale(c->rope_yarn, ms) / lb_rope_yarn_mscale(c->rope_yarn, ms_all)
                                                : lb_rope_yarn_mscale(c->rope_yarn, 1.0f);
    c->rope_attn_factor = attn / lb_rope_yarn_mscale(c->rope_yarn, 1.0f);
    if (fabsf(c->rope_attn_factor - 1.0f) < 1e-7f) c->rope_attn_factor = 0; /* llama.cpp's own */
    return st;
}

/* A list of n factors, each in (0, 1e6]. */
static lb_status factor_list(const cJSON *rs, const char *key, int32_t n, float **out, const char *f, lb_error *err) {
    const cJSON *a = lb_json_get(rs, key);
    LB_RETURN_IF(!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n, err, LB_ERR_CORRUPT,
                 "%s: rope_scaling '%s' is not a list of %d numbers (head_dim / 2)", f, key, n);
    LB_RETURN_IF(!(*out = malloc((size_t)n * sizeof **out)), err, LB_ERR_NOMEM, "out of memory");
    int32_t i = 0;
    for (const cJSON *e = a->child; e; e = e->next, i++) {
        LB_RETURN_IF(!cJSON_IsNumber(e) || !(e->valuedouble > 0 && e->valuedouble <= 1e6), err, LB_ERR_CORRUPT,
                     "%s: rope_scaling '%s'[%d] is not a number in (0, 1e6]", f, key, i);
        (*out)[i] = (float)e->valuedouble;
    }
    return LB_OK;
}

/* rope_scaling "longrope" (Phi-3's "su"): long_factor and short_factor, the original context
 * (config's original_max_position_embeddings, else rope_scaling's), attention_factor or
 * transformers' sqrt(1 + ln(max / original) / ln(original)). */
static lb_status longrope_config(const cJSON *j, const cJSON *rs, lb_llama_config *c, hf_config *hc, const char *f,
                                 lb_error *err) {
    float     orig = 0, attn = 0, factor = 0;
    lb_status st   = LB_OK;
    const int32_t half = c->head_dim / 2;
    LB_TRY_RET(factor_list(rs, "long_factor", half, &hc->rope_long, f, err));
    LB_TRY_RET(factor_list(rs, "short_factor", half, &hc->rope_short, f, err));
    LB_TRY_RET(cfg_float(rs, "original_max_position_embeddings", 0, 0, false, 1 << 24, &orig, f, err));
    LB_TRY_RET(cfg_float(j, "original_max_position_embeddings", orig, 0, false, 1 << 24, &orig, f, err));
    LB_RETURN_IF(orig < 1, err, LB_ERR_CORRUPT, "%s: LongRoPE without original_max_position_embeddings", f);
    LB_TRY_RET(cfg_float(rs, "factor", 1.0, 0, true, 1e6, &factor, f, err));
    if (lb_json_get(j, "original_max_position_embeddings")) factor = (float)c->n_ctx_train / orig;
    LB_TRY_RET(cfg_float(rs, "attention_factor", 0.0, 0, false, 1e3, &attn, f, err));
    if (attn <= 0) attn = factor <= 1.0f ? 1.0f : sqrtf(1.0f + logf(factor) / logf(orig));
    c->rope_orig_ctx    = (int32_t)orig;
    c->rope_attn_factor = attn == 1.0f ? 0.0f : attn;
    return st;
}

/* A mixture of experts' sizes: Mixtral's num_local_experts (its experts intermediate_size
 * wide), Qwen's num_experts, moe_intermediate_size and shared_expert_intermediate_size; every
 * layer sparse (decoder_sparse_step 1, no mlp_only_layers), and the chosen experts' weights
 * renormalized as llama.cpp does for the family (norm_topk_prob). */
static lb_status moe_config(const cJSON *j, const lb_arch *a, lb_llama_config *c, const char *f, lb_error *err) {
    const bool mixtral = !a->ops.moe_ff_exp;
    lb_status  st;
    if ((st = cfg_int(j, mixtral ? "num_local_experts" : "num_experts", -1, &c->n_expert, f, err)) ||
        (st = cfg_int(j, "num_experts_per_tok", 2, &c->n_expert_used, f, err)))
        return st;
    if (!mixtral && (st = cfg_int(j, "moe_intermediate_size", -1, &c->n_ff_exp, f, err))) return st;
    if (a->use[LB_ROLE_FFN_GATE_SHEXP] && (st = cfg_int(j, "shared_expert_intermediate_size", -1, &c->n_ff_shexp, f, err)))
        return st;
    LB_RETURN_IF(c->n_expert > 4096 || c->n_expert_used > c->n_expert, err, LB_ERR_CORRUPT,
                 "%s: %d experts, %d per token", f, c->n_expert, c->n_expert_used);
    int32_t      step = 1;
    const cJSON *only = lb_json_get(j, "mlp_only_layers"), *norm = lb_json_get(j, "norm_topk_prob");
    if ((st = cfg_int(j, "decoder_sparse_step", 1, &step, f, err))) return st;
    LB_RETURN_IF(step != 1 || (only && (!cJSON_IsArray(only) || cJSON_GetArraySize(only) > 0)), err, LB_ERR_UNSUPPORTED,
                 "%s: dense layers among the experts' (decoder_sparse_step %d, mlp_only_layers) are not supported", f, step);
    LB_RETURN_IF(norm && !mixtral && cJSON_IsBool(norm) && cJSON_IsTrue(norm) != a->ops.moe_norm, err, LB_ERR_UNSUPPORTED,
                 "%s: norm_topk_prob %s: llama.cpp's %s %s the chosen experts' weights, so lowbit does too", f,
                 cJSON_IsTrue(norm) ? "true" : "false", a->gguf, a->ops.moe_norm ? "always renormalizes" : "never renormalizes");
    return LB_OK;
}

/* An integer that may be null (0 then), else in [0, hi]. */
static lb_status cfg_int0(const cJSON *j, const char *key, int64_t hi, int32_t *out, const char *f, lb_error *err) {
    const cJSON *it = lb_json_get(j, key);
    int64_t      v  = 0;
    LB_RETURN_IF(it && !cJSON_IsNull(it) && !lb_json_int(it, 0, hi, &v), err, LB_ERR_CORRUPT,
                 "%s: '%s' is not an integer in [0, %lld]", f, key, (long long)hi);
    *out = (int32_t)v;
    return LB_OK;
}

/* DeepSeek-V2/V3's config (transformers' DeepseekV2Config/DeepseekV3Config), as llama.cpp's
 * converter reads it: the latent attention's sizes (q_lora_rank null: wq), one KV head (the
 * latent), the routed and shared experts, first_k_dense_replace dense layers first, the router
 * (scoring_func, norm_topk_prob, routed_scaling_factor, n_group and topk_group: llama.cpp groups
 * as V3's noaux_tc does, V2's group_limited_greedy too), YaRN's mscale_all_dim as the query
 * scale's multiplier (mscale and mscale_all_dim must agree, as llama.cpp assumes). */
static lb_status mla_config(const cJSON *j, lb_llama_config *c, const char *f, lb_error *err) {
    int32_t nope = 0, freq = 1;
    LB_TRY_RET(cfg_int0(j, "q_lora_rank", 1 << 16, &c->n_lora_q, f, err));
    LB_TRY_RET(cfg_int(j, "kv_lora_rank", -1, &c->n_lora_kv, f, err));
    LB_TRY_RET(cfg_int(j, "qk_nope_head_dim", -1, &nope, f, err));
    LB_TRY_RET(cfg_int(j, "qk_rope_head_dim", -1, &c->n_rot, f, err));
    LB_TRY_RET(cfg_int(j, "v_head_dim", -1, &c->head_dim_v, f, err));
    LB_RETURN_IF(nope > 4096 || c->n_rot > 4096, err, LB_ERR_CORRUPT, "%s: head sizes %d + %d", f, nope, c->n_rot);
    c->head_dim   = nope + c->n_rot;
    c->n_kv_heads = 1;
    LB_TRY_RET(cfg_int(j, "n_routed_experts", -1, &c->n_expert, f, err));
    LB_TRY_RET(cfg_int(j, "num_experts_per_tok", -1, &c->n_expert_used, f, err));
    LB_TRY_RET(cfg_int(j, "moe_intermediate_size", -1, &c->n_ff_exp, f, err));
    LB_TRY_RET(cfg_int(j, "n_shared_experts", -1, &c->n_expert_shared, f, err));
    LB_TRY_RET(cfg_int0(j, "first_k_dense_replace", 1024, &c->n_dense_lead, f, err));
    LB_TRY_RET(cfg_int(j, "moe_layer_freq", 1, &freq, f, err));
    LB_TRY_RET(cfg_int0(j, "n_group", 4096, &c->n_expert_groups, f, err));
    LB_TRY_RET(cfg_int0(j, "topk_group", 4096, &c->n_group_used, f, err));
    LB_TRY_RET(cfg_float(j, "routed_scaling_factor", 0.0, 0, false, 1e3, &c->moe_w_scale, f, err));
    LB_RETURN_IF(freq != 1, err, LB_ERR_UNSUPPORTED, "%s: moe_layer_freq %d: experts in every layer after the "
                 "dense ones only", f, freq);
    LB_RETURN_IF(c->n_expert > 4096 || c->n_expert_used > c->n_expert || c->n_expert_shared > 1024, err, LB_ERR_CORRUPT,
                 "%s: %d experts, %d per token, %d shared", f, c->n_expert, c->n_expert_used, c->n_expert_shared);
    c->n_ff_shexp = c->n_expert_shared * c->n_ff_exp;
    if (c->n_expert_groups <= 1) c->n_expert_groups = c->n_group_used = 0; /* one group: none */
    c->moe_norm_w = cJSON_IsTrue(lb_json_get(j, "norm_topk_prob"));
    const char *sf = lb_json_str(j, "scoring_func");
    LB_RETURN_IF(sf && strcmp(sf, "softmax") && strcmp(sf, "sigmoid"), err, LB_ERR_UNSUPPORTED,
                 "%s: scoring_func '%.32s' is not supported (softmax, sigmoid)", f, sf);
    c->moe_gating = sf && !strcmp(sf, "sigmoid") ? LB_GATING_SIGMOID : LB_GATING_SOFTMAX;
    const cJSON *rs = lb_json_get(j, "rope_scaling");
    if (c->rope_yarn > 0 && rs) { /* (yarn_config took the rest) */
        float ms = 0, ms_all = 0;
        LB_TRY_RET(cfg_float(rs, "mscale", 0.0, 0, false, 1e3, &ms, f, err));
        LB_TRY_RET(cfg_float(rs, "mscale_all_dim", 0.0, 0, false, 1e3, &ms_all, f, err));
        LB_RETURN_IF(ms > 0 && ms_all > 0 && ms != ms_all, err, LB_ERR_UNSUPPORTED, "%s: YaRN's mscale %g and "
                     "mscale_all_dim %g differ (llama.cpp takes them equal)", f, (double)ms, (double)ms_all);
        c->rope_yarn_log_mul = ms_all;
        c->rope_attn_factor  = 0;
    }
    return LB_OK;
}

static lb_status read_config(const char *dir, lb_llama_config *c, hf_config *hc, lb_error *err) {
    char   f[4096];
    cJSON *j;
    join(f, sizeof f, dir, "config.json");
    lb_status st = lb_json_load_file(&j, f, err);
    if (st) return st;
    const cJSON *archs = lb_json_get(j, "architectures");
    const char  *arch  = cJSON_IsArray(archs) && cJSON_IsString(archs->child) ? archs->child->valuestring : NULL;
    const char  *mt    = lb_json_str(j, "model_type");
    hc->arch         = arch ? lb_arch_find_hf(arch, NULL) : lb_arch_find_hf(NULL, mt);
    const bool llama = hc->arch && (!strcmp(hc->arch->name, "llama") || !strcmp(hc->arch->name, "mixtral")); /* optional biases */
    LB_GOTO_IF(!hc->arch, err, LB_ERR_UNSUPPORTED, "%s: architecture '%.48s' is not supported "
               "(LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Phi3ForCausalLM, "
               "Gemma2ForCausalLM, Gemma3ForCausalLM, MixtralForCausalLM, Qwen2MoeForCausalLM, Qwen3MoeForCausalLM, "
               "DeepseekV2ForCausalLM, DeepseekV3ForCausalLM)", f,
               arch ? arch : mt ? mt : "?");
    LB_TRY(cfg_int(j, "hidden_size", -1, &c->n_embd, f, err));
    LB_TRY(cfg_int(j, "intermediate_size", -1, &c->n_ff, f, err));
    LB_TRY(cfg_int(j, "num_hidden_layers", -1, &c->n_layers, f, err));
    LB_TRY(cfg_int(j, "num_attention_heads", -1, &c->n_heads, f, err));
    LB_TRY(cfg_int(j, "num_key_value_heads", c->n_heads, &c->n_kv_heads, f, err));
    LB_TRY(cfg_int(j, "vocab_size", -1, &c->n_vocab, f, err));
    LB_TRY(cfg_int(j, "max_position_embeddings", 2048, &c->n_ctx_train, f, err));
    LB_TRY(cfg_float(j, "rms_norm_eps", 1e-6, 0, true, 0.5, &c->norm_eps, f, err));
    LB_TRY(cfg_float(j, "rope_theta", 10000.0, 0, true, 1e12, &c->rope_theta, f, err));
    /* head_dim may differ from hidden_size / num_attention_heads (Qwen3-0.6B: 128, not 64) */
    LB_TRY(cfg_int(j, "head_dim", c->n_heads > 0 ? c->n_embd / c->n_heads : 0, &c->head_dim, f, err));
    if (hc->arch->moe && !hc->arch->ops.mla) LB_TRY(moe_config(j, hc->arch, c, f, err));
    const bool  gelu = hc->arch->ops.act == LB_ACT_GELU_TANH;
    const char *act  = lb_json_str(j, gelu ? "hidden_activation" : "hidden_act");
    if (gelu && !act) act = lb_json_str(j, "hidden_act");
    LB_GOTO_IF(act && strcmp(act, gelu ? "gelu_pytorch_tanh" : "silu") != 0, err, LB_ERR_UNSUPPORTED,
               "%s: hidden activation '%.32s' is not supported (%s)", f, act, gelu ? "gelu_pytorch_tanh" : "silu");
    if (hc->arch->ops.swa_pattern > 0) LB_TRY(gemma_config(j, hc->arch, c, f, err));
    const cJSON *sw = lb_json_get(j, "sliding_window");
    const bool   mistral = (arch && !strcmp(arch, "MistralForCausalLM")) || (!arch && mt && !strcmp(mt, "mistral"));
    if (hc->arch->ops.swa_every && mistral && sw && !cJSON_IsNull(sw)) { /* Mistral: every layer */
        int64_t v = 0;
        LB_GOTO_IF(!lb_json_int(sw, 1, INT32_MAX, &v), err, LB_ERR_CORRUPT, "%s: 'sliding_window' is not a "
                   "positive integer", f);
        c->n_swa = (int32_t)v;
    }
    const cJSON *rs  = lb_json_get(j, "rope_scaling");
    const char  *rst = rs ? lb_json_str(rs, "rope_type") ? lb_json_str(rs, "rope_type") : lb_json_str(rs, "type") : NULL;
    hc->llama3       = rst && strcmp(rst, "llama3") == 0;
    const bool linear = rst && strcmp(rst, "linear") == 0, yarn = rst && strcmp(rst, "yarn") == 0;
    const bool longrope = rst && (strcmp(rst, "longrope") == 0 || strcmp(rst, "su") == 0);
    LB_GOTO_IF(rs && !hc->llama3 && !linear && !yarn && !longrope && (!rst || strcmp(rst, "default") != 0), err,
               LB_ERR_UNSUPPORTED, "%s: rope_scaling '%.32s' is not supported (linear, llama3, yarn, longrope)", f,
               rst ? rst : "?");
    if (linear) LB_TRY(cfg_float(rs, "factor", 1.0, 0, true, 1024, &c->rope_linear, f, err));
    if (yarn) LB_TRY(yarn_config(rs, c, f, err));
    LB_GOTO_IF(longrope && hc->arch->use[LB_ROLE_ROPE_LONG] == LB_USE_NONE, err, LB_ERR_UNSUPPORTED,
               "%s: LongRoPE is supported for Phi-3, not %s", f, hc->arch->hf_class[0]);
    if (longrope) LB_TRY(longrope_config(j, rs, c, hc, f, err));
    if (hc->arch->ops.mla) LB_TRY(mla_config(j, c, f, err));
    if (hc->llama3) { /* llama.cpp's defaults */
        LB_TRY(cfg_float(rs, "factor", 8.0, 1, false, 1e6, &hc->factor, f, err));
        LB_TRY(cfg_float(rs, "low_freq_factor", 1.0, 0, true, 1e6, &hc->low, f, err));
        LB_TRY(cfg_float(rs, "high_freq_factor", 4.0, 0, true, 1e6, &hc->high, f, err));
        LB_TRY(cfg_float(rs, "original_max_position_embeddings", 8192.0, 1, false, 1 << 24, &hc->orig, f, err));
        LB_GOTO_IF(!(hc->factor >= 1.0f && hc->low > 0.0f && hc->high > hc->low && hc->orig >= 1.0f), err,
                   LB_ERR_CORRUPT, "%s: rope_scaling has bad factors", f);
    }
    LB_GOTO_IF(cJSON_IsTrue(lb_json_get(j, "mlp_bias")) || (llama && cJSON_IsTrue(lb_json_get(j, "attention_bias"))),
               err, LB_ERR_UNSUPPORTED, "%s: %s with mlp_bias or attention_bias is not supported", f, hc->arch->hf_class[0]);
    LB_GOTO_IF(!llama && cJSON_IsTrue(lb_json_get(j, "attention_bias")) != (hc->arch->use[LB_ROLE_ATTN_Q_BIAS] != 0) &&
                   lb_json_get(j, "attention_bias"), err, LB_ERR_UNSUPPORTED,
               "%s: %s with attention_bias %s is not supported", f, hc->arch->hf_class[0],
               cJSON_IsTrue(lb_json_get(j, "attention_bias")) ? "true" : "false");
    LB_GOTO_IF(cJSON_IsTrue(lb_json_get(j, "use_sliding_window")), err, LB_ERR_UNSUPPORTED,
               "%s: sliding-window attention is not supported", f);
    const cJSON *qc = lb_json_get(j, "quantization_config");
    if (qc) LB_TRY(lb_hfq_parse(qc, &hc->q, f, err));
    const cJSON *tie = lb_json_get(j, "tie_word_embeddings");
    hc->tied = tie ? cJSON_IsTrue(tie) : hc->arch->ops.hf_tied;
    if (hc->arch->use[LB_ROLE_OUTPUT] == LB_USE_NONE) hc->tied = true; /* Gemma 2: lm_head is never read */
    hc->bos  = cfg_id(j, "bos_token_id");
    hc->eos  = cfg_id(j, "eos_token_id");
    cJSON_Delete(j);
    j = NULL;
    join(f, sizeof f, dir, "quantize_config.json"); /* AutoGPTQ's own file, without quant_method */
    if (!qc && access(f, F_OK) == 0) {
        LB_TRY(lb_json_load_file(&j, f, err));
        if (!lb_json_get(j, "quant_method")) cJSON_AddStringToObject(j, "quant_method", "gptq");
        LB_TRY(lb_hfq_parse(j, &hc->q, f, err));
        cJSON_Delete(j);
        j = NULL;
    }
    join(f, sizeof f, dir, "generation_config.json");
    if (access(f, F_OK) == 0) {
        LB_TRY(lb_json_load_file(&j, f, err));
        if (cfg_id(j, "bos_token_id") >= 0) hc->bos = cfg_id(j, "bos_token_id");
        if (cfg_id(j, "eos_token_id") >= 0) hc->eos = cfg_id(j, "eos_token_id");
    }
fail:
    cJSON_Delete(j);
    return st;
}

/* ---- weights ---- */
static lb_status open_weights(const char *dir, hf_files *h, lb_error *err) {
    char   f[4096], shard[4096];
    cJSON *j = NULL;
    join(f, sizeof f, dir, "model.safetensors.index.json");
    if (access(f, F_OK) != 0) {
        join(f, sizeof f, dir, "model.safetensors");
        LB_RETURN_IF(access(f, F_OK) != 0, err, LB_ERR_NOT_FOUND,
                     "%s: no model.safetensors or model.safetensors.index.json", dir);
        h->f = calloc(1, sizeof *h->f);
        LB_RETURN_IF(!h->f, err, LB_ERR_NOMEM, "out of memory");
        lb_status st = lb_safetensors_open(&h->f[0], f, err);
        h->n         = st ? 0 : 1;
        return st;
    }
    lb_status st = lb_json_load_file(&j, f, err);
    if (st) return st;
    const cJSON *map = lb_json_get(j, "weight_map");
    LB_GOTO_IF(!cJSON_IsObject(map) || !map->child, err, LB_ERR_CORRUPT, "%s: no weight_map", f);
    const int n = cJSON_GetArraySize(map);
    h->f        = calloc((size_t)n, sizeof *h->f);
    char **names = calloc((size_t)n, sizeof *names); /* each shard's file name, once */
    LB_GOTO_IF(!h->f || !names, err, LB_ERR_NOMEM, "out of memory");
    for (const cJSON *e = map->child; e && !st; e = e->next) {
        const char *file = cJSON_IsString(e) ? e->valuestring : NULL;
        if (!file || !*file || strchr(file, '/') || strlen(file) > 255) {
            st = lb_fail(err, LB_ERR_CORRUPT, "%s: tensor '%.64s' maps to a bad file name", f, e->string);
            break;
        }
        int32_t k = 0;
        while (k < h->n && strcmp(names[k], file) != 0) k++;
        if (k == h->n) {
            join(shard, sizeof shard, dir, file);
            names[k] = (char *)file;
            st       = lb_safetensors_open(&h->f[k], shard, err);
            if (!st) h->n++;
        }
        if (!st && lb_safetensors_find(h->f[k], e->string) < 0)
            st = lb_fail(err, LB_ERR_CORRUPT, "%s: tensor '%.64s' is not in %s, as the index says", f,
                         e->string, h->f[k]->src.name);
    }
    free(names);
fail:
    cJSON_Delete(j);
    return st;
}

static const lb_st_tensor *find(const hf_files *h, const char *name, const char **file) {
    for (int32_t i = 0; i < h->n; i++) {
        const int64_t k = lb_safetensors_find(h->f[i], name);
        if (k >= 0) {
            *file = h->f[i]->src.name;
            return &h->f[i]->tensors[k];
        }
    }
    return NULL;
}

/* Matrix `name` ("P.weight") from a GPTQ/AWQ checkpoint's packed P.qweight, P.qzeros, P.scales
 * and P.g_idx (hf_quant.h), as GGUF blocks; LB_ERR_NOT_FOUND, with err untouched, when there
 * is no P.qweight. */
static lb_status get_packed(lb_model *m, const hf_files *h, const char *name, int64_t rows, int64_t cols,
                            int64_t head_rows, lb_tensor *t, lb_error *err) {
    char          pn[4][200], base[160];
    const size_t  bl = strlen(name) > 7 ? strlen(name) - 7 : 0; /* without ".weight" */
    const char   *f = NULL, *other;
    lb_hfq_linear L = { .name = base };
    if (bl == 0 || strcmp(name + bl, ".weight") != 0 || bl >= sizeof base) return LB_ERR_NOT_FOUND;
    memcpy(base, name, bl);
    base[bl] = 0;
    static const char *const part[4] = { "qweight", "qzeros", "scales", "g_idx" };
    const lb_st_tensor      *p[4];
    for (int k = 0; k < 4; k++) {
        snprintf(pn[k], sizeof pn[k], "%s.%s", base, part[k]);
        p[k] = find(h, pn[k], k == 0 ? &f : &other);
    }
    if (!p[0]) return LB_ERR_NOT_FOUND;
    L.qweight = p[0], L.qzeros = p[1], L.scales = p[2], L.g_idx = p[3];
    lb_type   type;
    void     *buf;
    double    rel;
    bool      exact;
    lb_error  ierr = { 0 };
    lb_status st   = lb_hfq_import(&h->q, &L, rows, cols, &type, &buf, &rel, &exact, &ierr);
    if (st) return lb_fail(err, st, "%s: %s", f, ierr.msg);
    LB_RETURN_IF(lb_model_own(m, buf), err, LB_ERR_NOMEM, "out of memory");
    *t = (lb_tensor){ .type = type, .n_dims = 2, .ne = { cols, rows, 1, 1 }, .data = buf };
    if (head_rows > 0) { /* rotary rows into pairs */
        const size_t rb  = lb_row_size(type, cols);
        void        *pr  = malloc((size_t)rows * rb);
        LB_RETURN_IF(!pr || lb_model_own(m, pr), err, LB_ERR_NOMEM, "out of memory");
        LB_RETURN_IF(rows % head_rows, err, LB_ERR_SHAPE, "tensor '%s': %lld rows do not split into rotary "
                     "heads of %lld", name, (long long)rows, (long long)head_rows);
        lb_rotary_rows(pr, buf, rows, rb, head_rows, true);
        t->data = pr;
    }
    lb_hf_quant_report *r = h->rep;
    r->n_tensors++;
    r->n_exact += exact;
    r->n_by_type[type == LB_TYPE_Q4_0 ? 0 : type == LB_TYPE_Q4_1 ? 1 : 2]++;
    if (rel >= r->max_rel_err) {
        r->max_rel_err = rel;
        snprintf(r->worst, sizeof r->worst, "%.95s", base);
    }
    return LB_OK;
}

const lb_hf_quant_report *lb_model_hf_quant(const lb_model *m) {
    return m && m->priv ? m->priv->hf_quant : NULL;
}

/* Tensor `name` of shape [rows] (cols 0) or [rows, cols]; head_rows > 0: permute its rows from
 * the half-split rotary order into pairs (rotary.h), in groups of head_rows. */
static lb_status get(lb_model *m, const hf_files *h, const char *name, int64_t rows, int64_t cols,
                     int64_t head_rows, bool required, lb_tensor *t, lb_error *err) {
    const char         *f  = NULL;
    const lb_st_tensor *sf = find(h, name, &f);
    memset(t, 0, sizeof *t);
    if (!sf && h->q.method && cols > 0) {
        const lb_status st = get_packed(m, h, name, rows, cols, head_rows, t, err);
        if (st != LB_ERR_NOT_FOUND) return st;
    }
    if (!sf) {
        LB_RETURN_IF(required, err, LB_ERR_NOT_FOUND, "%s: tensor '%s' is missing",
                     h->n == 1 ? h->f[0]->src.name : "the safetensors shards", name);
        return LB_OK;
    }
    const lb_type ty = sf->dtype == LB_ST_F32 ? LB_TYPE_F32 : sf->dtype == LB_ST_F16 ? LB_TYPE_F16
                     : sf->dtype == LB_ST_BF16 ? LB_TYPE_BF16 : LB_TYPE_INVALID;
    LB_RETURN_IF(ty == LB_TYPE_INVALID, err, LB_ERR_UNSUPPORTED,
                 "%s: tensor '%s' is %s; lowbit reads F32, F16 and BF16", f, name, lb_st_dtype_name(sf->dtype));
    const int32_t nd  = cols ? 2 : 1;
    const bool    row = !cols && sf->n_dims == 2 && sf->shape[0] == 1 && sf->shape[1] == rows; /* [1, n]: a vector */
    LB_RETURN_IF(!row && (sf->n_dims != nd || sf->shape[0] != rows || (cols && sf->shape[1] != cols)), err,
                 LB_ERR_SHAPE, "%s: tensor '%s' has %d dims [%lld, %lld], config.json implies [%lld, %lld]",
                 f, name, sf->n_dims, (long long)(sf->n_dims > 0 ? sf->shape[0] : 0),
                 (long long)(sf->n_dims > 1 ? sf->shape[1] : 0), (long long)rows, (long long)cols);
    *t = (lb_tensor){ .type = ty, .n_dims = nd, .ne = { cols ? cols : rows, cols ? rows : 1, 1, 1 },
                      .data = sf->data };
    const size_t es = lb_st_dtype_size(sf->dtype), rb = es * (size_t)(cols ? cols : 1);
    if (head_rows <= 0 && (uintptr_t)sf->data % es == 0) return LB_OK; /* a view into the mapping */
    uint8_t *buf = malloc((size_t)(sf->end - sf->begin) + 1);
    LB_RETURN_IF(!buf || lb_model_own(m, buf), err, LB_ERR_NOMEM, "out of memory");
    if (head_rows <= 0) {
        memcpy(buf, sf->data, (size_t)(sf->end - sf->begin));
    } else {
        LB_RETURN_IF(rows % head_rows || head_rows % 2, err, LB_ERR_SHAPE,
                     "%s: tensor '%s': %lld rows do not split into rotary heads of %lld", f, name,
                     (long long)rows, (long long)head_rows);
        lb_rotary_rows(buf, sf->data, rows, rb, head_rows, true);
    }
    t->data = buf;
    return LB_OK;
}

/* The experts' matrices `pattern` (a layer's name, %d the expert), [rows, cols] each, merged
 * into one [cols, rows, n_expert] tensor the model owns (GGUF's _exps layout) in their dtype. */
static lb_status get_experts(lb_model *m, const hf_files *h, const char *pattern, int64_t rows, int64_t cols,
                             lb_tensor *t, lb_error *err) {
    const int32_t X   = m->cfg.n_expert;
    uint8_t      *buf = NULL;
    size_t        eb  = 0;
    for (int32_t e = 0; e < X; e++) {
        char      name[192];
        lb_tensor te;
        snprintf(name, sizeof name, pattern, e);
        lb_status st = get(m, h, name, rows, cols, 0, true, &te, err);
        if (st) return st;
        if (e == 0) {
            eb  = lb_tensor_nbytes(&te);
            buf = malloc(eb * (size_t)X);
            LB_RETURN_IF(!buf || lb_model_own(m, buf), err, LB_ERR_NOMEM, "out of memory for the experts of '%s'", pattern);
            *t = te;
            t->n_dims = 3;
            t->ne[2]  = X;
            t->data   = buf;
        }
        LB_RETURN_IF(te.type != t->type, err, LB_ERR_UNSUPPORTED, "tensor '%s' is %s where expert 0's is %s", name,
                     lb_type_name(te.type), lb_type_name(t->type));
        memcpy(buf + (size_t)e * eb, te.data, eb);
    }
    return LB_OK;
}

/* DeepSeek's kv_b_proj [H * (dn + dv), R] of layer l into GGUF's per-head attn_k_b [dn, R, H]
 * (each head's k rows transposed, as llama.cpp's converter splits it) and attn_v_b [R, dv, H],
 * f32 tensors the model owns */
static lb_status get_kv_b(lb_model *m, const hf_files *h, int32_t l, lb_error *err) {
    const lb_llama_config *c = &m->cfg;
    const int64_t H = c->n_heads, R = c->n_lora_kv, DN = c->head_dim - c->n_rot, DV = lb_model_dim(m, LB_DIM_DV);
    char          name[160];
    lb_tensor     kv;
    snprintf(name, sizeof name, "model.layers.%d.self_attn.kv_b_proj.weight", l);
    lb_status st = get(m, h, name, H * (DN + DV), R, 0, true, &kv, err);
    if (st) return st;
    float *k = malloc((size_t)(DN * R * H) * sizeof *k), *v = malloc((size_t)(R * DV * H) * sizeof *v);
    float *row = malloc((size_t)R * sizeof *row);
    if (!k || !v || !row || lb_model_own(m, k) || lb_model_own(m, v)) {
        free(row);
        return lb_fail(err, LB_ERR_NOMEM, "out of memory for %s", name);
    }
    for (int64_t hh = 0; hh < H; hh++)
        for (int64_t i = 0; i < DN + DV; i++) {
            lb_tensor_get_row_f32(&kv, hh * (DN + DV) + i, row);
            for (int64_t r = 0; r < R; r++)
                if (i < DN) k[(hh * R + r) * DN + i] = row[r]; /* k_b[h] row r, column i */
                else v[(hh * DV + i - DN) * R + r] = row[r];
        }
    free(row);
    m->layers[l].wk_b = (lb_tensor){ .type = LB_TYPE_F32, .n_dims = 3, .ne = { DN, R, H, 1 }, .data = k };
    m->layers[l].wv_b = (lb_tensor){ .type = LB_TYPE_F32, .n_dims = 3, .ne = { R, DV, H, 1 }, .data = v };
    return LB_OK;
}

lb_status lb_model_load_hf(lb_model *m, const char *dir, lb_error *err) {
    lb_llama_config *c  = &m->cfg;
    hf_config        hc = { 0 };
    lb_status        st = read_config(dir, c, &hc, err);
    float           *lr[2] = { hc.rope_long, hc.rope_short };
    for (int k = 0; k < 2; k++) /* LongRoPE's factors: the model's from here on */
        if (lr[k] && lb_model_own(m, lr[k])) {
            free(lr[k]);
            if (!st) st = lb_fail(err, LB_ERR_NOMEM, "out of memory");
        }
    if (st) return st;
    for (int k = 0; k < 2 && lr[0]; k++)
        *(k ? &m->rope_short : &m->rope_long) =
            (lb_tensor){ .type = LB_TYPE_F32, .n_dims = 1, .ne = { c->head_dim / 2, 1, 1, 1 }, .data = lr[k] };
    LB_RETURN_IF(c->n_layers > 1024 || c->n_heads % c->n_kv_heads, err, LB_ERR_CORRUPT,
                 "%s/config.json: %d layers, %d heads, %d KV heads", dir, c->n_layers, c->n_heads,
                 c->n_kv_heads);
    hf_files *h = calloc(1, sizeof *h);
    LB_RETURN_IF(!h, err, LB_ERR_NOMEM, "out of memory");
    m->priv->hf_files = h;
    if ((st = open_weights(dir, h, err))) return st;
    if (hc.q.method) {
        LB_RETURN_IF(!(m->priv->hf_quant = calloc(1, sizeof *m->priv->hf_quant)), err, LB_ERR_NOMEM, "out of memory");
        h->q   = hc.q;
        h->rep = m->priv->hf_quant;
        snprintf(h->rep->method, sizeof h->rep->method, "%s", hc.q.method == LB_HFQ_GPTQ ? "gptq" : "awq");
        h->rep->bits = hc.q.bits, h->rep->group_size = hc.q.group;
        h->rep->sym = hc.q.sym, h->rep->desc_act = hc.q.desc_act;
    }
    m->arch = hc.arch;
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    LB_RETURN_IF(!m->layers, err, LB_ERR_NOMEM, "out of memory");
    for (int f = 0; f < 2; f++) { /* fused tensors (Phi-3's qkv_proj, gate_up_proj) into their parts */
        const lb_fused *fu = &m->arch->fused[f];
        int64_t         rows = 0;
        for (int k = 0; k < 3 && fu->parts[k] != LB_ROLE_COUNT; k++) rows += lb_model_dim(m, lb_slot_of(fu->parts[k])->ne1);
        for (int32_t l = 0; fu->hf && l < c->n_layers; l++) {
            char      name[160];
            lb_tensor ft;
            lb_tensor_name(name, sizeof name, fu->hf, l, true);
            if ((st = get(m, h, name, rows, lb_model_dim(m, lb_slot_of(fu->parts[0])->ne0), 0, true, &ft, err)) ||
                (st = lb_model_split_fused(m, l, fu, &ft, name, err)))
                return st;
            for (int k = 0; k < 3 && fu->parts[k] != LB_ROLE_COUNT; k++) { /* rotary parts into pairs */
                lb_tensor    *t  = lb_model_tensor(m, l, fu->parts[k]);
                const int64_t hr = lb_rotary_head_rows(m, lb_slot_of(fu->parts[k]));
                if (hr <= 0) continue;
                const size_t rb  = lb_row_size(t->type, t->ne[0]);
                void        *buf = malloc((size_t)t->ne[1] * rb);
                LB_RETURN_IF(!buf || lb_model_own(m, buf), err, LB_ERR_NOMEM, "out of memory");
                lb_rotary_rows(buf, t->data, t->ne[1], rb, hr, true);
                t->data = buf;
            }
        }
    }
    int            ns;
    const lb_slot *slots = lb_slots(&ns);
    for (int i = 0; i < ns; i++) { /* every slot of the architecture, by its HF name */
        const lb_slot *s      = &slots[i];
        const char   *hf_name = lb_arch_hf_name(m->arch, s);
        if (m->arch->use[s->role] == LB_USE_NONE || !hf_name) continue;
        const bool    vec      = s->ne1 == LB_DIM_1; /* HF: [rows] or [rows = outputs, inputs] */
        const int64_t rows = lb_model_dim(m, vec ? s->ne0 : s->ne1), cols = vec ? 0 : lb_model_dim(m, s->ne0);
        const int64_t hr = lb_rotary_head_rows(m, s);
        for (int32_t l = lb_slot_first(s); l < lb_slot_end(m, s); l++) {
            const uint8_t use      = lb_layer_use(m->arch, c, l, s->role);
            const bool    required = s->role == LB_ROLE_OUTPUT ? !hc.tied : use == LB_USE_REQUIRED;
            if (use == LB_USE_NONE) continue;
            char name[160];
            lb_tensor_name(name, sizeof name, hf_name, l, true);
            lb_tensor *t = lb_model_tensor(m, l, s->role);
            if (t->data) continue; /* a part of a fused tensor */
            if (s->flags & LB_SLOT_EXPERTS) st = get_experts(m, h, name, rows, cols, t, err);
            else st = get(m, h, name, rows, cols, hr, required, t, err);
            if (st) return st;
        }
    }
    for (int32_t l = 0; m->arch->ops.mla && l < c->n_layers; l++)
        if ((st = get_kv_b(m, h, l, err))) return st;
    m->tied_output = hc.tied;
    if (hc.tied) m->output = m->tok_embd;
    if ((st = lb_model_make_slots_f32(m, err))) return st; /* norms and biases compute in f32 */
    if (m->arch->ops.hf_norm_plus1 && (st = lb_model_shift_norms(m, 1.0f, err))) return st;
    if (hc.llama3) {
        float *ff = malloc((size_t)(c->head_dim / 2) * sizeof *ff);
        LB_RETURN_IF(!ff || lb_model_own(m, ff), err, LB_ERR_NOMEM, "out of memory");
        lb_rope_llama3_factors(ff, c->head_dim, c->rope_theta, hc.factor, hc.low, hc.high, hc.orig);
        m->rope_freqs = (lb_tensor){ .type = LB_TYPE_F32, .n_dims = 1, .ne = { c->head_dim / 2, 1, 1, 1 }, .data = ff };
    }
    /* the tokenizer: tokenizer.json, else a SentencePiece tokenizer.model */
    char tp[4096];
    st = lb_vocab_load_hf(&m->vocab, dir, c->n_vocab, err);
    join(tp, sizeof tp, dir, "tokenizer.model");
    if (st == LB_ERR_NOT_FOUND && access(tp, F_OK) == 0) st = lb_vocab_load_file(&m->vocab, tp, err);
    if (st == LB_ERR_NOT_FOUND) return LB_OK; /* lb_model_load: a tokenizer must come from elsewhere */
    if (st) return st;
    const int32_t bos = hc.bos >= 0 && hc.bos < c->n_vocab ? (int32_t)hc.bos : lb_vocab_bos(m->vocab);
    const int32_t eos = hc.eos >= 0 && hc.eos < c->n_vocab ? (int32_t)hc.eos : lb_vocab_eos(m->vocab);
    lb_vocab_set_special(m->vocab, bos, eos, lb_vocab_unk(m->vocab));
    return LB_OK;
}
