/* Matrix products with weights of any storage type. Kernels never allocate: callers pass
 * scratch of lb_matmul_scratch_floats(n_in, T, n_threads) floats.
 * Shapes: x [T, n_in] row-major, w ne = [n_in, n_out], out [T, n_out]. */
#ifndef LB_KERNELS_MATMUL_H
#define LB_KERNELS_MATMUL_H

#include <stdint.h>

#include "lowbit/tensor.h"

#define LB_MATMUL_TILE_ROWS 256
#define LB_MATMUL_DIRECT_T  8 /* F16/BF16/INT8_PC kernels (f32 activations) up to this many tokens */

/* How activations enter a product with quantized weights. */
typedef enum lb_matmul_mode {
    LB_MATMUL_EXACT = 0, /* f32: weights dequantized (a tile at a time), then BLAS */
    LB_MATMUL_FAST  = 1, /* quantized on the fly to 8-bit blocks, integer dot products; BF16
                            rows on activations rounded to bf16 where the CPU has AVX512_BF16
                            (as llama.cpp computes); types without such a kernel: as EXACT */
} lb_matmul_mode;

/* A weight matrix as the products see it: the tensor, and optionally its rows packed for the
 * quantized kernels (lb_matmul_pack; used by FAST products). */
typedef struct lb_mat {
    const lb_tensor *t;
    const void      *packed;
} lb_mat;

/* Bytes of w's packed rows (0: its type or shape has no packed layout on this CPU), and the
 * packing itself (threads over row groups). */
size_t lb_matmul_pack_size(const lb_tensor *w);
void   lb_matmul_pack(void *dst, const lb_tensor *w);

/* Scratch for products with rows of up to n_in values and up to T tokens. */
int64_t lb_matmul_scratch_floats(int64_t n_in, int64_t T, int n_threads);

/* out = x · wᵀ. The output rows are split across the OpenMP threads in fixed tiles; every
 * result is computed by the same operations whatever the thread count (identical output for
 * any -t). F32 weights go to BLAS (sgemm for a batch, sgemv for one token); other types:
 * see lb_matmul_mode. scratch: lb_matmul_scratch_floats(n_in, T, threads) floats, 64-byte
 * aligned. */
void lb_matmul(float *out, const float *x, lb_mat w, int64_t T, lb_matmul_mode mode,
               float *scratch);

/* out[i] = x · w[i]ᵀ for the n <= LB_MATMUL_MAX_MULTI matrices that read the same input (q, k,
 * v; gate, up): with quantized kernels for all, one parallel region and the activations
 * quantized once; otherwise one lb_matmul after the other. The same results as lb_matmul. */
#define LB_MATMUL_MAX_MULTI 4
void lb_matmul_multi(float *const *out, const float *x, const lb_mat *w, int n, int64_t T,
                     lb_matmul_mode mode, float *scratch);

/* W8A8 (SmoothQuant, LLM.int8) with integer products: out[i] = x̂ · w[i]ᵀ for n <=
 * LB_MATMUL_MAX_MULTI INT8_PC matrices reading the same input x, already quantized to int8
 * rows (xq: T rows of lb_matmul_i8_row_size(n_in) bytes, { f32 d; int8 q[n_in] }, levels in
 * -127..127: actq.c) with n_in <= LB_MATMUL_I8_MAX_IN; plus, with ol, the f32 products of the
 * input columns kept in f32 (LLM.int8's outliers, which xq holds as 0). Threads and tiles as
 * lb_matmul_multi: the same bits for any thread count. */
#define LB_MATMUL_I8_MAX_IN 131072
typedef struct lb_w8a8_outliers {
    int32_t        k;                       /* columns kept in f32 (0: none) */
    const int32_t *cols;                    /* [k], increasing */
    const float   *x;                       /* the f32 input [T, n_in] */
    const float   *w[LB_MATMUL_MAX_MULTI];  /* per matrix: its f32 columns [n_out, k] */
} lb_w8a8_outliers;
size_t lb_matmul_i8_row_size(int64_t n_in);
void   lb_matmul_w8a8(float *const *out, const void *xq, const lb_mat *w, int n, int64_t T,
                      const lb_w8a8_outliers *ol);

#endif
