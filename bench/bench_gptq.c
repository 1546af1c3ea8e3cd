/* GPTQ's cost on one layer: W [n_out, n_in] with n_tok calibration tokens (default: 4096 x
 * 4096, 16384 tokens, int4_g128), and where the time goes:
 *   hessian:  H = X^T X accumulated as calibration does it (src/quant/calib.c): per window of
 *             128 tokens an ssyrk into f32 (BLAS on one thread, as lowbit runs it), then its
 *             upper half added into the f64 H (the lower one mirrored once at the end); for
 *             comparison, the same ssyrk on every thread, and adding into both halves at
 *             every window (what calib.c did before);
 *   gptq:     lb_gptq_quantize as a whole, and inside it, timed apart on the same shapes as
 *             gptq.c runs them:
 *             cholesky: the tiled Cholesky and triangular inverse (f64) of the damped H (chol.c,
 *                       the tiles on every thread);
 *             gemm:     the lazy-batch updates W[:, i2:] -= E U[i1:i2, i2:] (sgemm on slices of
 *                       256 columns, one slice per thread at a time);
 *             columns:  the rest (the column loop, rows in parallel: rounding onto the grid,
 *                       the updates inside each 128-column batch; plus permuting H and W);
 *   refit:    the f32 target's lb_gptq_retarget (W C H^-1: dgemm and dposv, f64).
 * Random data (Gaussian X with correlated channels, Gaussian W): the time does not depend on it.
 * Built by CMake (build/bench_gptq):
 *   build/bench_gptq [n_out n_in n_tok type threads]                                         */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "lowbit/core.h"
#include "quant/chol.h"
#include "lowbit/quant.h"

#define WINDOW 128 /* tokens per calibration window (--calib-ctx 128) */

static uint64_t g_rng = 42;
static float    gauss(void) { /* Box-Muller on a splitmix stream */
    double u[2];
    for (int i = 0; i < 2; i++) {
        uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
        z          = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z          = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        u[i]       = ((double)((z ^ (z >> 31)) >> 11) + 0.5) / 9007199254740992.0;
    }
    return (float)(sqrt(-2 * log(u[0])) * cos(2 * M_PI * u[1]));
}

int main(int argc, char **argv) {
    const int64_t n_out   = argc > 1 ? atoll(argv[1]) : 4096;
    const int64_t n_in    = argc > 2 ? atoll(argv[2]) : 4096;
    const int64_t n_tok   = argc > 3 ? atoll(argv[3]) : 16384;
    const char   *tname   = argc > 4 ? argv[4] : "int4_g128";
    const int     threads = argc > 5 ? atoi(argv[5]) : 0;
    const lb_type t       = lb_type_from_name(tname);
    if (t == LB_TYPE_INVALID || n_out < 1 || n_in < 1 || n_tok < WINDOW) {
        fprintf(stderr, "usage: bench_gptq [n_out n_in n_tok type threads]\n");
        return 2;
    }
    lb_threads_set(threads);
    const size_t nn = (size_t)(n_in * n_in);
    float       *X = malloc((size_t)(WINDOW * n_in) * sizeof *X), *tmp = malloc(nn * sizeof *tmp);
    float       *W = malloc((size_t)(n_out * n_in) * sizeof *W), *mix = malloc((size_t)n_in * sizeof *mix);
    double      *H = calloc(nn, sizeof *H), *A = malloc(nn * sizeof *A);
    void        *q = malloc(lb_row_size(t, n_in) * (size_t)n_out);
    if (!X || !tmp || !W || !mix || !H || !A || !q || !lb_row_size(t, n_in)) {
        fprintf(stderr, "out of memory (or %s cannot hold rows of %lld)\n", tname, (long long)n_in);
        return 1;
    }
    printf("GPTQ on one layer: W %lld x %lld, %lld tokens, %s, %d threads\n", (long long)n_out,
           (long long)n_in, (long long)n_tok, tname, lb_threads_get());

    /* the Hessian: windows of random tokens, channels mixed with their neighbour so that H
     * is not diagonal; generating them is not timed */
    double t_syrk = 0, t_add = 0, t_syrk_mt = 0, t_upper = 0;
    double *Hu = calloc(nn, sizeof *Hu); /* the upper half only */
    if (!Hu) return 1;
    for (int64_t i = 0; i < n_in; i++) mix[i] = 0.5f + (float)(i % 7) * 0.25f;
    for (int64_t w0 = 0; w0 < n_tok; w0 += WINDOW) {
        for (int64_t r = 0; r < WINDOW; r++) {
            float prev = 0;
            for (int64_t i = 0; i < n_in; i++) {
                const float z = gauss() * mix[i];
                X[r * n_in + i] = z + 0.6f * prev;
                prev            = z;
            }
        }
        const double t0 = lb_time_sec();
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (blasint)n_in, WINDOW, 1.0f, X,
                    (blasint)n_in, 0.0f, tmp, (blasint)n_in);
        const double t1 = lb_time_sec();
        for (int64_t i = 0; i < n_in; i++) /* as calib.c: the upper half, mirrored at the end */
            for (int64_t j = i; j < n_in; j++) H[i * n_in + j] += tmp[i * n_in + j];
        t_syrk += t1 - t0;
        t_add += lb_time_sec() - t1;
        const double t2 = lb_time_sec();
        for (int64_t i = 0; i < n_in; i++) /* for comparison: both halves at every window */
            for (int64_t j = i; j < n_in; j++) {
                const double v = tmp[i * n_in + j];
                Hu[i * n_in + j] += v;
                if (j != i) Hu[j * n_in + i] += v;
            }
        t_upper += lb_time_sec() - t2;
        openblas_set_num_threads(lb_threads_get());
        const double t3 = lb_time_sec();
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (blasint)n_in, WINDOW, 1.0f, X,
                    (blasint)n_in, 0.0f, tmp, (blasint)n_in);
        t_syrk_mt += lb_time_sec() - t3;
        openblas_set_num_threads(1);
    }
    const double t4 = lb_time_sec();
    for (int64_t i = 0; i < n_in; i++)
        for (int64_t j = 0; j < i; j++) H[i * n_in + j] = H[j * n_in + i];
    t_add += lb_time_sec() - t4;
    free(Hu);
    for (int64_t i = 0; i < n_out * n_in; i++) W[i] = gauss();

    /* GPTQ as a whole */
    lb_error             err = { 0 };
    const lb_gptq_params p   = { .damp = 0.01, .block = 128, .act_order = false };
    double               t0  = lb_time_sec();
    if (lb_gptq_quantize(W, n_out, n_in, H, t, &p, NULL, q, &err) != LB_OK) {
        fprintf(stderr, "gptq: %s\n", err.msg);
        return 1;
    }
    const double t_gptq = lb_time_sec() - t0;

    /* its factorizations, on the same damped H (as gptq.c's inverse_cholesky) */
    double mean = 0;
    for (int64_t i = 0; i < n_in; i++) mean += H[i * n_in + i];
    mean /= (double)n_in;
    memcpy(A, H, nn * sizeof *A);
    for (int64_t i = 0; i < n_in; i++) A[i * n_in + i] += 0.01 * mean;
    float *Ui = malloc(nn * sizeof *Ui);
    if (!Ui) return 1;
    t0             = lb_time_sec();
    const int info = lb_chol_lower(A, n_in); /* the tiles' Cholesky and inverse (chol.c) */
    if (!info) lb_tri_inverse_lower_rev(A, n_in, Ui);
    const double t_chol = lb_time_sec() - t0;
    free(Ui);
    if (info) fprintf(stderr, "warning: the factorization failed (%d)\n", info);

    /* its lazy-batch GEMMs, on the same shapes (tmp as U, W as the weights, X as E) */
    float *E = malloc((size_t)(n_out * 128) * sizeof *E);
    if (!E) return 1;
    for (int64_t i = 0; i < n_out * 128; i++) E[i] = 1e-3f * gauss();
    t0 = lb_time_sec();
    for (int64_t i1 = 0; i1 + 128 < n_in; i1 += 128) {
        const int64_t i2 = i1 + 128;
#pragma omp parallel for schedule(dynamic, 1)
        for (int64_t c0 = i2; c0 < n_in; c0 += 256) {
            const int64_t nc = n_in - c0 < 256 ? n_in - c0 : 256;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)n_out, (blasint)nc, 128,
                        -1.0f, E, 128, tmp + i1 * n_in + c0, (blasint)n_in, 1.0f, W + c0, (blasint)n_in);
        }
    }
    const double t_gemm = lb_time_sec() - t0;

    /* the f32 target (method gptq's default): the refit W C H^-1 before GPTQ (C = H here: the
     * time does not depend on the values), and the cross term's accumulation, one more sgemm
     * and f64 add per window for C (as calib.c's ssyrk and add: timed above) */
    t0 = lb_time_sec();
    if (lb_gptq_retarget(W, n_out, n_in, H, H, 0.01, &err) != LB_OK) {
        fprintf(stderr, "retarget: %s\n", err.msg);
        return 1;
    }
    const double t_refit = lb_time_sec() - t0;

    const double t_cols = t_gptq - t_chol - t_gemm;
    const double total  = t_syrk + t_add + t_gptq;
    printf("| part | seconds | share |\n| --- | ---: | ---: |\n");
    printf("| Hessian: ssyrk, %lld windows of %d tokens | %.2f | %.0f%% |\n", (long long)(n_tok / WINDOW),
           WINDOW, t_syrk, 100 * t_syrk / total);
    printf("| Hessian: adding into the f64 H | %.2f | %.0f%% |\n", t_add, 100 * t_add / total);
    printf("| GPTQ: Cholesky and triangular inverse (tiles, f64) | %.2f | %.0f%% |\n", t_chol, 100 * t_chol / total);
    printf("| GPTQ: lazy-batch sgemm updates | %.2f | %.0f%% |\n", t_gemm, 100 * t_gemm / total);
    printf("| GPTQ: column loop (grid rounding, in-batch updates) and setup | %.2f | %.0f%% |\n", t_cols,
           100 * t_cols / total);
    printf("| total (GPTQ alone %.2f) | %.2f | 100%% |\n", t_gptq, total);
    printf("\nfor comparison: the ssyrk on %d BLAS threads %.2f s; adding into both halves at "
           "every window %.2f s\n", lb_threads_get(), t_syrk_mt, t_upper);
    printf("the f32 target's refit W C H^-1 (dgemm, dposv in f64): %.2f s; its cross term C costs "
           "what the Hessian's accumulation does (a second forward pass, a gemm and an f64 add "
           "per window)\n", t_refit);
    free(X);
    free(tmp);
    free(W);
    free(mix);
    free(H);
    free(A);
    free(q);
    free(E);
    return 0;
}
