/* The trained model's parameters, activations and its forward/backward (tmodel.h), written
 * as the chain of ops.h operations:
 *   x = embed(tokens)
 *   per layer: xn1 = n(x); q, k, v = xn1·Wqᵀ, ·Wkᵀ, ·Wvᵀ; rope(q, k); att = attention(q, k, v)
 *              h = x + att·Woᵀ; xn2 = n(h); act = silu(xn2·Wgᵀ) ⊙ (xn2·Wuᵀ); x = h + act·Wdᵀ
 *   logits = n(x)·Woutᵀ
 * and back again in reverse, the residual gradient carried in one buffer (dx). The families
 * add, as the inference forward does: q/k/v biases (Qwen2), head norms of q and k before RoPE
 * (Qwen3, Gemma 3), Gemma's scaled embeddings, post-norms of the attention's and the FFN's
 * outputs, GELU, soft-capped scores and logits and windowed layers (Mistral's too). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "model/model_internal.h"
#include "ops.h"
#include "tmodel.h"

/* ---- parameters ---- */

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z          = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z          = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *s) { return ((double)(splitmix(s) >> 11) + 0.5) * 0x1.0p-53; }

/* m (may be NULL): a loaded model, whose optional slots are taken when it has them */
static lb_status layout(lb_tmodel *tm, const lb_arch *arch, const lb_llama_config *c, bool tied, const lb_model *m,
                        lb_error *err) {
    memset(tm, 0, sizeof *tm);
    LB_RETURN_IF((arch && arch->moe && (arch->ops.mla || arch->use[LB_ROLE_FFN_GATE_SHEXP])) ||
                     (c->n_expert > 0 && !(arch && arch->moe)),
                 err, LB_ERR_UNSUPPORTED, "training a mixture of experts with shared experts (%s) is not supported yet",
                 arch ? arch->name : "experts");
    LB_RETURN_IF(arch && arch->moe && (c->n_expert < 1 || c->n_expert > 4096 || c->n_expert_used < 1 ||
                                       c->n_expert_used > c->n_expert),
                 err, LB_ERR_PARAM, "training a mixture of %d experts, %d a token: 1 to 4096 experts, 1 to all of them "
                 "a token", c->n_expert, c->n_expert_used);
    tm->arch    = arch ? arch : lb_arch_find("llama", 5);
    tm->cfg     = *c;
    tm->tied    = tied;
    tm->n_slots = LB_TS_GLOBAL + c->n_layers * LB_TL_COUNT;
    tm->slots   = calloc((size_t)tm->n_slots, sizeof *tm->slots);
    tm->wf      = calloc((size_t)tm->n_slots, sizeof *tm->wf);
    LB_RETURN_IF(!tm->slots || !tm->wf, err, LB_ERR_NOMEM, "out of memory");
    const int64_t E = c->n_embd, V = c->n_vocab;
    int64_t       off = 0;
#define SLOT(i, r, cc, mat, ...)                                                                   \
    do {                                                                                           \
        lb_tslot *s_ = &tm->slots[i];                                                              \
        s_->off = off, s_->rows = (r), s_->cols = (cc), s_->matrix = (mat);                        \
        snprintf(s_->name, sizeof s_->name, __VA_ARGS__);                                          \
        off += (r) * (cc);                                                                         \
    } while (0)
    SLOT(LB_TS_TOK_EMBD, V, E, true, "token_embd.weight");
    SLOT(LB_TS_OUTPUT_NORM, 1, E, false, "output_norm.weight");
    SLOT(LB_TS_OUTPUT, tied ? 0 : V, E, true, "output.weight");
    const lb_model shape = { .cfg = *c };
    for (int32_t l = 0; l < c->n_layers; l++) /* the family's layer slots, from the table */
        for (int k = 0; k < LB_TL_COUNT; k++) {
            const lb_tensor_role role = (lb_tensor_role)(LB_ROLE_LAYER_FIRST + k);
            const lb_slot       *s    = lb_slot_of(role);
            const bool           use  = tm->arch->use[role] == LB_USE_REQUIRED ||
                                        (tm->arch->use[role] == LB_USE_OPTIONAL && m && m->layers[l].slot[k].data);
            SLOT(LB_TSLOT(l, k), use ? lb_model_dim(&shape, s->ne1) * lb_model_dim(&shape, s->ne2) : 0, lb_model_dim(&shape, s->ne0),
                 use && !(s->flags & LB_SLOT_F32), "blk.%d.%s", l, s->gguf);
        }
#undef SLOT
    tm->n_params = off;
    tm->w        = calloc((size_t)off, sizeof *tm->w);
    tm->g        = calloc((size_t)off, sizeof *tm->g);
    LB_RETURN_IF(!tm->w || !tm->g, err, LB_ERR_NOMEM, "out of memory for %lld parameters",
                 (long long)off);
    for (int32_t i = 0; i < tm->n_slots; i++) tm->wf[i] = tm->w + tm->slots[i].off;
    if (tied) tm->wf[LB_TS_OUTPUT] = tm->w + tm->slots[LB_TS_TOK_EMBD].off;
    return LB_OK;
}

lb_status lb_tmodel_init_random(lb_tmodel *tm, const lb_arch *arch, const lb_llama_config *cfg, bool tied,
                                uint64_t seed, lb_error *err) {
    lb_status st = layout(tm, arch, cfg, tied || (arch && arch->use[LB_ROLE_OUTPUT] == LB_USE_NONE), NULL, err);
    if (st) {
        lb_tmodel_free(tm);
        return st;
    }
    uint64_t     rng      = seed * 0x2545F4914F6CDD1Dull + 1;
    const double resid_sd = 0.02 / sqrt(2.0 * cfg->n_layers);
    for (int32_t i = 0; i < tm->n_slots; i++) {
        const lb_tslot *s = &tm->slots[i];
        float          *p = tm->w + s->off;
        const int64_t   n = s->rows * s->cols;
        const int k = i >= LB_TS_GLOBAL ? (i - LB_TS_GLOBAL) % LB_TL_COUNT : -1;
        if (!s->matrix && k != LB_TL(LB_ROLE_FFN_GATE_INP)) { /* norms 1, biases 0 (a router: drawn) */
            const bool norm = k < 0 || lb_slot_of((lb_tensor_role)(LB_ROLE_LAYER_FIRST + k))->flags & LB_SLOT_NORM;
            for (int64_t j = 0; j < n; j++) p[j] = norm ? 1.0f : 0.0f;
            continue;
        }
        const double sd = k == LB_TL_WO || k == LB_TL_DOWN || k == LB_TL(LB_ROLE_FFN_DOWN_EXPS) ? resid_sd : 0.02;
        for (int64_t j = 0; j < n; j++) { /* Box-Muller */
            const double u1 = uniform01(&rng), u2 = uniform01(&rng);
            p[j] = (float)(sd * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
        }
    }
    return LB_OK;
}

static void copy_tensor(float *dst, const lb_tensor *t) {
    for (int64_t r = 0; r < lb_tensor_nelements(t) / t->ne[0]; r++)
        lb_tensor_get_row_f32(t, r, dst + r * t->ne[0]);
}

lb_status lb_tmodel_init_from(lb_tmodel *tm, const lb_model *m, lb_error *err) {
    const lb_llama_config *c = &m->cfg;
    LB_RETURN_IF(m->rope_freqs.data || m->rope_long.data || (c->rope_linear > 0 && c->rope_linear != 1.0f) ||
                     c->rope_yarn > 0 || (c->rope_attn_factor > 0 && c->rope_attn_factor != 1.0f) ||
                     (c->rope_theta_swa > 0 && c->rope_linear_swa > 0) || m->actq,
                 err, LB_ERR_UNSUPPORTED, "training does not support RoPE scaling (rope_freqs, linear, YaRN, "
                 "LongRoPE) or W8A8 models");
    lb_status st = layout(tm, m->arch, &m->cfg, m->tied_output, m, err);
    if (st) {
        lb_tmodel_free(tm);
        return st;
    }
    copy_tensor(tm->w + tm->slots[LB_TS_TOK_EMBD].off, &m->tok_embd);
    copy_tensor(tm->w + tm->slots[LB_TS_OUTPUT_NORM].off, &m->output_norm);
    if (!tm->tied) copy_tensor(tm->w + tm->slots[LB_TS_OUTPUT].off, &m->output);
    for (int32_t l = 0; l < m->cfg.n_layers; l++)
        for (int k = 0; k < LB_TL_COUNT; k++)
            if (tm->slots[LB_TSLOT(l, k)].rows)
                copy_tensor(tm->w + tm->slots[LB_TSLOT(l, k)].off, &m->layers[l].slot[k]);
    return LB_OK;
}

void lb_tmodel_free(lb_tmodel *tm) {
    if (!tm) return;
    free(tm->slots);
    free(tm->wf);
    free(tm->w);
    free(tm->g);
    free(tm->acts);
    free(tm->act_block);
    free(tm->moe_idx);
    free(tm->moe_scratch);
    memset(tm, 0, sizeof *tm);
}

/* ---- activations ---- */

/* layer l's mixture of experts (its router's slot has rows) as moe_train.h takes it */
static bool moe_shape(const lb_tmodel *tm, int32_t l, lb_tmoe *mo) {
    const lb_llama_config *c = &tm->cfg;
    const float *const    *W = tm->wf + LB_TSLOT(l, 0);
    if (tm->slots[LB_TSLOT(l, LB_TL(LB_ROLE_FFN_GATE_INP))].rows == 0) return false;
    *mo = (lb_tmoe){ .N = (int64_t)tm->B * tm->T, .E = c->n_embd, .FX = c->n_ff_exp > 0 ? c->n_ff_exp : c->n_ff,
                     .X = c->n_expert, .K = c->n_expert_used, .norm = tm->arch->ops.moe_norm, .cfg = c,
                     .wr = W[LB_TL(LB_ROLE_FFN_GATE_INP)], .wg = W[LB_TL(LB_ROLE_FFN_GATE_EXPS)],
                     .wu = W[LB_TL(LB_ROLE_FFN_UP_EXPS)], .wd = W[LB_TL(LB_ROLE_FFN_DOWN_EXPS)] };
    return true;
}

lb_status lb_tmodel_set_batch(lb_tmodel *tm, int32_t B, int32_t T, lb_error *err) {
    const lb_llama_config *c = &tm->cfg;
    LB_RETURN_IF(B <= 0 || T <= 0 || T > c->n_ctx_train, err, LB_ERR_PARAM,
                 "micro-batch of %d x %d tokens (the model's context is %d)", B, T, c->n_ctx_train);
    free(tm->acts);
    free(tm->act_block);
    free(tm->moe_idx);
    free(tm->moe_scratch);
    tm->acts      = NULL;
    tm->act_block = NULL;
    tm->moe_idx = NULL, tm->moe_scratch = NULL;
    const size_t N = (size_t)B * (size_t)T, E = (size_t)c->n_embd, F = (size_t)c->n_ff;
    const size_t Q = (size_t)c->n_heads * (size_t)c->head_dim;
    const size_t KV = (size_t)c->n_kv_heads * (size_t)c->head_dim, V = (size_t)c->n_vocab;
    const size_t P = (size_t)B * (size_t)c->n_heads * (size_t)T * (size_t)T;
    const size_t H = (size_t)c->n_heads, KH = (size_t)c->n_kv_heads, D2 = (size_t)c->head_dim / 2;
    const size_t capped = c->final_softcap > 0 ? N * V : 0;
    const size_t per_layer = N * (E * 4 + Q * 2 + KV * 2 + F * 3 + 2) + P + 16 * 14 +
                             N * (Q + KV + H + KH + 2 * E + 2) + 16 * 8;
    const size_t total = per_layer * (size_t)c->n_layers + N * (E * 3 + V + 1) +
                         N * (E * 2 + Q * 2 + KV * 2 + F * 3) + N * (Q + KV + E) + capped +
                         (size_t)T * D2 * 4 + 16 * 28;
    tm->acts      = calloc((size_t)c->n_layers, sizeof *tm->acts);
    tm->act_block = aligned_alloc(64, ((total * sizeof(float)) + 63) & ~(size_t)63);
    if (!tm->acts || !tm->act_block) {
        free(tm->acts);
        free(tm->act_block);
        tm->acts = NULL, tm->act_block = NULL;
        return lb_fail(err, LB_ERR_NOMEM, "out of memory for the activations of %d x %d tokens "
                       "(%zu MiB)", B, T, total * sizeof(float) >> 20);
    }
    float *p = tm->act_block;
#define TAKE(dst, n) (dst = p, p += ((n) + 15) & ~(size_t)15)
    for (int32_t l = 0; l < c->n_layers; l++) {
        lb_tlayer_acts *a = &tm->acts[l];
        TAKE(a->x, N * E), TAKE(a->rstd1, N), TAKE(a->xn1, N * E), TAKE(a->q, N * Q);
        TAKE(a->k, N * KV), TAKE(a->v, N * KV), TAKE(a->p, P), TAKE(a->att, N * Q);
        TAKE(a->h, N * E), TAKE(a->rstd2, N), TAKE(a->xn2, N * E), TAKE(a->gate, N * F);
        TAKE(a->up, N * F), TAKE(a->act, N * F);
        TAKE(a->qr, N * Q), TAKE(a->kr, N * KV), TAKE(a->rstd_q, N * H), TAKE(a->rstd_k, N * KH);
        TAKE(a->o, N * E), TAKE(a->rstd_o, N), TAKE(a->f, N * E), TAKE(a->rstd_f, N);
    }
    TAKE(tm->xf, N * E), TAKE(tm->rstdf, N), TAKE(tm->xnf, N * E), TAKE(tm->logits, N * V);
    TAKE(tm->dx, N * E), TAKE(tm->dxn, N * E), TAKE(tm->dq, N * Q), TAKE(tm->dk, N * KV);
    TAKE(tm->dv, N * KV), TAKE(tm->datt, N * Q), TAKE(tm->dgate, N * F), TAKE(tm->dup, N * F);
    TAKE(tm->dact, N * F), TAKE(tm->dq2, N * Q), TAKE(tm->dk2, N * KV), TAKE(tm->dpost, N * E);
    tm->capped = NULL;
    if (capped) TAKE(tm->capped, capped);
    TAKE(tm->rope_cos, (size_t)T * D2), TAKE(tm->rope_sin, (size_t)T * D2);
    TAKE(tm->rope_cos_swa, (size_t)T * D2), TAKE(tm->rope_sin_swa, (size_t)T * D2);
#undef TAKE
    tm->B = B, tm->T = T;
    lb_tmoe mo;
    for (int32_t l = 0, first = 1; l < c->n_layers; l++) { /* mixtures of experts: their own buffers */
        if (!moe_shape(tm, l, &mo)) continue;
        const size_t nf = lb_tmoe_acts_floats(&mo), ni = lb_tmoe_acts_ints(&mo), ns = lb_tmoe_scratch_floats(&mo);
        if (first) {
            tm->moe_scratch = malloc((ns + (size_t)c->n_layers * nf) * sizeof(float));
            tm->moe_idx     = malloc((size_t)c->n_layers * ni * sizeof(int32_t));
            LB_RETURN_IF(!tm->moe_scratch || !tm->moe_idx, err, LB_ERR_NOMEM, "out of memory for the experts' "
                         "activations of %d x %d tokens", B, T);
            first = 0;
        }
        lb_tmoe_acts_place(&tm->acts[l].moe, &mo, tm->moe_scratch + ns + (size_t)l * nf, tm->moe_idx + (size_t)l * ni);
    }
    /* the RoPE tables as the inference forward pass computes them (float arithmetic); Gemma 3's
     * windowed layers have a base of their own */
    const int32_t D = c->head_dim;
    for (int32_t pos = 0; pos < T; pos++)
        for (int32_t j = 0; j < D / 2; j++)
            for (int w = 0; w < 2; w++) {
                const float theta = w && c->rope_theta_swa > 0 ? c->rope_theta_swa : c->rope_theta;
                const float freq  = 1.0f / powf(theta, (float)(2 * j) / (float)D);
                (w ? tm->rope_cos_swa : tm->rope_cos)[(size_t)pos * D2 + (size_t)j] = cosf((float)pos * freq);
                (w ? tm->rope_sin_swa : tm->rope_sin)[(size_t)pos * D2 + (size_t)j] = sinf((float)pos * freq);
            }
    return LB_OK;
}

/* BitNet b1.58's activations: each row scaled to absmax 2^(bits-1)-1, rounded, scaled back. */
static void act_quant(float *x, int64_t n, int64_t dim, int32_t bits) {
    const float qmax = (float)((1 << (bits - 1)) - 1);
#pragma omp parallel for if (n * dim > 65536)
    for (int64_t r = 0; r < n; r++) {
        float *row = x + r * dim;
        float  mx  = 0.0f;
        for (int64_t j = 0; j < dim; j++) mx = fmaxf(mx, fabsf(row[j]));
        if (mx == 0.0f) continue;
        const float d = mx / qmax, id = 1.0f / d;
        for (int64_t j = 0; j < dim; j++) row[j] = roundf(row[j] * id) * d;
    }
}

static void add_into(float *y, const float *x, int64_t n) {
#pragma omp parallel for if (n > 65536)
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

/* ---- one block ---- */

/* The shape of layer l's scores (ops.h) and its RoPE tables. */
static lb_op_att layer_att(const lb_tmodel *tm, int32_t l, const float **cos_t, const float **sin_t) {
    const lb_llama_config *c   = &tm->cfg;
    const bool             win = lb_layer_windowed(c, l);
    *cos_t = win && c->rope_theta_swa > 0 ? tm->rope_cos_swa : tm->rope_cos;
    *sin_t = win && c->rope_theta_swa > 0 ? tm->rope_sin_swa : tm->rope_sin;
    return (lb_op_att){ .scale = c->attn_scale, .softcap = c->attn_softcap, .window = win ? c->n_swa : 0 };
}

void lb_tmodel_block_forward(lb_tmodel *tm, int32_t l, const float *x, float *out) {
    const lb_llama_config *c = &tm->cfg;
    lb_tlayer_acts        *a = &tm->acts[l];
    const int64_t          N = (int64_t)tm->B * tm->T, E = c->n_embd, F = c->n_ff, D = c->head_dim;
    const int64_t          Q = (int64_t)c->n_heads * c->head_dim;
    const int64_t          KV = (int64_t)c->n_kv_heads * c->head_dim;
    const float *const    *W = tm->wf + LB_TSLOT(l, 0);
    const lb_tslot        *S = tm->slots + LB_TSLOT(l, 0);
    const float           *cos_t, *sin_t;
    const lb_op_att        att = layer_att(tm, l, &cos_t, &sin_t);
    if (a->x != x) memcpy(a->x, x, (size_t)(N * E) * sizeof *x);
    lb_op_rmsnorm_fwd(a->xn1, a->rstd1, a->x, W[LB_TL_ATTN_NORM], N, E, c->norm_eps);
    if (tm->act_bits) act_quant(a->xn1, N, E, tm->act_bits);
    lb_op_linear_fwd(a->q, a->xn1, W[LB_TL_WQ], N, E, Q);
    lb_op_linear_fwd(a->k, a->xn1, W[LB_TL_WK], N, E, KV);
    lb_op_linear_fwd(a->v, a->xn1, W[LB_TL_WV], N, E, KV);
    if (S[LB_TL_BQ].rows) { /* Qwen2 */
        lb_op_bias_fwd(a->q, W[LB_TL_BQ], N, Q);
        lb_op_bias_fwd(a->k, W[LB_TL_BK], N, KV);
        lb_op_bias_fwd(a->v, W[LB_TL_BV], N, KV);
    }
    if (S[LB_TL_QNORM].rows) { /* Qwen3, Gemma 3: each head RMS-normed (rows of D) */
        memcpy(a->qr, a->q, (size_t)(N * Q) * sizeof *a->q);
        memcpy(a->kr, a->k, (size_t)(N * KV) * sizeof *a->k);
        lb_op_rmsnorm_fwd(a->q, a->rstd_q, a->qr, W[LB_TL_QNORM], N * c->n_heads, D, c->norm_eps);
        lb_op_rmsnorm_fwd(a->k, a->rstd_k, a->kr, W[LB_TL_KNORM], N * c->n_kv_heads, D, c->norm_eps);
    }
    lb_op_rope_fwd(a->q, N, tm->T, c->n_heads, c->head_dim, cos_t, sin_t);
    lb_op_rope_fwd(a->k, N, tm->T, c->n_kv_heads, c->head_dim, cos_t, sin_t);
    lb_op_attention_fwd(a->att, a->p, a->q, a->k, a->v, tm->B, tm->T, c->n_heads, c->n_kv_heads,
                        c->head_dim, &att);
    if (tm->act_bits) act_quant(a->att, N, Q, tm->act_bits);
    if (S[LB_TL_ATTN_POST].rows) { /* Gemma: the attention's output normed before it is added */
        lb_op_linear_fwd(a->o, a->att, W[LB_TL_WO], N, Q, E);
        lb_op_rmsnorm_fwd(a->h, a->rstd_o, a->o, W[LB_TL_ATTN_POST], N, E, c->norm_eps);
    } else {
        lb_op_linear_fwd(a->h, a->att, W[LB_TL_WO], N, Q, E);
    }
    add_into(a->h, a->x, N * E);
    lb_op_rmsnorm_fwd(a->xn2, a->rstd2, a->h, W[LB_TL_FFN_NORM], N, E, c->norm_eps);
    if (tm->act_bits) act_quant(a->xn2, N, E, tm->act_bits);
    lb_tmoe mo;
    if (moe_shape(tm, l, &mo)) { /* a mixture of experts in place of the FFN */
        lb_tmoe_forward(&mo, &a->moe, a->xn2, out);
        add_into(out, a->h, N * E);
        return;
    }
    lb_op_linear_fwd(a->gate, a->xn2, W[LB_TL_GATE], N, E, F);
    lb_op_linear_fwd(a->up, a->xn2, W[LB_TL_UP], N, E, F);
    if (tm->arch->ops.act == LB_ACT_GELU_TANH) lb_op_geglu_fwd(a->act, a->gate, a->up, N * F);
    else lb_op_swiglu_fwd(a->act, a->gate, a->up, N * F);
    if (tm->act_bits) act_quant(a->act, N, F, tm->act_bits);
    if (S[LB_TL_FFN_POST].rows) {
        lb_op_linear_fwd(a->f, a->act, W[LB_TL_DOWN], N, F, E);
        lb_op_rmsnorm_fwd(out, a->rstd_f, a->f, W[LB_TL_FFN_POST], N, E, c->norm_eps);
    } else {
        lb_op_linear_fwd(out, a->act, W[LB_TL_DOWN], N, F, E);
    }
    add_into(out, a->h, N * E);
}

/* d of a post-normed output y = n(z) from dy: into dz (zeroed first) */
static void post_norm_bwd(float *dz, float *gw, const float *dy, const float *z, const float *w, const float *rstd,
                          int64_t n, int64_t dim) {
    memset(dz, 0, (size_t)(n * dim) * sizeof *dz);
    lb_op_rmsnorm_bwd(dz, gw, dy, z, w, rstd, n, dim);
}

void lb_tmodel_block_backward(lb_tmodel *tm, int32_t l, float *dx) {
    const lb_llama_config *c = &tm->cfg;
    lb_tlayer_acts        *a = &tm->acts[l];
    const int64_t          N = (int64_t)tm->B * tm->T, E = c->n_embd, F = c->n_ff, D = c->head_dim;
    const int64_t          Q = (int64_t)c->n_heads * c->head_dim;
    const int64_t          KV = (int64_t)c->n_kv_heads * c->head_dim;
    const float *const    *W = tm->wf + LB_TSLOT(l, 0);
    const lb_tslot        *S = tm->slots + LB_TSLOT(l, 0);
    const float           *cos_t, *sin_t;
    const lb_op_att        att = layer_att(tm, l, &cos_t, &sin_t);
    float                 *G[LB_TL_COUNT];
    for (int k = 0; k < LB_TL_COUNT; k++) G[k] = tm->g + tm->slots[LB_TSLOT(l, k)].off;
    /* out = h + n(act·Wdᵀ): dx is also dh's residual part */
    const float *dy = dx;
    lb_tmoe      mo;
    if (moe_shape(tm, l, &mo)) { /* a mixture of experts */
        lb_tmoe_backward(&mo, &a->moe, tm->moe_aux * tm->moe_scale, dx, a->xn2, G[LB_TL(LB_ROLE_FFN_GATE_INP)],
                         G[LB_TL(LB_ROLE_FFN_GATE_EXPS)], G[LB_TL(LB_ROLE_FFN_UP_EXPS)], G[LB_TL(LB_ROLE_FFN_DOWN_EXPS)],
                         tm->dxn, tm->moe_scratch);
    } else {
        if (S[LB_TL_FFN_POST].rows) {
            post_norm_bwd(tm->dpost, G[LB_TL_FFN_POST], dx, a->f, W[LB_TL_FFN_POST], a->rstd_f, N, E);
            dy = tm->dpost;
        }
        lb_op_linear_bwd(tm->dact, G[LB_TL_DOWN], dy, a->act, W[LB_TL_DOWN], N, F, E, false);
        if (tm->arch->ops.act == LB_ACT_GELU_TANH) lb_op_geglu_bwd(tm->dgate, tm->dup, tm->dact, a->gate, a->up, N * F);
        else lb_op_swiglu_bwd(tm->dgate, tm->dup, tm->dact, a->gate, a->up, N * F);
        lb_op_linear_bwd(tm->dxn, G[LB_TL_GATE], tm->dgate, a->xn2, W[LB_TL_GATE], N, E, F, false);
        lb_op_linear_bwd(tm->dxn, G[LB_TL_UP], tm->dup, a->xn2, W[LB_TL_UP], N, E, F, true);
    }
    lb_op_rmsnorm_bwd(dx, G[LB_TL_FFN_NORM], tm->dxn, a->h, W[LB_TL_FFN_NORM], a->rstd2, N, E);
    /* h = x + n(att·Woᵀ) */
    dy = dx;
    if (S[LB_TL_ATTN_POST].rows) {
        post_norm_bwd(tm->dpost, G[LB_TL_ATTN_POST], dx, a->o, W[LB_TL_ATTN_POST], a->rstd_o, N, E);
        dy = tm->dpost;
    }
    lb_op_linear_bwd(tm->datt, G[LB_TL_WO], dy, a->att, W[LB_TL_WO], N, Q, E, false);
    lb_op_attention_bwd(tm->dq, tm->dk, tm->dv, tm->datt, a->p, a->q, a->k, a->v, tm->B, tm->T,
                        c->n_heads, c->n_kv_heads, c->head_dim, &att);
    lb_op_rope_bwd(tm->dq, N, tm->T, c->n_heads, c->head_dim, cos_t, sin_t);
    lb_op_rope_bwd(tm->dk, N, tm->T, c->n_kv_heads, c->head_dim, cos_t, sin_t);
    float *dq = tm->dq, *dk = tm->dk;
    if (S[LB_TL_QNORM].rows) {
        post_norm_bwd(tm->dq2, G[LB_TL_QNORM], dq, a->qr, W[LB_TL_QNORM], a->rstd_q, N * c->n_heads, D);
        post_norm_bwd(tm->dk2, G[LB_TL_KNORM], dk, a->kr, W[LB_TL_KNORM], a->rstd_k, N * c->n_kv_heads, D);
        dq = tm->dq2, dk = tm->dk2;
    }
    if (S[LB_TL_BQ].rows) {
        lb_op_bias_bwd(G[LB_TL_BQ], dq, N, Q);
        lb_op_bias_bwd(G[LB_TL_BK], dk, N, KV);
        lb_op_bias_bwd(G[LB_TL_BV], tm->dv, N, KV);
    }
    lb_op_linear_bwd(tm->dxn, G[LB_TL_WQ], dq, a->xn1, W[LB_TL_WQ], N, E, Q, false);
    lb_op_linear_bwd(tm->dxn, G[LB_TL_WK], dk, a->xn1, W[LB_TL_WK], N, E, KV, true);
    lb_op_linear_bwd(tm->dxn, G[LB_TL_WV], tm->dv, a->xn1, W[LB_TL_WV], N, E, KV, true);
    lb_op_rmsnorm_bwd(dx, G[LB_TL_ATTN_NORM], tm->dxn, a->x, W[LB_TL_ATTN_NORM], a->rstd1, N, E);
}

/* ---- the whole model ---- */

void lb_tmodel_forward(lb_tmodel *tm, const int32_t *tokens) {
    const lb_llama_config *c = &tm->cfg;
    const int64_t          N = (int64_t)tm->B * tm->T, E = c->n_embd;
    float                 *x = c->n_layers ? tm->acts[0].x : tm->xf;
    lb_tmodel_embed(tm, tm->wf[LB_TS_TOK_EMBD], tokens, N, x);
    for (int32_t l = 0; l < c->n_layers; l++)
        lb_tmodel_block_forward(tm, l, tm->acts[l].x, l + 1 < c->n_layers ? tm->acts[l + 1].x : tm->xf);
    lb_op_rmsnorm_fwd(tm->xnf, tm->rstdf, tm->xf, tm->wf[LB_TS_OUTPUT_NORM], N, E, c->norm_eps);
    lb_op_linear_fwd(tm->logits, tm->xnf, tm->wf[LB_TS_OUTPUT], N, E, c->n_vocab);
    if (c->final_softcap > 0) lb_op_softcap_fwd(tm->logits, N * c->n_vocab, c->final_softcap);
}

void lb_tmodel_embed(const lb_tmodel *tm, const float *emb, const int32_t *tokens, int64_t n, float *x) {
    const int64_t E = tm->cfg.n_embd;
    lb_op_embed_fwd(x, emb, tokens, n, E);
    if (tm->arch->ops.embd_scale) { /* Gemma: times sqrt(E), as the inference forward */
        const float s = sqrtf((float)E);
        for (int64_t i = 0; i < n * E; i++) x[i] *= s;
    }
}

double lb_tmodel_balance_loss(const lb_tmodel *tm) {
    double  s = 0;
    lb_tmoe mo;
    for (int32_t l = 0; tm->moe_aux > 0 && l < tm->cfg.n_layers; l++)
        if (moe_shape(tm, l, &mo)) s += (double)tm->moe_aux * (double)mo.N * lb_tmoe_balance(&mo, &tm->acts[l].moe);
    return s;
}

double lb_tmodel_loss(lb_tmodel *tm, const int32_t *tokens, const int32_t *targets, int64_t *count) {
    lb_tmodel_forward(tm, tokens);
    return lb_op_cross_entropy(NULL, tm->logits, targets, (int64_t)tm->B * tm->T, tm->cfg.n_vocab,
                               0.0f, count);
}

double lb_tmodel_step(lb_tmodel *tm, const int32_t *tokens, const int32_t *targets,
                      const float *teacher, float scale, int64_t *count) {
    const lb_llama_config *c = &tm->cfg;
    const int64_t          N = (int64_t)tm->B * tm->T, E = c->n_embd;
    lb_tmodel_forward(tm, tokens);
    if (tm->capped) memcpy(tm->capped, tm->logits, (size_t)(N * c->n_vocab) * sizeof *tm->capped);
    double loss    = 0;
    tm->moe_scale = scale;
    if (teacher) {
        loss = lb_op_kl_distill(tm->logits, tm->logits, teacher, N, c->n_vocab, scale);
        *count = N;
    } else {
        loss = lb_op_cross_entropy(tm->logits, tm->logits, targets, N, c->n_vocab, scale, count);
    }
    /* logits now hold d(loss)/d(logits) (of the soft-capped ones: back through the cap) */
    if (tm->capped) lb_op_softcap_bwd(tm->logits, tm->capped, N * c->n_vocab, c->final_softcap);
    float *g_out = tm->g + tm->slots[tm->tied ? LB_TS_TOK_EMBD : LB_TS_OUTPUT].off;
    lb_op_linear_bwd(tm->dxn, g_out, tm->logits, tm->xnf, tm->wf[LB_TS_OUTPUT], N, E, c->n_vocab, false);
    memset(tm->dx, 0, (size_t)(N * E) * sizeof *tm->dx);
    lb_op_rmsnorm_bwd(tm->dx, tm->g + tm->slots[LB_TS_OUTPUT_NORM].off, tm->dxn, tm->xf,
                      tm->wf[LB_TS_OUTPUT_NORM], tm->rstdf, N, E);
    for (int32_t l = c->n_layers - 1; l >= 0; l--) lb_tmodel_block_backward(tm, l, tm->dx);
    if (tm->arch->ops.embd_scale) {
        const float s = sqrtf((float)E);
        for (int64_t i = 0; i < N * E; i++) tm->dx[i] *= s;
    }
    lb_op_embed_bwd(tm->g + tm->slots[LB_TS_TOK_EMBD].off, tm->dx, tokens, N, E);
    return loss;
}

/* ---- as an lb_model ---- */

static lb_tensor view(const lb_tmodel *tm, int32_t slot) {
    const lb_tslot *s = &tm->slots[slot];
    lb_tensor       t = { .type = LB_TYPE_F32, .n_dims = s->rows > 1 ? 2 : 1,
                          .ne = { s->cols, s->rows > 1 ? s->rows : 1, 1, 1 }, .data = tm->w + s->off };
    return t;
}

lb_status lb_tmodel_as_model(const lb_tmodel *tm, lb_vocab *vocab, const char *name, lb_model **out,
                             lb_error *err) {
    *out        = NULL;
    lb_model *m = lb_model_alloc();
    LB_RETURN_IF(!m, err, LB_ERR_NOMEM, "out of memory");
    m->arch           = tm->arch;
    m->cfg            = tm->cfg;
    m->vocab          = vocab;
    m->priv->vocab_borrowed = true;
    m->format         = LB_MODEL_GGUF;
    m->name           = strdup(name ? name : "lowbit");
    m->layers         = calloc((size_t)tm->cfg.n_layers, sizeof *m->layers);
    if (!m->name || !m->layers) {
        lb_model_free(m);
        return lb_fail(err, LB_ERR_NOMEM, "out of memory");
    }
    m->tok_embd    = view(tm, LB_TS_TOK_EMBD);
    m->output_norm = view(tm, LB_TS_OUTPUT_NORM);
    m->tied_output = tm->tied;
    m->output      = tm->tied ? m->tok_embd : view(tm, LB_TS_OUTPUT);
    for (int32_t l = 0; l < tm->cfg.n_layers; l++)
        for (int k = 0; k < LB_TL_COUNT; k++) {
            if (!tm->slots[LB_TSLOT(l, k)].rows) continue;
            lb_tensor *t = &m->layers[l].slot[k];
            *t           = view(tm, LB_TSLOT(l, k));
            if (lb_slot_of((lb_tensor_role)(LB_ROLE_LAYER_FIRST + k))->flags & LB_SLOT_EXPERTS) /* [in, out, X] */
                t->n_dims = 3, t->ne[1] /= tm->cfg.n_expert, t->ne[2] = tm->cfg.n_expert;
        }
    *out = m;
    return LB_OK;
}
