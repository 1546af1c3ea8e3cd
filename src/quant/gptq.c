/* GPTQ: quantize a weight matrix column by column, each rounding error compensated on the
 * columns still to come, using the inverse Hessian of the layer's input (Frantar et al.,
 * "GPTQ", 2023; the lazy-batch and Cholesky formulation of the paper's Algorithm 1).
 *
 *   H' = H + damp * mean(diag H) * I, dead columns (H_ii = 0) zeroed;
 *   U  = cholesky(H'^-1) (upper: H'^-1 = U^T U);
 *   for each column i (in act order or natural order):
 *       q_i = round(w_i) onto the block's grid;  e = (w_i - q_i) / U_ii;
 *       (a block's scales are fixed by the format's quantizer at its first column, from
 *       its weights as they are then, clipped by --range if asked; for row-scaled types
 *       the block is the row, fixed before the first column)
 *   the i-quants' codewords cover dim = 8 (or 4) columns: at a group's first column each
 *   row's codeword is chosen among those near its current weights w_G (lb_vgrid_ops) to
 *   minimize the error GPTQ will have to carry, || U_GG^-T (w_G - c) ||^2 (U_GG: the group's
 *   diagonal block of U; the block form of the per-column e = (w_i - q_i) / U_ii, as in
 *   GPTVQ and QuIP#'s block LDLQ); then its columns go through the loop as fixed values.
 *       w_j -= e * U_ij for the columns j after i (within the 128-column batch now, the
 *       rest with one GEMM when the batch ends).
 * Works in f64 for the factorizations, f32 for the weight updates (as the reference does). */
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "chol.h"
#include "core/fail.h"
#include "formats/grid.h"
#include "lowbit/core.h"
#include "lowbit/quant.h"

/* The damped Hessian of one input, factorized once for every matrix that reads it: GPTQ's
 * U and each refit's solves (q, k and v; gate and up; as many factorizations as damping and
 * column orders among them, usually one). H' = H, dead columns (H_ii <= 0) at 1, plus
 * lambda I (lambda = damp * mean(diag), the dead at 1; the damping grows tenfold until H' is
 * positive definite). With P the processing order and J the reversal (J_ab = 1 when
 * a + b = n - 1), J P^T H' P J = L L^T gives H'^-1 in that order as U^T U with U = J L^-1 J:
 * one Cholesky and one triangular inverse (chol.c: the same bytes on any number of threads;
 * half the work of LAPACK's potrf, potri, potrf), and the refit solves H' x = b by L. */
struct lb_gptq_factor {
    int64_t  n;
    double   damp, lambda; /* the damping asked for; lambda as made (after any growth) */
    bool     act_order;
    int64_t *perm;         /* the processing order: column perm[k] k-th */
    double  *diag;         /* diag H: a column is dead where it is <= 0 */
    double  *L;            /* lower, row-major */
    float   *U;            /* upper, f32, in the processing order; made by the first GPTQ */
    double  *Mt;           /* the refit's matrix, transposed (lb_gptq_factor_refit_matrix), or NULL */
};

static int cmp_desc(const void *a, const void *b, void *ctx) {
    const double *d = ctx;
    const double  x = d[*(const int64_t *)a], y = d[*(const int64_t *)b];
    if (x != y) return x > y ? -1 : 1;
    return *(const int64_t *)a < *(const int64_t *)b ? -1 : 1;
}

lb_status lb_gptq_factor_create(lb_gptq_factor **out, const double *H, int64_t n, double damp, bool act_order,
                                lb_error *err) {
    lb_gptq_factor *f = calloc(1, sizeof *f);
    lb_status       st = LB_OK;
    *out               = NULL;
    LB_GOTO_IF(!f, err, LB_ERR_NOMEM, "out of memory");
    *f = (lb_gptq_factor){ .n = n, .damp = damp, .act_order = act_order };
    f->perm = malloc((size_t)n * sizeof *f->perm);
    f->diag = malloc((size_t)n * sizeof *f->diag);
    f->L    = malloc((size_t)(n * n) * sizeof *f->L);
    double *diag = f->diag;
    LB_GOTO_IF(!f->perm || !f->diag || !f->L, err, LB_ERR_NOMEM, "gptq: out of memory for a %lld x %lld Hessian", (long long)n,
               (long long)n);
    double mean = 0; /* dead columns (no signal) at 1 */
    for (int64_t i = 0; i < n; i++) {
        f->perm[i] = i;
        diag[i]    = H[i * n + i];
        mean += diag[i] > 0 ? diag[i] : 1;
    }
    mean /= (double)n;
    if (act_order) qsort_r(f->perm, (size_t)n, sizeof *f->perm, cmp_desc, diag);
    int ok = 0;
    for (int attempt = 0; attempt < 8 && !ok; attempt++, damp *= 10) {
        double *A = f->L;
        for (int64_t a = 0; a < n; a++) /* H permuted as the columns are processed, then reversed */
            for (int64_t b = 0; b <= a; b++) A[a * n + b] = H[f->perm[n - 1 - a] * n + f->perm[n - 1 - b]];
        for (int64_t i = 0; i < n; i++) {
            if (A[i * n + i] <= 0) A[i * n + i] = 1;
            A[i * n + i] += damp * mean;
        }
        ok        = lb_chol_lower(A, n) == 0;
        f->lambda = damp * mean;
    }
    LB_GOTO_IF(!ok, err, LB_ERR_CORRUPT, "gptq: the Hessian stays singular even with damping");
    *out = f;
    f    = NULL;
fail:
    lb_gptq_factor_free(f);
    return st;
}

void lb_gptq_factor_free(lb_gptq_factor *f) {
    if (!f) return;
    free(f->perm);
    free(f->diag);
    free(f->L);
    free(f->U);
    free(f->Mt);
    free(f);
}

bool lb_gptq_factor_fits(const lb_gptq_factor *f, double damp, bool act_order) {
    return f && f->damp == damp && f->act_order == act_order;
}

/* U from L, once */
static lb_status factor_u(lb_gptq_factor *f, lb_error *err) {
    if (f->U) return LB_OK;
    f->U = malloc((size_t)(f->n * f->n) * sizeof *f->U);
    LB_RETURN_IF(!f->U, err, LB_ERR_NOMEM, "gptq: out of memory for a %lld x %lld factor", (long long)f->n,
                 (long long)f->n);
    lb_tri_inverse_lower_rev(f->L, f->n, f->U);
    free(f->L); /* the refits come before the first GPTQ (lb_gptq_retarget_f) */
    free(f->Mt);
    f->L = NULL, f->Mt = NULL;
    return LB_OK;
}

/* Per group of dim columns (processing order): L = U_GG^-T, lower triangular, dim x dim */
static void group_metrics(const float *U, int64_t n, int32_t dim, float *L) {
    for (int64_t k = 0; k + dim <= n; k += dim) {
        float *l = L + (k / dim) * dim * dim;
        memset(l, 0, (size_t)(dim * dim) * sizeof *l);
        /* solve U_GG^T l_c = e_c column by column (forward substitution; U_GG^T is lower) */
        for (int32_t c = 0; c < dim; c++)
            for (int32_t a = c; a < dim; a++) {
                double s = a == c ? 1.0 : 0.0;
                for (int32_t b = c; b < a; b++) s -= (double)U[(k + b) * n + k + a] * l[b * dim + c];
                l[a * dim + c] = (float)(s / U[(k + a) * n + k + a]);
            }
    }
}

/* The codeword of group g (dim columns from w) of one row's block qb that minimizes
 * || L (w - c) ||^2; stored, and its values into out. */
static void choose_codeword(const lb_vgrid_ops *vg, void *qb, int32_t g, const float *w, const float *L,
                            float *out) {
    float    vals[LB_VGRID_MAX * 8], y[8];
    uint32_t codes[LB_VGRID_MAX];
    const int32_t dim = vg->dim, n = vg->candidates(qb, g, w, true, vals, codes);
    for (int32_t a = 0; a < dim; a++) {
        float s = 0;
        for (int32_t b = 0; b <= a; b++) s += L[a * dim + b] * w[b];
        y[a] = s;
    }
    int32_t best = 0;
    float   best_d = INFINITY;
    for (int32_t c = 0; c < n; c++) {
        const float *v = vals + c * dim;
        float        d = 0;
        for (int32_t a = 0; a < dim; a++) {
            float s = 0;
            for (int32_t b = 0; b <= a; b++) s += L[a * dim + b] * v[b];
            d += (y[a] - s) * (y[a] - s);
        }
        if (d < best_d) best_d = d, best = c;
    }
    vg->set(qb, g, codes[best]);
    memcpy(out, vals + best * dim, (size_t)dim * sizeof *out);
}

/* At the first column of block scale s: its code, among all, whose nearest codewords fit the
 * current weights w (its sub values) best, each group's error measured as choose_codeword
 * measures it (Lm: the groups' metrics), the groups taken apart (codes within 3 of the stored
 * one only: pure IQ2_XXS on the testbed 0.0568 against 0.0545) */
static void refit_scale(const lb_vgrid_ops *vg, void *qb, int32_t s, const float *w, const float *Lm) {
    float    vals[LB_VGRID_MAX * 8];
    uint32_t codes[LB_VGRID_MAX];
    int32_t best = vg->get_scale(qb, s);
    double  best_e = INFINITY;
    for (int32_t l = 0; l < vg->n_scales; l++) {
        vg->set_scale(qb, s, l);
        double e = 0;
        for (int32_t g = 0; g < vg->sub / vg->dim; g++) {
            const float *x = w + g * vg->dim;
            const int32_t n = vg->candidates(qb, s * (vg->sub / vg->dim) + g, x, false, vals, codes);
            float         emin = INFINITY;
            const float  *L = Lm + g * vg->dim * vg->dim;
            for (int32_t c = 0; c < n; c++) {
                float d = 0;
                for (int32_t a = 0; a < vg->dim; a++) {
                    float t = 0;
                    for (int32_t b = 0; b <= a; b++) t += L[a * vg->dim + b] * (x[b] - vals[c * vg->dim + b]);
                    d += t * t;
                }
                emin = d < emin ? d : emin;
            }
            e += emin;
        }
        if (e < best_e) best_e = e, best = l;
    }
    vg->set_scale(qb, s, best);
}

/* what fixing a block's scales needs */
typedef struct {
    lb_type               t;
    const lb_type_traits *tr;
    bool                  grid;
    int64_t               n_in, bs;
    size_t                rs, bb;
    const int64_t        *pos;
    const lb_range       *range;
    const float          *Wp, *importance;
    float                *blk, *Qp;
    uint8_t              *q, *qblk;
} fix_job;

/* Fix block b of rows r0 .. r0+nr-1 from their current weights with the format's own
 * quantizer, all nr rows in one call (a per-tensor type sees the whole tensor); without grid
 * access the block's values are decided too (into Qp). Rows touch only their own scratch. */
static void fix_block(const fix_job *f, int64_t r0, int64_t nr, int64_t b) {
    const int64_t bs = f->bs, n_in = f->n_in;
    float        *x = f->blk + r0 * bs;
    for (int64_t r = 0; r < nr; r++)
        for (int64_t jj = 0; jj < bs; jj++) x[r * bs + jj] = f->Wp[(r0 + r) * n_in + f->pos[b * bs + jj]];
    uint8_t     *qx  = f->qblk + (size_t)r0 * f->bb;
    const float *imp = f->importance ? f->importance + b * bs : NULL;
    lb_range_apply(x, nr, bs, f->t, f->range, imp); /* the scales from the clipped block */
    lb_quantize_rows(f->t, qx, x, nr, bs, imp);
    for (int64_t r = r0; r < r0 + nr; r++) {
        uint8_t *qb = f->q + (size_t)r * f->rs + (size_t)b * f->bb;
        memcpy(qb, f->qblk + (size_t)r * f->bb, f->bb);
        if (!f->grid) {
            float *y = f->blk + r * bs;
            f->tr->to_float(y, qb, bs);
            for (int64_t jj = 0; jj < bs; jj++) f->Qp[r * n_in + f->pos[b * bs + jj]] = y[jj];
        }
    }
}

double lb_gptq_damp(const lb_gptq_params *p, lb_type t) {
    return p->damp > 0 ? p->damp : lb_type_vgrid(t) ? 0.05 : 0.01;
}

#define GPTQ_GEMM_COLS 256 /* columns per trailing-update GEMM: fixed, so results do not
                            * depend on the thread count */

lb_status lb_gptq_quantize_f(float *W, int64_t n_out, lb_gptq_factor *f, lb_type t, const lb_gptq_params *p,
                             const float *importance, void *q, lb_error *err) {
    const int64_t         n_in = f->n;
    const lb_type_traits *tr   = lb_type_get_traits(t);
    const lb_grid_ops    *grid = lb_type_grid(t);
    const lb_vgrid_ops   *vg   = grid ? NULL : lb_type_vgrid(t);
    /* row-scaled types (a scale per row or per tensor): the block is the whole row */
    const bool rowwise = tr && tr->row_size != NULL;
    LB_RETURN_IF(!tr || !tr->is_quantized || (!rowwise && tr->block_size < 2), err, LB_ERR_UNSUPPORTED,
                 "gptq: type %s has no blocks to fix scales on", lb_type_name(t));
    LB_RETURN_IF(!rowwise && n_in % tr->block_size != 0, err, LB_ERR_SHAPE,
                 "gptq: rows of %lld do not divide into %s blocks", (long long)n_in, tr->name);
    LB_RETURN_IF(!lb_gptq_factor_fits(f, lb_gptq_damp(p, t), p->act_order && grid != NULL), err, LB_ERR_PARAM,
                 "gptq: the factor was made with another damping or column order");
    LB_TRY_RET(factor_u(f, err));
    /* the batch; for the vector grids a whole number of their scale blocks (32), so a group
     * and its block scale never straddle two batches */
    const int64_t bs = rowwise ? n_in : tr->block_size, nb = n_in / bs, B0 = p->block > 0 ? p->block : 128,
                  B  = vg ? (B0 + 31) / 32 * 32 : B0;
    const size_t  rs = lb_row_size(t, n_in), bb = rowwise ? rs : tr->type_size; /* bytes: row, block */
    const bool    act_order = f->act_order;
    const int64_t *perm = f->perm;
    const float  *U  = f->U;
    lb_status     st = LB_OK;
    /* columns in processing order: W itself (updated in place, it ends as the stored values)
     * unless act_order permutes them */
    float        *Wp = act_order ? malloc((size_t)(n_out * n_in) * sizeof *Wp) : W;
    float        *Qp = grid || vg ? NULL : malloc((size_t)(n_out * n_in) * sizeof *Qp); /* no grid: decided values */
    float        *Lg = vg ? malloc((size_t)(n_in * vg->dim) * sizeof *Lg) : NULL; /* group metrics */
    float        *E  = malloc((size_t)(n_out * B) * sizeof *E);
    int64_t      *pos = malloc((size_t)n_in * sizeof *pos);
    bool         *ready = calloc((size_t)nb, 1);     /* block reached */
    bool         *first = malloc((size_t)n_in);      /* column k is its block's first */
    float        *blk   = malloc((size_t)(n_out * bs) * sizeof *blk); /* one block of every row */
    uint8_t      *qblk  = malloc((size_t)n_out * bb);
    LB_GOTO_IF(!Wp || (!grid && !vg && !Qp) || (vg && !Lg) || !E || !pos || !ready || !first || !blk || !qblk, err,
               LB_ERR_NOMEM, "gptq: out of memory");
    for (int64_t k = 0; k < n_in; k++) {
        pos[perm[k]] = k;
        first[k]     = !ready[perm[k] / bs];
        ready[perm[k] / bs] = true;
    }
    /* permuted W; dead columns (no signal): zero weights (and a unit diagonal in H) */
    for (int64_t k = 0; k < n_in; k++) {
        const bool dead = f->diag[perm[k]] <= 0;
        for (int64_t r = 0; r < n_out && (dead || Wp != W); r++) Wp[r * n_in + k] = dead ? 0.0f : W[r * n_in + perm[k]];
    }

    if (vg) group_metrics(U, n_in, vg->dim, Lg);
    const fix_job fj = { t, tr, grid || vg, n_in, bs, rs, bb, pos, &p->range, Wp, importance, blk, Qp, q, qblk };
    if (tr->whole_tensor) { /* one block (the row) whose scale comes from every row: fixed now,
                             * before the first column, from the weights as they are */
        fix_block(&fj, 0, n_out, 0);
        first[0] = false;
    }
    for (int64_t i1 = 0; i1 < n_in; i1 += B) {
        const int64_t i2 = i1 + B < n_in ? i1 + B : n_in;
        /* rows are independent: each goes through the batch's columns on its own */
#pragma omp parallel for schedule(static) if (n_out * (i2 - i1) * (i2 - i1) >= (1 << 18))
        for (int64_t r = 0; r < n_out; r++) {
            float *w = Wp + r * n_in, *er = E + r * B, cw[8];
            for (int64_t k = i1; k < i2; k++) {
                const int64_t c = perm[k], b = c / bs, j = c % bs;
                if (first[k]) fix_block(&fj, r, 1, b);
                uint8_t    *qb = (uint8_t *)q + (size_t)r * rs + (size_t)b * bb;
                const float wk = w[k];
                if (vg && j % vg->sub == 0) refit_scale(vg, qb, (int32_t)(j / vg->sub), w + k, Lg + k * vg->dim);
                if (vg && j % vg->dim == 0)
                    choose_codeword(vg, qb, (int32_t)(j / vg->dim), w + k, Lg + k * vg->dim, cw);
                const float qv = grid ? lb_grid_round(grid, qb, (int32_t)j, wk)
                               : vg   ? cw[j % vg->dim]
                                      : Qp[r * n_in + k];
                const float e  = (wk - qv) / U[k * n_in + k], *u = U + k * n_in;
                er[k - i1]     = e;
#pragma omp simd
                for (int64_t l = k + 1; l < i2; l++) w[l] -= e * u[l];
            }
        }
        /* W[:, i2:] -= E · U[i1:i2, i2:], in tiles of rows and columns */
        const int64_t n_rt = (n_out + LB_GPTQ_ROWS - 1) / LB_GPTQ_ROWS, n_ct = (n_in - i2 + GPTQ_GEMM_COLS - 1) / GPTQ_GEMM_COLS;
#pragma omp parallel for schedule(dynamic, 1) if (n_out * (n_in - i2) >= (1 << 16))
        for (int64_t tile = 0; tile < n_rt * n_ct; tile++) {
            const int64_t r0 = tile / n_ct * LB_GPTQ_ROWS, c0 = i2 + tile % n_ct * GPTQ_GEMM_COLS;
            const int64_t nr = n_out - r0 < LB_GPTQ_ROWS ? n_out - r0 : LB_GPTQ_ROWS;
            const int64_t nc = n_in - c0 < GPTQ_GEMM_COLS ? n_in - c0 : GPTQ_GEMM_COLS;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)nr, (blasint)nc, (blasint)(i2 - i1), -1.0f,
                        E + r0 * B, (blasint)B, U + i1 * n_in + c0, (blasint)n_in, 1.0f, Wp + r0 * n_in + c0,
                        (blasint)n_in);
        }
    }
    /* the stored rows decide: W gets exactly what the file holds */
    for (int64_t r = 0; r < n_out; r++) tr->to_float(W + r * n_in, (uint8_t *)q + (size_t)r * rs, n_in);
fail:
    if (Wp != W) free(Wp);
    free(Qp);
    free(Lg);
    free(E);
    free(pos);
    free(ready);
    free(first);
    free(blk);
    free(qblk);
    return st;
}

lb_status lb_gptq_quantize(float *W, int64_t n_out, int64_t n_in, const double *H, lb_type t,
                           const lb_gptq_params *p, const float *importance, void *q, lb_error *err) {
    lb_gptq_factor *f;
    LB_TRY_RET(lb_gptq_factor_create(&f, H, n_in, lb_gptq_damp(p, t), p->act_order && lb_type_grid(t), err));
    const lb_status st = lb_gptq_quantize_f(W, n_out, f, t, p, importance, q, err);
    lb_gptq_factor_free(f);
    return st;
}

/* X M into out [n_out, n] (f32 when out_f, else accumulated into *sum as sum (X M) . Y):
 * rows in chunks of ERR_ROWS, each chunk's product by BLAS in f64 */
#define ERR_ROWS 256
static bool rows_times(const float *X, const double *M, int64_t n_out, int64_t n, float *out_f,
                       const float *Y, double *sum) {
    double *x = malloc((size_t)(ERR_ROWS * n) * sizeof *x), *xm = malloc((size_t)(ERR_ROWS * n) * sizeof *xm);
    if (!x || !xm) {
        free(x);
        free(xm);
        return false;
    }
    openblas_set_num_threads(lb_threads_get());
    for (int64_t r0 = 0; r0 < n_out; r0 += ERR_ROWS) {
        const int64_t nr = n_out - r0 < ERR_ROWS ? n_out - r0 : ERR_ROWS;
        for (int64_t i = 0; i < nr * n; i++) x[i] = X[r0 * n + i];
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)nr, (blasint)n, (blasint)n, 1.0, x,
                    (blasint)n, M, (blasint)n, 0.0, xm, (blasint)n);
        if (out_f)
            for (int64_t i = 0; i < nr * n; i++) out_f[r0 * n + i] = (float)xm[i];
        else
            for (int64_t i = 0; i < nr * n; i++) *sum += xm[i] * (double)Y[r0 * n + i];
    }
    openblas_set_num_threads(1);
    free(x);
    free(xm);
    return true;
}

double lb_quad_sum(const float *X, const float *Y, const double *M, int64_t n_out, int64_t n) {
    double sum = 0;
    return rows_times(X, M, n_out, n, NULL, Y, &sum) ? sum : NAN;
}

lb_status lb_rows_times(const float *X, const double *M, int64_t n_out, int64_t n, float *out, lb_error *err) {
    LB_RETURN_IF(!rows_times(X, M, n_out, n, out, NULL, NULL), err, LB_ERR_NOMEM, "out of memory");
    return LB_OK;
}

double lb_output_error(const float *W, const float *Wq, int64_t n_out, int64_t n_in,
                       const double *H) {
    float *d = malloc((size_t)(n_out * n_in) * sizeof *d);
    if (!d) return NAN;
    for (int64_t i = 0; i < n_out * n_in; i++) d[i] = (float)((double)W[i] - Wq[i]);
    const double num = lb_quad_sum(d, d, H, n_out, n_in), den = lb_quad_sum(W, W, H, n_out, n_in);
    free(d);
    return den > 0 ? num / den : 0;
}


/* no column saw a token: nothing to refit */
static bool nothing_seen(const lb_gptq_factor *f) {
    for (int64_t i = 0; i < f->n; i++)
        if (f->diag[i] > 0) return false;
    return true;
}

lb_status lb_gptq_factor_refit_matrix(lb_gptq_factor *f, const double *C, lb_error *err) {
    const int64_t n = f->n, G = LB_GPTQ_ROWS, n_g = (n + G - 1) / G;
    LB_RETURN_IF(!f->L, err, LB_ERR_PARAM, "gptq: a refit after the factor's GPTQ");
    if (f->Mt || nothing_seen(f)) return LB_OK;
    double *X = malloc((size_t)(n * n) * sizeof *X);
    LB_RETURN_IF(!X, err, LB_ERR_NOMEM, "gptq: out of memory for a %lld x %lld refit", (long long)n, (long long)n);
    /* row c of M^T, column c of M = H'^-1 (C^T + lambda I), solves H' m = row c of C plus
     * lambda e_c: in the factor's order as lb_gptq_retarget_f solves, G columns a thread, then
     * back in place */
    int bad = 0;
#pragma omp parallel
    {
        double *t = malloc((size_t)n * sizeof *t);
#pragma omp for schedule(dynamic, 1)
        for (int64_t g = 0; g < n_g; g++) {
            const int64_t c0 = g * G, nc = n - c0 < G ? n - c0 : G;
            double       *x  = X + c0 * n;
            for (int64_t c = c0; c < c0 + nc; c++)
                for (int64_t a = 0; a < n; a++) {
                    const int64_t i = f->perm[n - 1 - a];
                    x[(c - c0) * n + a] = C[c * n + i] + (i == c ? f->lambda : 0.0);
                }
            const lapack_int inf = LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'U', (lapack_int)n, (lapack_int)nc, f->L,
                                                  (lapack_int)n, x, (lapack_int)n);
            for (int64_t c = 0; t && inf == 0 && c < nc; c++) {
                double *m = x + c * n;
                for (int64_t a = 0; a < n; a++) t[f->perm[n - 1 - a]] = m[a];
                memcpy(m, t, (size_t)n * sizeof *m);
            }
            if (!t || inf != 0) {
#pragma omp atomic write
                bad = t ? 2 : 1;
            }
        }
        free(t);
    }
    if (bad) {
        free(X);
        if (bad == 2) return lb_fail(err, LB_ERR_CORRUPT, "gptq: the refit's triangular solve failed");
        return lb_fail(err, LB_ERR_NOMEM, "gptq: out of memory for a %lld x %lld refit", (long long)n, (long long)n);
    }
    f->Mt = X;
    return LB_OK;
}

lb_status lb_gptq_retarget_f(float *W, int64_t n_out, const double *C, const lb_gptq_factor *f, lb_error *err) {
    const int64_t n = f->n, G = LB_GPTQ_ROWS, n_g = (n_out + G - 1) / G;
    const double  lambda = f->lambda;
    LB_RETURN_IF(!f->L, err, LB_ERR_PARAM, "gptq: a refit after the factor's GPTQ");
    if (nothing_seen(f)) return LB_OK;
    int bad = 0;
    /* row by row W'^T = H'^-1 (C^T W^T + lambda W^T), a group of rows a thread, in the
     * factor's order: b[a] = B[perm[n - 1 - a]], L L^T y = b, x[perm[n - 1 - a]] = y[a].
     * Column-major, each row of W is a column of W^T where it lies, and L (row-major lower) is
     * the upper factor dpotrs takes. With the refit matrix: W' = W M^T. */
#pragma omp parallel
    {
        double *Wd = malloc((size_t)(n * G) * sizeof *Wd), *B = malloc((size_t)(n * G) * sizeof *B);
#pragma omp for schedule(dynamic, 1)
        for (int64_t g = 0; g < n_g; g++) {
            const int64_t r0 = g * G, nr = n_out - r0 < G ? n_out - r0 : G;
            lapack_int    inf = -1;
            if (Wd && B && f->Mt) {
                for (int64_t i = 0; i < n * nr; i++) Wd[i] = W[r0 * n + i];
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)nr, (blasint)n, (blasint)n, 1.0, Wd,
                            (blasint)n, f->Mt, (blasint)n, 0.0, B, (blasint)n);
                for (int64_t i = 0; i < n * nr; i++) W[r0 * n + i] = (float)B[i];
                continue;
            }
            if (Wd && B) {
                for (int64_t i = 0; i < n * nr; i++) Wd[i] = W[r0 * n + i];
                cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (blasint)n, (blasint)nr, (blasint)n, 1.0, C,
                            (blasint)n, Wd, (blasint)n, 0.0, B, (blasint)n); /* C row-major is C^T here */
                for (int64_t r = 0; r < nr; r++) {
                    double *b = B + r * n, *w = Wd + r * n;
                    for (int64_t a = 0; a < n; a++) w[a] = b[f->perm[n - 1 - a]] + lambda * (double)W[(r0 + r) * n + f->perm[n - 1 - a]];
                }
                inf = LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'U', (lapack_int)n, (lapack_int)nr, f->L, (lapack_int)n, Wd,
                                     (lapack_int)n);
            }
            if (inf == 0) {
                for (int64_t r = 0; r < nr; r++)
                    for (int64_t a = 0; a < n; a++) W[(r0 + r) * n + f->perm[n - 1 - a]] = (float)Wd[r * n + a];
            } else {
#pragma omp atomic write
                bad = 1;
            }
        }
        free(Wd);
        free(B);
    }
    LB_RETURN_IF(bad, err, LB_ERR_NOMEM, "gptq: out of memory refitting %lld rows", (long long)n_out);
    return LB_OK;
}

lb_status lb_gptq_retarget(float *W, int64_t n_out, int64_t n_in, const double *C, const double *H, double damp,
                           lb_error *err) {
    lb_gptq_factor *f;
    LB_TRY_RET(lb_gptq_factor_create(&f, H, n_in, damp > 0 ? damp : 0.01, false, err));
    const lb_status st = lb_gptq_retarget_f(W, n_out, C, f, err);
    lb_gptq_factor_free(f);
    return st;
}

double lb_output_error_cross(const float *W, const float *Wq, int64_t n_out, int64_t n_in,
                             const double *A, const double *C, const double *H) {
    /* ||W X - Wq X'||^2 = w A w - 2 w C q + q H q, summed over the rows */
    const double waw = lb_quad_sum(W, W, A, n_out, n_in);
    const double wcq = lb_quad_sum(W, Wq, C, n_out, n_in);
    const double qhq = lb_quad_sum(Wq, Wq, H, n_out, n_in);
    return waw > 0 ? (waw - 2 * wcq + qhq) / waw : 0;
}
