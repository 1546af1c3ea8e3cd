/* Matrix products with weights of any storage type. Kernels never allocate: callers pass
 * scratch of lb_matmul_scratch_floats(n_in, n_threads) floats.
 * Shapes: x [T, n_in] row-major, w ne = [n_in, n_out], out [T, n_out]. */
#ifndef LB_KERNELS_MATMUL_H
#define LB_KERNELS_MATMUL_H

#include <stdint.h>

#include "lowbit/tensor.h"

#define LB_MATMUL_TILE_ROWS 64

static inline int64_t lb_matmul_scratch_floats(int64_t n_in, int n_threads) {
    return (int64_t)LB_MATMUL_TILE_ROWS * n_in * n_threads;
}

/* out = x · wᵀ. The output rows are split across the OpenMP threads; each thread calls
 * single-threaded BLAS (sgemm for a batch, sgemv for one token) on its rows. f32 weights
 * go straight to BLAS; other types are converted LB_MATMUL_TILE_ROWS rows at a time
 * into the thread's scratch, each tile reused for all T tokens. */
void lb_matmul(float *out, const float *x, const lb_tensor *w, int64_t T, float *scratch);

#endif
