/* Gram products in column tiles. OpenBLAS's threaded sgemm and ssyrk round differently on 1
 * and 2 threads (some 8% of a 2048 x 2048 product's elements, measured), and the calibration
 * hook's products ran single-threaded to keep GPTQ's bytes independent of -t. Here each column
 * tile of TILE columns is one single-threaded call whatever the thread count, so the bits are
 * fixed and both cores work. The largest tiles (the upper triangle's last columns) go first. */
#include <cblas.h>

#include "gram.h"

#define TILE 256

void lb_gram_upper(int32_t n, int32_t T, float w, const float *X, float beta, float *S) {
    const int32_t nt = (n + TILE - 1) / TILE;
    openblas_set_num_threads(1);
#pragma omp parallel for schedule(dynamic, 1) if (nt > 1)
    for (int32_t k = nt - 1; k >= 0; k--) {
        const int32_t j0 = k * TILE, mj = n - j0 < TILE ? n - j0 : TILE;
        if (j0 > 0) /* rows [0, j0) of the tile's columns */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, j0, mj, T, w, X, n, X + j0, n, beta, S + j0, n);
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, mj, T, w, X + j0, n, beta, S + (size_t)j0 * (size_t)n + j0,
                    n);
    }
}

void lb_gram_cross(int32_t n, int32_t T, const float *X, const float *Y, float beta, float *S) {
    const int32_t nt = (n + TILE - 1) / TILE;
    openblas_set_num_threads(1);
#pragma omp parallel for schedule(dynamic, 1) if (nt > 1)
    for (int32_t k = 0; k < nt; k++) {
        const int32_t j0 = k * TILE, mj = n - j0 < TILE ? n - j0 : TILE;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, mj, T, 1.0f, X, n, Y + j0, n, beta, S + j0, n);
    }
}
