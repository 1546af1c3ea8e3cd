/* Matrix products through OpenBLAS: sgemm for batches, sgemv for one token. */
#include <cblas.h>

#include "matmul.h"

void lb_matmul(float *out, const float *x, const lb_tensor *w, int64_t T, float *scratch) {
    const int64_t n_in = w->ne[0], n_out = w->ne[1];
    if (w->type == LB_TYPE_F32) {
        const float *W = w->data;
        if (T == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)n_out, (blasint)n_in, 1.0f, W,
                        (blasint)n_in, x, 1, 0.0f, out, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)T, (blasint)n_out,
                        (blasint)n_in, 1.0f, x, (blasint)n_in, W, (blasint)n_in, 0.0f, out,
                        (blasint)n_out);
        return;
    }
    const lb_type_traits *tr = lb_type_get_traits(w->type);
    for (int64_t r0 = 0; r0 < n_out; r0 += LB_MATMUL_TILE_ROWS) {
        const int64_t nr = n_out - r0 < LB_MATMUL_TILE_ROWS ? n_out - r0 : LB_MATMUL_TILE_ROWS;
        for (int64_t r = 0; r < nr; r++)
            tr->to_float(scratch + r * n_in, lb_tensor_row(w, r0 + r), n_in);
        if (T == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)nr, (blasint)n_in, 1.0f, scratch,
                        (blasint)n_in, x, 1, 0.0f, out + r0, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)T, (blasint)nr,
                        (blasint)n_in, 1.0f, x, (blasint)n_in, scratch, (blasint)n_in, 0.0f,
                        out + r0, (blasint)n_out);
    }
}
