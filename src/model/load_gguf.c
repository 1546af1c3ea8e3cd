/* GGUF files of the architectures of arch.h: hyperparameters from `<arch>.*` keys, tensors by
 * their llama.cpp names (views into the mapping; NEOX-rope architectures' rotary rows put into
 * pairs, rotary.h), the tokenizer from `tokenizer.ggml.*`.
 * Tensors in lowbit's own types are I8 rows plus lowbit.tensor_type / tensor_ne0 keys
 * (see save_gguf.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "model_internal.h"
#include "rotary.h"

/* An integer key that must fit in int32 and be > 0; `def` < 0 means required. */
static lb_status get_i32(const lb_gguf *g, const char *key, int64_t def, int32_t *out,
                         lb_error *err) {
    int64_t   v;
    lb_status st = lb_gguf_get_int(g, key, &v, err);
    if (st == LB_ERR_NOT_FOUND) {
        LB_RETURN_IF(def < 0, err, LB_ERR_NOT_FOUND, "%s: required key '%s' is missing",
                     g->src.name, key);
        v = def;
    } else if (st) {
        return st;
    }
    LB_RETURN_IF(v <= 0 || v > INT32_MAX, err, LB_ERR_CORRUPT, "%s: key '%s' = %lld is out of range",
                 g->src.name, key, (long long)v);
    *out = (int32_t)v;
    return LB_OK;
}

/* A float key in (lo, hi]: finite, and a float once converted. */
static lb_status get_f32(const lb_gguf *g, const char *key, double def, double lo, double hi,
                         float *out, lb_error *err) {
    double    v;
    lb_status st = lb_gguf_get_float(g, key, &v, err);
    if (st == LB_ERR_NOT_FOUND) v = def;
    else if (st) return st;
    LB_RETURN_IF(!isfinite(v) || !(v > lo) || !(v <= hi), err, LB_ERR_CORRUPT,
                 "%s: key '%s' = %g is outside (%g, %g]", g->src.name, key, v, lo, hi);
    *out = (float)v;
    return LB_OK;
}

/* An optional float key in [0, hi] (0: none), def when absent. */
static lb_status opt_f32(const lb_gguf *g, const char *key, float def, double hi, float *out, lb_error *err) {
    double    v;
    lb_status st = lb_gguf_get_float(g, key, &v, err);
    if (st == LB_ERR_NOT_FOUND) v = def;
    else if (st) return st;
    LB_RETURN_IF(!isfinite(v) || !(v >= 0) || !(v <= hi), err, LB_ERR_CORRUPT,
                 "%s: key '%s' = %g is outside [0, %g]", g->src.name, key, v, hi);
    *out = (float)v;
    return LB_OK;
}

/* An optional integer key in [0, hi], def when absent. */
static lb_status opt_i32(const lb_gguf *g, const char *key, int64_t def, int64_t hi, int32_t *out, lb_error *err) {
    int64_t   v;
    lb_status st = lb_gguf_get_int(g, key, &v, err);
    if (st == LB_ERR_NOT_FOUND) v = def;
    else if (st) return st;
    LB_RETURN_IF(v < 0 || v > hi, err, LB_ERR_CORRUPT, "%s: %s = %lld", g->src.name, key, (long long)v);
    *out = (int32_t)v;
    return LB_OK;
}

/* A tensor in one of lowbit's own types (save_gguf.c): I8 rows of the type's bytes, the type
 * name in lowbit.tensor_type.<name>, the row length in lowbit.tensor_ne0.<name>. */
static lb_status get_own_type(const lb_gguf *g, const char *name, const lb_gguf_tensor_info *ti,
                              lb_tensor *t, lb_error *err) {
    char        key[128];
    lb_gguf_str tn;
    int64_t     ne0;
    snprintf(key, sizeof key, "lowbit.tensor_type.%s", name);
    lb_status st = lb_gguf_get_str(g, key, &tn, err);
    if (st) return st;
    char tname[32];
    LB_RETURN_IF(tn.n >= sizeof tname || memchr(tn.p, '\0', tn.n), err, LB_ERR_UNSUPPORTED,
                 "%s: tensor '%s' has an unknown lowbit type '%.32s...'", g->src.name, name, tn.p);
    memcpy(tname, tn.p, tn.n);
    tname[tn.n] = '\0';
    const lb_type ty = lb_type_from_name(tname);
    LB_RETURN_IF(ty == LB_TYPE_INVALID || !lb_type_get_traits(ty), err, LB_ERR_UNSUPPORTED,
                 "%s: tensor '%s' has type '%s', which this lowbit does not know", g->src.name,
                 name, tname);
    snprintf(key, sizeof key, "lowbit.tensor_ne0.%s", name);
    st = lb_gguf_get_int(g, key, &ne0, err);
    LB_RETURN_IF(st == LB_ERR_NOT_FOUND, err, LB_ERR_CORRUPT,
                 "%s: tensor '%s' of lowbit type %s has no key %s", g->src.name, name, tname, key);
    if (st) return st;
    LB_RETURN_IF(ti->ggml_type != LB_GGML_I8, err, LB_ERR_CORRUPT,
                 "%s: tensor '%s' of lowbit type %s is stored as %s, not i8", g->src.name, name,
                 tname, lb_ggml_type_name(ti->ggml_type));
    const size_t rs = lb_row_size(ty, ne0);
    LB_RETURN_IF(rs == 0, err, LB_ERR_CORRUPT, "%s: tensor '%s': rows of %lld values (%s) do not "
                 "fit type %s", g->src.name, name, (long long)ne0, key, tname);
    LB_RETURN_IF((uint64_t)ti->ne[0] != rs, err, LB_ERR_CORRUPT,
                 "%s: tensor '%s': rows of %lld %s values take %zu bytes, the file stores %lld",
                 g->src.name, name, (long long)ne0, tname, rs, (long long)ti->ne[0]);
    t->type  = ty;
    t->ne[0] = ne0;
    return LB_OK;
}

bool lb_gguf_lowbit_type(const lb_gguf *g, const lb_gguf_tensor_info *t, char *type, size_t cap, int64_t *ne0) {
    char        key[160];
    lb_gguf_str own;
    snprintf(key, sizeof key, "lowbit.tensor_type.%.120s", t->name);
    if (lb_gguf_get_str(g, key, &own, NULL) != LB_OK || own.n >= cap) return false;
    snprintf(type, cap, "%.*s", (int)own.n, own.p);
    snprintf(key, sizeof key, "lowbit.tensor_ne0.%.120s", t->name);
    if (lb_gguf_get_int(g, key, ne0, NULL) != LB_OK) *ne0 = t->ne[0];
    return true;
}

static lb_status get_tensor(lb_model *m, const char *name, bool required, lb_tensor *t,
                            lb_error *err) {
    const lb_gguf *g = m->priv->gguf;
    const int64_t  i = lb_gguf_find_tensor(g, name);
    memset(t, 0, sizeof *t);
    if (i < 0) {
        LB_RETURN_IF(required, err, LB_ERR_NOT_FOUND, "%s: tensor '%s' is missing", g->src.name,
                     name);
        return LB_OK;
    }
    const lb_gguf_tensor_info *ti = &g->tensors[i];
    t->n_dims = (int32_t)ti->n_dims;
    for (int d = 0; d < LB_MAX_DIMS; d++) t->ne[d] = ti->ne[d];
    t->data = ti->data;
    char key[128];
    snprintf(key, sizeof key, "lowbit.tensor_type.%s", name);
    if (lb_gguf_find_key(g, key) >= 0) return get_own_type(g, name, ti, t, err);
    const lb_type ty = lb_type_from_ggml(ti->ggml_type);
    LB_RETURN_IF(ty == LB_TYPE_INVALID, err, LB_ERR_UNSUPPORTED,
                 "%s: tensor '%s' has type %s, which lowbit cannot compute with yet",
                 g->src.name, name, lb_ggml_type_name(ti->ggml_type));
    t->type = ty;
    return LB_OK;
}

lb_status lb_vocab_from_gguf(lb_vocab **out, const lb_gguf *g, lb_error *err) {
    const char       *name = g->src.name;
    lb_gguf_str       model;
    const lb_gguf_kv *tokens = NULL, *scores = NULL, *types = NULL;
    lb_vocab         *v  = NULL;
    lb_status         st = lb_gguf_get_str(g, "tokenizer.ggml.model", &model, err);
    *out                 = NULL;
    LB_RETURN_IF(st == LB_ERR_NOT_FOUND, err, LB_ERR_NOT_FOUND,
                 "%s: no tokenizer (tokenizer.ggml.model is missing)", name);
    if (st) return st;
    const bool bpe = model.n == 4 && memcmp(model.p, "gpt2", 4) == 0; /* byte-level BPE */
    const bool ugm = model.n == 2 && memcmp(model.p, "t5", 2) == 0;   /* SentencePiece Unigram */
    LB_RETURN_IF(!bpe && !ugm && (model.n != 5 || memcmp(model.p, "llama", 5) != 0), err,
                 LB_ERR_UNSUPPORTED, "%s: tokenizer model '%.*s' is not supported (only 'llama', "
                 "SentencePiece BPE, 't5', SentencePiece Unigram, and 'gpt2', byte-level BPE)", name,
                 (int)(model.n > 32 ? 32 : model.n), model.p);
    st = lb_gguf_get_arr(g, "tokenizer.ggml.tokens", &tokens, err);
    LB_RETURN_IF(st == LB_ERR_NOT_FOUND, err, LB_ERR_NOT_FOUND,
                 "%s: tokenizer.ggml.tokens is missing", name);
    if (st) return st;
    LB_RETURN_IF(tokens->arr_type != LB_GGUF_STRING || tokens->arr_n == 0 ||
                     tokens->arr_n > (1u << 24),
                 err, LB_ERR_CORRUPT, "%s: tokenizer.ggml.tokens must be 1..16M strings", name);
    const uint64_t n = tokens->arr_n;
    st = lb_gguf_get_arr(g, "tokenizer.ggml.scores", &scores, err);
    if (st && st != LB_ERR_NOT_FOUND) return st;
    st = lb_gguf_get_arr(g, "tokenizer.ggml.token_type", &types, err);
    if (st && st != LB_ERR_NOT_FOUND) return st;
    LB_RETURN_IF(scores && (scores->arr_n != n || scores->arr_type == LB_GGUF_STRING), err,
                 LB_ERR_CORRUPT, "%s: tokenizer.ggml.scores has %llu entries for %llu tokens",
                 name, (unsigned long long)scores->arr_n, (unsigned long long)n);
    LB_RETURN_IF(types && (types->arr_n != n || types->arr_type == LB_GGUF_STRING), err,
                 LB_ERR_CORRUPT, "%s: tokenizer.ggml.token_type has %llu entries for %llu tokens",
                 name, (unsigned long long)types->arr_n, (unsigned long long)n);
    LB_TRY(lb_vocab_create(&v, (int32_t)n, err));
    for (uint64_t i = 0; i < n; i++) {
        const int64_t type = types ? lb_gguf_arr_int(types, i) : LB_TOKEN_NORMAL;
        const float   sc   = scores ? (float)lb_gguf_arr_float(scores, i) : 0.0f;
        LB_GOTO_IF(type < 0 || type > LB_TOKEN_BYTE, err, LB_ERR_CORRUPT,
                   "%s: token %llu has unknown type %lld", name, (unsigned long long)i, (long long)type);
        LB_GOTO_IF(lb_vocab_set_token(v, (int32_t)i, tokens->arr_str[i].p,
                                      (size_t)tokens->arr_str[i].n, sc,
                                      type == 0 ? LB_TOKEN_NORMAL : (int32_t)type),
                   err, LB_ERR_NOMEM, "out of memory");
    }
    /* llama.cpp's defaults; BPE: add_bos per pre-tokenizer; Unigram (t5): no BOS */
    bool add_bos = !ugm, add_space = !bpe;
    if (bpe) {
        LB_TRY(lb_vocab_bpe_from_gguf(v, g, err));
        add_bos = lb_vocab_add_bos(v);
    }
    LB_TRY(lb_vocab_chat_template_from_gguf(v, g, err));
    lb_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos, NULL);
    bool add_eos = false;
    lb_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &add_eos, NULL);
    lb_vocab_set_add_eos(v, add_eos);
    lb_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &add_space, NULL);
    /* A special id whose key is missing is absent, but for a BOS the vocabulary adds: llama.cpp's
     * default (SentencePiece 1, BPE 11), and for Unigram's eos and unk (1 and 2; its unknown
     * characters need unk). An id past the vocabulary (llama.cpp's converters write -1 as
     * 4294967295) is dropped with a warning, unless it is the BOS to add. */
    static const char *const keys[4] = { "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                         "tokenizer.ggml.unknown_token_id",
                                         "tokenizer.ggml.padding_token_id" };
    int64_t id[4] = { -1, -1, -1, -1 };
    char    warn[256] = "";
    size_t  wn        = 0;
    for (int k = 0; k < 4; k++) {
        if (lb_gguf_get_int(g, keys[k], &id[k], NULL) != LB_OK) {
            const int64_t def = k == 0 && add_bos ? (bpe ? 11 : 1) : ugm && (k == 1 || k == 2) ? k : -1;
            id[k]             = def < (int64_t)n ? def : -1;
            continue;
        }
        if (id[k] >= 0 && id[k] < (int64_t)n) continue;
        LB_GOTO_IF(k == 0 && add_bos, err, LB_ERR_CORRUPT, "%s: tokenizer.ggml.bos_token_id %lld is "
                   "out of range for %llu tokens, and the vocabulary adds a BOS", name,
                   (long long)id[k], (unsigned long long)n);
        if (wn < sizeof warn)
            wn += (size_t)snprintf(warn + wn, sizeof warn - wn, "%s%s %lld", wn ? ", " : "",
                                   keys[k] + strlen("tokenizer.ggml."), (long long)id[k]);
        id[k] = -1;
    }
    if (wn) {
        char line[512];
        snprintf(line, sizeof line, "%s: special token ids out of range for %llu tokens, taken "
                 "as absent: %s", name, (unsigned long long)n, warn);
        lb_vocab_set_warning(v, line);
    }
    const int64_t bos = id[0], eos = id[1], unk = id[2];
    lb_vocab_set_pad(v, (int32_t)id[3]);
    lb_vocab_set_special(v, (int32_t)bos, (int32_t)eos, (int32_t)unk);
    lb_vocab_set_flags(v, add_bos, add_space);
    LB_TRY(lb_vocab_build(v, err));
    if (ugm) LB_TRY(lb_vocab_unigram_from_gguf(v, g, err));
    *out = v;
    return LB_OK;
fail:
    lb_vocab_free(v);
    return st;
}

/* <arch>.rope.scaling.type and .factor (or the older .rope.scale_linear): linear and YaRN
 * scaling are computed, with .original_context_length, .attn_factor and YaRN's betas; LongRoPE
 * (Phi-3) comes as the rope_factors_long/short tensors (its type may be written or not); any
 * other kind is refused, never ignored (llama3's comes as rope_freqs.weight). */
static lb_status rope_scaling(const lb_gguf *g, const char *arch, lb_llama_config *c, lb_error *err) {
    char        k[96];
    lb_gguf_str type = { "none", 4 };
    snprintf(k, sizeof k, "%s.rope.scaling.type", arch);
    lb_status st = lb_gguf_get_str(g, k, &type, err);
    if (st && st != LB_ERR_NOT_FOUND) return st;
#define IS(s) (type.n == sizeof s - 1 && !memcmp(type.p, s, sizeof s - 1))
    const bool linear = IS("linear"), yarn = IS("yarn");
    if (!linear && !yarn && !IS("none") && !IS("longrope"))
        return lb_fail(err, LB_ERR_UNSUPPORTED, "%s: %s '%.*s' is not supported (none, linear, yarn, longrope)",
                       g->src.name, k, (int)(type.n > 32 ? 32 : type.n), type.p);
#undef IS
    double factor = 0;
    snprintf(k, sizeof k, linear || yarn ? "%s.rope.scaling.factor" : "%s.rope.scale_linear", arch);
    st = lb_gguf_get_float(g, k, &factor, err);
    if (st == LB_ERR_NOT_FOUND) factor = linear || yarn ? 0 : 1;
    else if (st) return st;
    if (linear || yarn || factor != 1) /* a factor of 1 (or 0, llama.cpp's "unset") changes nothing */
        LB_RETURN_IF(!(factor >= 0 && factor <= 1024), err, LB_ERR_CORRUPT, "%s: rope scaling factor %g "
                     "is outside [0, 1024]", g->src.name, factor);
    const float f = factor > 0 && factor != 1 ? (float)factor : 0.0f;
    c->rope_linear = yarn ? 0.0f : f;
    c->rope_yarn   = yarn ? (factor > 0 ? (float)factor : 1.0f) : 0.0f;
    snprintf(k, sizeof k, "%s.rope.scaling.original_context_length", arch);
    if ((st = opt_i32(g, k, 0, INT32_MAX, &c->rope_orig_ctx, err))) return st;
    snprintf(k, sizeof k, "%s.rope.scaling.attn_factor", arch);
    if ((st = opt_f32(g, k, 0, 1e3, &c->rope_attn_factor, err))) return st;
    snprintf(k, sizeof k, "%s.rope.scaling.yarn_beta_fast", arch);
    if (yarn && (st = opt_f32(g, k, 32, 1e6, &c->yarn_beta_fast, err))) return st;
    snprintf(k, sizeof k, "%s.rope.scaling.yarn_beta_slow", arch);
    if (yarn && (st = opt_f32(g, k, 1, 1e6, &c->yarn_beta_slow, err))) return st;
    return LB_OK;
}

/* Sliding windows, their RoPE base, soft-capping and the query scale, as llama.cpp reads them
 * for the family (arch.h's ops): <arch>.attention.sliding_window (Gemma 2: 4096 when absent;
 * Gemma 3: no window), .attention.sliding_window_pattern, .rope.freq_base_swa,
 * .attn_logit_softcapping and .final_logit_softcapping; lowbit's own .attention.scale. */
static lb_status windows(const lb_gguf *g, const lb_arch *a, lb_llama_config *c, lb_error *err) {
    const lb_arch_ops *o = &a->ops;
    char               k[96];
    int64_t            v;
    double             f;
    lb_status          st;
    if (o->swa_every || o->swa_pattern > 0) { /* absent: Mistral and Gemma 3 have none, Gemma 2 4096 */
        snprintf(k, sizeof k, "%s.attention.sliding_window", a->gguf);
        if ((st = opt_i32(g, k, o->swa_pattern > 0 && !o->swa_rope_own ? 4096 : 0, INT32_MAX, &c->n_swa, err)))
            return st;
    }
    if (o->swa_pattern > 0) {
        snprintf(k, sizeof k, "%s.attention.sliding_window_pattern", a->gguf);
        st = lb_gguf_get_int(g, k, &v, err);
        if (st == LB_ERR_NOT_FOUND) v = o->swa_pattern;
        else if (st) return lb_fail(err, st, "%s: %s: a per-layer list is not supported, only a period",
                                    g->src.name, k);
        LB_RETURN_IF(v < 0 || v > 1024, err, LB_ERR_CORRUPT, "%s: %s = %lld", g->src.name, k, (long long)v);
        c->swa_pattern = (int32_t)v;
        snprintf(k, sizeof k, "%s.rope.freq_base_swa", a->gguf);
        st = lb_gguf_get_float(g, k, &f, err);
        if (st && st != LB_ERR_NOT_FOUND) return st;
        if (!st || o->swa_rope_own) { /* Gemma 3: its own base (default 10000), unscaled */
            if ((st = get_f32(g, k, 10000.0, 0, 1e12, &c->rope_theta_swa, err))) return st;
            c->rope_linear_swa = o->swa_rope_own ? 0.0f : c->rope_linear;
        }
    }
    if (o->softcaps) {
        snprintf(k, sizeof k, "%s.final_logit_softcapping", a->gguf);
        if ((st = opt_f32(g, k, o->final_softcap, 1e6, &c->final_softcap, err))) return st;
        snprintf(k, sizeof k, "%s.attn_logit_softcapping", a->gguf);
        if (o->attn_softcap > 0 && (st = opt_f32(g, k, o->attn_softcap, 1e6, &c->attn_softcap, err))) return st;
    }
    snprintf(k, sizeof k, "%s.attention.scale", a->gguf);
    return opt_f32(g, k, lb_arch_attn_scale(a, c), 1e3, &c->attn_scale, err);
}

/* A mixture of experts' keys (llama.cpp's): <arch>.expert_count and .expert_used_count (both
 * absent: a dense FFN), .expert_feed_forward_length (absent: feed_forward_length, Mixtral's),
 * .expert_shared_feed_forward_length (Qwen2-MoE). arch: general.architecture's value. */
static lb_status experts(const lb_gguf *g, lb_gguf_str arch, lb_llama_config *c, lb_error *err) {
    static const char *const names[4] = { "expert_count", "expert_used_count", "expert_feed_forward_length",
                                          "expert_shared_feed_forward_length" };
    int32_t *const           out[4]   = { &c->n_expert, &c->n_expert_used, &c->n_ff_exp, &c->n_ff_shexp };
    for (int i = 0; i < 4; i++) {
        char      k[96];
        lb_status st;
        snprintf(k, sizeof k, "%.*s.%s", (int)(arch.n > 32 ? 32 : arch.n), arch.p, names[i]);
        if ((st = opt_i32(g, k, 0, 1 << 18, out[i], err))) return st;
    }
    LB_RETURN_IF(c->n_expert > 4096 || c->n_expert_used > c->n_expert || (c->n_expert > 0 && c->n_expert_used == 0),
                 err, LB_ERR_CORRUPT, "%s: %d experts, %d used per token", g->src.name, c->n_expert, c->n_expert_used);
    return LB_OK;
}

/* DeepSeek-V2/V3's keys (llama.cpp's deepseek2): the latent attention's sizes, as its
 * converter writes them for MLA (key_length the latent and the rotary key, value_length the
 * latent, key_length_mla and value_length_mla a head's), the leading dense layers, the shared
 * experts and the router's options. Files of the older layout (one attn_kv_b per layer, no
 * *_mla keys) are refused. */
static lb_status mla_keys(const lb_gguf *g, lb_llama_config *c, lb_error *err) {
    char      k[96];
    int32_t   kl, vl;
    int64_t   gating = 0;
    bool      norm   = false;
    lb_status st;
#define KEY(s) (snprintf(k, sizeof k, "deepseek2.%s", s), k)
    st = lb_gguf_get_int(g, KEY("attention.key_length_mla"), &(int64_t){ 0 }, err);
    LB_RETURN_IF(st == LB_ERR_NOT_FOUND, err, LB_ERR_UNSUPPORTED, "%s: deepseek2 without %s: the older layout "
                 "(attn_kv_b) is not supported; convert it again with a recent convert_hf_to_gguf.py", g->src.name, k);
    if ((st = get_i32(g, KEY("attention.key_length_mla"), -1, &c->head_dim, err)) ||
        (st = get_i32(g, KEY("attention.value_length_mla"), -1, &c->head_dim_v, err)) ||
        (st = get_i32(g, KEY("attention.kv_lora_rank"), -1, &c->n_lora_kv, err)) ||
        (st = opt_i32(g, KEY("attention.q_lora_rank"), 0, 1 << 16, &c->n_lora_q, err)) ||
        (st = get_i32(g, KEY("rope.dimension_count"), -1, &c->n_rot, err)) ||
        (st = get_i32(g, KEY("attention.key_length"), -1, &kl, err)) ||
        (st = get_i32(g, KEY("attention.value_length"), -1, &vl, err)) ||
        (st = opt_i32(g, KEY("leading_dense_block_count"), 0, 1024, &c->n_dense_lead, err)) ||
        (st = opt_i32(g, KEY("expert_shared_count"), 0, 1024, &c->n_expert_shared, err)) ||
        (st = opt_f32(g, KEY("expert_weights_scale"), 0, 1e3, &c->moe_w_scale, err)) ||
        (st = opt_i32(g, KEY("expert_group_count"), 0, 4096, &c->n_expert_groups, err)) ||
        (st = opt_i32(g, KEY("expert_group_used_count"), 0, 4096, &c->n_group_used, err)) ||
        (st = opt_f32(g, KEY("rope.scaling.yarn_log_multiplier"), 0, 1e3, &c->rope_yarn_log_mul, err)))
        return st;
    /* what lowbit does not compute yet is refused, not run as something else: a multi-token
     * prediction block counted in block_count (GLM-4.7-Flash), attention temperature (Mistral
     * Large 3) */
    static const char *const refused[3] = { "nextn_predict_layers", "attention.temperature_scale",
                                            "attention.temperature_length" };
    for (int i = 0; i < 3; i++) {
        int64_t iv = 0;
        double  fv = 0;
        if (lb_gguf_find_key(g, KEY(refused[i])) < 0) continue;
        const bool zero = (lb_gguf_get_int(g, k, &iv, NULL) == LB_OK && iv == 0) ||
                          (lb_gguf_get_float(g, k, &fv, NULL) == LB_OK && fv == 0);
        LB_RETURN_IF(!zero, err, LB_ERR_UNSUPPORTED, "%s: %s: not supported (deepseek2 with a multi-token "
                     "prediction block or attention temperature)", g->src.name, k);
    }
    st = lb_gguf_get_bool(g, KEY("expert_weights_norm"), &norm, err);
    if (st && st != LB_ERR_NOT_FOUND) return st;
    st = lb_gguf_get_int(g, KEY("expert_gating_func"), &gating, err);
    if (st && st != LB_ERR_NOT_FOUND) return st;
    LB_RETURN_IF(gating < 0 || gating > 2, err, LB_ERR_UNSUPPORTED, "%s: %s = %lld: only softmax (1) and sigmoid "
                 "(2) routers are supported", g->src.name, k, (long long)gating);
#undef KEY
    LB_RETURN_IF(kl != c->n_lora_kv + c->n_rot || vl != c->n_lora_kv, err, LB_ERR_CORRUPT, "%s: key length %d and "
                 "value length %d are not the latent (%d) and the rotary key (%d)", g->src.name, kl, vl, c->n_lora_kv,
                 c->n_rot);
    c->moe_gating        = gating == 2 ? LB_GATING_SIGMOID : LB_GATING_SOFTMAX; /* absent: DeepSeek-V2's softmax */
    c->moe_norm_w        = norm;
    c->rope_yarn_log_mul /= 0.1f; /* the converter writes 0.1 * mscale_all_dim */
    c->n_ff_shexp        = c->n_expert_shared * c->n_ff_exp;
    return LB_OK;
}

/* NEOX-rope architectures store rotary rows split in halves: into lowbit's pairs (rotary.h),
 * each rotary tensor an owned copy */
static lb_status rotary_to_pairs(lb_model *m, lb_error *err) {
    int            ns;
    const lb_slot *slots = lb_slots(&ns);
    for (int i = 0; i < ns; i++) {
        const int64_t hr = lb_rotary_head_rows(m, &slots[i]);
        for (int32_t l = 0; hr > 0 && l < m->cfg.n_layers; l++) {
            lb_tensor *t = lb_model_tensor(m, l, slots[i].role);
            if (!t || !t->data) continue;
            const bool    vec  = t->ne[1] == 1; /* f32 by now: its elements are the rows */
            const int64_t rows = vec ? t->ne[0] : t->ne[1];
            const size_t  rb   = vec ? sizeof(float) : lb_row_size(t->type, t->ne[0]);
            LB_RETURN_IF(rows % hr || (vec && t->type != LB_TYPE_F32), err, LB_ERR_SHAPE,
                         "%s: blk.%d.%s: %lld rows do not split into rotary heads of %lld", m->priv->gguf->src.name,
                         l, slots[i].gguf, (long long)rows, (long long)hr);
            void *buf = malloc((size_t)rows * rb);
            LB_RETURN_IF(!buf || lb_model_own(m, buf), err, LB_ERR_NOMEM, "out of memory");
            lb_rotary_rows(buf, t->data, rows, rb, hr, true);
            t->data = buf;
        }
    }
    return LB_OK;
}

lb_status lb_model_load_gguf(lb_model *m, const char *path, lb_error *err) {
    lb_status st = lb_gguf_open_split(&m->priv->gguf, path, err);
    if (st) return st;
    const lb_gguf *g = m->priv->gguf;
    lb_gguf_str    arch;
    st = lb_gguf_get_str(g, "general.architecture", &arch, err);
    LB_RETURN_IF(st == LB_ERR_NOT_FOUND, err, LB_ERR_NOT_FOUND,
                 "%s: general.architecture is missing", path);
    if (st) return st;
    lb_llama_config *c = &m->cfg;
    if ((st = experts(g, arch, c, err))) return st;
    m->arch = lb_arch_find_moe(arch.p, arch.n, c->n_expert > 0);
    LB_RETURN_IF(!m->arch, err, LB_ERR_UNSUPPORTED, "%s: architecture '%.*s' is not supported (%s are)",
                 path, (int)(arch.n > 32 ? 32 : arch.n), arch.p, lb_arch_names());
    LB_RETURN_IF(c->n_expert > 0 && !m->arch->moe, err, LB_ERR_UNSUPPORTED,
                 "%s: '%s' with %d experts: lowbit reads no mixture of experts of this architecture",
                 path, m->arch->gguf, c->n_expert);
    LB_RETURN_IF(c->n_expert == 0 && m->arch->moe, err, LB_ERR_CORRUPT,
                 "%s: '%s' is a mixture of experts, but %s.expert_count is missing", path, m->arch->gguf,
                 m->arch->gguf);
    char        k[8][96]; /* the architecture's keys: "<arch>.embedding_length", ... */
    const char *names[8] = { "embedding_length", "feed_forward_length", "block_count", "attention.head_count",
                             "attention.head_count_kv", "context_length", "attention.layer_norm_rms_epsilon",
                             "rope.freq_base" };
    for (int i = 0; i < 8; i++) snprintf(k[i], sizeof k[i], "%s.%s", m->arch->gguf, names[i]);
    if ((st = get_i32(g, k[0], -1, &c->n_embd, err)) || (st = get_i32(g, k[1], -1, &c->n_ff, err)) ||
        (st = get_i32(g, k[2], -1, &c->n_layers, err)) || (st = get_i32(g, k[3], -1, &c->n_heads, err)) ||
        (st = get_i32(g, k[4], c->n_heads, &c->n_kv_heads, err)) ||
        (st = get_i32(g, k[5], 2048, &c->n_ctx_train, err)) ||
        (st = get_f32(g, k[6], 1e-5, 0, 0.5, &c->norm_eps, err)) ||
        (st = get_f32(g, k[7], 10000.0, 0, 1e12, &c->rope_theta, err)))
        return st;
    LB_RETURN_IF(c->n_heads % c->n_kv_heads != 0, err, LB_ERR_CORRUPT,
                 "%s: n_heads %d and n_kv_heads %d do not fit together", path, c->n_heads, c->n_kv_heads);
    /* the head size: attention.key_length (Qwen3's differ from n_embd / n_heads), the same for v */
    char kl[96], vl[96], rd[96];
    snprintf(kl, sizeof kl, "%s.attention.key_length", m->arch->gguf);
    snprintf(vl, sizeof vl, "%s.attention.value_length", m->arch->gguf);
    snprintf(rd, sizeof rd, "%s.rope.dimension_count", m->arch->gguf);
    int32_t vdim, rope_dim;
    if (m->arch->ops.mla) {
        if ((st = mla_keys(g, c, err))) return st;
    } else if ((st = get_i32(g, kl, c->n_embd / c->n_heads, &c->head_dim, err)) ||
               (st = get_i32(g, vl, c->head_dim, &vdim, err)) || (st = get_i32(g, rd, c->head_dim, &rope_dim, err))) {
        return st;
    } else {
        LB_RETURN_IF(vdim != c->head_dim, err, LB_ERR_UNSUPPORTED, "%s: key length %d and value length %d differ",
                     path, c->head_dim, vdim);
        LB_RETURN_IF(rope_dim != c->head_dim, err, LB_ERR_UNSUPPORTED,
                     "%s: partial rotary embeddings (rope dimension %d of head size %d) are not "
                     "supported", path, rope_dim, c->head_dim);
    }
    if ((st = rope_scaling(g, m->arch->gguf, c, err)) || (st = windows(g, m->arch, c, err))) return st;
    LB_RETURN_IF(c->n_layers > 1024, err, LB_ERR_CORRUPT, "%s: %d layers", path, c->n_layers);

    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    LB_RETURN_IF(!m->layers, err, LB_ERR_NOMEM, "out of memory");
    for (int f = 0; f < 2; f++) { /* fused tensors (Phi-3's ffn_up: gate and up) into their parts */
        const lb_fused *fu = &m->arch->fused[f];
        for (int32_t l = 0; fu->gguf && l < c->n_layers; l++) {
            char      n[80];
            lb_tensor ft;
            lb_tensor_name(n, sizeof n, fu->gguf, l, false);
            if ((st = get_tensor(m, n, false, &ft, err))) return st;
            if (ft.data && (st = lb_model_split_fused(m, l, fu, &ft, n, err))) return st;
        }
    }
    int            ns;
    const lb_slot *slots = lb_slots(&ns);
    for (int i = 0; i < ns; i++) { /* every slot of the architecture, by its llama.cpp name */
        const lb_slot *s      = &slots[i];
        if (m->arch->use[s->role] == LB_USE_NONE) continue;
        for (int32_t l = lb_slot_first(s); l < lb_slot_end(m, s); l++) {
            const uint8_t use = lb_layer_use(m->arch, c, l, s->role);
            char          n[80];
            lb_tensor_name(n, sizeof n, s->gguf, l, false);
            lb_tensor *t = lb_model_tensor(m, l, s->role);
            if (t->data) continue; /* a part of a fused tensor */
            if ((st = get_tensor(m, n, use == LB_USE_REQUIRED, t, err))) return st;
        }
    }
    m->tied_output = m->output.data == NULL;
    if (m->tied_output) m->output = m->tok_embd;
    c->n_vocab = (int32_t)(m->tok_embd.ne[1] > INT32_MAX ? -1 : m->tok_embd.ne[1]);
    if ((st = lb_model_make_slots_f32(m, err))) return st; /* norms and biases compute in f32 */
    if (m->arch->rope_neox && (st = rotary_to_pairs(m, err))) return st;
    if ((st = lb_model_load_actq(m, err))) return st;
    lb_gguf_str gname;
    if (lb_gguf_get_str(g, "general.name", &gname, NULL) == LB_OK && gname.n < 256) {
        m->name = malloc(gname.n + 1);
        if (m->name) {
            memcpy(m->name, gname.p, gname.n);
            m->name[gname.n] = '\0';
        }
    }
    m->priv->meta            = g; /* the GGUF writer keeps its keys (save_meta.c) */
    m->priv->vocab_from_meta = true;
    return lb_vocab_from_gguf(&m->vocab, g, err);
}
