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
#include "core/dist.h"
#include "core/fail.h"

#define ROWS 64 /* rows per task (BLAS runs single-threaded: OpenMP splits the rows) */

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

/* the candidate scales of grid point g: mean |x|^alpha, normalized by the geometric middle of
 * their range */
static double candidate(int g, const float *mean_abs, int64_t n, float *cand) {
    const double a  = (double)g / (LB_AWQ_GRID - 1);
    float        lo = FLT_MAX, hi = 0;
    for (int64_t j = 0; j < n; j++) {
        if (!(mean_abs[j] > 0)) continue;
        cand[j] = fmaxf((float)pow(mean_abs[j], a), 1e-4f);
        lo = fminf(lo, cand[j]), hi = fmaxf(hi, cand[j]);
    }
    const float norm = hi > 0 ? sqrtf(lo * hi) : 1.0f;
    for (int64_t j = 0; j < n; j++) cand[j] = mean_abs[j] > 0 ? cand[j] / norm : 1.0f;
    return a;
}

/* Under MPI the grid points go round the ranks (point g on rank g mod R) and every rank gets
 * every point's error: the choice is one process's. */
lb_status lb_awq_search_scales(const lb_awq_linear *ls, int nl, int64_t n, const float *mean_abs,
                               const float *H, float *s, float *alpha, double *e_best,
                               double *e_rtn, lb_error *err) {
    const int R = lb_dist_size(), me = lb_dist_rank();
    float    *cand = malloc((size_t)n * sizeof *cand);
    double   *mine = calloc(LB_AWQ_GRID, sizeof *mine), *all = malloc((size_t)R * LB_AWQ_GRID * sizeof *all);
    lb_status st   = LB_OK;
    LB_GOTO_IF(!cand || !mine || !all, err, LB_ERR_NOMEM, "awq: out of memory");
    for (int g = me; g < LB_AWQ_GRID; g += R) {
        candidate(g, mean_abs, n, cand);
        for (int k = 0; k < nl; k++)
            mine[g] += lb_awq_error(ls[k].W, NULL, ls[k].n_out, n, ls[k].type, ls[k].importance, cand, H, NULL);
        if (isnan(mine[g])) st = lb_fail(err, LB_ERR_NOMEM, "awq: out of memory");
    }
    LB_TRY(lb_dist_agree(st, err));
    LB_TRY(lb_dist_allgather(mine, LB_AWQ_GRID * sizeof *mine, all, err));
    double best = INFINITY;
    int    g_best = 0;
    for (int g = 0; g < LB_AWQ_GRID; g++) {
        const double e = all[(size_t)(g % R) * LB_AWQ_GRID + (size_t)g];
        if (g == 0) *e_rtn = e;
        if (e < best) best = e, g_best = g;
    }
    *alpha  = (float)candidate(g_best, mean_abs, n, s);
    *e_best = best;
fail:
    free(cand);
    free(mine);
    free(all);
    return st;
}

/* the rounding error w - Q(clamp(w, +-lim)) of one block into e (deq, q: scratch) */
static void clipped_error(const lb_type_traits *tr, lb_type t, const float *w, int64_t bs, float lim,
                          const float *imp, float *e, float *deq, uint8_t *q) {
    for (int64_t j = 0; j < bs; j++) deq[j] = fminf(fmaxf(w[j], -lim), lim);
    lb_quantize_rows(t, q, deq, 1, bs, imp);
    tr->to_float(deq, q, bs);
    for (int64_t j = 0; j < bs; j++) e[j] = w[j] - deq[j];
}

lb_status lb_awq_clip(float *W, int64_t n_out, int64_t n, lb_type t, const float *importance,
                      const float *H, double *mean_ratio, lb_error *err) {
    const lb_type_traits *tr = lb_type_get_traits(t);
    *mean_ratio              = 1.0;
    if (!tr || !tr->is_quantized || tr->whole_tensor) return LB_OK;
    const int64_t bs = tr->block_size > 1 ? tr->block_size : n, nb = n / bs;
    enum { NC = LB_AWQ_CLIP_GRID - 1 }; /* the candidates r < 1 */
    double sum_ratio = 0;
    bool   oom       = false;
#pragma omp parallel reduction(+ : sum_ratio) reduction(|| : oom)
    {
        /* per thread: the row's error d and g = H d; each candidate's error (e) and its change
         * from d (delta, then H_bb delta in hd); deq scratch */
        float   *d = malloc((size_t)(2 * n + (3 * NC + 1) * bs) * sizeof *d), *g = d ? d + n : NULL;
        float   *e = d ? g + n : NULL, *delta = d ? e + NC * bs : NULL, *hd = d ? delta + NC * bs : NULL;
        float   *deq = d ? hd + NC * bs : NULL;
        uint8_t *q   = malloc(lb_row_size(t, bs));
        if (!d || !q) oom = true;
#pragma omp for schedule(dynamic, 1)
        for (int64_t r = 0; r < n_out; r++) {
            if (!d || !q) continue;
            float *w = W + r * n;
            for (int64_t b = 0; b < nb; b++)
                clipped_error(tr, t, w + b * bs, bs, INFINITY, importance ? importance + b * bs : NULL,
                              d + b * bs, deq, q);
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)n, (blasint)n, 1.0f, H, (blasint)n, d, 1,
                        0.0f, g, 1);
            for (int64_t b = 0; b < nb; b++) {
                float       *wb = w + b * bs, *db = d + b * bs;
                const float *Hb = H + b * bs * n + b * bs, *imp = importance ? importance + b * bs : NULL;
                float        amax = 0;
                for (int64_t j = 0; j < bs; j++) amax = fmaxf(amax, fabsf(wb[j]));
                double best = 0, best_r = 1.0; /* the change of the row's error; r = 1 changes nothing */
                int    c_best = -1;
                if (amax > 0) { /* every candidate's delta, then H_bb delta of them all in one GEMM */
                    for (int c = 0; c < NC; c++) {
                        const float ratio = 1.0f - 0.5f * (float)(c + 1) / LB_AWQ_CLIP_GRID;
                        clipped_error(tr, t, wb, bs, amax * ratio, imp, e + c * bs, deq, q);
                        for (int64_t i = 0; i < bs; i++) delta[c * bs + i] = e[c * bs + i] - db[i];
                    }
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, NC, (blasint)bs, (blasint)bs, 1.0f, delta,
                                (blasint)bs, Hb, (blasint)n, 0.0f, hd, (blasint)bs); /* (H symmetric) */
                }
                for (int c = 0; c < NC && amax > 0; c++) {
                    double de = 0; /* 2 delta . g_b + delta H_bb delta */
                    for (int64_t i = 0; i < bs; i++)
                        de += (double)delta[c * bs + i] * (2.0 * g[b * bs + i] + hd[c * bs + i]);
                    if (de < best) best = de, best_r = 1.0f - 0.5f * (float)(c + 1) / LB_AWQ_CLIP_GRID, c_best = c;
                }
                if (c_best >= 0) { /* clamp the block, update d and g = H d */
                    const float lim = amax * (1.0f - 0.5f * (float)(c_best + 1) / LB_AWQ_CLIP_GRID);
                    for (int64_t j = 0; j < bs; j++) {
                        db[j] = e[c_best * bs + j];
                        wb[j] = fminf(fmaxf(wb[j], -lim), lim);
                    }
                    cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)n, (blasint)bs, 1.0f, H + b * bs,
                                (blasint)n, delta + c_best * bs, 1, 1.0f, g, 1);
                }
                sum_ratio += best_r;
            }
        }
        free(d);
        free(q);
    }
    LB_RETURN_IF(oom, err, LB_ERR_NOMEM, "awq: out of memory");
    *mean_ratio = sum_ratio / (double)(n_out * nb);
    return LB_OK;
}
