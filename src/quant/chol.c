/* Cholesky factorization and triangular inverse in tiles, whose result does not depend on the
 * thread count: every tile operation is one single-threaded BLAS or LAPACK call on a tile of
 * TILE x TILE, and each tile receives its updates in one fixed order (step k = 0, 1, ...),
 * whichever thread runs it (the tiled right-looking algorithm of PLASMA; Buttari et al. 2009).
 * OpenBLAS's threaded dpotrf and dpotri round differently with 1 and 2 threads, so GPTQ's
 * bytes changed with -t, and with the threads of an MPI rank. Row-major, f64, lower. */
#include <lapacke.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "chol.h"

#define TILE 256

static int64_t tile_len(int64_t n, int64_t t) { return n - t * TILE < TILE ? n - t * TILE : TILE; }

int lb_chol_lower(double *A, int64_t n) {
    const int64_t T = (n + TILE - 1) / TILE;
    openblas_set_num_threads(1); /* the tiles run on lowbit's threads */
    for (int64_t k = 0; k < T; k++) {
        const int64_t mk = tile_len(n, k);
        double       *Akk = A + k * TILE * n + k * TILE;
        const int     info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)mk, Akk, (lapack_int)n);
        if (info != 0) return (int)(k * TILE) + (info > 0 ? info : 1);
#pragma omp parallel for schedule(dynamic, 1) if (T - k > 2)
        for (int64_t i = k + 1; i < T; i++) /* the panel: A_ik L_kk^-T */
            cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, (blasint)tile_len(n, i),
                        (blasint)mk, 1.0, Akk, (blasint)n, A + i * TILE * n + k * TILE, (blasint)n);
        const int64_t m = T - k - 1, n_up = m * (m + 1) / 2; /* the trailing tiles (i >= j > k) */
#pragma omp parallel for schedule(dynamic, 1) if (n_up > 2)
        for (int64_t u = 0; u < n_up; u++) {
            int64_t i = 0;
            while ((i + 1) * (i + 2) / 2 <= u) i++;
            const int64_t j = u - i * (i + 1) / 2; /* u -> (i, j), j <= i */
            const int64_t ti = k + 1 + i, tj = k + 1 + j, mi = tile_len(n, ti), mj = tile_len(n, tj);
            const double *Aik = A + ti * TILE * n + k * TILE, *Ajk = A + tj * TILE * n + k * TILE;
            double       *Aij = A + ti * TILE * n + tj * TILE;
            if (ti == tj)
                cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, (blasint)mi, (blasint)mk, -1.0, Aik, (blasint)n,
                            1.0, Aij, (blasint)n);
            else
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)mi, (blasint)mj, (blasint)mk, -1.0, Aik,
                            (blasint)n, Ajk, (blasint)n, 1.0, Aij, (blasint)n);
        }
    }
    return 0;
}

void lb_tri_inverse_lower_rev(const double *L, int64_t n, float *U) {
    const int64_t T = (n + TILE - 1) / TILE;
    memset(U, 0, (size_t)(n * n) * sizeof *U);
    openblas_set_num_threads(1);
    /* column tile j of X = L^-1 solves L[j:, j:] X[j:, j] = I (one call each, in a scratch of
     * (n - j) x TILE), then goes to U reversed: U[n-1-a][n-1-b] = X[a][b] */
#pragma omp parallel
    {
        double *Xj = malloc((size_t)(n * TILE) * sizeof *Xj);
#pragma omp for schedule(dynamic, 1)
        for (int64_t j = 0; j < T; j++) {
            const int64_t c0 = j * TILE, mj = tile_len(n, j), m = n - c0;
            if (!Xj) continue; /* (never: the caller's n^2 buffers were larger) */
            memset(Xj, 0, (size_t)(m * mj) * sizeof *Xj);
            for (int64_t a = 0; a < mj; a++) Xj[a * mj + a] = 1.0;
            cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, (blasint)m, (blasint)mj, 1.0,
                        L + c0 * n + c0, (blasint)n, Xj, (blasint)mj);
            for (int64_t a = 0; a < m; a++)
                for (int64_t b = 0; b < mj && b <= a; b++)
                    U[(n - 1 - c0 - a) * n + (n - 1 - c0 - b)] = (float)Xj[a * mj + b];
        }
        free(Xj);
    }
}
