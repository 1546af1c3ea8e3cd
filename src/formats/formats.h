/* The per-type functions the traits table (traits.c) points to. Naming, per type X:
 *   lb_quantize_row_X_ref(dst, src, n)   round to nearest, as ggml's quantize_row_X_ref
 *   lb_dequantize_row_X(dst, src, n)     exact dequantization, as ggml's dequantize_row_X
 *   lb_quantize_X(dst, src, nrow, n_per_row, importance)   importance-aware (optional)
 * n is a multiple of the type's block size. */
#ifndef LB_FORMATS_H
#define LB_FORMATS_H

#include <stddef.h>
#include <stdint.h>

#include "blocks.h"

#define LB_DECLARE_REF(X)                                                                          \
    void lb_quantize_row_##X##_ref(void *dst, const float *src, int64_t n);                        \
    void lb_dequantize_row_##X(float *dst, const void *src, int64_t n)

LB_DECLARE_REF(q8_0);
LB_DECLARE_REF(q4_0);
LB_DECLARE_REF(q4_1);
LB_DECLARE_REF(q5_0);
LB_DECLARE_REF(q5_1);
LB_DECLARE_REF(q2_k);
LB_DECLARE_REF(q3_k);
LB_DECLARE_REF(q4_k);
LB_DECLARE_REF(q5_k);
LB_DECLARE_REF(q6_k);

/* The k-quants' importance-aware quantizers (as ggml's quantize_q2_K .. quantize_q6_K):
 * importance NULL gives the _ref rows. */
size_t lb_quantize_q2_k(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                        const float *importance);
size_t lb_quantize_q3_k(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                        const float *importance);
size_t lb_quantize_q4_k(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                        const float *importance);
size_t lb_quantize_q5_k(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                        const float *importance);
size_t lb_quantize_q6_k(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                        const float *importance);

/* the non-linear 4-bit grid types (with importance-aware quantizers) and the ternary types */
LB_DECLARE_REF(iq4_nl);
LB_DECLARE_REF(iq4_xs);
LB_DECLARE_REF(tq1_0);
LB_DECLARE_REF(tq2_0);
size_t lb_quantize_iq4_nl(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                          const float *importance);
size_t lb_quantize_iq4_xs(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                          const float *importance);

#endif
