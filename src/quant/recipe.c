/* Quantization recipes: llama-quantize's targets and its per-tensor rules for the llama
 * architecture (llama.cpp src/llama-quant.cpp, llama_tensor_get_type), lowbit's own types
 * as plain (non-mix) recipes, and the shape fallback when a row does not divide into a
 * type's blocks. */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/fail.h"
#include "formats/formats.h"
#include "lowbit/quant.h"
#include "quant_internal.h"

static const lb_recipe k_recipes[] = {
    { "f32", LB_TYPE_F32, 0, false },       { "f16", LB_TYPE_F16, 1, false },
    { "bf16", LB_TYPE_BF16, 32, false },    { "q8_0", LB_TYPE_Q8_0, 7, true },
    { "q4_0", LB_TYPE_Q4_0, 2, true },      { "q4_1", LB_TYPE_Q4_1, 3, true },
    { "q5_0", LB_TYPE_Q5_0, 8, true },      { "q5_1", LB_TYPE_Q5_1, 9, true },
    { "q2_k", LB_TYPE_Q2_K, 10, true },     { "q2_k_s", LB_TYPE_Q2_K, 21, true },
    { "q3_k_s", LB_TYPE_Q3_K, 11, true },   { "q3_k_m", LB_TYPE_Q3_K, 12, true },
    { "q3_k_l", LB_TYPE_Q3_K, 13, true },   { "q4_k_s", LB_TYPE_Q4_K, 14, true },
    { "q4_k_m", LB_TYPE_Q4_K, 15, true },   { "q5_k_s", LB_TYPE_Q5_K, 16, true },
    { "q5_k_m", LB_TYPE_Q5_K, 17, true },   { "q6_k", LB_TYPE_Q6_K, 18, true },
    { "iq4_nl", LB_TYPE_IQ4_NL, 25, true }, { "iq4_xs", LB_TYPE_IQ4_XS, 30, true },
    { "tq1_0", LB_TYPE_TQ1_0, 36, true },   { "tq2_0", LB_TYPE_TQ2_0, 37, true },
    /* the i-quants' mixes: llama.cpp's names and bases (its IQ2_S is IQ2_XS-based, IQ2_M
     * IQ2_S-based; IQ3_XS and IQ3_M are IQ3_S-based) */
    { "iq2_xxs", LB_TYPE_IQ2_XXS, 19, true }, { "iq2_xs", LB_TYPE_IQ2_XS, 20, true },
    { "iq3_xs", LB_TYPE_IQ3_S, 22, true },    { "iq3_xxs", LB_TYPE_IQ3_XXS, 23, true },
    { "iq1_s", LB_TYPE_IQ1_S, 24, true },     { "iq3_s", LB_TYPE_IQ3_S, 26, true },
    { "iq3_m", LB_TYPE_IQ3_S, 27, true },     { "iq2_s", LB_TYPE_IQ2_XS, 28, true },
    { "iq2_m", LB_TYPE_IQ2_S, 29, true },     { "iq1_m", LB_TYPE_IQ1_M, 31, true },
    /* MXFP4 on every weight matrix (llama.cpp's MXFP4_MOE puts it on the experts only) */
    { "mxfp4", LB_TYPE_MXFP4, 38, false },
    /* lowbit's own types: every weight matrix gets the type (no llama.cpp file type) */
    { "nf4", LB_TYPE_NF4, 0, false },
    { "km3", LB_TYPE_KM3, 0, false },
    { "km4", LB_TYPE_KM4, 0, false },
    { "fp8_e4m3_pc", LB_TYPE_FP8_E4M3_PC, 0, false },
    { "fp8_e4m3_pt", LB_TYPE_FP8_E4M3_PT, 0, false },
    { "fp8_e5m2_pc", LB_TYPE_FP8_E5M2_PC, 0, false },
    { "fp8_e5m2_pt", LB_TYPE_FP8_E5M2_PT, 0, false },
    { "ternary", LB_TYPE_TERNARY, 0, false },
    /* W8A8: int8 weights per channel, int8 activations (lowbit.actq.*, method_w8a8.c) */
    { "w8a8", LB_TYPE_INT8_PC, 0, false },
#define INTN_RECIPE(U, L, ID, BITS, AFFINE, GROUP) { #L, LB_TYPE_##U, 0, false },
    LB_INTN_TYPES(INTN_RECIPE)
#undef INTN_RECIPE
};
#define N_RECIPES (sizeof k_recipes / sizeof k_recipes[0])

const lb_recipe *lb_recipe_find(const char *name) {
    static const char *const alias[][2] = { { "q3_k", "q3_k_m" }, { "q4_k", "q4_k_m" }, { "q5_k", "q5_k_m" } };
    for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++)
        if (strcasecmp(name, alias[i][0]) == 0) name = alias[i][1];
    for (size_t i = 0; i < N_RECIPES; i++)
        if (strcasecmp(name, k_recipes[i].name) == 0)
            return lb_type_get_traits(k_recipes[i].base) ? &k_recipes[i] : NULL;
    return NULL;
}

const char *const *lb_recipe_names(void) {
    static const char *names[N_RECIPES + 1];
    size_t             k = 0;
    for (size_t i = 0; i < N_RECIPES; i++)
        if (lb_type_get_traits(k_recipes[i].base)) names[k++] = k_recipes[i].name;
    names[k] = NULL;
    return names;
}

static bool use_more_bits(int32_t i, int32_t n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static bool is(const lb_recipe *r, const char *name) { return strcmp(r->name, name) == 0; }

/* one of a space-separated list of recipe names */
static bool in(const lb_recipe *r, const char *names) {
    const size_t n = strlen(r->name);
    for (const char *s = names; (s = strstr(s, r->name)) != NULL; s += n)
        if ((s == names || s[-1] == ' ') && (s[n] == ' ' || s[n] == '\0')) return true;
    return false;
}

/* The i-quant mixes below 3 bits, which share a set of rules */
#define IQ_LOW "iq2_xxs iq2_xs iq1_s iq2_s iq2_m iq1_m"

/* The role llama.cpp's rules see in a tensor (its category, from the name): the experts' and
 * the shared expert's gate, up and down are ffn_gate, ffn_up and ffn_down */
static lb_tensor_role category(lb_tensor_role r) {
    switch (r) {
    case LB_ROLE_FFN_GATE_EXPS: case LB_ROLE_FFN_GATE_SHEXP: return LB_ROLE_FFN_GATE;
    case LB_ROLE_FFN_UP_EXPS: case LB_ROLE_FFN_UP_SHEXP:     return LB_ROLE_FFN_UP;
    case LB_ROLE_FFN_DOWN_EXPS: case LB_ROLE_FFN_DOWN_SHEXP: return LB_ROLE_FFN_DOWN;
    default:                                                 return r;
    }
}

/* llama.cpp's count of ffn_down tensors before this one (i_ffn_down): each earlier layer's down,
 * or its experts' and its shared expert's (DeepSeek: one in a dense layer, two after), then this
 * layer's experts' before its shared expert's (lowbit's file order, which llama-quantize keeps) */
static int32_t ffn_down_index(const lb_model *m, const lb_named_tensor *nt) {
    static const lb_tensor_role downs[3] = { LB_ROLE_FFN_DOWN, LB_ROLE_FFN_DOWN_EXPS, LB_ROLE_FFN_DOWN_SHEXP };
    if (!m->arch) return nt->layer;
    int32_t i = 0;
    for (int32_t l = 0; l <= nt->layer; l++)
        for (int k = 0; k < 3; k++) {
            if (l == nt->layer && downs[k] == nt->role) return i;
            i += lb_layer_use(m->arch, &m->cfg, l, downs[k]) == LB_USE_REQUIRED;
        }
    return i;
}

/* llama.cpp's rules for the i-quant mixes below 3 bits; LB_TYPE_INVALID: not one of them */
static lb_type iq_low_type(const lb_model *m, const lb_recipe *r, const lb_named_tensor *nt, int32_t L, int32_t gqa) {
    const bool    s_or_m = in(r, "iq2_s iq2_m");
    const int32_t X      = m->cfg.n_expert;
    switch (category(nt->role)) {
    case LB_ROLE_TOKEN_EMBD: return s_or_m ? LB_TYPE_IQ3_S : LB_TYPE_Q2_K;
    case LB_ROLE_ATTN_V: return gqa >= 4 || X >= 4 ? LB_TYPE_Q4_K : s_or_m ? LB_TYPE_IQ3_S : LB_TYPE_Q2_K;
    case LB_ROLE_ATTN_K: return X == 8 ? LB_TYPE_Q4_K : r->base;
    case LB_ROLE_FFN_DOWN:
        return ffn_down_index(m, nt) < L / 8 ? (s_or_m ? LB_TYPE_IQ3_S : LB_TYPE_Q2_K) : r->base;
    case LB_ROLE_ATTN_OUTPUT:
        if (X == 8) return LB_TYPE_Q5_K;
        return in(r, "iq1_s iq1_m") ? LB_TYPE_IQ2_XXS : s_or_m ? LB_TYPE_IQ3_S : r->base;
    default: return r->base;
    }
}

/* llama.cpp's rules for a mix (llama_tensor_get_type_impl, llama architecture; a mixture of
 * experts' rules where it has 8 experts or more than 4);
 * imp: the run has importance (a matrix file or a calibrated method), as its has_imatrix */
static lb_type mix_type(const lb_model *m, const lb_recipe *r, const lb_named_tensor *nt, bool imp) {
    const int32_t L   = m->cfg.n_layers, i = nt->layer, X = m->cfg.n_expert;
    const int32_t gqa = m->cfg.n_heads / m->cfg.n_kv_heads;
    lb_type       t   = r->base;
    const bool    out = nt->role == LB_ROLE_OUTPUT || (m->tied_output && nt->role == LB_ROLE_TOKEN_EMBD);
    if (out) {
        if (nt->t->ne[0] % 256 != 0) return LB_TYPE_Q8_0;
        if (in(r, IQ_LOW " iq3_xxs")) return LB_TYPE_Q5_K;
        return t == LB_TYPE_Q8_0 ? LB_TYPE_Q8_0 : LB_TYPE_Q6_K;
    }
    if (in(r, IQ_LOW)) return iq_low_type(m, r, nt, L, gqa);
    switch (category(nt->role)) {
    case LB_ROLE_TOKEN_EMBD:
        if (is(r, "tq1_0") || is(r, "tq2_0")) t = LB_TYPE_Q4_K;
        else if (is(r, "iq3_xxs")) t = LB_TYPE_IQ3_S;
        break;
    case LB_ROLE_ATTN_K:
    case LB_ROLE_ATTN_Q:
        if (nt->role == LB_ROLE_ATTN_K && X == 8) t = LB_TYPE_Q8_0; /* "trades just ~128MB" */
        else if (is(r, "iq3_xs")) t = LB_TYPE_IQ3_XXS;
        else if (is(r, "iq3_xxs")) t = LB_TYPE_IQ2_S;
        break;
    case LB_ROLE_FFN_GATE:
    case LB_ROLE_FFN_UP:
        if (is(r, "iq3_xs") && i >= L / 8 && i < 7 * L / 8) t = LB_TYPE_IQ3_XXS;
        break;
    case LB_ROLE_ATTN_V: /* i counts attention V tensors: one per layer here */
        if (is(r, "q2_k")) t = gqa >= 4 ? LB_TYPE_Q4_K : LB_TYPE_Q3_K;
        else if (is(r, "iq3_xxs")) t = gqa >= 4 ? LB_TYPE_Q4_K : imp ? LB_TYPE_IQ3_XXS : LB_TYPE_IQ3_S;
        else if (in(r, "iq3_xs iq3_s") && gqa >= 4) t = LB_TYPE_Q4_K;
        else if (is(r, "iq3_m")) t = LB_TYPE_Q4_K;
        else if (is(r, "q2_k_s") && gqa >= 4) t = LB_TYPE_Q4_K;
        else if (is(r, "q3_k_m")) t = i < 2 ? LB_TYPE_Q5_K : LB_TYPE_Q4_K;
        else if (is(r, "q3_k_l")) t = LB_TYPE_Q5_K;
        else if ((is(r, "iq4_nl") || is(r, "iq4_xs")) && gqa >= 4) t = LB_TYPE_Q5_K;
        else if ((is(r, "q4_k_m") || is(r, "q5_k_m")) && use_more_bits(i, L)) t = LB_TYPE_Q6_K;
        else if (is(r, "q4_k_s") && i < 4) t = LB_TYPE_Q5_K;
        if (X == 8) t = LB_TYPE_Q8_0;
        break;
    case LB_ROLE_FFN_DOWN:
        if (is(r, "q2_k")) t = LB_TYPE_Q3_K;
        else if (is(r, "q2_k_s")) t = i < L / 8 ? LB_TYPE_Q4_K : t;
        else if (is(r, "iq3_xxs") && !imp) t = i < L / 8 ? LB_TYPE_Q4_K : LB_TYPE_Q3_K;
        else if (is(r, "q3_k_m")) t = i < L / 16 ? LB_TYPE_Q5_K : LB_TYPE_Q4_K;
        else if (is(r, "iq3_m") && (i < L / 8 || (X == 8 && use_more_bits(i, L)))) t = LB_TYPE_Q4_K;
        else if (is(r, "q3_k_l")) t = LB_TYPE_Q5_K;
        else if (is(r, "q4_k_m")) t = use_more_bits(i, L) ? LB_TYPE_Q6_K : t;
        else if (i < L / 8 && in(r, "iq4_nl iq4_xs") && !imp) t = LB_TYPE_Q5_K;
        else if (is(r, "q5_k_m") && use_more_bits(i, L)) t = LB_TYPE_Q6_K;
        else if (is(r, "q4_k_s") && i < L / 8) t = LB_TYPE_Q5_K;
        else if (in(r, "q4_0 q5_0") && imp && i < L / 8) t = is(r, "q4_0") ? LB_TYPE_Q4_1 : LB_TYPE_Q5_1;
        break;
    case LB_ROLE_ATTN_OUTPUT:
        if (X == 8) {
            if (in(r, "q2_k iq3_xs iq3_xxs q3_k_s q3_k_m iq4_nl q4_k_s q4_k_m iq3_s iq3_m iq4_xs")) t = LB_TYPE_Q5_K;
        } else if (is(r, "q2_k")) t = LB_TYPE_Q3_K;
        else if (is(r, "iq3_xxs")) t = LB_TYPE_IQ3_S;
        else if (is(r, "q3_k_m") || is(r, "iq3_m")) t = LB_TYPE_Q4_K;
        else if (is(r, "q3_k_l")) t = LB_TYPE_Q5_K;
        break;
    default: break;
    }
    return t;
}

/* llama.cpp's tensor_type_fallback, then f16 when nothing else fits (llama.cpp stops).
 * lowbit's INTn group types fall back to the largest smaller group of the same bits and
 * kind that divides the row, else to one scale per row (the same levels, never f16). */
static lb_type fit(lb_type t, int64_t ncols) {
    if (ncols % lb_type_get_traits(t)->block_size == 0) return t;
    lb_intn_desc d;
    if (lb_intn_desc_of(t, &d)) {
        for (int32_t g = d.group / 2; g >= 32; g /= 2)
            if (ncols % g == 0) return lb_intn_type(d.bits, d.affine, g);
        return lb_intn_type(d.bits, d.affine, 0);
    }
    lb_type f;
    switch (t) {
    case LB_TYPE_Q2_K: case LB_TYPE_Q3_K: case LB_TYPE_TQ1_0: case LB_TYPE_TQ2_0: f = LB_TYPE_Q4_0; break;
    case LB_TYPE_Q4_K:   f = LB_TYPE_Q5_0; break;
    case LB_TYPE_Q5_K:   f = LB_TYPE_Q5_1; break;
    case LB_TYPE_Q6_K:   f = LB_TYPE_Q8_0; break;
    case LB_TYPE_IQ1_S: case LB_TYPE_IQ1_M: case LB_TYPE_IQ2_XXS: case LB_TYPE_IQ2_XS:
    case LB_TYPE_IQ2_S: case LB_TYPE_IQ3_XXS: case LB_TYPE_IQ3_S:
    case LB_TYPE_IQ4_XS: f = LB_TYPE_IQ4_NL; break;
    default:             f = LB_TYPE_F16; break;
    }
    if (!lb_type_get_traits(f) || ncols % lb_type_get_traits(f)->block_size != 0) f = LB_TYPE_F16;
    return f;
}

bool lb_recipe_requires_importance(const lb_recipe *r, const lb_named_tensor *nt, lb_type t) {
    if (nt->role == LB_ROLE_TOKEN_EMBD || nt->role == LB_ROLE_OUTPUT) return false;
    switch (t) {
    case LB_TYPE_IQ3_XXS: case LB_TYPE_IQ2_XXS: case LB_TYPE_IQ2_XS: case LB_TYPE_IQ2_S:
    case LB_TYPE_IQ1_M: case LB_TYPE_IQ1_S: return true;
    case LB_TYPE_Q2_K: return is(r, "q2_k_s");
    default: return false;
    }
}

lb_status lb_quant_plan(const lb_model *m, const lb_quant_params *p, lb_named_tensor *tensors,
                        lb_tensor_plan *plans, int32_t cap, int32_t *n_out, lb_error *err) {
    const lb_recipe *r = p->recipe;
    regex_t         *re = NULL;
    lb_status        st = LB_OK;
    /* llama.cpp's has_imatrix: importance from a file, or from a calibrated method */
    const bool imp = p->imatrix || (p->method && strcmp(p->method, "rtn") != 0);
    LB_RETURN_IF(cap < lb_model_n_tensors(m), err, LB_ERR_PARAM, "room for %d tensors, the model has %d", cap,
                 lb_model_n_tensors(m));
    const int32_t    n  = lb_model_tensors(m, tensors, cap);
    if (p->n_overrides > 0) {
        re = calloc((size_t)p->n_overrides, sizeof *re);
        LB_RETURN_IF(!re, err, LB_ERR_NOMEM, "out of memory");
    }
    int32_t compiled = 0;
    for (; compiled < p->n_overrides; compiled++) {
        LB_GOTO_IF(regcomp(&re[compiled], p->overrides[compiled].pattern, REG_EXTENDED | REG_NOSUB) != 0,
                   err, LB_ERR_PARAM, "--tensor-type: bad regular expression '%s'",
                   p->overrides[compiled].pattern);
        LB_GOTO_IF(!lb_type_get_traits(p->overrides[compiled].type), err, LB_ERR_PARAM,
                   "--tensor-type: type not available");
    }
    for (int32_t i = 0; i < n; i++) {
        const lb_named_tensor *nt = &tensors[i];
        lb_tensor_plan        *pl = &plans[i];
        memset(pl, 0, sizeof *pl);
        pl->nt = nt;
        if (nt->t->ne[1] == 1 || (lb_slot_of(nt->role)->flags & LB_SLOT_F32)) { /* norms, the router: f32 */
            pl->wanted = pl->type = LB_TYPE_F32;
            continue;
        }
        lb_type    t      = r->base;
        const bool output = nt->role == LB_ROLE_OUTPUT, embd = nt->role == LB_ROLE_TOKEN_EMBD;
        if (output && p->leave_output) {
            pl->wanted = pl->type = nt->t->type;
            pl->overridden        = true;
            continue;
        }
        if ((output && p->has_output_type) || (embd && p->has_embd_type)) {
            t              = output ? p->output_type : p->embd_type;
            pl->overridden = true;
        }
        for (int32_t k = 0; k < p->n_overrides && !pl->overridden; k++)
            if (regexec(&re[k], nt->name, 0, NULL, 0) == 0) {
                t              = p->overrides[k].type;
                pl->overridden = true;
            }
        if (!pl->overridden && r->mix && !p->pure) t = mix_type(m, r, nt, imp);
        LB_GOTO_IF(!lb_type_get_traits(t), err, LB_ERR_UNSUPPORTED,
                   "%s: the recipe wants a type lowbit does not implement yet", nt->name);
        pl->wanted   = t;
        pl->type     = fit(t, nt->t->ne[0]);
        pl->fallback = pl->type != t;
        const lb_type_traits *in = lb_type_get_traits(nt->t->type);
        LB_GOTO_IF(in && in->is_quantized && pl->type != nt->t->type && !p->allow_requantize, err, LB_ERR_PARAM,
                   "%s: requantizing from %s is disabled: quality suffers (quantize from the f16/f32 "
                   "model, or --allow-requantize)", nt->name, lb_type_name(nt->t->type));
    }
    *n_out = n;
fail:
    for (int32_t k = 0; k < compiled; k++) regfree(&re[k]);
    free(re);
    return st;
}
