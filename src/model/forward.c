/* The f32 reference forward pass of the Llama family, batched: T tokens go through each
 * layer as [T, E] matrices (GEMM through src/kernels), attention reads a KV cache.
 *   x = embed(tokens)
 *   per layer: h = x + Wo · attn(rope(Wq·n(x)), rope(Wk·n(x)), Wv·n(x))   n = RMSNorm
 *              x = h + Wdown · (silu(Wgate·n(h)) * Wup·n(h))
 *   logits = Wout · n(x)
 * RoPE rotates adjacent pairs (GGUF/Meta layout), frequencies divided by rope_freqs when the
 * model has them (Llama 3.1); Wq/Wk/Wv add their biases when present (Qwen2); grouped KV
 * heads; causal mask. What families change (the architecture's ops, arch.h): q and k heads
 * RMS-normed before RoPE (Qwen3, Gemma 3); Gemma's embeddings times sqrt(E), post-norms of
 * the attention's and the FFN's outputs before they are added, GELU for SiLU, soft-capped
 * scores and logits, sliding-window layers with their own RoPE base. W8A8 models (actq.h) quantize each block input to int8: simulated in f32
 * with exact products, int8 x int8 integer products in fast contexts.
 * All buffers are allocated once, in lb_context_create. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "core/fail.h"
#include "kernels/matmul.h"
#include "kernels/qdot.h"
#include "kernels/vecf.h"
#include "kv_cache.h"
#include "model_internal.h"
#include "moe.h"
#include "weights.h"
#include "lowbit/actq.h"
#include "lowbit/model.h"

#define ATT_ROWS 32 /* tokens per attention task */

struct lb_context {
    const lb_model *m;
    int32_t         n_ctx, n_batch, n_past, n_threads;
    lb_matmul_mode  mode;              /* products with quantized weights */
    lb_kv_cache     kv;                /* [L, n_ctx, K*D] of K and of V */
    lb_weights      w;                 /* the matrices, packed for FAST products */
    float          *x, *xn, *tmp;      /* [B, E] */
    float          *q, *att_out;       /* [B, H*D] */
    float          *k, *v;             /* [B, K*D] */
    float          *gate, *up;         /* [B, F] */
    float          *logits;            /* [B, V] */
    float          *att;               /* [threads, ATT_ROWS, n_ctx] scores */
    float          *rope_cos, *rope_sin; /* [n_ctx, D/2] */
    float          *rope_cos_swa, *rope_sin_swa; /* the windowed layers' (Gemma 3's own base) */
    float          *scratch;           /* matmul tiles */
    float           kq_scale;          /* the attention scores' scale */
    /* MLA (DeepSeek): q's low-rank input [B, QL], the latent and rotary key [B, KVL + R], the
     * absorbed queries [B, H*(KVL + R)], the attention's latent output [B, H*KVL], a head's
     * input and output to k_b and v_b */
    float          *mla_qa, *mla_kva, *mla_q, *mla_o, *mla_xh, *mla_oh;
    lb_moe_io       moe;               /* the FFN's activation; a mixture of experts' buffers (moe.h) */
    int32_t        *moe_idx;           /* its sel and pick */
    lb_forward_hook hook;
    void           *hook_user;
    int32_t         layer_limit;       /* 0: all layers */
    lb_tensor_role  stop_at;           /* stop once the hook has seen this input (LB_ROLE_COUNT: never) */
    bool            stopped;
    void           *block;             /* the one allocation all of the above live in */
};

/* g = silu(g) * u over n values, in chunks across the threads when there are many */
static void silu_mul(float *g, const float *u, int64_t n) {
    const lb_vecf *vf = lb_vecf_get();
    const int64_t  chunk = 4096, n_chunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (n_chunks >= 8)
    for (int64_t i = 0; i < n_chunks; i++)
        vf->silu_mul(g + i * chunk, u + i * chunk, n - i * chunk < chunk ? n - i * chunk : chunk);
}

/* g = gelu(g) * u over n values, GELU's tanh approximation (Gemma's gelu_pytorch_tanh) */
static void gelu_mul(float *g, const float *u, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= (1 << 15))
    for (int64_t i = 0; i < n; i++) {
        const float x = g[i];
        g[i] = 0.5f * x * (1.0f + tanhf(0.79788456080286535588f * x * (1.0f + 0.044715f * x * x))) * u[i];
    }
}

lb_context_params lb_context_default_params(int32_t n_ctx, int32_t n_batch) {
    return (lb_context_params){ .n_ctx = n_ctx, .n_batch = n_batch, .fast = false,
                                .type_k = LB_TYPE_F32, .type_v = LB_TYPE_F32 };
}

lb_status lb_context_create(lb_context **out, const lb_model *m, int32_t n_ctx, int32_t n_batch,
                            lb_error *err) {
    const lb_context_params p = lb_context_default_params(n_ctx, n_batch);
    return lb_context_create_ex(out, m, &p, err);
}

size_t lb_context_kv_bytes(const lb_context *c) { return lb_kv_cache_bytes(&c->kv); }

uint64_t lb_context_expert_bytes(const lb_context *c) { return c->moe.read; }

/* How a table rotates: llama.cpp's ggml_rope_ext with the model's scaling. */
typedef struct {
    float        theta, linear; /* base; positions divided by linear (0: none) */
    float        yarn;          /* YaRN's factor (0: none) */
    float        beta_fast, beta_slow, mscale;
    int32_t      orig;          /* the context YaRN scales from */
    const float *ff;            /* frequency divisors (rope_freqs, LongRoPE's), or NULL */
} rope_cfg;

/* YaRN's correction dimension: the pair whose wavelength turns n_rot times in orig positions */
static float yarn_corr_dim(int32_t D, int32_t orig, float n_rot, float base) {
    return (float)D * logf((float)orig / (n_rot * 2.0f * (float)M_PI)) / (2.0f * logf(base));
}

/* RoPE's table for positions 0 .. n_ctx-1, computed as llama2.c does (float arithmetic):
 * frequency j is theta^(-2j/D) / ff[j]. YaRN (llama.cpp's rope_yarn, ext_factor 1) blends the
 * interpolated angle (divided by the factor) into the extrapolated one from pair `low` to
 * `high`, and scales cos and sin by 1 + 0.1 ln(factor); mscale multiplies both (the model's
 * attention factor). */
static void rope_table(float *cos_t, float *sin_t, int32_t n_ctx, int32_t D, const rope_cfg *r) {
    float lo = 0, hi = 0, ms = r->mscale;
    if (r->yarn > 0) {
        lo = fmaxf(0.0f, floorf(yarn_corr_dim(D, r->orig, r->beta_fast, r->theta)));
        hi = fminf((float)(D - 1), ceilf(yarn_corr_dim(D, r->orig, r->beta_slow, r->theta)));
        ms *= lb_rope_yarn_mscale(r->yarn, 1.0f);
    }
    for (int32_t pos = 0; pos < n_ctx; pos++)
        for (int32_t j = 0; j < D / 2; j++) {
            const float freq = 1.0f / powf(r->theta, (float)(2 * j) / (float)D) / (r->ff ? r->ff[j] : 1.0f);
            float       val  = (float)pos * freq / (r->linear > 0 ? r->linear : 1.0f);
            if (r->yarn > 0) {
                const float ramp = 1.0f - fminf(1.0f, fmaxf(0.0f, ((float)j - lo) / fmaxf(0.001f, hi - lo)));
                val = val / r->yarn * (1.0f - ramp) + val * ramp;
            }
            cos_t[(size_t)pos * (size_t)(D / 2) + (size_t)j] = cosf(val) * ms;
            sin_t[(size_t)pos * (size_t)(D / 2) + (size_t)j] = sinf(val) * ms;
        }
}

/* DeepSeek's scales, as llama.cpp computes them (llama-context.cpp, deepseek2.cpp), f the
 * positions' scaling (YaRN's factor, or the linear one; at least 1): its attention factor A is
 * the file's, under YaRN times 1 / (1 + 0.1 ln f) when rope.scaling.yarn_log_multiplier m is
 * given (llama.cpp's ratio of the two mscales is then 1); RoPE's cos and sin take A (and under
 * YaRN 1 + 0.1 ln f, which rope_table adds) and the scores (A (1 + 0.1 ln f) (1 + 0.1 m ln f))^2
 * / sqrt(head_dim). */
static void mla_scales(const lb_llama_config *c, float *rope_mscale, float *kq_scale) {
    const float f  = fmaxf(1.0f, c->rope_yarn > 0 ? c->rope_yarn : c->rope_linear > 0 ? c->rope_linear : 1.0f);
    const float lnf = logf(f);
    float       a   = c->rope_attn_factor > 0 ? c->rope_attn_factor : 1.0f;
    if (c->rope_yarn > 0 && c->rope_yarn_log_mul != 0) a /= 1.0f + 0.1f * lnf;
    const float ms = a * (1.0f + 0.1f * lnf) * (1.0f + 0.1f * c->rope_yarn_log_mul * lnf);
    *rope_mscale   = a;
    if (c->attn_scale <= 0) *kq_scale = ms * ms / sqrtf((float)c->head_dim);
}

lb_status lb_context_create_ex(lb_context **out, const lb_model *m, const lb_context_params *cp,
                               lb_error *err) {
    *out                     = NULL;
    const lb_llama_config *c = &m->cfg;
    const int32_t n_ctx = cp->n_ctx, n_batch = cp->n_batch;
    LB_RETURN_IF(n_ctx <= 0 || n_batch <= 0 || n_batch > n_ctx || n_ctx > (1 << 20), err,
                 LB_ERR_PARAM, "context of %d positions with batches of %d", n_ctx, n_batch);
    lb_context *ctx = calloc(1, sizeof *ctx);
    LB_RETURN_IF(!ctx, err, LB_ERR_NOMEM, "out of memory");
    ctx->stop_at = ctx->moe.stop_at = LB_ROLE_COUNT;
    lb_status st = lb_kv_cache_init(&ctx->kv, c, n_ctx, cp->type_k, cp->type_v, err);
    if (!st) st = lb_weights_init(&ctx->w, m, cp->fast && !cp->unpacked, err);
    if (st) {
        lb_kv_cache_free(&ctx->kv);
        free(ctx);
        return st;
    }
    ctx->mode      = cp->fast ? LB_MATMUL_FAST : LB_MATMUL_EXACT;
    ctx->m         = m;
    ctx->n_ctx     = n_ctx;
    ctx->n_batch   = n_batch;
    lb_threads_get(); /* first use: OpenMP and BLAS thread counts set once */
    ctx->n_threads = omp_get_max_threads();
    const size_t E = (size_t)c->n_embd, F = (size_t)c->n_ff, V = (size_t)c->n_vocab;
    const size_t Q = (size_t)c->n_heads * (size_t)c->head_dim;
    const size_t KV = (size_t)c->n_kv_heads * (size_t)c->head_dim;
    const size_t QV = (size_t)lb_model_dim(m, LB_DIM_QV), QO = QV > Q ? QV : Q; /* the attention's output */
    const bool   mla = m->arch && m->arch->ops.mla;
    const size_t H = (size_t)c->n_heads, R = (size_t)c->n_lora_kv, QL = (size_t)c->n_lora_q;
    const size_t DN = (size_t)lb_model_dim(m, LB_DIM_DN), DV = (size_t)lb_model_dim(m, LB_DIM_DV);
    const size_t RD = mla ? (size_t)c->n_rot : (size_t)c->head_dim; /* rotary values a head */
    const size_t B = (size_t)n_batch, S = (size_t)n_ctx;
    const size_t X = (size_t)c->n_expert, XK = (size_t)c->n_expert_used;
    size_t       Fm = F; /* the largest FFN: the dense one, an expert's, the shared expert's */
    if ((size_t)c->n_ff_exp > Fm) Fm = (size_t)c->n_ff_exp;
    if ((size_t)c->n_ff_shexp > Fm) Fm = (size_t)c->n_ff_shexp;
    size_t max_in = E > Fm ? E : Fm;
    if (QO > max_in) max_in = QO;
    if (mla && QL > max_in) max_in = QL;
    if (mla && R > max_in) max_in = R;
    struct {
        float **p;
        size_t  n;
    } parts[] = {
        { &ctx->x, B * E },       { &ctx->xn, B * E },     { &ctx->tmp, B * E },
        { &ctx->q, B * Q },       { &ctx->att_out, B * QO }, { &ctx->k, B * KV },
        { &ctx->v, B * KV },      { &ctx->gate, B * Fm },  { &ctx->up, B * Fm },
        { &ctx->moe.router, B * X }, { &ctx->moe.xe, X ? B * E : 0 }, { &ctx->moe.oe, X ? B * E : 0 },
        { &ctx->moe.selw, B * XK },
        { &ctx->logits, B * V },
        { &ctx->att, (size_t)ctx->n_threads * ATT_ROWS * S },
        { &ctx->rope_cos, S * RD / 2 },
        { &ctx->rope_sin, S * RD / 2 },
        { &ctx->rope_cos_swa, c->rope_theta_swa > 0 ? S * RD / 2 : 0 },
        { &ctx->rope_sin_swa, c->rope_theta_swa > 0 ? S * RD / 2 : 0 },
        { &ctx->mla_qa, mla ? B * QL : 0 },        { &ctx->mla_kva, mla ? B * (R + RD) : 0 },
        { &ctx->mla_q, mla ? B * H * (R + RD) : 0 }, { &ctx->mla_o, mla ? B * H * R : 0 },
        { &ctx->mla_xh, mla ? B * (DN > R ? DN : R) : 0 }, { &ctx->mla_oh, mla ? B * (DV > R ? DV : R) : 0 },
        { &ctx->scratch, (size_t)lb_matmul_scratch_floats((int64_t)max_in, (int64_t)B, ctx->n_threads) },
    };
    size_t total = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) total += (parts[i].n + 15) & ~(size_t)15;
    ctx->block   = aligned_alloc(64, total * sizeof(float));
    ctx->moe_idx = X ? malloc(2 * B * XK * sizeof *ctx->moe_idx) : NULL;
    if (!ctx->block || (X && !ctx->moe_idx)) {
        free(ctx->block);
        free(ctx->moe_idx);
        lb_kv_cache_free(&ctx->kv);
        lb_weights_free(&ctx->w);
        free(ctx);
        return lb_fail(err, LB_ERR_NOMEM, "out of memory for a context of %d positions (%zu MiB)",
                       n_ctx, total * sizeof(float) >> 20);
    }
    float *p = ctx->block;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        *parts[i].p = p;
        p += (parts[i].n + 15) & ~(size_t)15;
    }
    ctx->moe.w       = &ctx->w;
    ctx->moe.mode    = ctx->mode;
    ctx->moe.scratch = ctx->scratch;
    ctx->moe.gate    = ctx->gate;
    ctx->moe.up      = ctx->up;
    ctx->moe.sel     = ctx->moe_idx;
    ctx->moe.pick    = ctx->moe_idx ? ctx->moe_idx + B * XK : NULL;
    ctx->moe.act     = m->arch && m->arch->ops.act == LB_ACT_GELU_TANH ? gelu_mul : silu_mul;
    /* LongRoPE: the long factors when the context is past the original one, as llama.cpp */
    const int32_t orig = c->rope_orig_ctx > 0 ? c->rope_orig_ctx : c->n_ctx_train;
    const float  *ff   = m->rope_long.data && n_ctx > orig ? m->rope_long.data
                       : m->rope_short.data                ? m->rope_short.data : m->rope_freqs.data;
    rope_cfg      r    = { .theta = c->rope_theta, .linear = c->rope_linear, .yarn = c->rope_yarn,
                           .beta_fast = c->yarn_beta_fast > 0 ? c->yarn_beta_fast : 32.0f,
                           .beta_slow = c->yarn_beta_slow > 0 ? c->yarn_beta_slow : 1.0f,
                           .mscale = c->rope_attn_factor > 0 ? c->rope_attn_factor : 1.0f, .orig = orig, .ff = ff };
    ctx->kq_scale = c->attn_scale > 0 ? c->attn_scale : 1.0f / sqrtf((float)c->head_dim);
    if (mla) mla_scales(c, &r.mscale, &ctx->kq_scale);
    rope_table(ctx->rope_cos, ctx->rope_sin, n_ctx, (int32_t)RD, &r);
    if (c->rope_theta_swa > 0) { /* Gemma 3's windowed layers: their own base, unscaled */
        r.theta = c->rope_theta_swa, r.linear = c->rope_linear_swa, r.yarn = 0;
        rope_table(ctx->rope_cos_swa, ctx->rope_sin_swa, n_ctx, (int32_t)RD, &r);
    }
    *out = ctx;
    return LB_OK;
}

void lb_context_free(lb_context *c) {
    if (!c) return;
    lb_kv_cache_free(&c->kv);
    lb_weights_free(&c->w);
    free(c->block);
    free(c->moe_idx);
    free(c);
}

void    lb_context_reset(lb_context *c) { c->n_past = 0; }

void lb_context_set_hook(lb_context *c, lb_forward_hook hook, void *user) {
    c->hook = c->moe.hook = hook;
    c->hook_user = c->moe.hook_user = user;
}

void lb_context_set_stop(lb_context *c, lb_tensor_role input) {
    c->stop_at = c->moe.stop_at = input;
}

void lb_context_set_probe(lb_context *c, lb_forward_hook probe, void *user, const uint8_t *experts) {
    c->moe.probe         = experts ? probe : NULL;
    c->moe.probe_user    = user;
    c->moe.probe_experts = experts;
}

void lb_context_set_layer_limit(lb_context *c, int32_t n_layers) {
    c->layer_limit = n_layers > 0 ? n_layers : 0;
}

int32_t lb_context_n_past(const lb_context *c) { return c->n_past; }

/* W8A8 in a fast context without a hook: the linears reading x (role's input of layer l) in
 * integer products, when every one of them is stored in INT8_PC (for LLM.int8, the int8
 * weight the loader kept beside the f32 one). x stays as it is. False: not this path. */
static bool w8a8_int(lb_context *ctx, int32_t l, lb_tensor_role role, const float *x, int32_t T,
                     int32_t n, float *const *out, const lb_mat *w, int nw) {
    const lb_actq *aq = ctx->m->actq;
    if (!aq || ctx->mode != LB_MATMUL_FAST || ctx->hook || l < 0 || l >= aq->n_layers ||
        lb_block_input_of(role) < 0 || n > LB_MATMUL_I8_MAX_IN)
        return false;
    const lb_actq_input *ai = lb_actq_at(aq, l, (lb_block_input)lb_block_input_of(role));
    lb_mat               wi[LB_MATMUL_MAX_MULTI];
    lb_w8a8_outliers     ol = { .k = ai->n_outliers, .cols = ai->outliers, .x = x };
    for (int i = 0; i < nw; i++) {
        wi[i] = (lb_mat){ .t = ai->w_int8[i].data ? &ai->w_int8[i] : w[i].t, .packed = NULL };
        ol.w[i] = ai->w_outliers[i];
        if (wi[i].t->type != LB_TYPE_INT8_PC || (ai->n_outliers > 0 && !ai->w_outliers[i])) return false;
    }
    const size_t rs = lb_matmul_i8_row_size(n);
    lb_actq_quantize_i8(aq, l, role, x, T, n, ctx->scratch, rs);
    lb_matmul_w8a8(out, ctx->scratch, wi, nw, T, ai->n_outliers > 0 ? &ol : NULL);
    return true;
}

/* out[i] = x · w[i]ᵀ for the nw matrices of roles wk[i] of layer l (-1: the output head) that
 * read x, role's input [T, n]. W8A8 models: integer products (w8a8_int), or x
 * quantize-dequantized in place (actq.c); hooks see x as the linears will. */
static void linears(lb_context *ctx, int32_t l, lb_tensor_role role, float *x, int32_t T,
                    int32_t n, float *const *out, const lb_tensor_role *wk, int nw) {
    lb_mat w[LB_MATMUL_MAX_MULTI];
    for (int i = 0; i < nw; i++) w[i] = lb_weights_get(&ctx->w, l, wk[i]);
    if (w8a8_int(ctx, l, role, x, T, n, out, w, nw)) return;
    if (ctx->m->actq) lb_actq_apply(ctx->m->actq, l, role, x, T, n);
    if (ctx->hook) ctx->hook(ctx->hook_user, l, role, -1, x, T, n);
    if (role == ctx->stop_at) { /* the caller wanted this input only */
        ctx->stopped = true;
        return;
    }
    if (nw == 1) lb_matmul(out[0], x, w[0], T, ctx->mode, ctx->scratch);
    else lb_matmul_multi(out, x, w, nw, T, ctx->mode, ctx->scratch);
}

static void rmsnorm(float *o, const float *x, const float *w, int32_t n, float eps) {
    float ss = 0.0f;
    for (int32_t j = 0; j < n; j++) ss += x[j] * x[j];
    ss /= (float)n;
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    for (int32_t j = 0; j < n; j++) o[j] = w[j] * (ss * x[j]);
}

/* rmsnorm of each of T rows of n values, across the threads when there are many */
static void rmsnorm_rows(float *o, const float *x, const float *w, int32_t T, int32_t n, float eps) {
#pragma omp parallel for schedule(static) if ((int64_t)T * n >= (1 << 16))
    for (int32_t t = 0; t < T; t++) rmsnorm(o + (size_t)t * (size_t)n, x + (size_t)t * (size_t)n, w, n, eps);
}

/* y[t, :] += b for each of the T rows of n values. */
static void add_bias(float *y, const float *b, int32_t T, size_t n) {
    for (int32_t t = 0; t < T; t++)
        for (size_t i = 0; i < n; i++) y[(size_t)t * n + i] += b[i];
}

/* Rotate adjacent pairs of each head of vec (n_heads heads of D) at position pos. */
static void rope(float *vec, int32_t n_heads, int32_t D, const float *cos_t, const float *sin_t) {
    for (int32_t h = 0; h < n_heads; h++) {
        float *v = vec + (size_t)h * (size_t)D;
        for (int32_t j = 0; j < D / 2; j++) {
            const float v0 = v[2 * j], v1 = v[2 * j + 1];
            v[2 * j]       = v0 * cos_t[j] - v1 * sin_t[j];
            v[2 * j + 1]   = v0 * sin_t[j] + v1 * cos_t[j];
        }
    }
}

/* x = c * tanh(x / c) over n values (soft-capping) */
static void softcap(float *x, int64_t n, float c) {
    for (int64_t i = 0; i < n; i++) x[i] = c * tanhf(x[i] / c);
}

/* softmax over scores s0 .. n-1 of row's ns (causal: positions up to n-1; a sliding window:
 * from s0), zeros elsewhere */
static void softmax_causal(const lb_vecf *vf, float *row, int32_t s0, int32_t n, int32_t ns) {
    vf->softmax(row + s0, n - s0);
    memset(row, 0, (size_t)s0 * sizeof *row);
    memset(row + n, 0, (size_t)(ns - n) * sizeof *row);
}

/* Where attention reads its queries and writes its output, and the heads' sizes: q [T, lq]
 * with head h at h * dq, keys and values of dq and dv values a KV head (cache rows of kvk and
 * kvv values), o [T, lo] with head h at h * dv. */
typedef struct {
    const float *q;
    float       *o;
    int32_t      lq, lo, dq, dv, kvk, kvv, n_kv;
} att_geom;

/* Causal attention of the T new tokens over positions 0 .. n_past+T-1: scores = q kᵀ times the
 * context's scale (GEMM; soft-capped when the config says), masked softmax (a windowed layer's
 * token at p sees p - n_swa + 1 .. p), then scores · v (GEMM). Each task is one head and a
 * block of up to ATT_ROWS tokens, or for one token (generation) one KV head and the G query
 * heads that share it, read as a [G, dq] matrix against the same keys; each thread has its own
 * scores buffer. */
static void attention(lb_context *ctx, int32_t layer, int32_t T, const att_geom *g) {
    const lb_llama_config *c  = &ctx->m->cfg;
    const int32_t          H = c->n_heads, G = c->n_heads / g->n_kv, dq = g->dq, dv = g->dv;
    const float           *kc, *vc; /* the layer's keys and values as f32 */
    lb_kv_layer(&ctx->kv, layer, ctx->n_past + T, &kc, &vc);
    const float            scale  = ctx->kq_scale;
    const int32_t          win    = lb_layer_windowed(c, layer) ? c->n_swa : 0;
    const lb_vecf         *vf     = lb_vecf_get();
    const bool             group  = T == 1 && G <= ATT_ROWS;
    const int32_t          blocks = (T + ATT_ROWS - 1) / ATT_ROWS;
    const int32_t          tasks  = group ? g->n_kv : H * blocks;
    const int32_t          S      = ctx->n_past + T; /* keys visible to the last token */
#pragma omp parallel for schedule(dynamic) if (tasks > 1 && (int64_t)T * S * dq * H > (1 << 16))
    for (int32_t task = 0; task < tasks; task++) {
        float *att = ctx->att + (size_t)omp_get_thread_num() * ATT_ROWS * (size_t)ctx->n_ctx;
        const int32_t h  = group ? task * G : task / blocks, t0 = group ? 0 : (task % blocks) * ATT_ROWS;
        const int32_t nt = group ? 1 : (T - t0 < ATT_ROWS ? T - t0 : ATT_ROWS);
        const int32_t nr = group ? G : nt;        /* rows of q: heads, or tokens */
        const int32_t lq = group ? dq : g->lq;    /* their strides */
        const int32_t lo = group ? dv : g->lo;
        const int32_t ns = ctx->n_past + t0 + nt; /* keys visible to this block's last token */
        const float *q  = g->q + (size_t)t0 * (size_t)g->lq + (size_t)h * (size_t)dq;
        const float *k  = kc + (size_t)(h / G) * (size_t)dq;
        const float *v  = vc + (size_t)(h / G) * (size_t)dv;
        float       *o  = g->o + (size_t)t0 * (size_t)g->lo + (size_t)h * (size_t)dv;
        if (nr == 1) { /* one row: matrix-vector products */
            cblas_sgemv(CblasRowMajor, CblasNoTrans, ns, dq, scale, k, g->kvk, q, 1, 0.0f, att, 1);
            if (c->attn_softcap > 0) softcap(att, ns, c->attn_softcap);
            softmax_causal(vf, att, win > 0 && ns > win ? ns - win : 0, ns, ns);
            cblas_sgemv(CblasRowMajor, CblasTrans, ns, dv, 1.0f, v, g->kvv, att, 1, 0.0f, o, 1);
            continue;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, ns, dq, scale, q, lq, k, g->kvk, 0.0f,
                    att, ns);
        if (c->attn_softcap > 0) softcap(att, (int64_t)nr * ns, c->attn_softcap);
        for (int32_t r = 0; r < nr; r++) { /* causal: token t0 + r sees positions 0 .. its own */
            const int32_t n = group ? ns : ctx->n_past + t0 + r + 1;
            softmax_causal(vf, att + (size_t)r * (size_t)ns, win > 0 && n > win ? n - win : 0, n, ns);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, dv, ns, 1.0f, att, ns, v, g->kvv,
                    0.0f, o, lo);
    }
}

/* For each head h: out[t, h*lout .. + m] = W_h · x[t, h*lin .. + n], W_h slice h of stack k
 * (3: k_b, 4: v_b) of layer l; a head's rows gathered (the hook sees them as role's input of
 * head h), multiplied, and scattered. False: stopped there. */
static bool per_head(lb_context *ctx, int32_t l, int k, lb_tensor_role role, const float *x, int32_t lin,
                     int32_t n, int32_t T, float *out, int32_t lout, int32_t m) {
    const size_t H = (size_t)ctx->m->cfg.n_heads;
    for (size_t h = 0; h < H; h++) {
        for (int32_t t = 0; t < T; t++)
            memcpy(ctx->mla_xh + (size_t)t * (size_t)n, x + ((size_t)t * H + h) * (size_t)lin, (size_t)n * sizeof *x);
        if (ctx->hook) ctx->hook(ctx->hook_user, l, role, (int32_t)h, ctx->mla_xh, T, n);
        if (ctx->stop_at == role) continue; /* every head's input, nothing computed */
        lb_matmul(ctx->mla_oh, ctx->mla_xh, lb_weights_slice(&ctx->w, ctx->m, l, k, (int32_t)h), T, ctx->mode,
                  ctx->scratch);
        for (int32_t t = 0; t < T; t++)
            memcpy(out + ((size_t)t * H + h) * (size_t)lout, ctx->mla_oh + (size_t)t * (size_t)m, (size_t)m * sizeof *out);
    }
    ctx->stopped = ctx->stop_at == role;
    return !ctx->stopped;
}

/* The attention of layer l on ctx->xn into ctx->att_out [T, H*D]: q, k, v (their biases),
 * q and k heads normed (Qwen3, Gemma 3) and rotated, k and v stored; false: stopped. */
static bool mha_attention(lb_context *ctx, int32_t l, int32_t T) {
    const lb_llama_config *c = &ctx->m->cfg;
    const lb_layer        *L = &ctx->m->layers[l];
    const int32_t          E = c->n_embd, D = c->head_dim;
    const size_t           Q = (size_t)c->n_heads * (size_t)D, KV = (size_t)c->n_kv_heads * (size_t)D;
    const bool             own_rope = c->rope_theta_swa > 0 && lb_layer_windowed(c, l);
    float *const qkv[3] = { ctx->q, ctx->k, ctx->v };
    linears(ctx, l, LB_ROLE_ATTN_Q, ctx->xn, T, E, qkv, (const lb_tensor_role[]){ LB_ROLE_ATTN_Q, LB_ROLE_ATTN_K, LB_ROLE_ATTN_V }, 3);
    if (ctx->stopped) return false;
    if (L->bq.data) { /* attention biases (Qwen2) */
        add_bias(ctx->q, L->bq.data, T, Q);
        add_bias(ctx->k, L->bk.data, T, KV);
        add_bias(ctx->v, L->bv.data, T, KV);
    }
#pragma omp parallel for schedule(static) if ((int64_t)T * (int64_t)(Q + KV) >= (1 << 16))
    for (int32_t t = 0; t < T; t++) {
        const size_t pos  = (size_t)(ctx->n_past + t);
        const float *cos_t = (own_rope ? ctx->rope_cos_swa : ctx->rope_cos) + pos * (size_t)(D / 2);
        const float *sin_t = (own_rope ? ctx->rope_sin_swa : ctx->rope_sin) + pos * (size_t)(D / 2);
        if (L->q_norm.data) /* Qwen3, Gemma 3: RMSNorm of each head of q and k before RoPE */
            for (int32_t h = 0; h < c->n_heads + c->n_kv_heads; h++) {
                const bool q = h < c->n_heads;
                float     *v = q ? ctx->q + (size_t)t * Q + (size_t)h * (size_t)D
                                 : ctx->k + (size_t)t * KV + (size_t)(h - c->n_heads) * (size_t)D;
                rmsnorm(v, v, q ? L->q_norm.data : L->k_norm.data, D, c->norm_eps);
            }
        rope(ctx->q + (size_t)t * Q, c->n_heads, D, cos_t, sin_t);
        rope(ctx->k + (size_t)t * KV, c->n_kv_heads, D, cos_t, sin_t);
        lb_kv_store(&ctx->kv, l, (int32_t)pos, ctx->k + (size_t)t * KV, ctx->v + (size_t)t * KV);
    }
    const att_geom g = { .q = ctx->q, .o = ctx->att_out, .lq = (int32_t)Q, .lo = (int32_t)Q, .dq = D, .dv = D,
                         .kvk = (int32_t)KV, .kvv = (int32_t)KV, .n_kv = c->n_kv_heads };
    attention(ctx, l, T, &g);
    return true;
}

/* DeepSeek's multi-head latent attention of layer l on ctx->xn into ctx->att_out [T, H*DV], as
 * llama.cpp computes it (with the absorption): q = Wq·x or Wq_b·n(Wq_a·x); [c | k_r] =
 * Wkv_a·x, the latent c normed, k_r rotated (one rotary key for all heads); each head's q's
 * last n_rot values rotated, its others taken into the latent space by k_b; attention of
 * [k_b·q_n | q_r] against [c | k_r] with c as the values (one KV head); each head's latent
 * output through v_b. False: stopped. */
static bool mla_attention(lb_context *ctx, int32_t l, int32_t T) {
    const lb_llama_config *c = &ctx->m->cfg;
    const lb_layer        *L = &ctx->m->layers[l];
    const int32_t E = c->n_embd, H = c->n_heads, D = c->head_dim, R = c->n_lora_kv, RD = c->n_rot;
    const int32_t DN = D - RD, DV = (int32_t)lb_model_dim(ctx->m, LB_DIM_DV), KA = R + RD;
    if (L->wq_a.data) {
        float *const o2[2] = { ctx->mla_qa, ctx->mla_kva };
        linears(ctx, l, LB_ROLE_ATTN_Q, ctx->xn, T, E, o2, (const lb_tensor_role[]){ LB_ROLE_ATTN_Q_A, LB_ROLE_ATTN_KV_A_MQA }, 2);
        if (ctx->stopped) return false;
        rmsnorm_rows(ctx->mla_qa, ctx->mla_qa, L->q_a_norm.data, T, c->n_lora_q, c->norm_eps);
        linears(ctx, l, LB_ROLE_ATTN_Q_B, ctx->mla_qa, T, c->n_lora_q, &ctx->q, (const lb_tensor_role[]){ LB_ROLE_ATTN_Q_B }, 1);
    } else {
        float *const o2[2] = { ctx->q, ctx->mla_kva };
        linears(ctx, l, LB_ROLE_ATTN_Q, ctx->xn, T, E, o2, (const lb_tensor_role[]){ LB_ROLE_ATTN_Q, LB_ROLE_ATTN_KV_A_MQA }, 2);
    }
    if (ctx->stopped) return false;
#pragma omp parallel for schedule(static) if ((int64_t)T * H * D >= (1 << 16))
    for (int32_t t = 0; t < T; t++) {
        const size_t pos = (size_t)(ctx->n_past + t);
        const float *cs = ctx->rope_cos + pos * (size_t)(RD / 2), *sn = ctx->rope_sin + pos * (size_t)(RD / 2);
        float       *kv = ctx->mla_kva + (size_t)t * (size_t)KA;
        rmsnorm(kv, kv, L->kv_a_norm.data, R, c->norm_eps);
        rope(kv + R, 1, RD, cs, sn);
        lb_kv_store(&ctx->kv, l, (int32_t)pos, kv, kv);
        for (int32_t h = 0; h < H; h++) {
            float *q = ctx->q + ((size_t)t * (size_t)H + (size_t)h) * (size_t)D + (size_t)DN;
            rope(q, 1, RD, cs, sn);
            memcpy(ctx->mla_q + ((size_t)t * (size_t)H + (size_t)h) * (size_t)KA + (size_t)R, q, (size_t)RD * sizeof *q);
        }
    }
    if (!per_head(ctx, l, 3, LB_ROLE_ATTN_K_B, ctx->q, D, DN, T, ctx->mla_q, KA, R)) return false;
    const att_geom g = { .q = ctx->mla_q, .o = ctx->mla_o, .lq = H * KA, .lo = H * R, .dq = KA, .dv = R,
                         .kvk = KA, .kvv = KA, .n_kv = 1 }; /* the values: each key row's latent */
    attention(ctx, l, T, &g);
    return per_head(ctx, l, 4, LB_ROLE_ATTN_V_B, ctx->mla_o, R, R, T, ctx->att_out, DV, DV);
}

static lb_status check_batch(const lb_context *ctx, int32_t T, lb_error *err) {
    LB_RETURN_IF(T <= 0 || T > ctx->n_batch, err, LB_ERR_PARAM,
                 "forward: %d tokens, the batch holds 1..%d", T, ctx->n_batch);
    LB_RETURN_IF(ctx->n_past + T > ctx->n_ctx, err, LB_ERR_PARAM,
                 "forward: context full (%d + %d positions > %d)", ctx->n_past, T, ctx->n_ctx);
    return LB_OK;
}

/* layer l's gated FFN of ctx->xn into ctx->tmp [T, E]; false: stopped (lb_context_set_stop) */
static bool dense_ffn(lb_context *ctx, int32_t l, int32_t T) {
    const lb_llama_config *c = &ctx->m->cfg;
    const int32_t          E = c->n_embd, F = c->n_ff;
    float *const           gu[2] = { ctx->gate, ctx->up };
    linears(ctx, l, LB_ROLE_FFN_GATE, ctx->xn, T, E, gu, (const lb_tensor_role[]){ LB_ROLE_FFN_GATE, LB_ROLE_FFN_UP }, 2);
    if (ctx->stopped) return false;
    ctx->moe.act(ctx->gate, ctx->up, (int64_t)T * F);
    linears(ctx, l, LB_ROLE_FFN_DOWN, ctx->gate, T, F, &ctx->tmp, (const lb_tensor_role[]){ LB_ROLE_FFN_DOWN }, 1);
    return !ctx->stopped;
}

/* the same for a mixture of experts (moe.c); the hook sees the FFN's input first */
static bool moe_ffn(lb_context *ctx, int32_t l, int32_t T) {
    if (ctx->hook) ctx->hook(ctx->hook_user, l, LB_ROLE_FFN_GATE, -1, ctx->xn, T, ctx->m->cfg.n_embd);
    ctx->stopped = ctx->stop_at == LB_ROLE_FFN_GATE || !lb_moe_ffn(ctx->m, l, &ctx->moe, ctx->xn, T, ctx->tmp);
    return !ctx->stopped;
}

/* a forward can start at an attention's output as the hook saw it: no activation quantization
 * (it rounds that input in place before the hook) and no latent attention (MLA) */
bool lb_model_att_resumable(const lb_model *m) { return !m->actq && !(m->arch && m->arch->ops.mla); }
static bool att_resumable(const lb_context *ctx) { return lb_model_att_resumable(ctx->m); }

/* a forward can start at a dense FFN's down projection as the hook saw its input: no
 * activation quantization and no mixture of experts */
bool lb_model_mid_resumable(const lb_model *m) { return !m->actq && m->cfg.n_expert == 0; }

/* where the first layer starts: its input, its attention's output (ctx->att_out given: the
 * output projection on), its FFN (ctx->x its residual after the attention), or its FFN's down
 * projection (ctx->gate its input, ctx->x the residual after the attention) */
enum { FROM_INPUT, FROM_ATT, FROM_FFN, FROM_DOWN };

/* layers first .. the limit on the residual stream ctx->x [T, E], then the head unless a
 * layer limit is set (even at the last layer) or a stop came; the first layer from `from` */
static lb_status run_layers(lb_context *ctx, int32_t first, int from, int32_t T, const float **logits) {
    const lb_model        *m = ctx->m;
    const lb_llama_config *c = &m->cfg;
    const int32_t E = c->n_embd;
    const int32_t n_layers = ctx->layer_limit > 0 && ctx->layer_limit < c->n_layers ? ctx->layer_limit
                                                                                     : c->n_layers;
    ctx->stopped = false;
    for (int32_t l = first; l < n_layers; l++) {
        const lb_layer *L = &m->layers[l];
        if (!((from == FROM_FFN || from == FROM_DOWN) && l == first)) {
            if (!(from == FROM_ATT && l == first)) {
                rmsnorm_rows(ctx->xn, ctx->x, L->attn_norm.data, T, E, c->norm_eps);
                if (!(m->arch && m->arch->ops.mla ? mla_attention(ctx, l, T) : mha_attention(ctx, l, T))) break;
            }
            linears(ctx, l, LB_ROLE_ATTN_OUTPUT, ctx->att_out, T, (int32_t)lb_model_dim(m, LB_DIM_QV), &ctx->tmp, (const lb_tensor_role[]){ LB_ROLE_ATTN_OUTPUT }, 1);
            if (ctx->stopped) break;
            if (L->attn_post_norm.data) rmsnorm_rows(ctx->tmp, ctx->tmp, L->attn_post_norm.data, T, E, c->norm_eps);
            for (size_t i = 0; i < (size_t)T * (size_t)E; i++) ctx->x[i] += ctx->tmp[i];
        }
        if (from == FROM_DOWN && l == first) {
            linears(ctx, l, LB_ROLE_FFN_DOWN, ctx->gate, T, c->n_ff, &ctx->tmp, (const lb_tensor_role[]){ LB_ROLE_FFN_DOWN }, 1);
            if (ctx->stopped) break;
        } else {
            rmsnorm_rows(ctx->xn, ctx->x, L->ffn_norm.data, T, E, c->norm_eps);
            if (!(L->ffn_gate_inp.data ? moe_ffn(ctx, l, T) : dense_ffn(ctx, l, T))) break; /* into ctx->tmp */
        }
        if (L->ffn_post_norm.data) rmsnorm_rows(ctx->tmp, ctx->tmp, L->ffn_post_norm.data, T, E, c->norm_eps);
        for (size_t i = 0; i < (size_t)T * (size_t)E; i++) ctx->x[i] += ctx->tmp[i];
    }
    if (ctx->layer_limit > 0 || ctx->stopped) { /* stopped early (a limit, even the last layer): no logits */
        ctx->n_past += T;
        *logits = NULL;
        return LB_OK;
    }
    rmsnorm_rows(ctx->xn, ctx->x, m->output_norm.data, T, E, c->norm_eps);
    linears(ctx, -1, LB_ROLE_OUTPUT, ctx->xn, T, E, &ctx->logits, (const lb_tensor_role[]){ LB_ROLE_OUTPUT }, 1);
    if (c->final_softcap > 0 && !ctx->stopped) softcap(ctx->logits, (int64_t)T * c->n_vocab, c->final_softcap);
    ctx->n_past += T;
    *logits = ctx->stopped ? NULL : ctx->logits;
    return LB_OK;
}

void lb_model_embed(const lb_model *m, int32_t token, float *x) {
    lb_tensor_get_row_f32(&m->tok_embd, token, x);
    if (m->arch && m->arch->ops.embd_scale) { /* Gemma: times sqrt(E), as llama.cpp does */
        const float s = sqrtf((float)m->cfg.n_embd);
        for (int32_t i = 0; i < m->cfg.n_embd; i++) x[i] *= s;
    }
}

lb_status lb_forward(lb_context *ctx, const int32_t *tokens, int32_t T, const float **logits,
                     lb_error *err) {
    const lb_model        *m = ctx->m;
    const lb_llama_config *c = &m->cfg;
    lb_status              st;
    LB_TRY(check_batch(ctx, T, err));
    for (int32_t t = 0; t < T; t++)
        LB_RETURN_IF(tokens[t] < 0 || tokens[t] >= c->n_vocab, err, LB_ERR_PARAM,
                     "forward: token id %d out of range [0, %d)", tokens[t], c->n_vocab);
    for (int32_t t = 0; t < T; t++) lb_model_embed(m, tokens[t], ctx->x + (size_t)t * (size_t)c->n_embd);
    return run_layers(ctx, 0, FROM_INPUT, T, logits);
fail:
    return st;
}

static lb_status forward_from(lb_context *ctx, int32_t first, int from, const float *x, const float *att, int32_t T,
                              const float **logits, lb_error *err) {
    const lb_llama_config *c = &ctx->m->cfg;
    lb_status              st;
    LB_TRY(check_batch(ctx, T, err));
    LB_RETURN_IF(first < 0 || first > c->n_layers || (from != FROM_INPUT && first == c->n_layers), err, LB_ERR_PARAM,
                 "forward: layer %d of %d", first, c->n_layers);
    LB_RETURN_IF(from == FROM_ATT && !att_resumable(ctx), err, LB_ERR_PARAM,
                 "forward: this model cannot start at an attention's output");
    LB_RETURN_IF(from == FROM_DOWN && !lb_model_mid_resumable(ctx->m), err, LB_ERR_PARAM,
                 "forward: this model cannot start at an FFN's down projection");
    memcpy(ctx->x, x, (size_t)T * (size_t)c->n_embd * sizeof *x);
    if (from == FROM_ATT) memcpy(ctx->att_out, att, (size_t)T * (size_t)lb_model_dim(ctx->m, LB_DIM_QV) * sizeof *att);
    if (from == FROM_DOWN) memcpy(ctx->gate, att, (size_t)T * (size_t)c->n_ff * sizeof *att);
    return run_layers(ctx, first, from, T, logits);
fail:
    return st;
}

lb_status lb_forward_from(lb_context *ctx, int32_t first, const float *x, int32_t T, const float **logits,
                          lb_error *err) {
    return forward_from(ctx, first, FROM_INPUT, x, NULL, T, logits, err);
}

lb_status lb_forward_from_ffn(lb_context *ctx, int32_t first, const float *x, int32_t T, const float **logits,
                              lb_error *err) {
    return forward_from(ctx, first, FROM_FFN, x, NULL, T, logits, err);
}

lb_status lb_forward_from_att(lb_context *ctx, int32_t first, const float *x, const float *att, int32_t T,
                              const float **logits, lb_error *err) {
    return forward_from(ctx, first, FROM_ATT, x, att, T, logits, err);
}

lb_status lb_forward_from_down(lb_context *ctx, int32_t first, const float *x, const float *mid, int32_t T,
                               const float **logits, lb_error *err) {
    return forward_from(ctx, first, FROM_DOWN, x, mid, T, logits, err);
}

const float *lb_context_ffn_mid(const lb_context *ctx) {
    return ctx->stopped && ctx->stop_at == LB_ROLE_FFN_DOWN && lb_model_mid_resumable(ctx->m) ? ctx->gate : NULL;
}

const float *lb_context_att_out(const lb_context *ctx) {
    return ctx->stopped && ctx->stop_at == LB_ROLE_ATTN_OUTPUT && att_resumable(ctx) ? ctx->att_out : NULL;
}

const float *lb_context_residual(const lb_context *ctx) { return ctx->x; }

bool lb_context_set_matrix(lb_context *c, int32_t layer, lb_tensor_role role, const lb_tensor *t) {
    const lb_slot *s = lb_slot_of(role);
    if (layer < 0 || layer >= c->w.n_layers || role < LB_ROLE_LAYER_FIRST || role >= LB_ROLE_LAYER_END ||
        s->ne1 == LB_DIM_1 || s->ne2 != LB_DIM_1 || (t && (c->mode != LB_MATMUL_FAST || !lb_qdot_get_fast(t->type))))
        return false;
    const int32_t i = layer * LB_LAYER_SLOTS + ((int)role - LB_ROLE_LAYER_FIRST);
    const size_t  n = t ? (lb_matmul_pack_size(t) + 63) / 64 * 64 : 0;
    free(c->w.set_buf[i]);
    c->w.set_buf[i] = n ? aligned_alloc(64, n) : NULL; /* packed, as a fast context's own (none: unpacked) */
    if (c->w.set_buf[i]) lb_matmul_pack(c->w.set_buf[i], t);
    c->w.mats[i] = t ? (lb_mat){ .t = t, .packed = c->w.set_buf[i] } : c->w.init[i];
    return true;
}
