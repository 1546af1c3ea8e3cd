/* GPTQ: quantize a weight matrix column by column, each rounding error compensated on the
 * columns still to come, using the inverse Hessian of the layer's input (Frantar et al.,
 * "GPTQ", 2023; the lazy-batch and Cholesky formulation of the paper's Algorithm 1).
 *
 *   H' = H + damp * mean(diag H) * I, dead columns (H_ii = 0) zeroed;
 *   U  = cholesky(H'^-1) (upper: H'^-1 = U^T U);
 *   for each column i (in act order or natural order):
 *       q_i = round(w_i) onto the block's grid;  e = (w_i - q_i) / U_ii;
 *       w_j -= e * U_ij for the columns j after i (within the 128-column batch now, the
 *       rest with one GEMM when the batch ends).
 * Works in f64 for the factorizations, f32 for the weight updates (as the reference does). */
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "core/fail.h"
#include "formats/grid.h"
#include "lowbit/quant.h"

/* U (upper, f32, n x n) with (H + damp I)^-1 = U^T U; the damping grows until H is
 * positive definite. Dead columns are handled by the caller. */
static lb_status inverse_cholesky(const double *H, int64_t n, double damp, float *U, lb_error *err) {
    double *A = malloc((size_t)(n * n) * sizeof *A);
    LB_RETURN_IF(!A, err, LB_ERR_NOMEM, "gptq: out of memory for a %lld x %lld Hessian", (long long)n, (long long)n);
    double mean = 0;
    for (int64_t i = 0; i < n; i++) mean += H[i * n + i];
    mean /= (double)n;
    for (int attempt = 0; attempt < 8; attempt++, damp *= 10) {
        memcpy(A, H, (size_t)(n * n) * sizeof *A);
        for (int64_t i = 0; i < n; i++) A[i * n + i] += damp * mean;
        if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', (lapack_int)n, A, (lapack_int)n) != 0) continue;
        if (LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'U', (lapack_int)n, A, (lapack_int)n) != 0) continue;
        for (int64_t i = 0; i < n; i++) /* symmetrize H^-1 from its upper triangle */
            for (int64_t j = 0; j < i; j++) A[i * n + j] = A[j * n + i];
        if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', (lapack_int)n, A, (lapack_int)n) != 0) continue;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) U[i * n + j] = j >= i ? (float)A[i * n + j] : 0.0f;
        free(A);
        return LB_OK;
    }
    free(A);
    return lb_fail(err, LB_ERR_CORRUPT, "gptq: the Hessian stays singular even with damping");
}

static int cmp_desc(const void *a, const void *b, void *ctx) {
    const double *d = ctx;
    const double  x = d[*(const int64_t *)a], y = d[*(const int64_t *)b];
    if (x != y) return x > y ? -1 : 1;
    return *(const int64_t *)a < *(const int64_t *)b ? -1 : 1;
}

lb_status lb_gptq_quantize(float *W, int64_t n_out, int64_t n_in, const double *H, lb_type t,
                           const lb_gptq_params *p, const float *importance, void *q,
                           lb_error *err) {
    const lb_type_traits *tr   = lb_type_get_traits(t);
    const lb_grid_ops    *grid = lb_type_grid(t);
    LB_RETURN_IF(!tr || !tr->is_quantized || tr->block_size < 2, err, LB_ERR_UNSUPPORTED,
                 "gptq: type %s has no blocks to fix scales on", lb_type_name(t));
    LB_RETURN_IF(n_in % tr->block_size != 0, err, LB_ERR_SHAPE,
                 "gptq: rows of %lld do not divide into %s blocks", (long long)n_in, tr->name);
    const int64_t bs = tr->block_size, nb = n_in / bs, B = p->block > 0 ? p->block : 128;
    const size_t  rs = lb_row_size(t, n_in);
    const bool    act_order = p->act_order && grid != NULL;
    lb_status     st = LB_OK;
    double       *Hp = malloc((size_t)(n_in * n_in) * sizeof *Hp);
    float        *U  = malloc((size_t)(n_in * n_in) * sizeof *U);
    float        *Wp = malloc((size_t)(n_out * n_in) * sizeof *Wp); /* columns in processing order */
    float        *Qp = malloc((size_t)(n_out * n_in) * sizeof *Qp);
    float        *E  = malloc((size_t)(n_out * B) * sizeof *E);
    int64_t      *perm = malloc((size_t)n_in * sizeof *perm), *pos = malloc((size_t)n_in * sizeof *pos);
    double       *diag = malloc((size_t)n_in * sizeof *diag);
    bool         *ready = calloc((size_t)nb, 1); /* block scales fixed */
    float        *blk   = malloc((size_t)bs * sizeof *blk);
    LB_GOTO_IF(!Hp || !U || !Wp || !Qp || !E || !perm || !pos || !diag || !ready || !blk, err,
               LB_ERR_NOMEM, "gptq: out of memory");
    for (int64_t i = 0; i < n_in; i++) {
        perm[i] = i;
        diag[i] = H[i * n_in + i];
    }
    if (act_order) qsort_r(perm, (size_t)n_in, sizeof *perm, cmp_desc, diag);
    for (int64_t k = 0; k < n_in; k++) pos[perm[k]] = k;
    /* permuted H and W; dead columns: unit diagonal, zero weights */
    for (int64_t a = 0; a < n_in; a++)
        for (int64_t b = 0; b < n_in; b++) Hp[a * n_in + b] = H[perm[a] * n_in + perm[b]];
    for (int64_t k = 0; k < n_in; k++) {
        const bool dead = Hp[k * n_in + k] <= 0;
        if (dead) Hp[k * n_in + k] = 1;
        for (int64_t r = 0; r < n_out; r++) Wp[r * n_in + k] = dead ? 0.0f : W[r * n_in + perm[k]];
    }
    LB_TRY(inverse_cholesky(Hp, n_in, p->damp > 0 ? p->damp : 0.01, U, err));

    for (int64_t i1 = 0; i1 < n_in; i1 += B) {
        const int64_t i2 = i1 + B < n_in ? i1 + B : n_in;
        for (int64_t k = i1; k < i2; k++) {
            const int64_t c = perm[k], b = c / bs, j = c % bs;
            if (!ready[b]) { /* fix the block's scales from the current weights, every row */
                for (int64_t r = 0; r < n_out; r++) {
                    uint8_t *qb = (uint8_t *)q + (size_t)r * rs + (size_t)b * tr->type_size;
                    for (int64_t jj = 0; jj < bs; jj++) blk[jj] = Wp[r * n_in + pos[b * bs + jj]];
                    lb_quantize_rows(t, qb, blk, 1, bs, importance ? importance + b * bs : NULL);
                    if (!grid) { /* no grid access: the whole block is decided now */
                        tr->to_float(blk, qb, bs);
                        for (int64_t jj = 0; jj < bs; jj++) Qp[r * n_in + pos[b * bs + jj]] = blk[jj];
                    }
                }
                ready[b] = true;
            }
            const float d = U[k * n_in + k];
            for (int64_t r = 0; r < n_out; r++) {
                uint8_t    *qb = (uint8_t *)q + (size_t)r * rs + (size_t)b * tr->type_size;
                const float w  = Wp[r * n_in + k];
                float       qv;
                if (grid) {
                    float         lv[LB_GRID_MAX];
                    const int32_t nl   = grid->levels(qb, (int32_t)j, lv);
                    int32_t       best = 0;
                    for (int32_t l = 1; l < nl; l++)
                        if (fabsf(lv[l] - w) < fabsf(lv[best] - w)) best = l;
                    grid->set_code(qb, (int32_t)j, best);
                    qv = lv[best];
                    Qp[r * n_in + k] = qv;
                } else {
                    qv = Qp[r * n_in + k];
                }
                const float e = (w - qv) / d;
                E[r * B + (k - i1)] = e;
                for (int64_t l = k + 1; l < i2; l++) Wp[r * n_in + l] -= e * U[k * n_in + l];
            }
        }
        if (i2 < n_in) /* W[:, i2:] -= E · U[i1:i2, i2:] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)n_out,
                        (blasint)(n_in - i2), (blasint)(i2 - i1), -1.0f, E, (blasint)B,
                        U + i1 * n_in + i2, (blasint)n_in, 1.0f, Wp + i2, (blasint)n_in);
    }
    /* the stored rows decide: W gets exactly what the file holds */
    for (int64_t r = 0; r < n_out; r++) tr->to_float(W + r * n_in, (uint8_t *)q + (size_t)r * rs, n_in);
fail:
    free(Hp);
    free(U);
    free(Wp);
    free(Qp);
    free(E);
    free(perm);
    free(pos);
    free(diag);
    free(ready);
    free(blk);
    return st;
}

double lb_output_error(const float *W, const float *Wq, int64_t n_out, int64_t n_in,
                       const double *H) {
    double num = 0, den = 0;
    double *d = malloc((size_t)n_in * sizeof *d), *w = malloc((size_t)n_in * sizeof *w);
    if (!d || !w) {
        free(d);
        free(w);
        return NAN;
    }
    for (int64_t r = 0; r < n_out; r++) {
        for (int64_t i = 0; i < n_in; i++) {
            d[i] = (double)W[r * n_in + i] - Wq[r * n_in + i];
            w[i] = W[r * n_in + i];
        }
        for (int64_t i = 0; i < n_in; i++) {
            double hd = 0, hw = 0;
            for (int64_t j = 0; j < n_in; j++) {
                hd += H[i * n_in + j] * d[j];
                hw += H[i * n_in + j] * w[j];
            }
            num += d[i] * hd;
            den += w[i] * hw;
        }
    }
    free(d);
    free(w);
    return den > 0 ? num / den : 0;
}
