/* AWQ's scale and clipping searches on one group of linears (awq.h). Errors are measured
 * through H (the input's second moment): D = W - Wq, E = D H by one GEMM, error = sum D .* E
 * accumulated in f64. Quantization goes through the format's own quantizer (importance-aware
 * when importance is given), so every storage type works, GGUF blocks included. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "awq.h"
#include "core/fail.h"

#define ROWS 16 /* rows per task (BLAS runs single-threaded: OpenMP splits the rows) */

/* Q(Wsrc diag s) diag(1/s) into out (Ws, q: scratch of n_out*n floats, n_out rows' bytes);
 * whole-tensor types see all rows in one call */
static void quant_scaled(float *out, const float *Wsrc, int64_t n_out, int64_t n, lb_type t,
                         const float *imp, const float *s, float *Ws, uint8_t *q) {
    const lb_type_traits *tr    = lb_type_get_traits(t);
    const size_t          rs    = lb_row_size(t, n);
    const int64_t         chunk = tr->whole_tensor ? n_out : ROWS;
    for (int64_t r = 0; r < n_out; r++)
        for (int64_t j = 0; j < n; j++) Ws[r * n + j] = Wsrc[r * n + j] * (s ? s[j] : 1.0f);
#pragma omp parallel for schedule(dynamic) if (n_out * n >= (1 << 16) && chunk < n_out)
    for (int64_t r0 = 0; r0 < n_out; r0 += chunk) {
        const int64_t nr = n_out - r0 < chunk ? n_out - r0 : chunk;
        lb_quantize_rows(t, q + (size_t)r0 * rs, Ws + r0 * n, nr, n, imp);
        for (int64_t r = r0; r < r0 + nr; r++) {
            tr->to_float(out + r * n, q + (size_t)r * rs, n);
            if (s)
                for (int64_t j = 0; j < n; j++) out[r * n + j] /= s[j];
        }
    }
}

/* sum over rows of a H a^T for A [n_out, n] (E: scratch [n_out, n]); per-row sums added
 * in row order, so the result does not depend on the threads */
static double quad_form(const float *A, int64_t n_out, int64_t n, const float *H, float *E) {
#pragma omp parallel for schedule(dynamic) if (n_out * n * n >= (1 << 22))
    for (int64_t r0 = 0; r0 < n_out; r0 += ROWS) {
        const int64_t nr = n_out - r0 < ROWS ? n_out - r0 : ROWS;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)nr, (blasint)n, (blasint)n,
                    1.0f, A + r0 * n, (blasint)n, H, (blasint)n, 0.0f, E + r0 * n, (blasint)n);
        for (int64_t r = r0; r < r0 + nr; r++) { /* row r's sum into E[r * n] */
            double e = 0;
            for (int64_t j = 0; j < n; j++) e += (double)A[r * n + j] * E[r * n + j];
            E[r * n] = (float)e;
        }
    }
    double e = 0;
    for (int64_t r = 0; r < n_out; r++) e += E[r * n];
    return e;
}

double lb_awq_error(const float *W, const float *Wsrc, int64_t n_out, int64_t n, lb_type t,
                    const float *importance, const float *s, const float *H, double *ref) {
    const size_t nn = (size_t)(n_out * n);
    float       *Ws = malloc(nn * sizeof *Ws), *D = malloc(nn * sizeof *D);
    float       *E = malloc(nn * sizeof *E), *imp = importance ? malloc((size_t)n * sizeof *imp) : NULL;
    uint8_t     *q = malloc(lb_row_size(t, n) * (size_t)n_out);
    double       e = NAN;
    if (Ws && D && E && q && (!importance || imp)) {
        if (imp)
            for (int64_t j = 0; j < n; j++) imp[j] = importance[j] / (s ? s[j] * s[j] : 1.0f);
        quant_scaled(D, Wsrc ? Wsrc : W, n_out, n, t, imp, s, Ws, q);
        for (size_t i = 0; i < nn; i++) D[i] = W[i] - D[i];
        e = quad_form(D, n_out, n, H, E);
        if (ref) *ref = quad_form(W, n_out, n, H, E);
    }
    free(Ws);
    free(D);
    free(E);
    free(imp);
    free(q);
    return e;
}

lb_status lb_awq_search_scales(const lb_awq_linear *ls, int nl, int64_t n, const float *mean_abs,
                               const float *H, float *s, float *alpha, double *e_best,
                               double *e_rtn, lb_error *err) {
    float *cand = malloc((size_t)n * sizeof *cand);
    LB_RETURN_IF(!cand, err, LB_ERR_NOMEM, "awq: out of memory");
    double best = INFINITY;
    *alpha      = 0;
    for (int g = 0; g < LB_AWQ_GRID; g++) {
        const double a  = (double)g / (LB_AWQ_GRID - 1);
        float        lo = FLT_MAX, hi = 0;
        for (int64_t j = 0; j < n; j++) {
            if (!(mean_abs[j] > 0)) continue;
            cand[j] = fmaxf((float)pow(mean_abs[j], a), 1e-4f);
            lo = fminf(lo, cand[j]), hi = fmaxf(hi, cand[j]);
        }
        const float norm = hi > 0 ? sqrtf(lo * hi) : 1.0f;
        for (int64_t j = 0; j < n; j++) cand[j] = mean_abs[j] > 0 ? cand[j] / norm : 1.0f;
        double e = 0;
        for (int k = 0; k < nl; k++)
            e += lb_awq_error(ls[k].W, NULL, ls[k].n_out, n, ls[k].type, ls[k].importance, cand, H, NULL);
        if (isnan(e)) {
            free(cand);
            return lb_fail(err, LB_ERR_NOMEM, "awq: out of memory");
        }
        if (g == 0) *e_rtn = e;
        if (e < best) {
            best   = e;
            *alpha = (float)a;
            memcpy(s, cand, (size_t)n * sizeof *s);
        }
    }
    *e_best = best;
    free(cand);
    return LB_OK;
}

lb_status lb_awq_clip(float *W, int64_t n_out, int64_t n, lb_type t, const float *importance,
                      const float *H, double *mean_ratio, lb_error *err) {
    const lb_type_traits *tr = lb_type_get_traits(t);
    *mean_ratio              = 1.0;
    if (!tr || !tr->is_quantized || tr->whole_tensor) return LB_OK;
    const int64_t bs = tr->block_size > 1 ? tr->block_size : n, nb = n / bs;
    const size_t  qb = lb_row_size(t, bs);
    double        sum_ratio = 0;
    bool          oom       = false;
#pragma omp parallel reduction(+ : sum_ratio) reduction(|| : oom)
    {
        float   *blk = malloc((size_t)bs * 3 * sizeof *blk), *deq = blk ? blk + bs : NULL;
        float   *d   = blk ? blk + 2 * bs : NULL;
        uint8_t *q   = malloc(qb);
        if (!blk || !q) oom = true;
#pragma omp for schedule(dynamic, 4)
        for (int64_t task = 0; task < n_out * nb; task++) {
            if (!blk || !q) continue;
            const int64_t r = task / nb, b = task % nb;
            float        *w = W + r * n + b * bs;
            const float  *Hb = H + b * bs * n + b * bs; /* the block's diagonal block, stride n */
            const float  *imp = importance ? importance + b * bs : NULL;
            float         amax = 0;
            for (int64_t j = 0; j < bs; j++) amax = fmaxf(amax, fabsf(w[j]));
            double best = INFINITY, best_r = 1.0;
            for (int c = 0; c < LB_AWQ_CLIP_GRID && amax > 0; c++) {
                const float ratio = 1.0f - 0.5f * (float)c / LB_AWQ_CLIP_GRID, lim = amax * ratio;
                for (int64_t j = 0; j < bs; j++) blk[j] = fminf(fmaxf(w[j], -lim), lim);
                lb_quantize_rows(t, q, blk, 1, bs, imp);
                tr->to_float(deq, q, bs);
                for (int64_t j = 0; j < bs; j++) d[j] = w[j] - deq[j];
                double e = 0;
                for (int64_t i = 0; i < bs; i++) {
                    double hi = 0;
                    for (int64_t j = 0; j < bs; j++) hi += (double)Hb[i * n + j] * d[j];
                    e += d[i] * hi;
                }
                if (e < best) best = e, best_r = ratio;
            }
            const float lim = amax * (float)best_r;
            for (int64_t j = 0; j < bs && best_r < 1.0; j++) w[j] = fminf(fmaxf(w[j], -lim), lim);
            sum_ratio += best_r;
        }
        free(blk);
        free(q);
    }
    LB_RETURN_IF(oom, err, LB_ERR_NOMEM, "awq: out of memory");
    *mean_ratio = sum_ratio / (double)(n_out * nb);
    return LB_OK;
}
