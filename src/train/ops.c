/* The training ops of src/train/ops.h: forward and backward of the Llama family in f32.
 * Determinism: every op cuts its work into tasks whose shapes depend only on the sizes,
 * never on the thread count, and each output element is written by one task in a fixed
 * order (weight gradients that sum over rows are split by columns, losses are summed as a
 * fixed number of partial sums). Results are bit-identical for any number of threads.
 * GEMMs are single-threaded OpenBLAS calls, one per task; sums that decide a loss or a
 * normalization run in double. */
#include <assert.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "lowbit/core.h"
#include "ops.h"

#define MAX_TASKS 64        /* GEMMs: at most this many tasks ... */
#define MIN_SPAN  64        /* ... of at least this many rows or columns each */
#define COL_SPAN  64        /* columns per task where gradients sum over all rows */
#define RED_TASKS 64        /* fixed partial sums of the losses */
#define PAR_WORK  (1 << 15) /* below this many multiply-adds, one thread is faster */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* rows (or columns) per task when splitting len of them */
static int64_t span_of(int64_t len) {
    const int64_t s = (len + MAX_TASKS - 1) / MAX_TASKS;
    return s < MIN_SPAN ? MIN_SPAN : s;
}

/* C[M, N] = alpha · op(A) · op(B) + beta · C, row-major, as tasks along M or along N,
 * whichever is longer. Each task packs the whole operand it does not split: tasks of at
 * least MIN_SPAN rows keep that copy small next to the task's multiply-adds. */
static void gemm_tasks(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                       const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                       float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* nothing to multiply: C = beta · C (and BLAS rejects lda = 0) */
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        return;
    }
    lb_threads_get(); /* first use: OpenMP and BLAS thread counts set once */
    const bool    by_rows = M >= N;
    const int64_t len = by_rows ? M : N, span = span_of(len), tasks = (len + span - 1) / span;
#pragma omp parallel for schedule(dynamic) if (tasks > 1 && M * N * K > PAR_WORK)
    for (int64_t t = 0; t < tasks; t++) {
        const int64_t o = t * span, c = min64(span, len - o);
        const float  *a = A, *b = B;
        float        *cc = C;
        if (by_rows) {
            a += ta ? o : o * lda;
            cc += o * ldc;
        } else {
            b += tb ? o * ldb : o;
            cc += o;
        }
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    (blasint)(by_rows ? c : M), (blasint)(by_rows ? N : c), (blasint)K, alpha, a,
                    (blasint)lda, b, (blasint)ldb, beta, cc, (blasint)ldc);
    }
}

/* ---- linear ---- */

void lb_op_linear_fwd(float *y, const float *x, const float *w, int64_t n, int64_t in, int64_t out) {
    gemm_tasks(false, true, n, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
}

void lb_op_linear_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w,
                      int64_t n, int64_t in, int64_t out, bool dx_add) {
    if (dx) /* dx[n, in] (+)= dy[n, out] · w[out, in] */
        gemm_tasks(false, false, n, in, out, 1.0f, dy, out, w, in, dx_add ? 1.0f : 0.0f, dx, in);
    if (dw) /* dw[out, in] += dy[n, out]ᵀ · x[n, in] */
        gemm_tasks(true, false, out, in, n, 1.0f, dy, out, x, in, 1.0f, dw, in);
}

/* ---- RMSNorm ---- */

void lb_op_rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, int64_t n,
                       int64_t dim, float eps) {
    lb_threads_get();
#pragma omp parallel for if (n * dim > PAR_WORK)
    for (int64_t t = 0; t < n; t++) {
        const float *xr = x + t * dim;
        float       *yr = y + t * dim;
        double       ss = 0.0;
        for (int64_t i = 0; i < dim; i++) ss += (double)xr[i] * xr[i];
        const float r = (float)(1.0 / sqrt(ss / (double)dim + (double)eps));
        rstd[t]       = r;
        for (int64_t i = 0; i < dim; i++) yr[i] = w[i] * (xr[i] * r);
    }
}

/* y_i = w_i x_i r with r = (mean(x²) + eps)^-1/2, so ∂r/∂x_j = -r³ x_j / dim and
 *   dx_j = r w_j dy_j - (r³ / dim) x_j Σ_i dy_i w_i x_i,   dw_i = Σ_rows dy_i x_i r. */
void lb_op_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w,
                       const float *rstd, int64_t n, int64_t dim) {
    lb_threads_get();
#pragma omp parallel for if (n * dim > PAR_WORK)
    for (int64_t t = 0; t < n; t++) {
        const float *xr = x + t * dim, *gr = dy + t * dim;
        float       *dr = dx + t * dim;
        double       dot = 0.0;
        for (int64_t i = 0; i < dim; i++) dot += (double)gr[i] * w[i] * xr[i];
        const double r = rstd[t];
        const float  c = (float)(r * r * r * dot / (double)dim), rf = rstd[t];
        for (int64_t i = 0; i < dim; i++) dr[i] += rf * w[i] * gr[i] - c * xr[i];
    }
    if (!dw) return;
    /* dw sums over all rows: tasks own COL_SPAN columns each, rows in order */
    const int64_t tasks = (dim + COL_SPAN - 1) / COL_SPAN;
#pragma omp parallel for if (tasks > 1 && n * dim > PAR_WORK)
    for (int64_t k = 0; k < tasks; k++) {
        const int64_t c0 = k * COL_SPAN, nc = min64(COL_SPAN, dim - c0);
        double        acc[COL_SPAN] = { 0 };
        for (int64_t t = 0; t < n; t++) {
            const float *xr = x + t * dim + c0, *gr = dy + t * dim + c0;
            const double r  = rstd[t];
            for (int64_t i = 0; i < nc; i++) acc[i] += (double)gr[i] * xr[i] * r;
        }
        for (int64_t i = 0; i < nc; i++) dw[c0 + i] += (float)acc[i];
    }
}

/* ---- RoPE ---- */

/* Rotates the adjacent pairs of each head by +angle (sign 1) or -angle (sign -1). */
static void rope_rotate(float *x, int64_t n, int32_t T, int32_t n_heads, int32_t D,
                        const float *cos_t, const float *sin_t, float sign) {
    const int64_t row = (int64_t)n_heads * D;
    lb_threads_get();
#pragma omp parallel for if (n * row > PAR_WORK)
    for (int64_t t = 0; t < n; t++) {
        const int64_t pos = t % T;
        const float  *c = cos_t + pos * (D / 2), *s = sin_t + pos * (D / 2);
        for (int32_t h = 0; h < n_heads; h++) {
            float *v = x + t * row + (int64_t)h * D;
            for (int32_t j = 0; j < D / 2; j++) {
                const float v0 = v[2 * j], v1 = v[2 * j + 1], sn = sign * s[j];
                v[2 * j]       = v0 * c[j] - v1 * sn;
                v[2 * j + 1]   = v0 * sn + v1 * c[j];
            }
        }
    }
}

void lb_op_rope_fwd(float *x, int64_t n, int32_t T, int32_t n_heads, int32_t D, const float *cos_t,
                    const float *sin_t) {
    rope_rotate(x, n, T, n_heads, D, cos_t, sin_t, 1.0f);
}

void lb_op_rope_bwd(float *dx, int64_t n, int32_t T, int32_t n_heads, int32_t D, const float *cos_t,
                    const float *sin_t) {
    rope_rotate(dx, n, T, n_heads, D, cos_t, sin_t, -1.0f);
}

/* ---- causal attention with grouped KV heads ---- */

/* One task per (sequence b, head h): head h reads KV head h / (H/KVH). */
/* the first key token t sees: 0, or past the window */
static int32_t att_first(const lb_op_att *a, int32_t t) {
    return a && a->window > 0 && t >= a->window ? t - a->window + 1 : 0;
}

static float att_scale(const lb_op_att *a, int32_t D) {
    return a && a->scale > 0 ? a->scale : 1.0f / sqrtf((float)D);
}

void lb_op_attention_fwd(float *o, float *p, const float *q, const float *k, const float *v,
                         int32_t B, int32_t T, int32_t H, int32_t KVH, int32_t D, const lb_op_att *a) {
    const int32_t G = H / KVH;
    const int64_t QS = (int64_t)H * D, KS = (int64_t)KVH * D, TT = (int64_t)T * T;
    const float   scale = att_scale(a, D), cap = a ? a->softcap : 0.0f;
    assert(H % KVH == 0);
    lb_threads_get();
#pragma omp parallel for schedule(dynamic) if (B * H > 1 && (int64_t)B * H * TT * D > PAR_WORK)
    for (int32_t task = 0; task < B * H; task++) {
        const int32_t b = task / H, h = task % H;
        const float  *qb = q + (int64_t)b * T * QS + (int64_t)h * D;
        const float  *kb = k + (int64_t)b * T * KS + (int64_t)(h / G) * D;
        const float  *vb = v + (int64_t)b * T * KS + (int64_t)(h / G) * D;
        float        *ob = o + (int64_t)b * T * QS + (int64_t)h * D;
        float        *pb = p + ((int64_t)b * H + h) * TT;
        /* scores = q kᵀ · scale (the whole square; the mask comes with the softmax) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, D, scale, qb, (blasint)QS, kb,
                    (blasint)KS, 0.0f, pb, T);
        for (int32_t t = 0; t < T; t++) { /* causal softmax: positions s0 .. t */
            float        *row = pb + (int64_t)t * T;
            const int32_t s0  = att_first(a, t);
            if (cap > 0)
                for (int32_t s = s0; s <= t; s++) row[s] = cap * tanhf(row[s] / cap);
            float mx = row[s0];
            for (int32_t s = s0 + 1; s <= t; s++) mx = row[s] > mx ? row[s] : mx;
            double sum = 0.0;
            for (int32_t s = s0; s <= t; s++) {
                row[s] = expf(row[s] - mx);
                sum += row[s];
            }
            const float inv = (float)(1.0 / sum);
            for (int32_t s = s0; s <= t; s++) row[s] *= inv;
            for (int32_t s = 0; s < s0; s++) row[s] = 0.0f;
            for (int32_t s = t + 1; s < T; s++) row[s] = 0.0f;
        }
        /* o = p · v */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, T, 1.0f, pb, T, vb, (blasint)KS,
                    0.0f, ob, (blasint)QS);
    }
}

/* Fills a task's gradients with NaN: the only way a void op can say its scratch could not be
 * allocated (the training loop's NaN check stops the run). */
static void fill_nan(float *x, int64_t rows, int64_t cols, int64_t ld) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) x[r * ld + c] = NAN;
}

/* One task per (sequence b, KV head), running the G = H/KVH query heads of the group, so
 * dk and dv of that KV head have a single writer. Per query head, with P the saved
 * probabilities:
 *   dV += Pᵀ dO;  dP = dO Vᵀ;  dS = P ⊙ (dP - rowsum(dP ⊙ P));
 *   dQ = dS K · scale;  dK += dSᵀ Q · scale
 * (the first head of a group writes dK and dV, the others add). */
void lb_op_attention_bwd(float *dq, float *dk, float *dv, const float *do_, const float *p,
                         const float *q, const float *k, const float *v, int32_t B, int32_t T,
                         int32_t H, int32_t KVH, int32_t D, const lb_op_att *a) {
    const int32_t G = H / KVH;
    const int64_t QS = (int64_t)H * D, KS = (int64_t)KVH * D, TT = (int64_t)T * T;
    const float   scale = att_scale(a, D), cap = a ? a->softcap : 0.0f;
    assert(H % KVH == 0);
    lb_threads_get();
#pragma omp parallel if (B * KVH > 1 && (int64_t)B * H * TT * D > PAR_WORK)
    {
        float *ds = malloc((size_t)TT * sizeof *ds); /* dP, then dS, of one head */
        float *sc = cap > 0 ? malloc((size_t)TT * sizeof *sc) : NULL; /* the capped scores */
#pragma omp for schedule(dynamic)
        for (int32_t task = 0; task < B * KVH; task++) {
            const int32_t b = task / KVH, kh = task % KVH;
            const int64_t kvo = (int64_t)b * T * KS + (int64_t)kh * D;
            const float  *kb = k + kvo, *vb = v + kvo;
            float        *dkb = dk + kvo, *dvb = dv + kvo;
            if (!ds || (cap > 0 && !sc)) {
                fill_nan(dkb, T, D, KS);
                fill_nan(dvb, T, D, KS);
                for (int32_t h = kh * G; h < (kh + 1) * G; h++)
                    fill_nan(dq + (int64_t)b * T * QS + (int64_t)h * D, T, D, QS);
                continue;
            }
            for (int32_t h = kh * G; h < (kh + 1) * G; h++) {
                const int64_t qo   = (int64_t)b * T * QS + (int64_t)h * D;
                const float  *pb   = p + ((int64_t)b * H + h) * TT;
                const float  *gob  = do_ + qo, *qb = q + qo;
                const float   beta = h == kh * G ? 0.0f : 1.0f;
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, T, 1.0f, pb, T, gob,
                            (blasint)QS, beta, dvb, (blasint)KS);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, D, 1.0f, gob,
                            (blasint)QS, vb, (blasint)KS, 0.0f, ds, T);
                if (cap > 0) /* the scores again, for the soft-cap's derivative */
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, D, scale, qb, (blasint)QS, kb,
                                (blasint)KS, 0.0f, sc, T);
                for (int32_t t = 0; t < T; t++) { /* softmax backward, row by row */
                    const float  *pr = pb + (int64_t)t * T;
                    float        *dr = ds + (int64_t)t * T;
                    const int32_t s0 = att_first(a, t);
                    double        dot = 0.0;
                    for (int32_t s = s0; s <= t; s++) dot += (double)pr[s] * dr[s];
                    const float c = (float)dot;
                    for (int32_t s = s0; s <= t; s++) dr[s] = pr[s] * (dr[s] - c);
                    for (int32_t s = s0; cap > 0 && s <= t; s++) {
                        const float th = tanhf(sc[(int64_t)t * T + s] / cap);
                        dr[s] *= 1.0f - th * th;
                    }
                    for (int32_t s = 0; s < s0; s++) dr[s] = 0.0f;
                    for (int32_t s = t + 1; s < T; s++) dr[s] = 0.0f;
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, T, scale, ds, T, kb,
                            (blasint)KS, 0.0f, dq + qo, (blasint)QS);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, T, scale, ds, T, qb,
                            (blasint)QS, beta, dkb, (blasint)KS);
            }
        }
        free(ds);
        free(sc);
    }
}

/* ---- SwiGLU ---- */

static float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

void lb_op_swiglu_fwd(float *h, const float *g, const float *u, int64_t n) {
    lb_threads_get();
#pragma omp parallel for if (n > PAR_WORK)
    for (int64_t i = 0; i < n; i++) h[i] = g[i] * sigmoid(g[i]) * u[i];
}

/* d silu(g)/dg = σ(g) (1 + g (1 - σ(g))). Each element is read before it is written, so the
 * gradients may take the place of g and u (or of dh). */
void lb_op_swiglu_bwd(float *dg, float *du, const float *dh, const float *g, const float *u, int64_t n) {
    lb_threads_get();
#pragma omp parallel for if (n > PAR_WORK)
    for (int64_t i = 0; i < n; i++) {
        const float gi = g[i], ui = u[i], gh = dh[i], s = sigmoid(gi);
        dg[i] = gh * ui * s * (1.0f + gi * (1.0f - s));
        du[i] = gh * gi * s;
    }
}

/* ---- GELU (tanh), biases, soft-capping ---- */

#define GELU_K 0.79788456080286535588f /* sqrt(2/pi) */

void lb_op_geglu_fwd(float *h, const float *g, const float *u, int64_t n) {
    lb_threads_get();
#pragma omp parallel for if (n > PAR_WORK)
    for (int64_t i = 0; i < n; i++) {
        const float x = g[i];
        h[i] = 0.5f * x * (1.0f + tanhf(GELU_K * x * (1.0f + 0.044715f * x * x))) * u[i];
    }
}

/* d gelu(x)/dx = 0.5 (1 + th) + 0.5 x (1 - th²) k (1 + 3·0.044715 x²), th = tanh(k (x + 0.044715 x³));
 * each element read before it is written, as swiglu's */
void lb_op_geglu_bwd(float *dg, float *du, const float *dh, const float *g, const float *u, int64_t n) {
    lb_threads_get();
#pragma omp parallel for if (n > PAR_WORK)
    for (int64_t i = 0; i < n; i++) {
        const float x = g[i], ui = u[i], gh = dh[i];
        const float th = tanhf(GELU_K * x * (1.0f + 0.044715f * x * x));
        const float d  = 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
        dg[i] = gh * ui * d;
        du[i] = gh * 0.5f * x * (1.0f + th);
    }
}

void lb_op_bias_fwd(float *y, const float *b, int64_t n, int64_t dim) {
    for (int64_t t = 0; t < n; t++)
        for (int64_t j = 0; j < dim; j++) y[t * dim + j] += b[j];
}

/* columns in tasks, rows summed in order: the same sums for any thread count */
void lb_op_bias_bwd(float *db, const float *dy, int64_t n, int64_t dim) {
    lb_threads_get();
#pragma omp parallel for if (n * dim > PAR_WORK)
    for (int64_t j = 0; j < dim; j++) {
        double s = 0;
        for (int64_t t = 0; t < n; t++) s += dy[t * dim + j];
        db[j] += (float)s;
    }
}

void lb_op_softcap_fwd(float *x, int64_t n, float c) {
    lb_threads_get();
#pragma omp parallel for if (n > PAR_WORK)
    for (int64_t i = 0; i < n; i++) x[i] = c * tanhf(x[i] / c);
}

void lb_op_softcap_bwd(float *dy, const float *y, int64_t n, float c) {
    lb_threads_get();
#pragma omp parallel for if (n > PAR_WORK)
    for (int64_t i = 0; i < n; i++) {
        const float th = y[i] / c;
        dy[i] *= 1.0f - th * th;
    }
}

/* ---- token embedding ---- */

void lb_op_embed_fwd(float *x, const float *emb, const int32_t *tokens, int64_t n, int64_t dim) {
    lb_threads_get();
#pragma omp parallel for if (n * dim > PAR_WORK)
    for (int64_t t = 0; t < n; t++) {
        assert(tokens[t] >= 0);
        memcpy(x + t * dim, emb + (int64_t)tokens[t] * dim, (size_t)dim * sizeof *x);
    }
}

/* Tokens repeat, so rows of demb have several writers: tasks own columns instead. */
void lb_op_embed_bwd(float *demb, const float *dx, const int32_t *tokens, int64_t n, int64_t dim) {
    const int64_t tasks = (dim + COL_SPAN - 1) / COL_SPAN;
    lb_threads_get();
#pragma omp parallel for if (tasks > 1 && n * dim > PAR_WORK)
    for (int64_t k = 0; k < tasks; k++) {
        const int64_t c0 = k * COL_SPAN, nc = min64(COL_SPAN, dim - c0);
        for (int64_t t = 0; t < n; t++) {
            float       *d = demb + (int64_t)tokens[t] * dim + c0;
            const float *g = dx + t * dim + c0;
            for (int64_t i = 0; i < nc; i++) d[i] += g[i];
        }
    }
}

/* ---- losses ---- */

static float row_max(const float *x, int32_t V) {
    float mx = x[0];
    for (int32_t i = 1; i < V; i++) mx = x[i] > mx ? x[i] : mx;
    return mx;
}

/* Rows are summed in RED_TASKS fixed partial sums, added in order at the end. Each row
 * takes one expf per logit: the exponentials are kept in dlogits, then scaled; when dlogits
 * is the logits buffer, each logit is read before its place is written. */
double lb_op_cross_entropy(float *dlogits, const float *logits, const int32_t *targets, int64_t n,
                           int32_t V, float scale, int64_t *count) {
    double        part[RED_TASKS] = { 0 };
    int64_t       cnt[RED_TASKS]  = { 0 };
    const int64_t span = (n + RED_TASKS - 1) / RED_TASKS;
    lb_threads_get();
#pragma omp parallel for schedule(dynamic) if (n * V > PAR_WORK)
    for (int64_t k = 0; k < RED_TASKS; k++) {
        for (int64_t t = k * span; t < min64(n, (k + 1) * span); t++) {
            const float  *x = logits + t * V;
            float        *d = dlogits ? dlogits + t * V : NULL;
            const int32_t y = targets[t];
            assert(y < V);
            if (y < 0) { /* ignored row */
                if (d) memset(d, 0, (size_t)V * sizeof *d);
                continue;
            }
            const float mx = row_max(x, V), xy = x[y];
            double      sum = 0.0;
            for (int32_t i = 0; i < V; i++) {
                const float e = expf(x[i] - mx);
                sum += e;
                if (d) d[i] = e;
            }
            part[k] += log(sum) - ((double)xy - mx); /* -log softmax[y] */
            cnt[k]++;
            if (!d) continue;
            const float f = (float)(scale / sum);
            for (int32_t i = 0; i < V; i++) d[i] *= f;
            d[y] -= scale;
        }
    }
    double  loss = 0.0;
    int64_t c    = 0;
    for (int64_t k = 0; k < RED_TASKS; k++) {
        loss += part[k];
        c += cnt[k];
    }
    if (count) *count = c;
    return loss;
}

/* With es = exp(s - ms), et = exp(te - mt) and their sums zs, zt:
 *   KL(t || s) = Σ_i pt_i (log pt_i - log ps_i) = Σ_i et_i ((te_i - mt) - (s_i - ms)) / zt
 *                - log zt + log zs,
 *   ∂KL/∂s_i   = es_i / zs - et_i / zt. */
double lb_op_kl_distill(float *dlogits, const float *logits, const float *teacher, int64_t n,
                        int32_t V, float scale) {
    double        part[RED_TASKS] = { 0 };
    const int64_t span = (n + RED_TASKS - 1) / RED_TASKS;
    lb_threads_get();
#pragma omp parallel for schedule(dynamic) if (n * V > PAR_WORK)
    for (int64_t k = 0; k < RED_TASKS; k++) {
        for (int64_t t = k * span; t < min64(n, (k + 1) * span); t++) {
            const float *s = logits + t * V, *te = teacher + t * V;
            float       *d  = dlogits ? dlogits + t * V : NULL;
            const float  ms = row_max(s, V), mt = row_max(te, V);
            double       zs = 0.0, zt = 0.0, acc = 0.0;
            for (int32_t i = 0; i < V; i++) {
                const float ls = s[i] - ms, lt = te[i] - mt, es = expf(ls), et = expf(lt);
                zs += es;
                zt += et;
                acc += (double)et * ((double)lt - ls);
                if (d) d[i] = es;
            }
            part[k] += acc / zt - log(zt) + log(zs);
            if (!d) continue;
            const float fs = (float)(scale / zs), ft = (float)(scale / zt);
            for (int32_t i = 0; i < V; i++) d[i] = d[i] * fs - expf(te[i] - mt) * ft;
        }
    }
    double loss = 0.0;
    for (int64_t k = 0; k < RED_TASKS; k++) loss += part[k];
    return loss;
}
