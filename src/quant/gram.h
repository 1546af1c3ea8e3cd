/* Gram products of calibration activations, X^T X and X^T Y, whose bits do not depend on the
 * thread count (gram.c): OpenMP over column tiles, each one single-threaded BLAS call.
 * Row-major, f32. */
#ifndef LB_QUANT_GRAM_H
#define LB_QUANT_GRAM_H

#include <stdint.h>

/* the upper triangle of S (n x n) = w X^T X + beta S, X [T, n]; the strict lower triangle is
 * not touched */
void lb_gram_upper(int32_t n, int32_t T, float w, const float *X, float beta, float *S);
/* S (n x n) = X^T Y + beta S, X and Y [T, n] */
void lb_gram_cross(int32_t n, int32_t T, const float *X, const float *Y, float beta, float *S);

#endif
