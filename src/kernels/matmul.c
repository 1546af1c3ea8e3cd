/* Matrix products through OpenBLAS, threaded over output rows with OpenMP (BLAS itself
 * runs single-threaded: two thread pools spinning against each other cost 3x). */
#include <cblas.h>
#include <omp.h>

#include "matmul.h"

/* out[:, r0:r0+nr] = x · W[r0:r0+nr]ᵀ for f32 rows W (row stride n_in) */
static void gemm_rows(float *out, const float *x, const float *W, int64_t T, int64_t n_in,
                      int64_t nr, int64_t ldo) {
    if (T == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)nr, (blasint)n_in, 1.0f, W,
                    (blasint)n_in, x, 1, 0.0f, out, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)T, (blasint)nr,
                    (blasint)n_in, 1.0f, x, (blasint)n_in, W, (blasint)n_in, 0.0f, out,
                    (blasint)ldo);
}

void lb_matmul(float *out, const float *x, const lb_tensor *w, int64_t T, float *scratch) {
    const int64_t n_in = w->ne[0], n_out = w->ne[1];
    const int64_t n_tiles = (n_out + LB_MATMUL_TILE_ROWS - 1) / LB_MATMUL_TILE_ROWS;
    /* below ~1 MFLOP a second thread costs more than it brings */
    const int     par  = n_in * n_out * T >= (1 << 19) && n_tiles > 1;
    const lb_type_traits *tr = lb_type_get_traits(w->type);
#pragma omp parallel if (par)
    {
        const int     nth = omp_get_num_threads(), ith = omp_get_thread_num();
        float        *tile = scratch + (int64_t)ith * LB_MATMUL_TILE_ROWS * n_in;
        /* contiguous ranges of tiles per thread */
        const int64_t t0 = n_tiles * ith / nth, t1 = n_tiles * (ith + 1) / nth;
        for (int64_t t = t0; t < t1; t++) {
            const int64_t r0 = t * LB_MATMUL_TILE_ROWS;
            const int64_t nr = n_out - r0 < LB_MATMUL_TILE_ROWS ? n_out - r0 : LB_MATMUL_TILE_ROWS;
            const float  *W;
            if (w->type == LB_TYPE_F32) {
                W = (const float *)w->data + r0 * n_in;
            } else {
                for (int64_t r = 0; r < nr; r++)
                    tr->to_float(tile + r * n_in, lb_tensor_row(w, r0 + r), n_in);
                W = tile;
            }
            gemm_rows(out + r0, x, W, T, n_in, nr, n_out);
        }
    }
}
