/* Gram products in column tiles. OpenBLAS's threaded sgemm and ssyrk round differently on 1
 * and 2 threads (some 8% of a 2048 x 2048 product's elements, measured), and the calibration
 * hook's products ran single-threaded to keep GPTQ's bytes independent of -t. Here each column
 * tile of TILE columns is one single-threaded call whatever the thread count, so the bits are
 * fixed and both cores work. The upper triangle's tiles run from the largest.
 * The bf16 products: X and Y transposed into rows of T bf16 values (one row per column of X),
 * then the BF16 kernel's dot products (kernels/qdot.h: BF16 rows on bf16 activations) into a
 * tile of the thread's, added into S as beta and w ask. */
#include <cblas.h>
#include <stdlib.h>

#include "gram.h"
#include "kernels/qdot.h"
#include "lowbit/core.h"

#define TILE 256

static const lb_qdot *bf16_kernel(void) {
    const lb_qdot *k = lb_qdot_get_fast(LB_TYPE_BF16);
    return k && k->act == LB_ACT_BF16 && k->gemm ? k : NULL;
}

bool lb_gram_bf16_available(void) { return bf16_kernel() != NULL; }

/* X [T, n] into Xt [n, T] of bf16 */
static void to_bf16_t(const float *X, int32_t T, int32_t n, uint16_t *Xt) {
#pragma omp parallel for schedule(static) if (n >= 512)
    for (int32_t j0 = 0; j0 < n; j0 += 64) {
        const int32_t j1 = n - j0 < 64 ? n : j0 + 64;
        for (int32_t t = 0; t < T; t++)
            for (int32_t j = j0; j < j1; j++) Xt[(size_t)j * (size_t)T + t] = lb_f32_to_bf16(X[(size_t)t * (size_t)n + j]);
    }
}

/* S[i][j] = w sum_t X[t][i] Y[t][j] + beta S[i][j] for j in tiles, i < j1 (upper) or all; false:
 * out of memory (nothing written) */
static bool gram_bf16(const lb_qdot *k, int32_t n, int32_t T, float w, const float *X, const float *Y, float beta,
                      float *S, bool upper) {
    const size_t rs = (size_t)T * sizeof(uint16_t);
    uint16_t    *Xt = malloc((size_t)n * rs), *Yt = Y != X ? malloc((size_t)n * rs) : Xt;
    bool         ok = Xt && Yt;
    if (ok) {
        to_bf16_t(X, T, n, Xt);
        if (Yt != Xt) to_bf16_t(Y, T, n, Yt);
    }
    const int32_t nt = (n + TILE - 1) / TILE;
#pragma omp parallel if (ok && nt > 1)
    {
        float *tile = ok ? malloc((size_t)n * TILE * sizeof *tile) : NULL;
        if (ok && !tile) {
#pragma omp atomic write
            ok = false;
        }
#pragma omp for schedule(dynamic, 1)
        for (int32_t q = 0; q < nt; q++) {
            const int32_t kk = upper ? nt - 1 - q : q, j0 = kk * TILE, mj = n - j0 < TILE ? n - j0 : TILE;
            const int32_t ni = upper ? j0 + mj : n; /* rows i of S the tile needs */
            if (!tile || !ok) continue;
            /* tile[i * TILE + r] = dot(Yt row j0 + r, Xt row i) */
            k->gemm(T, (const uint8_t *)Yt + (size_t)j0 * rs, rs, mj, Xt, rs, ni, tile, TILE);
            for (int32_t i = 0; i < ni; i++) {
                float       *s = S + (size_t)i * (size_t)n + j0;
                const float *g = tile + (size_t)i * TILE;
                for (int32_t r = 0; r < mj; r++) s[r] = w * g[r] + (beta != 0.0f ? beta * s[r] : 0.0f);
            }
        }
        free(tile);
    }
    free(Xt);
    if (Yt != Xt) free(Yt);
    return ok;
}

void lb_gram_upper(int32_t n, int32_t T, float w, const float *X, float beta, float *S, bool bf16) {
    const lb_qdot *k = bf16 ? bf16_kernel() : NULL;
    if (k && gram_bf16(k, n, T, w, X, X, beta, S, true)) return;
    const int32_t nt = (n + TILE - 1) / TILE;
    openblas_set_num_threads(1);
#pragma omp parallel for schedule(dynamic, 1) if (nt > 1)
    for (int32_t q = nt - 1; q >= 0; q--) {
        const int32_t j0 = q * TILE, mj = n - j0 < TILE ? n - j0 : TILE;
        if (j0 > 0) /* rows [0, j0) of the tile's columns */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, j0, mj, T, w, X, n, X + j0, n, beta, S + j0, n);
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, mj, T, w, X + j0, n, beta, S + (size_t)j0 * (size_t)n + j0,
                    n);
    }
}

void lb_gram_cross(int32_t n, int32_t T, const float *X, const float *Y, float beta, float *S, bool bf16) {
    const lb_qdot *k = bf16 ? bf16_kernel() : NULL;
    if (k && gram_bf16(k, n, T, 1.0f, X, Y, beta, S, false)) return;
    const int32_t nt = (n + TILE - 1) / TILE;
    openblas_set_num_threads(1);
#pragma omp parallel for schedule(dynamic, 1) if (nt > 1)
    for (int32_t q = 0; q < nt; q++) {
        const int32_t j0 = q * TILE, mj = n - j0 < TILE ? n - j0 : TILE;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, mj, T, 1.0f, X, n, Y + j0, n, beta, S + j0, n);
    }
}
